"""A1111 prompt editing in the negative prompt (negdelay.a1111).

1. Parser tables: A1111's own doctests of ``get_learned_conditioning_prompt_schedules`` (modules/prompt_parser.py,
   steps=10) as input -> expected schedule; cases that A1111 parses but negdelay refuses (alternation, stray
   brackets) are listed with the reason. A second table holds further facts of A1111's scheduling (how ``when`` is
   read, empty parts, escapes, nesting), checked against A1111's parser.
2. Steps -> texts table (A1111's counter <= k rule, our step = A1111's counter).
3. Segments for the core, and that they resolve through negdelay.schedule to the same per-step texts.
4. Refusals with clear errors.
5. End-to-end, bit-exact on the tiny SD pipeline against the callback-free reference of tests/tiny.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import HeunDiscreteScheduler, PNDMScheduler
from tiny import captured_uncond, reference, tiny_sd

from negdelay import DelayedNegative, Point
from negdelay import schedule as sch
from negdelay.a1111 import delayed_negative, per_step, schedule, segments, unescape
from negdelay.families import SD

# -- 1. A1111's doctests (steps=10), verbatim inputs and expected schedules ------------------------------------

A1111_DOCTESTS = [
    ("test", [[10, "test"]]),
    ("a [b:3]", [[3, "a "], [10, "a b"]]),
    ("a [b: 3]", [[3, "a "], [10, "a b"]]),
    ("a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]),
    ("[(a:2):3]", [[3, ""], [10, "(a:2)"]]),
    ("a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]),
    ("a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]),
    ("a [b:.5] c", [[5, "a  c"], [10, "a b c"]]),
]

# A1111 doctests whose inputs negdelay refuses, and why (A1111's result in the comment).
A1111_DOCTESTS_REFUSED = [
    ("a [unbalanced", "unbalanced '\\['"),  # A1111: [[10, 'a [unbalanced']] (stray '[' kept as text)
    ("((a][:b:c [d:3]", "unbalanced '\\]'"),  # A1111: [[3, '((a][:b:c '], [10, '((a][:b:c d']]
    ("a [{b|d{:.5] c", "alternation"),  # doctest says [[5,'a  c'],...], marked "not handling this right now"
    ("[a|(b:1.1)]", "alternation"),  # A1111: alternates a / (b:1.1) every step
    ("[fe|]male", "alternation"),
    ("[fe|||]male", "alternation"),
]
# Not ported: the doctests with hires_steps (get_learned_conditioning_prompt_schedules([p], 10, 10)); a diffusers
# call has no hires second pass.


@pytest.mark.parametrize("text, want", A1111_DOCTESTS)
def test_a1111_doctests(text, want):
    assert schedule(text, 10) == [tuple(e) for e in want]


@pytest.mark.parametrize("text, match", A1111_DOCTESTS_REFUSED)
def test_a1111_doctests_refused(text, match):
    with pytest.raises(ValueError, match=match):
        schedule(text, 10)


# Further facts of A1111's scheduling: (text, steps, A1111's schedule). Checked against A1111's own parser
# (current prompt_parser.py with lark) while writing this table.
A1111_FACTS = [
    # integers are steps, numbers with a '.' are fractions of the steps; truncated; capped at steps
    ("[a:b:1]", 10, [[1, "a"], [10, "b"]]),
    ("[a:b:0.5]", 10, [[5, "a"], [10, "b"]]),
    ("[a:b:0.5]", 20, [[10, "a"], [20, "b"]]),
    ("[a:b:1.0]", 10, [[10, "a"]]),  # fraction 1.0 = all steps: "b" never
    ("[a:b:3.]", 10, [[10, "a"]]),  # '3.' has a '.', so 3 * steps, capped
    ("[a:b:1.5]", 20, [[20, "a"]]),
    ("[a:b:0]", 10, [[10, "b"]]),  # when=0: "b" from the start
    ("[a:b:0.0]", 20, [[20, "b"]]),
    ("[a:b:0.05]", 10, [[10, "b"]]),  # int(0.5) = 0
    ("[a:b:0.05]", 20, [[1, "a"], [20, "b"]]),
    ("[a:b:0.29]", 10, [[2, "a"], [10, "b"]]),  # int(2.9) = 2
    ("[a:b:0.29]", 20, [[5, "a"], [20, "b"]]),  # int(5.8) = 5
    ("[a:b:.25]", 20, [[5, "a"], [20, "b"]]),
    ("[a:b:25]", 10, [[10, "a"]]),  # past the last step: capped, "b" never
    ("[a:b:9]", 10, [[9, "a"], [10, "b"]]),  # "b" from counter 10, which never comes in 10 steps
    ("[a:b:-1]", 10, [[10, "b"]]),
    ("[a:b:+3]", 10, [[3, "a"], [10, "b"]]),
    ("[a:b:1e1]", 20, [[10, "a"], [20, "b"]]),  # no '.': a step count
    ("[a:b:5e-1]", 20, [[20, "b"]]),  # no '.': int(0.5) = 0
    ("[a:b:3 ]", 10, [[3, "a"], [10, "b"]]),
    ("[a:b: 3 ]", 10, [[3, "a"], [10, "b"]]),
    # empty parts, whitespace kept in the texts
    ("[:b:3]", 10, [[3, ""], [10, "b"]]),
    ("[a::3]", 10, [[3, "a"], [10, ""]]),
    ("[::3]", 10, [[3, ""], [10, ""]]),
    ("[:3]", 10, [[3, ""], [10, ""]]),
    ("[ a : b : 3 ]", 10, [[3, " a "], [10, " b "]]),
    ("[a: b :3]", 10, [[3, "a"], [10, " b "]]),
    ("[a:a:3]", 10, [[3, "a"], [10, "a"]]),  # A1111 does not merge equal texts
    # nesting: every switch point counts, also one inside a branch not shown at the time
    ("[[c:d:2]:b:5]", 10, [[2, "c"], [5, "d"], [10, "b"]]),
    ("[(a:1.2):b:3]", 10, [[3, "(a:1.2)"], [10, "b"]]),
    ("(a:[b:3])", 10, [[3, "(a:)"], [10, "(a:b)"]]),
    ("[([glasses:5]:1.2):hat:10]", 20, [[5, "(:1.2)"], [10, "(glasses:1.2)"], [20, "hat"]]),
    ("[x[b:c:2]] [y:3]", 20, [[2, "[xb] "], [3, "[xc] "], [20, "[xc] y"]]),
    # emphasis, colons and '|' outside brackets are text
    ("[a]", 10, [[10, "[a]"]]),
    ("a:b", 10, [[10, "a:b"]]),
    ("x | y", 10, [[10, "x | y"]]),
    ("(a|b)", 10, [[10, "(a|b)"]]),
    ("x:[b:c:2]", 20, [[2, "x:b"], [20, "x:c"]]),
    ("([glasses:5]:1.2)", 20, [[5, "(:1.2)"], [20, "(glasses:1.2)"]]),  # ':' of a weight: not stray
    ("[b:c:2] :0", 20, [[2, "b :0"], [20, "c :0"]]),
    ("[b:c:2]x:", 20, [[2, "bx:"], [20, "cx:"]]),
    ("[b:c:2] (x:1.2):", 20, [[2, "b (x:1.2):"], [20, "c (x:1.2):"]]),
    ("[a:b:3] BREAK c", 10, [[3, "a BREAK c"], [10, "b BREAK c"]]),
    # escapes: literal characters, kept verbatim in A1111's schedule
    ("\\[a:3\\]", 10, [[10, "\\[a:3\\]"]]),
    ("\\(a\\)", 10, [[10, "\\(a\\)"]]),
    ("[a\\:b:3]", 10, [[3, ""], [10, "a\\:b"]]),
    ("[a\\]:3]", 10, [[3, ""], [10, "a\\]"]]),
    ("[a\\\\:b:3]", 10, [[3, "a\\\\"], [10, "b"]]),
    # the seed's negatives
    ("[glasses:5]", 20, [[5, ""], [20, "glasses"]]),
    ("[glasses:0.25]", 20, [[5, ""], [20, "glasses"]]),
    ("[EasyNegativeV2, extra fingers, fewer fingers:5]", 50, [[5, ""], [50, "EasyNegativeV2, extra fingers, fewer fingers"]]),
]


@pytest.mark.parametrize("text, steps, want", A1111_FACTS)
def test_a1111_facts(text, steps, want):
    assert schedule(text, steps) == [tuple(e) for e in want]


def test_a1111_header_example():
    # the example at the top of A1111's prompt_parser.py (steps=100)
    text = (
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
        "[ in background:0.25] [shoddy:masterful:0.5]"
    )
    assert schedule(text, 100) == [
        (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
        (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
        (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
        (75, "fantasy landscape with a lake and an oak in background masterful"),
        (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
    ]


# -- 2. steps -> texts -------------------------------------------------------------------------------------------

STEP_TEXTS = [
    ("[glasses:5]", 20, [""] * 6 + ["glasses"] * 14),
    ("[glasses:0.25]", 20, [""] * 6 + ["glasses"] * 14),
    ("[glasses:0.25]", 8, [""] * 3 + ["glasses"] * 5),
    ("[glasses:blurry:2]", 6, ["glasses"] * 3 + ["blurry"] * 3),
    ("[glasses::2]", 6, ["glasses"] * 3 + [""] * 3),
    ("[glasses:[blurry:hat:3]:1]", 6, ["glasses"] * 2 + ["blurry"] * 2 + ["hat"] * 2),
    ("a[b:[c:d:2]:1]e", 10, ["abe"] * 2 + ["ace"] + ["ade"] * 7),
    ("[a:b:0]", 4, ["b"] * 4),
    ("[a:b:1]", 4, ["a", "a", "b", "b"]),
    ("[a:b:3]", 4, ["a"] * 4),  # "b" would start at counter 4
    ("[a:b:1.0]", 4, ["a"] * 4),
    ("[a:b:0.5]", 4, ["a"] * 3 + ["b"]),
    ("[a:b:99]", 4, ["a"] * 4),
    ("x [a\\:b:1] \\(y\\)", 3, ["x  (y)", "x  (y)", "x a:b (y)"]),  # escapes resolved for the encoder
    ("", 3, ["", "", ""]),
]


@pytest.mark.parametrize("text, steps, want", STEP_TEXTS)
def test_per_step(text, steps, want):
    assert per_step(text, steps) == want


def test_per_step_keeps_escapes_when_asked():
    assert per_step("[\\(a\\):1]", 3, unescape_texts=False) == ["", "", "\\(a\\)"]


def test_unescape():
    assert unescape("\\[a\\]\\:\\(b\\)\\\\c\\d") == "[a]:(b)\\cd"


# -- 3. segments for the core ------------------------------------------------------------------------------------

SEGMENTS = [
    ("glasses", 20, "glasses", []),
    ("[glasses:5]", 20, "", [(Point("step", 6), "glasses")]),
    ("[glasses:blurry:2]", 6, "glasses", [(Point("step", 3), "blurry")]),
    ("[glasses:[blurry:hat:3]:1]", 6, "glasses", [(Point("step", 2), "blurry"), (Point("step", 4), "hat")]),
    # back to the step-0 text: key None (the pipeline's own embedding of negative_prompt=step0_text)
    ("[glasses:[blurry:glasses:3]:1]", 6, "glasses", [(Point("step", 2), "blurry"), (Point("step", 4), None)]),
    ("[a:a:3]", 10, "a", []),  # no change
    ("[a:b:5]", 6, "a", []),  # "b" from step 6 of 6: never
    ("[a:b:0]", 6, "b", []),
    ("[[c:d:2]:b:5]", 10, "c", [(Point("step", 3), "d"), (Point("step", 6), "b")]),
]


@pytest.mark.parametrize("text, steps, step0, segs", SEGMENTS)
def test_segments(text, steps, step0, segs):
    assert segments(text, steps) == (step0, segs)


@pytest.mark.parametrize("text, steps", [(t, n) for t, n, _ in STEP_TEXTS] + [(t, n) for t, n, _ in A1111_FACTS])
def test_segments_resolve_to_per_step_texts(text, steps):
    """Through the core's own resolution (key None = the step-0 text), segments give per_step's texts."""
    step0, segs = segments(text, steps)
    keys = sch.key_per_step(segs, sch.Run(n_iterations=steps, n_steps=steps))
    assert [step0 if k is None else k for k in keys] == per_step(text, steps)


# -- 4. refusals -------------------------------------------------------------------------------------------------

REFUSED = [
    ("[a|b]", "alternation \\[a\\|b\\]"),
    ("x [a|b:3]", "alternation"),
    ("[glasses:5] AND hat", "'AND'"),
    ("glasses AND hat", "'AND'"),
    ("[glasses:5", "unbalanced '\\[' .*position 0"),
    ("glasses:5]", "unbalanced '\\]'"),
    ("(glasses", "unbalanced '\\('"),
    ("glasses)", "unbalanced '\\)'"),
    ("[glasses:5)", "unbalanced '\\)'"),
    ("([glasses:5]", "unbalanced '\\('"),
    ("[glasses:5]]", "unbalanced '\\]'"),
    ("[a:b]", "last ':' must be a number"),
    ("[a:b:c]", "last ':' must be a number"),
    ("[a:b\\:3]", "last ':' must be a number"),
    ("[a:b:0x3]", "last ':' must be a number"),
    ("[a:b:3 4]", "last ':' must be a number"),
    ("[a:b:[c:1]]", "last ':' must be a number"),
    ("[a:b:c:3]", "3 ':'"),
    ("x | [glasses:5]", "'\\|' outside"),
    ("(a|b) [glasses:5]", "'\\|' outside"),
    ("[glasses:5] \\", "trailing backslash"),
    ("(" * 500 + "[glasses:5]" + ")" * 500, "nested more than 100 deep"),
    # ':' right after an edit's ']': A1111's lark parser reads it one way or the other depending on its version
    ("[b:c:2]:0", "':' right after the '\\]'"),
    ("x ([glasses:5]):", "':' right after the '\\]'"),
    ("[[glasses:5]]::", "':' right after the '\\]'"),
    ("(a:[glasses:5]:b)", "':' right after the '\\]'"),  # the second ':' of a (...) is stray to A1111
    ("[glasses:5](x:1.2):", "':' right after the '\\]'"),  # only brackets between
    ("[glasses:5][hat:3]:", "':' right after the '\\]'"),
]


@pytest.mark.parametrize("text, match", REFUSED, ids=[t if len(t) < 40 else t[:20] + "..." for t, _ in REFUSED])
def test_refused(text, match):
    with pytest.raises(ValueError, match=match):
        schedule(text, 20)
    with pytest.raises(ValueError, match=match):
        delayed_negative(text, 20)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "20", None])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        schedule("[glasses:5]", steps)


@pytest.mark.parametrize("text", [None, 5, b"[a:3]"])
def test_bad_text(text):
    with pytest.raises(TypeError, match="text must be a str"):
        schedule(text, 20)
    with pytest.raises(TypeError, match="text must be a str"):
        delayed_negative(text, 20)


def test_delayed_negative_without_changes():
    assert delayed_negative("glasses", 20) == ("glasses", None)
    assert delayed_negative("[a:b:6]", 6) == ("a", None)
    assert delayed_negative("", 20) == (None, None)  # every text empty: the pipeline's default (A1111: zeros on SDXL)
    assert delayed_negative("[::3]", 20) == (None, None)
    neg, cb = delayed_negative("[glasses:5]", 20)  # empty step-0 text but a later one: "" (A1111 encodes "")
    assert neg == "" and isinstance(cb, DelayedNegative)


def test_delayed_negative_picks_the_family():
    pipe = tiny_sd()
    _, cb = delayed_negative("[a:b:2]", 6, pipe)
    assert isinstance(cb, DelayedNegative) and cb.family.name == "sd"
    _, cb = delayed_negative("[a:b:2]", 6, SD())
    assert isinstance(cb, DelayedNegative)
    with pytest.raises(TypeError, match="object is not supported by a delayed-negative callback"):
        delayed_negative("[a:b:2]", 6, object())


# -- 5. end to end, bit-exact ------------------------------------------------------------------------------------
#
# The reference (tests/tiny.py) runs the stock pipeline without callbacks and puts, for every UNet call of step s,
# the rows of the text that A1111's rule gives for step s into the unconditional half. Rows are captured from stock
# pipeline runs: the step-0 text with the same negative_prompt list the run gets (those are the pipeline's own
# rows); the later texts as one stock negative_prompt batch of exactly the texts the callback encodes (the texts
# it needs, sorted). The text encoder's output can differ by an ulp with the composition of its batch on CPU, so
# the reference encodes the same batches; which text is used at which step is what these tests pin down.

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
SIZE = dict(height=16, width=16)


def _gen():
    return torch.Generator().manual_seed(0)


def _run(pipe, steps, n_per_prompt=1, **kw):
    return pipe(PROMPTS, generator=_gen(), num_inference_steps=steps, num_images_per_prompt=n_per_prompt,
                output_type="np", **SIZE, **kw).images


def _reference(pipe, row_texts, steps, n_per_prompt=1):
    """``row_texts``: per prompt, the text of each step. Callback-free run with those texts' rows."""
    n_rows = len(PROMPTS) * n_per_prompt
    step0 = [texts[0] for texts in row_texts]
    own = captured_uncond(pipe, step0, rows=n_rows, **SIZE)
    later = sorted({t for texts, s0 in zip(row_texts, step0) for t in texts if t != s0})
    later_rows = captured_uncond(pipe, later, **SIZE) if later else None
    per_row = [row_texts[r // n_per_prompt] for r in range(n_rows)]

    def rows_for_step(step, ehs):
        n = ehs.shape[0] // 2
        rows = [
            own[r : r + 1] if texts[step] == texts[0] else later_rows[later.index(texts[step])][None]
            for r, texts in enumerate(per_row)
        ]
        return torch.cat(rows + [ehs[n:]])

    with reference(pipe, rows_for_step):
        return _run(pipe, steps, n_per_prompt)


def _delayed(pipe, text, steps, n_per_prompt=1):
    neg, cb = delayed_negative(text, steps, pipe)
    negative = [neg] * len(PROMPTS) if isinstance(neg, str) else neg
    return _run(pipe, steps, n_per_prompt, negative_prompt=negative, callback_on_step_end=cb)


@pytest.mark.parametrize(
    "text, steps, texts",
    [
        ("[glasses:blurry:2]", 6, ["glasses"] * 3 + ["blurry"] * 3),  # steps 0-2 "glasses", 3+ "blurry"
        ("[glasses:[blurry:hat:3]:1]", 6, ["glasses"] * 2 + ["blurry"] * 2 + ["hat"] * 2),  # two switch points
        ("[glasses:[blurry:glasses:3]:1]", 6, ["glasses"] * 2 + ["blurry"] * 2 + ["glasses"] * 2),  # back: key None
        ("[glasses:0.5]", 6, [""] * 4 + ["glasses"] * 2),  # empty step-0 text
    ],
)
def test_end_to_end_equals_reference(text, steps, texts):
    assert per_step(text, steps) == texts
    pipe = tiny_sd()
    want = _reference(pipe, [texts] * len(PROMPTS), steps)
    got = _delayed(pipe, text, steps)
    assert got.shape == (2, 16, 16, 3)
    assert np.array_equal(got, want)
    # the proof can fail: the same texts one step later give a different image
    shifted = texts[:1] + texts[:-1]
    assert not np.array_equal(got, _reference(pipe, [shifted] * len(PROMPTS), steps))


@pytest.mark.parametrize("make", [
    lambda c: PNDMScheduler.from_config(c, skip_prk_steps=True),  # a warm-up iteration in step 0
    lambda c: HeunDiscreteScheduler.from_config(c),  # two UNet calls per step
])
def test_end_to_end_multistep_schedulers_and_batch(make):
    """Steps are progress-bar steps on every scheduler; batch of 2 prompts x 2 images."""
    pipe = tiny_sd()
    pipe.scheduler = make(pipe.scheduler.config)
    texts = ["glasses"] * 2 + ["blurry"] * 2 + ["hat"] * 2
    want = _reference(pipe, [texts] * len(PROMPTS), 6, n_per_prompt=2)
    got = _delayed(pipe, "[glasses:[blurry:hat:3]:1]", 6, n_per_prompt=2)
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)


def test_end_to_end_one_text_per_prompt():
    pipe = tiny_sd()
    per_prompt = {"[glasses:blurry:2]": ["glasses"] * 3 + ["blurry"] * 3, "[hat:0.5]": [""] * 4 + ["hat"] * 2}
    neg, cb = delayed_negative(list(per_prompt), 6, pipe)
    assert neg == ["glasses", ""]
    got = _run(pipe, 6, negative_prompt=neg, callback_on_step_end=cb)
    want = _reference(pipe, list(per_prompt.values()), 6)
    assert np.array_equal(got, want)


def test_callback_refuses_other_step_count():
    pipe = tiny_sd()
    neg, cb = delayed_negative("[glasses:blurry:2]", 6, pipe)
    with pytest.raises(ValueError, match="resolved for steps=6, but the call runs 5 steps"):
        pipe(PROMPTS, negative_prompt=[neg] * 2, callback_on_step_end=cb, num_inference_steps=5, output_type="latent",
             **SIZE)
