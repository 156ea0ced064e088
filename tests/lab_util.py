"""Helpers for the lab's tests: the tiny pipeline saved as a diffusers folder (so the loaders read real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def save_tiny(folder: Path) -> Path:
    from tiny import tiny_sd

    pipe = tiny_sd()
    pipe.save_pretrained(str(folder))
    return folder


def env() -> dict:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", ""))
    return e


def negdelay(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "negdelay", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def save_tiny_clip(folder: Path, words=("a", "girl", "eating", "pizza", "glasses", "photo")) -> Path:
    """A tiny CLIP model and processor saved as a local folder (random weights, offline tokenizer)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from negdelay.toy.tokenizer import make_tokenizer

    tok = make_tokenizer(list(words), model_max_length=12)
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=12, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, projection_dim=16),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, projection_dim=16),
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(str(folder))
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tok).save_pretrained(str(folder))
    return folder
