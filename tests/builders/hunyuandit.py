"""Tiny HunyuanDiT and HunyuanDiT ControlNet pipelines, built in code, offline.

A 1-layer ``BertModel`` (width 32) and a 2-layer T5 (tests/tiny_families.py), both on the toy CLIP tokenizer;
the pipeline pads them to 77 and 256 tokens (hard-coded in ``__call__``; the transformer's ``text_len`` and
``text_len_t5`` must match). The rotary grid is computed for an 8x VAE (``height // 8``), so the VAE has 4 levels:
32x32 pixels -> 4x4 latents -> 2x2 patches.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    EulerDiscreteScheduler,
    HunyuanDiT2DControlNetModel,
    HunyuanDiT2DModel,
    HunyuanDiTControlNetPipeline,
    HunyuanDiTPipeline,
)
from transformers import BertConfig, BertModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5
from tiny_mean_vae import MeanVAE

SIZE = 32
CALL = dict(height=SIZE, width=SIZE, guidance_scale=5.0, use_resolution_binning=False, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: EulerDiscreteScheduler.from_config(p.scheduler.config)))
DIT = dict(sample_size=SIZE // 8, patch_size=2, attention_head_dim=8, num_attention_heads=3, in_channels=4,
           cross_attention_dim=HIDDEN, cross_attention_dim_t5=HIDDEN, pooled_projection_dim=16, hidden_size=24,
           activation_fn="gelu-approximate")


def bert(tokenizer, seed: int = 1) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id)
    return BertModel(config, add_pooling_layer=False).eval()


def _vae(cls=AutoencoderKL):
    torch.manual_seed(0)
    return cls(block_out_channels=(8, 8, 8, 8), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         norm_num_groups=4).eval()


def _parts(layers: int, vae=AutoencoderKL):
    tokenizer, tokenizer_2 = make_tokenizer(WORDS, model_max_length=77), make_tokenizer(WORDS, model_max_length=256)
    torch.manual_seed(0)
    transformer = HunyuanDiT2DModel(num_layers=layers, **DIT).eval()
    return dict(transformer=transformer, vae=_vae(vae), scheduler=DDPMScheduler(), text_encoder=bert(tokenizer),
                tokenizer=tokenizer, text_encoder_2=t5(tokenizer_2, 2), tokenizer_2=tokenizer_2, safety_checker=None,
                feature_extractor=None, requires_safety_checker=False)


def _controlnet():
    torch.manual_seed(1)
    net = HunyuanDiT2DControlNetModel(transformer_num_layers=4, **DIT).eval()
    with torch.no_grad():  # a fresh ControlNet's input and output blocks are zeros: its text would not matter
        for block in [net.input_block, *net.controlnet_blocks]:
            block.weight.normal_(0, 0.3)
    return net


def hunyuandit() -> Case:
    pipe = HunyuanDiTPipeline(**_parts(2))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


def hunyuandit_controlnet() -> Case:
    # the controlnet's one block feeds the skip of the transformer's last block: 4 transformer blocks; the control
    # latents are sampled from the global RNG: a zero-variance VAE
    pipe = HunyuanDiTControlNetPipeline(**_parts(4, MeanVAE), controlnet=_controlnet())
    pipe.set_progress_bar_config(disable=True)
    control = torch.linspace(-1, 1, 3 * SIZE * SIZE).reshape(1, 3, SIZE, SIZE)
    return Case(pipe, call={**CALL, "control_image": control, "controlnet_conditioning_scale": 0.7},
                schedulers=SCHEDULERS, full_grid=False)


CASES = {"HunyuanDiTPipeline": hunyuandit, "HunyuanDiTControlNetPipeline": hunyuandit_controlnet}
