"""A tiny ConsisID pipeline of the real diffusers class (it needs OpenCV), built in code, offline: CogVideoX's tiny
parts (tests/builders/cogvideox.py: the toy tokenizer as T5's, T5 of width 32, a 4-level CogVideoX VAE) with a 1-layer
``ConsisIDTransformer3DModel`` (image latents on the channel axis, face features through a tiny local facial
extractor and cross-attention). 16x16 px, 5 frames; identity features given directly (``id_vit_hidden``,
``id_cond``), as diffusers' own tests do (no face models offline)."""

from __future__ import annotations

import torch
from diffusers import CogVideoXDDIMScheduler, ConsisIDPipeline, ConsisIDTransformer3DModel

from builders.cogvideox import CALL, FRAMES, LATENT, SIZE, TEXT_LEN, _dpm, _frame, _same, _vae
from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5


def transformer() -> ConsisIDTransformer3DModel:
    torch.manual_seed(0)
    return ConsisIDTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=2 * LATENT, out_channels=LATENT, time_embed_dim=2,
        text_embed_dim=HIDDEN, num_layers=1, sample_width=SIZE // 8, sample_height=SIZE // 8, sample_frames=FRAMES,
        patch_size=2, temporal_compression_ratio=4, max_text_seq_length=TEXT_LEN, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True, cross_attn_interval=1, is_kps=False, is_train_face=True,
        cross_attn_dim_head=1, cross_attn_num_heads=1, LFE_id_dim=2, LFE_vit_dim=2, LFE_depth=5, LFE_dim_head=8,
        LFE_num_heads=2, LFE_num_id_token=1, LFE_num_querie=1, LFE_output_dim=21, LFE_ff_mult=1, LFE_num_scale=1,
    ).eval()


def consisid() -> Case:
    """CogVideoX image-to-video's batched loop; guidance a local of ``__call__``. ``num_videos_per_prompt`` is
    forced to 1."""
    tokenizer = make_tokenizer(WORDS, model_max_length=TEXT_LEN)
    pipe = ConsisIDPipeline(tokenizer=tokenizer, text_encoder=t5(tokenizer, 2), vae=_vae(), transformer=transformer(),
                            scheduler=CogVideoXDDIMScheduler(timestep_spacing="trailing"))
    pipe.set_progress_bar_config(disable=True)
    g = torch.Generator().manual_seed(5)
    call = dict(CALL, num_frames=FRAMES, image=[_frame(1), _frame(2)], output_type="latent",
                id_vit_hidden=[torch.randn(1, 2, 2, generator=g)], id_cond=torch.randn(1, 2, generator=g))
    return Case(pipe, call=call, schedulers=(_same, _dpm), images_arg=None)


CASES = {"ConsisIDPipeline": consisid}
