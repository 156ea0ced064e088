"""Loading (local diffusers folder, single-file refusals, textual inversion, scheduler by name) and the paired,
batched render, proven bit-exact against a callback-free reference of the same batch."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lab_util import save_tiny
from negdelay.lab import run as R
from negdelay.lab.config import Schedule, build
from negdelay.lab.models import LabError, check_ti_tokens, load
from tiny import captured_uncond, reference

PROMPT, NEG = "a girl eating pizza", "glasses"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "pipe")


def cfg_for(folder, **kw):
    base = dict(model=str(folder), pairs=[{"prompt": PROMPT, "negative": NEG}], steps=6, seeds=[0])
    base.update(kw)
    return build("compare", **base)


def test_loads_a_local_diffusers_folder_with_a_scheduler_by_name(folder):
    loaded = load(cfg_for(folder))
    assert type(loaded.pipe).__name__ == "StableDiffusionPipeline"
    assert loaded.model_name == "pipe" and loaded.sampler == "DDIM"
    loaded = load(cfg_for(folder, scheduler="euler_a"))
    assert type(loaded.pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler" and loaded.sampler == "Euler a"
    loaded = load(cfg_for(folder, scheduler="dpm++2m_karras"))
    assert loaded.pipe.scheduler.config.use_karras_sigmas and loaded.sampler == "DPM++ 2M Karras"


def test_missing_and_unsafe_checkpoints_are_refused(folder, tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        load(cfg_for(tmp_path / "nowhere.safetensors"))
    with pytest.raises(LabError, match="does not exist"):
        load(cfg_for(tmp_path / "no-such-folder"))
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not even a pickle")
    with pytest.raises(LabError, match="allow-pickle"):
        load(cfg_for(ckpt))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(LabError, match="could not load single-file checkpoint"):
        load(cfg_for(junk, single_file_config=str(folder)))
    with pytest.raises(LabError, match="could not load 'someone/no-such-model'"):  # a hub id, offline
        load(cfg_for("someone/no-such-model"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LabError, match="model_index.json"):
        load(cfg_for(empty))


def test_textual_inversion_file_written_by_the_test(folder, tmp_path):
    emb = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))  # a 2-vector embedding, like EasyNegativeV2
    ti = tmp_path / "EasyNeg.safetensors"
    save_file({"emb_params": emb}, str(ti))
    cfg = cfg_for(folder, textual_inversion=[f"{ti}:EasyNeg"], pairs=[{"prompt": PROMPT, "negative": "EasyNeg, glasses"}])
    check_ti_tokens(cfg, ["EasyNeg, glasses"])
    pipe = load(cfg).pipe
    ids = pipe.tokenizer.convert_tokens_to_ids(["EasyNeg", "EasyNeg_1"])
    got = pipe.text_encoder.get_input_embeddings().weight[ids]
    assert torch.equal(got, emb)
    with pytest.raises(LabError, match="token 'EasyNeg'.*does not occur"):
        check_ti_tokens(cfg, ["glasses"])
    with pytest.raises(LabError, match="does not exist"):
        load(cfg_for(folder, textual_inversion=[f"{tmp_path}/none.safetensors:X"]))


def test_schedules_outside_the_run_are_refused(folder):
    loaded = load(cfg_for(folder))
    run = R.run_facts_for(loaded.pipe, 6, True)
    assert R.resolve_schedule(Schedule.parse("step:5"), run) == (5, None)
    assert R.resolve_schedule(Schedule.parse("fraction:0.5..step:6"), run) == (3, 6)
    for bad, why in [("step:6", "never comes"), ("fraction:0.1", "step 0"), ("sigma:1000", "step 0"),
                     ("step:2..step:9", "outside steps")]:
        with pytest.raises(LabError, match=why):
            R.resolve_schedule(Schedule.parse(bad), run)


def test_paired_render_is_bit_exact_against_a_callback_free_reference(folder):
    """Columns none / stock / delayed from step 2 / delayed steps 1..4, one batched call, seed 7: the same pixels as
    the stock pipeline with the unconditional rows substituted by hand (tests/tiny.py's reference)."""
    cfg = cfg_for(folder, seeds=[7])
    loaded = load(cfg)
    pipe = loaded.pipe
    run = R.run_facts_for(pipe, 6, False)
    cols = [R.NONE, R.stock_column(), R.delayed_column(Schedule.parse("step:2"), NEG, run),
            R.delayed_column(Schedule.parse("step:1..4"), NEG, run)]
    got = R.render(loaded, cfg, PROMPT, NEG, cols, 7)

    neg_rows = captured_uncond(pipe, NEG)[0]
    windows = {2: range(2, 6), 3: range(1, 4)}  # row -> steps that use the negative

    def rows_for_step(step, ehs):
        n = ehs.shape[0] // 2
        un = ehs[:n].clone()
        for r, steps in windows.items():
            if step in steps:
                un[r] = neg_rows
        return torch.cat([un, ehs[n:]])

    with reference(pipe, rows_for_step):
        ref = pipe([PROMPT] * 4, negative_prompt=["", NEG, "", ""], num_inference_steps=6,
                   generator=[torch.Generator().manual_seed(7) for _ in range(4)], output_type="np").images
    ref = (np.clip(ref, 0, 1) * 255).round().astype(np.uint8)
    for r in range(4):
        assert np.array_equal(got[r], ref[r]), f"column {cols[r].id}"
    assert not np.array_equal(got[0], got[1]) and not np.array_equal(got[0], got[2])

    # batch_size caps the rows per call; every chunk still starts each row from the seed's noise
    capped = R.render(loaded, cfg.model_copy(update={"batch_size": 1}), PROMPT, NEG, cols, 7)
    alone = pipe(PROMPT, num_inference_steps=6, generator=torch.Generator().manual_seed(7), output_type="np").images[0]
    assert np.array_equal(capped[0], (np.clip(alone, 0, 1) * 255).round().astype(np.uint8))
    for a, b in zip(capped, got):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # batch size changes float rounding, not the image
    # several seeds in one call: seed-major rows, each seed's rows from its own noise
    two = R.render(loaded, cfg, PROMPT, NEG, cols, [7, 8])
    assert len(two) == 8
    for a, b in zip(two[:4], got):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert np.abs(two[4].astype(int) - got[0].astype(int)).max() > 10  # seed 8 is another image


def test_clip_scores_in_a_sweep_match_clip_itself(folder, tmp_path):
    import csv

    from transformers import CLIPModel, CLIPProcessor

    from lab_util import save_tiny_clip
    from negdelay.lab.outputs import RunFolder

    clip_dir = save_tiny_clip(tmp_path / "clip")
    cfg = build("sweep", model=str(folder), prompt=PROMPT, negative=NEG, starts="step:2,4", steps=6, seeds="0-1",
                clip_model=str(clip_dir), out=tmp_path / "sw", progress=False)
    res = R.sweep(cfg)
    for s in res.summary["starts"]:
        assert -1 <= s["clip_prompt"]["low"] <= s["clip_prompt"]["mean"] <= s["clip_prompt"]["high"] <= 1
        assert s["clip_negative"]["n"] == 2
    rows = list(csv.DictReader(open(res.out / "results.csv")))
    row = next(r for r in rows if r["column"] == "start-step-4" and r["seed"] == "1")
    # independent: CLIP's own forward pass gives logit_scale * cosine
    from PIL import Image

    model = CLIPModel.from_pretrained(str(clip_dir)).eval()
    proc = CLIPProcessor.from_pretrained(str(clip_dir))
    image = np.asarray(Image.open(res.out / row["file"]).convert("RGB"))
    with torch.no_grad():
        enc = proc(text=[PROMPT, NEG], images=[image], return_tensors="pt", padding=True)
        logits = model(**enc).logits_per_image[0] / model.logit_scale.exp()
    assert float(row["clip_prompt"]) == pytest.approx(float(logits[0]), abs=1e-5)
    assert float(row["clip_negative"]) == pytest.approx(float(logits[1]), abs=1e-5)
    assert RunFolder(res.out).done()  # records written
    with pytest.raises(LabError, match="clip_model"):
        R.sweep(cfg.model_copy(update={"clip_model": str(tmp_path / "no-clip"), "out": tmp_path / "x"}))
    assert not (tmp_path / "x").exists()


def test_single_file_checkpoints_go_through_from_single_file(folder, tmp_path, monkeypatch):
    """The routing of single-file checkpoints (a real SD single-file checkpoint cannot be built offline here): which
    loader is called with what, and that a .ckpt needs allow_pickle."""
    from diffusers import StableDiffusionPipeline

    from tiny import tiny_sd

    calls = []

    def fake(path, **kw):
        calls.append((path, kw))
        return tiny_sd()

    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", staticmethod(fake))
    st = tmp_path / "my-model.safetensors"
    st.write_bytes(b"x")
    loaded = load(cfg_for(st, single_file_config=str(folder), dtype="float32"))
    assert loaded.model_name == "my-model"
    assert calls[-1] == (str(st), {"torch_dtype": torch.float32, "load_safety_checker": False, "config": str(folder)})
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"x")
    n = len(calls)
    with pytest.raises(LabError, match="allow-pickle"):
        load(cfg_for(ckpt))
    assert len(calls) == n  # refused before anything was read
    load(cfg_for(ckpt, allow_pickle=True))
    assert calls[-1][0] == str(ckpt)
