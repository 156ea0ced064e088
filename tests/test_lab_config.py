"""The lab's settings: YAML + flags -> validated pydantic models; errors name the field and what it allows."""

from pathlib import Path

import pytest

from negdelay.lab import config as C
from negdelay.lab.config import ConfigError, Schedule, Starts, build, parse_seeds
from negdelay.schedule import Point

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_validate():
    toy = build("compare", ROOT / "configs/toy.yaml")
    assert toy.model == "toy" and len(toy.pairs) == 4 and toy.seeds == list(range(16))
    assert [s.text() for s in toy.schedules] == ["step:2", "step:6", "fraction:0.5"]
    pizza = build("compare", ROOT / "configs/seed-pizza.yaml")
    assert (pizza.steps, pizza.guidance_scale, pizza.height, pizza.width, pizza.scheduler) == (50, 7.5, 512, 512, "pndm")
    assert [p.prompt for p in pizza.pairs] == ["girl eating pizza", "girl eating pizza", "girl eating pizza wearning glasses"]
    assert [p.negative for p in pizza.pairs] == [
        "EasyNegativeV2, extra fingers, fewer fingers", "wearning glasses", "EasyNegativeV2, extra fingers, fewer fingers"]
    assert [s.start for s in pizza.schedules] == [Point("step", 4)]
    assert pizza.textual_inversion[0].token == "EasyNegativeV2"
    sweep = build("sweep", ROOT / "configs/toy-sweep.yaml")
    assert sweep.starts.kind == "step" and len(sweep.starts.values) > 3


def test_defaults_for_the_embedded_model():
    c = build("compare")
    assert c.model == "toy" and c.pairs == list(C.TOY_PAIRS)
    for p in c.pairs:  # prompts that do not name the accessory, negatives that do
        assert "dot" not in p.prompt and "dot" in p.negative
    s = build("sweep")
    assert s.prompt == C.TOY_PAIRS[0].prompt and s.starts.kind == "step"


def test_flags_override_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("steps: 30\nseeds: 0-2\nguidance_scale: 5\n")
    c = build("compare", f, steps=12, seeds=None)
    assert (c.steps, c.seeds, c.guidance_scale) == (12, [0, 1, 2], 5.0)


@pytest.mark.parametrize(
    "yaml_text, needles",
    [
        ("stepz: 3\n", ["stepz", "unknown key", "allowed:", "steps"]),
        ("scheduler: fancy\n", ["scheduler", "'pndm'", "'euler_a'", "'dpm++2m'"]),
        ("dtype: float64\n", ["dtype", "'float32'", "'float16'", "'bfloat16'"]),
        ("schedules: [step:x]\n", ["schedules.0", "step, fraction, sigma"]),
        ("schedules: ['frac:0.2']\n", ["schedules.0", "'frac'", "step, fraction, sigma"]),
        ("schedules: ['fraction:1.5']\n", ["schedules.0", "[0, 1]"]),
        ("schedules: ['step:6..4']\n", ["stop must come after the start"]),
        ("seeds: 5-2\n", ["seeds", "backwards"]),
        ("guidance_scale: 1.0\n", ["guidance_scale", "greater than 1"]),
        ("pairs: [{prompt: a, negative: b, weight: 2}]\n", ["pairs.0.weight", "unknown key"]),
        ("textual_inversion: [nocolon]\n", ["textual_inversion.0", "FILE:TOKEN"]),
        ("device: gpu\n", ["device", "cuda"]),
        ("height: 30\n", ["height", "multiple of 8"]),
    ],
)
def test_errors_name_the_field_and_the_allowed_values(tmp_path, yaml_text, needles):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        build("compare", f)
    for n in needles:
        assert n in str(e.value), (n, str(e.value))


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("steps: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build("compare", f)
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        build("compare", f)
    with pytest.raises(ConfigError, match="does not exist"):
        build("compare", tmp_path / "missing.yaml")


def test_schedule_text():
    assert Schedule.parse("4") == Schedule(start=Point("step", 4))
    assert Schedule.parse("fraction:0.25").start == Point("fraction", 0.25)
    s = Schedule.parse("step:4..12")
    assert (s.start, s.stop, s.text()) == (Point("step", 4), Point("step", 12), "step:4..12")
    s = Schedule.parse("sigma:3.5..fraction:0.9")
    assert (s.start, s.stop) == (Point("sigma", 3.5), Point("fraction", 0.9))
    with pytest.raises(ValueError, match="whole number"):
        Schedule.parse("step:2.5")


def test_starts_and_seeds():
    assert Starts.model_validate("step:1-4,7").points() == [Point("step", v) for v in (1, 2, 3, 4, 7)]
    assert Starts.model_validate("fraction:0.1,0.3").values == [0.1, 0.3]
    with pytest.raises(ValueError, match="duplicates"):
        Starts.model_validate("step:1,1")
    with pytest.raises(ValueError, match="not one of"):
        Starts.model_validate("steps:1,2")
    assert parse_seeds("0-3,9") == [0, 1, 2, 3, 9]
    assert parse_seeds(3) == parse_seeds("3") == [3]  # one seed, in YAML and on the command line alike
    assert parse_seeds([5, 2]) == [5, 2]
    with pytest.raises(ValueError, match="duplicates"):
        parse_seeds([1, 1])


def test_generate_needs_one_form():
    with pytest.raises(ConfigError, match="a1111"):
        build("generate", prompt="a red circle")
    with pytest.raises(ConfigError, match="not both"):
        build("generate", prompt="a red circle", negative="with a dot", schedule="step:3", a1111="[with a dot:3]")
    g = build("generate", prompt="a red circle", negative="with a dot", schedule="3")
    assert g.schedule.start == Point("step", 3)


def test_other_models_need_explicit_pairs():
    with pytest.raises(ConfigError, match="pairs"):
        build("compare", model="some/model")
    with pytest.raises(ConfigError, match="prompt and negative"):
        build("sweep", model="some/model")


def test_seed_ranges_are_bounded_and_counted_before_they_are_built():
    """Issue 15: '--seeds 0-99999999999' was a MemoryError traceback. A range is counted before it is built."""
    with pytest.raises(ValueError, match=rf"100000000000 seeds.*at most {C.MAX_SEEDS}"):
        parse_seeds("0-99999999999")
    with pytest.raises(ConfigError, match=r"seeds: .*at most"):
        build("compare", seeds="0-99999999999")
    with pytest.raises(ValueError, match="at most"):
        parse_seeds(f"0-{C.MAX_SEEDS // 2},{C.MAX_SEEDS}-{2 * C.MAX_SEEDS}")  # the parts add up
    assert len(parse_seeds(f"0-{C.MAX_SEEDS - 1}")) == C.MAX_SEEDS
    assert parse_seeds(str(C.MAX_SEED)) == [C.MAX_SEED]
    for too_big in (str(C.MAX_SEED + 1), [C.MAX_SEED + 1], f"{C.MAX_SEED}-{C.MAX_SEED + 1}"):
        with pytest.raises(ValueError, match=rf"seed .*at most {C.MAX_SEED}"):
            parse_seeds(too_big)
    with pytest.raises(ValueError, match="at most"):
        parse_seeds(list(range(C.MAX_SEEDS + 1)))
    with pytest.raises(ValueError, match="step 99999999999 .*at most 1000"):
        Starts.model_validate("step:1-99999999999")  # a start range is bounded by the longest run


def test_default_schedules_fit_the_steps_of_the_run():
    """Issue 15: with no schedules and --steps 4 the default 'step:6' failed, a schedule the user never wrote."""
    assert [s.text() for s in build("compare").schedules] == ["step:2", "step:6"]  # 0.1 and 0.3 of 20 steps
    assert [s.text() for s in build("compare", steps=4).schedules] == ["step:1"]
    assert [s.text() for s in build("compare", steps=8).schedules] == ["step:1", "step:2"]
    for steps in range(2, 60):
        for model in ("toy", "some/model"):
            pairs = None if model == "toy" else [{"prompt": "a", "negative": "b"}]
            c = build("compare", model=model, pairs=pairs, steps=steps)
            assert c.schedules and all(1 <= s.start.value < steps for s in c.schedules), (model, steps)
    other = build("compare", model="some/model", pairs=[{"prompt": "a", "negative": "b"}], steps=50)
    assert [s.text() for s in other.schedules] == ["step:10"]  # 0.2 of the run
    given = build("compare", steps=4, schedules=["step:6"])  # a schedule the user wrote is kept as written
    assert [s.text() for s in given.schedules] == ["step:6"]
