"""Checkpoint selection (``negdelay.toy.validate``): its objects cover every colour and shape, and ``rank``
punishes a model that drops one colour."""

from __future__ import annotations

from negdelay.toy import validate, world


def test_objects_cycle_through_every_colour_and_shape():
    objs = validate.objects(12)
    assert sorted(objs) == sorted((c, s) for c in world.COLOURS for s in world.SHAPES)


def test_rank_prefers_even_colours_over_one_dropped_colour():
    even = {"both": 0.85, "colour": dict.fromkeys(world.COLOURS, 0.85)}
    dropped = {"both": 0.9, "colour": {**dict.fromkeys(world.COLOURS, 1.0), "red": 0.6}}
    assert validate.rank(even) > validate.rank(dropped)
