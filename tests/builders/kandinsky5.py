"""Tiny Kandinsky 5 pipelines of the real diffusers classes, built in code, offline.

Text: a real ``Qwen2Tokenizer`` (tests/tiny_qwen.py) in a ``Qwen2VLProcessor`` (as the pipelines take it), with
every word of the pipelines' templates one token except three split in two, so that the video template's system
part is exactly ``prompt_template_encode_start_idx`` = 128 tokens (the builder checks it); Qwen2.5-VL with 2 text
layers of width 32 (tests/tiny_qwen.py); CLIP of width 32 for the pooled embedding (tests/tiny_families.py). A
``Kandinsky5Transformer3DModel`` of width 16 (1 text block, 2 visual blocks); HunyuanVideo's tiny VAE
(tests/builders/hunyuan_video.py: 4 latent channels, /8 spatial, /4 temporal). Videos are 32x32 with 5 frames.

One image/video per prompt in every case: with more, ``encode_prompt`` orders the Qwen rows p0,p0,p1,p1 but the CLIP
pooled rows p0,p1,p0,p1 (``repeat(1, n, 1)`` on a 2-D tensor), so the stock pipeline pairs rows with another
prompt's pooled embedding (a diffusers bug); negdelay pairs each row's pooled embedding with its own text.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    Kandinsky5I2IPipeline,
    Kandinsky5I2VPipeline,
    Kandinsky5T2IPipeline,
    Kandinsky5T2VPipeline,
    Kandinsky5Transformer3DModel,
)

import tiny_qwen
from builders.hunyuan_video import vae as hunyuan_vae
from builders.qwenimage import _processor
from builders.wan import image
from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, clip

QWEN = 32
# words split in two pieces, so that each template's system part is ``prompt_template_encode_start_idx`` tokens
# (128 video, 40 text-to-image, 54 image-to-image) as with the real tokenizer
VIDEO_SPLIT = {"postprocessing": "post processing", "dynamism": "dynam ism", "scren": "scr en"}
SPLIT = {Kandinsky5T2VPipeline: VIDEO_SPLIT, Kandinsky5I2VPipeline: VIDEO_SPLIT, Kandinsky5T2IPipeline: {},
         Kandinsky5I2IPipeline: {"engineer": "engine er", "provided": "provid ed", "interesting": "interest ing",
                                 "together": "to gether", "second": "sec ond"}}
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))
# the contract's negatives are two tokens each: a case negative of two tokens keeps the text length of the run
# with the pipeline's own negative (see docs/dev/kandinsky5-facts.md)
OWN_NEGATIVE = ["red hat", "blue cat"]


def _template(cls) -> tuple[str, int]:
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    pipe = cls(**dict.fromkeys(names))
    return pipe.prompt_template, pipe.prompt_template_encode_start_idx


def processor(cls):
    return qwen_processor(*_template(cls), SPLIT[cls], cls.__name__)


def qwen_processor(template: str, start: int, split: dict, name: str):
    """A ``Qwen2VLProcessor`` whose tokenizer makes ``template``'s prefix exactly ``start`` tokens: every word one
    token, except the words of ``split``, two tokens each."""
    source = template
    for word, pieces in split.items():
        source = source.replace(word, pieces)
    extra = tuple(p.split()[1] for p in split.values())
    tokenizer = tiny_qwen.make_qwen_tokenizer(words=(*tiny_qwen.WORDS, *extra), template=source)
    if len(tokenizer(template.split("{}")[0]).input_ids) != start:
        raise RuntimeError(f"{name}'s template prefix is no longer {start} tokens; rebuild the tokenizer")
    return _processor(tokenizer)


def image_vae() -> AutoencoderKL:
    """A 4-level image VAE (the image pipelines assume /8), 4 latent channels."""
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 8, 8, 8), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4,
    ).eval()


def transformer(in_visual_dim=4, visual_cond=False) -> Kandinsky5Transformer3DModel:
    """Its modulation layers start at zero (the time and pooled-text embedding would not matter): drawn here."""
    torch.manual_seed(0)
    model = Kandinsky5Transformer3DModel(
        in_visual_dim=in_visual_dim, in_text_dim=QWEN, in_text_dim2=HIDDEN, time_dim=16, out_visual_dim=4,
        patch_size=(1, 2, 2), model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(2, 2, 4),
        visual_cond=visual_cond, attention_type="regular",
    )
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__ == "Kandinsky5Modulation":
                module.out_layer.weight.normal_(0, 0.1)
                module.out_layer.bias.normal_(0, 0.1)
    return model.eval()


def _parts(cls, vae, **transformer_args) -> dict:
    proc = processor(cls)
    clip_tokenizer = make_tokenizer(WORDS, model_max_length=77)
    return dict(transformer=transformer(**transformer_args), vae=vae,
                text_encoder=tiny_qwen.tiny_text_encoder(proc.tokenizer, hidden=QWEN), tokenizer=proc,
                text_encoder_2=clip(clip_tokenizer, 1), tokenizer_2=clip_tokenizer,
                scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))


def _pipe(cls, vae, **transformer_args):
    pipe = cls(**_parts(cls, vae, **transformer_args))
    pipe.set_progress_bar_config(disable=True)
    return pipe


VIDEO = dict(height=32, width=32, num_frames=5, guidance_scale=4.0, max_sequence_length=16,
             negative_prompt=OWN_NEGATIVE, output_type="latent")


def t2v() -> Case:
    """Text-to-video: conditional call, then unconditional call each step. ``encode_prompt`` is called without
    ``num_videos_per_prompt``: one video per prompt."""
    return Case(_pipe(Kandinsky5T2VPipeline, hunyuan_vae()), call=dict(VIDEO), schedulers=SCHEDULERS, images_arg=None)


def i2v() -> Case:
    """Image-to-video: the image's latents and a mask ride along the channel axis (``visual_cond``); one image for
    all videos. 17 frames (5 latent frames): ``normalize_first_frame`` matches the first 4 latent frames to the
    following ones, and with no following frame it returns NaN."""
    pipe = _pipe(Kandinsky5I2VPipeline, hunyuan_vae(), visual_cond=True)
    return Case(pipe, call=dict(VIDEO, num_frames=17, image=image(size=32)), schedulers=SCHEDULERS,
                images_arg=None, full_grid=False)


IMAGE = dict(height=32, width=32, guidance_scale=4.0, max_sequence_length=16, negative_prompt=OWN_NEGATIVE,
             output_type="latent")


def _image_pipe(cls, **transformer_args):
    """The image pipelines snap any other size to one of ``pipe.resolutions`` (1024 px and up): 32x32 joins it."""
    pipe = _pipe(cls, image_vae(), **transformer_args)
    pipe.resolutions = [(32, 32)]
    return pipe


def t2i() -> Case:
    return Case(_image_pipe(Kandinsky5T2IPipeline), call=dict(IMAGE), schedulers=SCHEDULERS, images_arg=None,
                full_grid=False)


def i2i() -> Case:
    """Image-to-image: the source image is in the Qwen prompt (vision tokens after the text) and its latents ride
    along the channel axis. One image per prompt (the processor pairs texts and images)."""
    pipe = _image_pipe(Kandinsky5I2IPipeline, visual_cond=True)
    return Case(pipe, call=dict(IMAGE, image=[image(1, size=32), image(2, size=32)]), schedulers=SCHEDULERS,
                images_arg=None, full_grid=False)


CASES = {"Kandinsky5T2VPipeline": t2v, "Kandinsky5I2VPipeline": i2v, "Kandinsky5T2IPipeline": t2i,
         "Kandinsky5I2IPipeline": i2i}
