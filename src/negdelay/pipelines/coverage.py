"""Coverage: every pipeline of the installed diffusers whose ``__call__`` takes ``negative_prompt`` (outside
``pipelines/deprecated``), served (a declaration in the registry) or listed here with the reason it is not.

``table()`` feeds ``negdelay pipelines`` and docs/pipelines.md; tests/test_coverage.py fails when a pipeline is
neither served nor listed, so a new diffusers release cannot add a pipeline silently.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

from .declaration import MODES, REGISTRY

PENDING = "not declared yet: needs a declaration and a tiny builder (issue 12)"

#: class name -> why negdelay does not serve it
NOT_SERVED: dict[str, str] = {
    # allegro
    # animatediff
    # anyflow
    # audioldm2
    # aura_flow
    # bria
    # bria_fibo
    # bria_fibo2
    # chroma
    # chronoedit
    # cogvideo
    # cogview3
    # cogview4
    # consisid
    # controlnet
    # controlnet_hunyuandit
    # controlnet_sd3
    # cosmos
    "Cosmos2_5_TransferPipeline": "its ControlNet always resizes the padding mask with torchvision (not in negdelay's test environment), and with the released configs (img_context_dim_in) encoder_hidden_states is a (text, image context) tuple, which the hooks cannot split into rows (needs a declared input inside a tuple)",
    "Cosmos3OmniPipeline": "no text encoder: the joint transformer takes the negative as token ids packed with the vision (sound, action) tokens into one sequence, so its unconditional inputs (input_ids, text_indexes, position_ids, und_len, sequence_length and every *_sequence_indexes) all change with the text and include plain ints; batch 1 only. Needs a mode that replaces a call's whole packed inputs",
    # deepfloyd_if
    # dreamlite
    # easyanimate
    "EasyAnimateControlPipeline": "broken in diffusers 0.42.1: __call__ passes text_encoder_index=0 to its own encode_prompt, which takes no such argument, so every call raises TypeError",
    # ernie_image
    # helios
    # hidream_image
    # hunyuan_image
    # hunyuan_video
    # hunyuan_video1_5
    # hunyuandit
    # joyimage
    # kandinsky
    # kandinsky2_2
    # kandinsky3
    # kandinsky5
    # kandinsky6
    # kolors
    # krea2
    # latte
    # ledits_pp
    # longcat_audio_dit
    # longcat_image
    # ltx
    # ltx2
    # lucy
    # lumina
    # lumina2
    # mochi
    # motif_video
    # nucleusmoe_image
    # ovis_image
    # pag
    # prx
    # qwenimage
    # qwenimage21
    # sana
    # sana_video
    # sana_wm
    # skyreels_v2
    # stable_audio
    # stable_audio_3
    # stable_cascade
    # stable_diffusion
    "OnnxStableDiffusionImg2ImgPipeline": "ONNX Runtime pipeline: the denoiser is an ONNX session, not a torch module a hook can reach",
    "OnnxStableDiffusionInpaintPipeline": "ONNX Runtime pipeline: the denoiser is an ONNX session, not a torch module a hook can reach",
    "OnnxStableDiffusionPipeline": "ONNX Runtime pipeline: the denoiser is an ONNX session, not a torch module a hook can reach",
    "OnnxStableDiffusionUpscalePipeline": "ONNX Runtime pipeline: the denoiser is an ONNX session, not a torch module a hook can reach",
    "StableDiffusionOnnxPipeline": "ONNX Runtime pipeline: the denoiser is an ONNX session, not a torch module a hook can reach",
    # stable_diffusion_xl
    # t2i_adapter
    # wan
    # z_image
}


def negative_prompt_pipelines() -> dict[str, type]:
    """Class name -> class, for every installed diffusers pipeline outside ``deprecated`` that takes
    ``negative_prompt`` in ``__call__`` (modules that fail to import, for a missing optional package, are skipped)."""
    import diffusers.pipelines as package
    from diffusers import DiffusionPipeline

    found: dict[str, type] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".deprecated" in info.name or not info.name.rsplit(".", 1)[-1].startswith("pipeline"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 -- an optional dependency is missing: that module's pipelines are absent
                continue
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, DiffusionPipeline) and obj.__module__ == module.__name__
                        and "negative_prompt" in inspect.signature(obj.__call__).parameters):
                    found[name] = obj
    return found


def row(name: str) -> dict:
    """One row of ``negdelay pipelines``: class, entry, mode, status, and family/reason."""
    declaration = REGISTRY.get(name)
    if declaration is None:
        return {"class": name, "entry": None, "mode": None, "status": "not served",
                "reason": NOT_SERVED.get(name, "not listed: unknown to this negdelay version")}
    entry = "apply" + (f" or callback {declaration.callback}" if declaration.callback else "")
    return {"class": name, "entry": entry, "mode": declaration.mode, "status": "served",
            "family": declaration.family, "denoisers": list(declaration.denoisers), "inputs": list(declaration.inputs),
            "needs": declaration.needs, "note": declaration.note}


def table(installed: dict[str, type] | None = None, modular: bool = False) -> list[dict]:
    """A row per installed negative-prompt pipeline, served first, each group by class name; with ``modular``, then
    a row per modular pipeline (``negdelay.guider.modular_table``: entry "guider")."""
    names = installed if installed is not None else negative_prompt_pipelines()
    rows = sorted([row(name) for name in sorted(names)], key=lambda r: (r["status"] != "served", r["class"]))
    if modular:
        from ..guider import modular_table

        rows += sorted(modular_table(), key=lambda r: (r["status"] != "served", r["class"]))
    return rows


__all__ = ["MODES", "NOT_SERVED", "PENDING", "negative_prompt_pipelines", "row", "table"]
