"""One callback instance shared by pipeline calls running at the same time in several threads gives, byte for byte,
the images each call gives alone (issue 15: per-call state, not per-instance state).

The threads run in lockstep: a second callback after the shared one waits at a barrier at every step, so every call
has begun (step 0) before any call reaches step 1, and each step's callbacks of all threads run before any thread
goes on. A per-instance state is then always overwritten by the other call before it is used. A free-running run
(no barrier) is checked too.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from tiny import tiny_sd

from negdelay import AutoDelayedNegative, DelayedNegative

STEPS = 8


class _Lockstep(PipelineCallback):
    """Waits at a barrier at the end of every step (after the shared callback)."""

    tensor_inputs: list = []

    def __init__(self, barrier: threading.Barrier):
        super().__init__()
        self.barrier = barrier

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        self.barrier.wait()
        return callback_kwargs


def _calls(pipes):
    """Two different calls per pipeline: batch sizes, prompts, own negatives and seeds differ."""
    a, b = pipes
    return [
        (a, dict(prompt="a girl eating pizza", seed=1)),
        (b, dict(prompt=["a cat", "a dog photo"], negative_prompt=["blurry", "ugly bad hands"], seed=2)),
        (a, dict(prompt=["a red circle"] * 3, num_images_per_prompt=1, seed=3)),
        (b, dict(prompt="a green square", negative_prompt="extra fingers", num_images_per_prompt=2, seed=4)),
    ]


def _run(pipe, call, callback):
    kw = dict(call)
    seed = kw.pop("seed")
    n = len(kw["prompt"]) if isinstance(kw["prompt"], list) else 1
    n *= kw.get("num_images_per_prompt", 1)
    with torch.no_grad():
        return pipe(**kw, num_inference_steps=STEPS, guidance_scale=7.5, output_type="np",
                    generator=[torch.Generator().manual_seed(seed + r) for r in range(n)],
                    callback_on_step_end=callback).images


def _threaded(pairs, shared, lockstep: bool):
    """Thread j runs pairs[j::2] one after the other; the two threads at the same time."""
    barrier = threading.Barrier(2, timeout=120)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def worker(j):
        try:
            for k in range(j, len(pairs), 2):
                pipe, call = pairs[k]
                cb = MultiPipelineCallbacks([shared, _Lockstep(barrier)]) if lockstep else shared
                results[k] = _run(pipe, call, cb)
        except BaseException as e:  # noqa: BLE001 - reported below, with the thread's traceback
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [results[k] for k in range(len(pairs))]


def _check_shared(pipes, make_callback, lockstep: bool):
    pairs = _calls(pipes)
    alone = [_run(p, c, make_callback()) for p, c in pairs]  # a fresh instance per call: the reference
    shared = make_callback()
    together = _threaded(pairs, shared, lockstep)
    differ = [k for k, (x, y) in enumerate(zip(alone, together)) if not np.array_equal(x, y)]
    assert not differ, f"calls {differ} of {len(pairs)} differ from the same calls run alone"
    # the delayed negative changed the images (the test is not comparing two no-ops)
    plain = [_run(p, c, None) for p, c in pairs[:1]]
    assert not np.array_equal(plain[0], alone[0])


@pytest.fixture(scope="module")
def two_tiny():
    return tiny_sd(), tiny_sd()


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep", "free"])
def test_one_delayed_negative_shared_by_two_threads_and_two_pipelines(two_tiny, lockstep):
    _check_shared(two_tiny, lambda: DelayedNegative("glasses hat", start_step=3), lockstep)


def test_segments_and_per_row_schedules_shared(two_tiny):
    # a list of starts: the per-row plan depends on each call's batch
    _check_shared(two_tiny, lambda: DelayedNegative("glasses", start_fraction=[0.25]), True)


def test_the_family_classes_share_the_same_per_call_state():
    """DelayedNegativeXL (pooled rows too), through for_pipeline, shared by two SDXL pipelines in two threads."""
    from tiny_families import tiny_sdxl

    pipes = (tiny_sdxl(), tiny_sdxl())
    _check_shared(pipes, lambda: DelayedNegative.for_pipeline(pipes[0], "glasses hat", start_step=3), True)


def test_one_auto_delayed_negative_shared_by_two_threads(two_tiny):
    def make():
        # threshold -1 fires at the first probe: a switch at step 2 for every row, so the lockstep barrier sees the
        # same number of steps in both threads
        return AutoDelayedNegative("glasses hat", threshold=-1.0, when="first", min_step=2)

    _check_shared(two_tiny, make, True)
    cb = make()
    pipe, call = _calls(two_tiny)[1]
    _run(pipe, call, cb)
    assert cb.last_steps == [2, 2]  # read back in the thread that ran the call


def test_auto_detector_rule_with_lookahead_shared(two_tiny):
    def make():
        return AutoDelayedNegative("glasses hat", detector=lambda ims: ims.mean(axis=(1, 2, 3)) * 50, rise=0.0,
                                   lookahead=True)

    _check_shared(two_tiny, make, True)


def test_last_plan_and_last_steps_belong_to_the_thread_that_ran_the_call(two_tiny):
    shared_dn = DelayedNegative("glasses", start_step=3)
    pairs = _calls(two_tiny)[:2]
    _threaded(pairs, shared_dn, lockstep=True)
    # the main thread ran no call: it sees no plan, and never another thread's
    assert shared_dn.last_plan is None
    _run(*pairs[1], shared_dn)
    assert shared_dn.last_plan is not None and len(shared_dn.last_plan[0]) == 2  # two image rows


def test_the_embedded_model_shared_callback_as_in_the_issue():
    """The issue's report: DelayedNegative("with a dot", start_step=3) shared by two toy pipelines in two threads
    (there 2 of 8 images differed: one call's step 0 reset the instance while the other was switching); and the
    same with a stop and the second pipeline's calls giving a negative of their own (rows restored at the stop)."""
    from negdelay import toy

    pipes = (toy.load_pipeline(), toy.load_pipeline())
    for p in pipes:
        p.set_progress_bar_config(disable=True)
    prompts = ["a red circle", "a blue square", "a green triangle", "a yellow triangle"] * 2
    plain = [(pipes[k % 2], dict(prompt=p, seed=k)) for k, p in enumerate(prompts)]
    own = [(pipes[k % 2], dict(prompt=p, seed=k, **({"negative_prompt": "a blue square"} if k % 2 else {})))
           for k, p in enumerate(prompts)]
    for pairs, make in ((plain, lambda: DelayedNegative("with a dot", start_step=3)),
                        (own, lambda: DelayedNegative("with a dot", start_step=3, stop_step=6))):
        alone = [_run(p, c, make()) for p, c in pairs]
        for lockstep in (True, False):
            together = _threaded(pairs, make(), lockstep)
            differ = [k for k, (x, y) in enumerate(zip(alone, together)) if not np.array_equal(x, y)]
            assert not differ, (lockstep, differ)


# -- negdelay.apply: per-call state in the hooks' CallState; one pipeline serves one call at a time --------------


def test_applied_pipelines_called_from_two_threads_equal_the_same_calls_one_after_another():
    import negdelay

    pipes = tiny_sd(), tiny_sd()
    pairs = _calls(pipes)
    plain = _run(*pairs[0], None)
    handles = [negdelay.apply(p, "glasses hat", start_step=3) for p in pipes]
    try:
        alone = [_run(p, c, None) for p, c in pairs]
        together = _threaded(pairs, None, lockstep=False)
    finally:
        for h in handles:
            negdelay.remove(h.pipeline)
    assert all(np.array_equal(x, y) for x, y in zip(alone, together))
    assert not np.array_equal(plain, alone[0])  # the delayed negative changed the image


def test_one_applied_pipeline_called_by_two_threads_at_once_is_refused():
    """A diffusers pipeline (its scheduler) serves one call at a time; negdelay says so instead of mixing the calls."""
    import negdelay

    pipe = tiny_sd()
    inside, release = threading.Event(), threading.Event()

    class Hold(PipelineCallback):
        tensor_inputs = []

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            inside.set()
            release.wait(60)
            return callback_kwargs

    errors = []
    with negdelay.apply(pipe, "glasses", start_step=2):
        first = threading.Thread(target=lambda: _run(pipe, dict(prompt="a cat", seed=1), Hold()))
        first.start()
        assert inside.wait(60)
        try:
            _run(pipe, dict(prompt="a dog", seed=2), None)
        except RuntimeError as e:
            errors.append(str(e))
        finally:
            release.set()
            first.join()
    assert errors and "already running a call in another thread" in errors[0]
