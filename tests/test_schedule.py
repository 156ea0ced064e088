"""The pure schedule semantics, as tables (no torch, no pipeline)."""

import pytest

from negdelay import schedule as sch
from negdelay.schedule import Point, Run


@pytest.mark.parametrize(
    "n_iter, n_steps, order, expected",
    [
        (5, 5, 1, [0, 1, 2, 3, 4]),  # DDIM, Euler: one iteration a step
        (6, 5, 1, [0, 0, 1, 2, 3, 4]),  # PNDM skip_prk_steps: warm-up iteration belongs to step 0
        (9, 5, 2, [0, 0, 1, 1, 2, 2, 3, 3, 4]),  # Heun: two UNet calls a step, the last step one
        (3, 3, 1, [0, 1, 2]),
    ],
)
def test_iteration_steps_follow_the_progress_bar(n_iter, n_steps, order, expected):
    assert Run(n_iter, n_steps, order).iteration_steps() == expected


def test_step_sigmas_take_the_first_call_of_each_step():
    run = Run(5, 3, 2, sigmas=(10.0, 5.0, 5.0, 1.0, 1.0))
    assert run.step_sigmas() == [10.0, 5.0, 1.0]


@pytest.mark.parametrize(
    "point, expected",
    [
        (Point("step", 3), 3),
        (Point("step", 10), 10),  # past the end: never
        (Point("fraction", 0.25), 2),  # int(0.25 * 10)
        (Point("fraction", 0.29), 2),
        (Point("fraction", 0.3), 3),
        (Point("fraction", 1.0), 10),
        (Point("sigma", 5.0), 5),  # first step with sigma <= 5
        (Point("sigma", 5.5), 5),
        (Point("sigma", 100.0), 0),
        (Point("sigma", 0.5), 10),  # never reached
    ],
)
def test_resolve(point, expected):
    run = Run(10, 10, 1, sigmas=tuple(float(10 - k) for k in range(10)))
    assert sch.resolve(point, run) == expected


def test_plan_window_and_switches():
    run = Run(6, 5, 1)  # PNDM-like
    keys = sch.plan([sch.window(Point("step", 2), "neg", Point("step", 4))], run)
    assert [k[0] for k in keys] == [None, None, None, "neg", "neg", None]
    # the callback after iteration 2 switches on (step 2 = iteration 3), after iteration 4 switches off
    assert sch.switches(keys) == {2: ("neg",), 4: (None,)}


def test_per_row_plan():
    run = Run(5, 5, 1)
    rows = [sch.window(Point("step", k), "neg") for k in (1, 3, 5)]
    keys = sch.plan(rows, run)
    assert keys == [
        (None, None, None),
        ("neg", None, None),
        ("neg", None, None),
        ("neg", "neg", None),
        ("neg", "neg", None),
    ]
    assert sch.switches(keys) == {0: ("neg", None, None), 2: ("neg", "neg", None)}


def test_segments_with_several_texts():
    run = Run(6, 6, 1)
    segs = [(Point("step", 2), "a"), (Point("step", 4), "b")]
    assert sch.key_per_step(segs, run) == [None, None, "a", "a", "b", "b"]


def test_step_zero_is_refused_at_plan_time():
    run = Run(10, 10, 1)
    with pytest.raises(ValueError, match="step 0"):
        sch.plan([sch.window(Point("fraction", 0.05), "neg")], run)


def test_stop_equal_to_start_and_backwards_are_refused():
    run = Run(10, 10, 1)
    with pytest.raises(ValueError, match="stop must come after start"):
        sch.plan([sch.window(Point("step", 3), "n", Point("fraction", 0.3))], run)
    with pytest.raises(ValueError, match="backwards"):
        sch.plan([sch.window(Point("step", 5), "n", Point("fraction", 0.2))], run)


def test_start_past_the_end_never_switches():
    run = Run(10, 10, 1)
    keys = sch.plan([sch.window(Point("step", 10), "n", Point("step", 12))], run)
    assert sch.switches(keys) == {}


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(), ValueError, "exactly one of start_step, start_fraction, start_sigma, start_percent; got none"),
        (dict(step=1, fraction=0.5), ValueError, "got start_step, start_fraction"),
        (dict(step=-1), ValueError, "start_step must be >= 0"),
        (dict(step=1.5), TypeError, "start_step must be an int"),
        (dict(step=True), TypeError, "start_step must be a number"),
        (dict(fraction=1.5), ValueError, r"start_fraction must be a fraction in \[0, 1\]"),
        (dict(fraction=-0.1), ValueError, "start_fraction"),
        (dict(fraction="0.5"), TypeError, "start_fraction must be a float"),
        (dict(sigma=0.0), ValueError, "start_sigma must be a noise level > 0"),
        (dict(sigma=float("nan")), ValueError, "start_sigma must be finite"),
        (dict(step=[]), ValueError, "start_step must not be an empty list"),
        (dict(step=[1, -2]), ValueError, r"start_step\[1\] must be >= 0"),
    ],
)
def test_bad_points_name_the_parameter(kwargs, error, text):
    with pytest.raises(error, match=text):
        sch.point_from("start", **kwargs, required=True)


def test_expand_rows():
    assert sch.expand(["a", "b"], 4, "x") == ["a", "a", "b", "b"]  # one per prompt, 2 images per prompt
    assert sch.expand(["a"], 3, "x") == ["a", "a", "a"]
    with pytest.raises(ValueError, match="x has 3 entries but the batch has 4 image rows"):
        sch.expand(["a", "b", "c"], 4, "x")


def test_schedule_module_does_not_import_torch():
    import subprocess
    import sys

    # importing the package pulls in torch via the callback; load the module file on its own instead
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location('s', sys.argv[1]); "
        "m = importlib.util.module_from_spec(spec); sys.modules['s'] = m; spec.loader.exec_module(m); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, sch.__file__], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
