"""Tiny modular pipelines of the real diffusers classes, built in code (no hub), for the guider contract.

``CASES``: modular pipeline class name -> zero-argument factory of a ``ModularCase``. Each builder makes the
pipeline from its default blocks (``<Blocks>().init_pipeline()``) and fills it with tiny components (the
classic tiny builders' text encoders and tokenizers where they fit), seeded, in eval mode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
from diffusers.guiders import ClassifierFreeGuidance

from tiny import WORDS
from tiny_families import t5

PROMPTS = ["a red cat", "a blue dog"]
NEGATIVES = ["blurry hat", "ugly dog"]


@dataclass
class ModularCase:
    """One modular pipeline class on tiny components.

    call: keyword arguments for every call besides prompt/negative_prompt/generator/steps/images per prompt.
    denoisers: the pipeline attributes whose forward the reference wraps.
    images_arg: the "images per prompt" keyword (None: the pipeline has none).
    prompts: the prompts of every call; images: images per prompt (2 prompts x 2 images where the pipeline
        takes them; fewer where the stock pipeline refuses a batch).
    output: the state value compared byte for byte.
    """

    pipe: object
    call: dict = field(default_factory=dict)
    denoisers: tuple[str, ...] = ("transformer",)
    images_arg: str | None = "num_images_per_prompt"
    timestep_key: str = "timestep"
    skip_call: object = None  # denoiser calls the reference does not count (kwargs -> bool)
    prompts: str | list = field(default_factory=lambda: list(PROMPTS))
    images: int = 2
    output: str | list = "latents"
    steps: int = 4
    # how the reference gets the negative's inputs: "negative_prompt" (a stock run given it as negative_prompt, its
    # unconditional calls) or "prompt" (a pipeline with no negative_prompt input: a stock run given it as the
    # prompt, its conditional calls)
    negative_via: str = "negative_prompt"
    # the denoiser caches the unconditional text's keys/values at its first call (Qwen-Image 2.1): the reference
    # refills that cache where the text changes (modular_reference.substituted)
    reprefill: bool = False

    @property
    def negative(self):
        """A delayed negative of the call's shape: one per prompt."""
        return NEGATIVES[0] if isinstance(self.prompts, str) else NEGATIVES[: len(self.prompts)]

    def run(self, generator_seed: int = 0, **kw):
        args = {"prompt": self.prompts, "num_inference_steps": self.steps, **self.call, **kw}
        # fresh lists: some text steps (Z-Image) write the chat-templated texts back into the list they are given
        args = {k: list(v) if isinstance(v, list) else v for k, v in args.items()}
        if self.images_arg:
            args.setdefault(self.images_arg, self.images)
        return self.pipe(**args, generator=torch.Generator().manual_seed(generator_seed), output=self.output)


def quiet(pipe):
    """Disable the progress bars of every denoise loop (ModularPipeline.set_progress_bar_config only reaches the
    top-level blocks)."""
    from diffusers.modular_pipelines.modular_pipeline import LoopSequentialPipelineBlocks

    def walk(block):
        if isinstance(block, LoopSequentialPipelineBlocks):
            block.set_progress_bar_config(disable=True)
        for sub in getattr(block, "sub_blocks", {}).values():
            walk(sub)

    walk(pipe._blocks)
    return pipe


# Pipelines whose text lengths are properties of the class: a subclass of the same name with tiny lengths (1000
# Qwen tokens + 256 ByT5 tokens + 729 image tokens per HunyuanVideo 1.5 call would take ~20 s on one core).
# Its system message becomes Qwen-Image's, whose chat prefix the tiny Qwen tokenizer makes exactly 34 tokens.
QWEN_SYSTEM = (
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships of the "
    "objects and background:"
)
SHORTER = {
    "HunyuanVideo15ModularPipeline": {"tokenizer_max_length": 16, "tokenizer_2_max_length": 8,
                                      "vision_num_semantic_tokens": 4, "system_message": QWEN_SYSTEM,
                                      "prompt_template_encode_start_idx": 34},
}


def modular(class_name: str, drop=(), **components):
    """A ``diffusers.modular_pipelines.<class_name>`` on its default blocks, filled with ``components`` (the guider
    defaults to CFG at scale 5). Built from the class itself: ``Blocks().init_pipeline()`` maps some blocks to
    another class (the Helios pyramid blocks, distilled or not, give ``HeliosPyramidModularPipeline``)."""
    import diffusers.modular_pipelines as mp

    cls = getattr(mp, class_name)
    blocks = getattr(mp, cls.default_blocks_name)()
    for name in ("decode", *drop):  # the contract compares latents: the VAE decode only costs time
        blocks.sub_blocks.pop(name, None)
    if class_name in SHORTER:  # the same class, with tiny text lengths (its own are constants of the class)
        cls = type(class_name, (cls,), {**SHORTER[class_name], "__module__": __name__})
    pipe = cls(blocks=blocks)
    components.setdefault("guider", ClassifierFreeGuidance(guidance_scale=5.0))
    # components only the dropped blocks use (the VAE of a text-to-image decode) are left out
    pipe.update_components(**{k: v for k, v in components.items() if k in pipe._component_specs})
    return quiet(pipe)


def seeded(factory, seed=0):
    torch.manual_seed(seed)
    module = factory()
    return module.eval() if isinstance(module, torch.nn.Module) else module


def unzero(module, seed=0):
    """Give all-zero parameters (zero-initialised output or gate layers) small random values, so that the text
    reaches the output of a freshly initialised model."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            if not param.any():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    return module


# ---------------------------------------------------------------------------------------------------------
# Wan 2.1 / 2.2
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def _t5_tokenizer(max_length=16):
    from negdelay.toy.tokenizer import make_tokenizer

    return make_tokenizer(WORDS, model_max_length=max_length)


def _wan_vae():
    from diffusers import AutoencoderKLWan

    return seeded(lambda: AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]))


def _wan_transformer(seed=0, cls=None, **kw):
    from diffusers import WanTransformer3DModel

    args = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    args.update(kw)
    return seeded(lambda: (cls or WanTransformer3DModel)(**args), seed)


def _wan_text():
    tok = _t5_tokenizer()
    return {"text_encoder": t5(tok, 2), "tokenizer": tok}


def _flow_match(**kw):
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(**kw)


WAN_CALL = {"height": 16, "width": 16, "num_frames": 5, "max_sequence_length": 16}


def wan():
    pipe = modular("WanModularPipeline", **_wan_text(), transformer=_wan_transformer(), vae=_wan_vae(),
                   scheduler=_flow_match(shift=7.0))
    return ModularCase(pipe, dict(WAN_CALL), images_arg="num_videos_per_prompt")


def wan22():
    pipe = modular("Wan22ModularPipeline", **_wan_text(), transformer=_wan_transformer(0), transformer_2=_wan_transformer(1),
                   vae=_wan_vae(), scheduler=_flow_match(shift=7.0), guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    return ModularCase(pipe, dict(WAN_CALL), denoisers=("transformer", "transformer_2"), images_arg="num_videos_per_prompt")


def _image(size=16, seed=0, mode="RGB"):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L")
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def wan_i2v():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    encoder = seeded(lambda: CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=1)))
    pipe = modular("WanImage2VideoModularPipeline", **_wan_text(), transformer=_wan_transformer(in_channels=36, image_dim=4),
                   vae=_wan_vae(), scheduler=_flow_match(shift=7.0), image_encoder=encoder,
                   image_processor=CLIPImageProcessor(crop_size=32, size=32))
    # the stock pipeline encodes one image for the whole batch and fails on more than one row
    return ModularCase(pipe, {**WAN_CALL, "image": _image()}, images_arg=None, prompts=PROMPTS[0])


def wan22_i2v():
    pipe = modular("Wan22Image2VideoModularPipeline", **_wan_text(), transformer=_wan_transformer(0, in_channels=36),
                   transformer_2=_wan_transformer(1, in_channels=36), vae=_wan_vae(), scheduler=_flow_match(shift=7.0),
                   guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    return ModularCase(pipe, {**WAN_CALL, "image": _image()}, denoisers=("transformer", "transformer_2"),
                       images_arg="num_videos_per_prompt")


def wan22_vace():
    from diffusers import WanVACETransformer3DModel

    vace = dict(num_layers=3, vace_layers=[0, 2], vace_in_channels=96)
    pipe = modular("Wan22VaceModularPipeline", **_wan_text(), transformer=_wan_transformer(0, cls=WanVACETransformer3DModel, **vace),
                   transformer_2=_wan_transformer(1, cls=WanVACETransformer3DModel, **vace), vae=_wan_vae(),
                   scheduler=_flow_match(shift=7.0), guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    frames = WAN_CALL["num_frames"]
    video = [_image(seed=i) for i in range(frames)]
    mask = [_image(mode="L", seed=10 + i) for i in range(frames)]
    # VACE refuses a list of prompts and more than one video per prompt
    return ModularCase(pipe, {**WAN_CALL, "video": video, "mask": mask}, denoisers=("transformer", "transformer_2"),
                       images_arg=None, prompts=PROMPTS[0])


# ---------------------------------------------------------------------------------------------------------
# SDXL, SD3, QwenImage: the classic tiny pipelines' components
# ---------------------------------------------------------------------------------------------------------


def _parts(pipe, *names):
    return {n: getattr(pipe, n) for n in names}


def sdxl():
    from tiny_families import tiny_sdxl

    base = tiny_sdxl()
    parts = _parts(base, "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")
    pipe = modular("StableDiffusionXLModularPipeline", **parts)
    return ModularCase(pipe, {"height": 16, "width": 16}, denoisers=("unet",))


def sd3():
    from tiny_families import tiny_sd3

    base = tiny_sd3()
    parts = _parts(base, "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
                   "tokenizer_3", "transformer", "scheduler")
    pipe = modular("StableDiffusion3ModularPipeline", **parts)
    # without a negative_prompt the stock step makes no negative embeddings: its unconditional pass sees the prompt
    return ModularCase(pipe, {"height": 16, "width": 16, "max_sequence_length": 8, "negative_prompt": ""})


def qwenimage():
    from tiny_qwen import tiny_qwenimage

    base = tiny_qwenimage()
    pipe = modular("QwenImageModularPipeline", **_parts(base, "vae", "text_encoder", "tokenizer", "transformer", "scheduler"))
    # the stock text step encodes a single negative once, for a batch of one: one negative per prompt
    return ModularCase(pipe, {"height": 32, "width": 32, "negative_prompt": ["", ""]})


# ---------------------------------------------------------------------------------------------------------
# Qwen-tokenizer families: Z-Image, Flux 2 Klein base, Krea 2, Anima, HunyuanVideo 1.5
# ---------------------------------------------------------------------------------------------------------

CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@functools.cache
def _qwen_tokenizer():
    """A real Qwen2Tokenizer built offline (tests/tiny_qwen.py: Qwen-Image's template, 34 prefix tokens) with a
    minimal chat template."""
    from tiny_qwen import make_qwen_tokenizer

    tok = make_qwen_tokenizer()
    tok.chat_template = CHAT
    return tok


def _qwen3(cls_name="Qwen3Model", hidden=16, seed=0, **extra):
    import transformers

    tok = _qwen_tokenizer()
    config = transformers.Qwen3Config(
        hidden_size=hidden, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tok), max_position_embeddings=512, pad_token_id=tok.pad_token_id, **extra,
    )
    return seeded(lambda: getattr(transformers, cls_name)(config), seed)


def z_image():
    from diffusers import AutoencoderKL, ZImageTransformer2DModel

    def transformer():
        model = ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
            n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
            axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
        )
        with torch.no_grad():  # torch.empty pads: make them finite
            model.x_pad_token.copy_(torch.ones_like(model.x_pad_token))
            model.cap_pad_token.copy_(torch.ones_like(model.cap_pad_token))
        return model

    vae = seeded(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        block_out_channels=[8, 16], layers_per_block=1, latent_channels=16, norm_num_groups=8, sample_size=32,
        scaling_factor=0.3611, shift_factor=0.1159))
    # Z-Image's default guider is disabled (the turbo checkpoint); the base model runs CFG
    pipe = modular("ZImageModularPipeline", text_encoder=_qwen3(), tokenizer=_qwen_tokenizer(), transformer=seeded(transformer),
                   vae=vae, scheduler=_flow_match())
    return ModularCase(pipe, {"height": 32, "width": 32, "max_sequence_length": 32}, timestep_key="t")


def _flux2_vae(latent_channels=1):
    from diffusers import AutoencoderKLFlux2

    return seeded(lambda: AutoencoderKLFlux2(
        sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), block_out_channels=(4,), layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False))


def flux2_klein_base():
    from diffusers import Flux2Transformer2DModel

    transformer = seeded(lambda: Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, timestep_guidance_channels=256, axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False))
    pipe = modular("Flux2KleinBaseModularPipeline", text_encoder=_qwen3("Qwen3ForCausalLM"), tokenizer=_qwen_tokenizer(),
                   transformer=transformer, vae=_flux2_vae(), scheduler=_flow_match())
    # no negative_prompt input: the stock unconditional text is always ""
    return ModularCase(pipe, {"height": 16, "width": 16, "max_sequence_length": 32, "text_encoder_out_layers": (1,)},
                       negative_via="prompt")


def ltx():
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel

    transformer = seeded(lambda: LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=32))

    def vae():
        model = AutoencoderKLLTXVideo(
            in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
            decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
            upsample_residual=(False,) * 4, upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1,
            patch_size_t=1, encoder_causal=True, decoder_causal=False)
        model.use_framewise_encoding = model.use_framewise_decoding = False
        return model

    pipe = modular("LTXModularPipeline", **_wan_text(), transformer=transformer, vae=seeded(vae), scheduler=_flow_match())
    return ModularCase(pipe, {"height": 32, "width": 32, "num_frames": 9, "max_sequence_length": 16},
                       images_arg="num_videos_per_prompt")


def _helios(class_name, scheduler=None, images_arg=None, **call):
    from diffusers import HeliosScheduler, HeliosTransformer3DModel

    transformer = seeded(lambda: HeliosTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_dim=(4, 4, 4), has_multi_term_memory_patch=True, guidance_cross_attn=True, zero_history_timestep=True,
        is_amplify_history=False))
    scheduler = scheduler or HeliosScheduler(stage_range=[0, 1], stages=1, use_dynamic_shifting=True)
    pipe = modular(class_name, **_wan_text(), transformer=transformer, vae=_wan_vae(), scheduler=scheduler)
    # the stock chunk loop fails with more than one video per prompt
    return ModularCase(pipe, {"height": 16, "width": 16, "num_frames": 9, "max_sequence_length": 16, **call},
                       images_arg=None)


def helios():
    return _helios("HeliosModularPipeline")


def helios_pyramid(distilled=False):
    """Three stages of 4, 2 and 2 steps (each stage a run of its own: the loop's step counter restarts at 0), 4x4
    latents at the smallest stage."""
    from diffusers import HeliosDMDScheduler, HeliosScheduler

    name = "HeliosPyramidDistilledModularPipeline" if distilled else "HeliosPyramidModularPipeline"
    # gamma 1/3 (the default) makes the block-noise covariance of a 2x2 patch singular: cholesky fails in float32
    scheduler = (HeliosDMDScheduler if distilled else HeliosScheduler)(stages=3, gamma=0.25, use_dynamic_shifting=True)
    return _helios(name, scheduler, pyramid_num_inference_steps_list=[4, 2, 2], height=64, width=64)


def krea2():
    from diffusers import AutoencoderKLQwenImage, Krea2Transformer2DModel
    from transformers import Qwen3VLConfig, Qwen3VLModel

    tok = _qwen_tokenizer()
    transformer = seeded(lambda: Krea2Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=32, timestep_embed_dim=8, text_hidden_dim=16, num_text_layers=12, text_num_attention_heads=2,
        text_num_key_value_heads=1, text_intermediate_size=16, num_layerwise_text_blocks=1, num_refiner_text_blocks=1,
        axes_dims_rope=(4, 2, 2), rope_theta=1000.0))
    vae = seeded(lambda: AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4))
    config = Qwen3VLConfig(
        # Krea 2 stacks the hidden states of layers 2, 5, ..., 35: 36 layers (of width 16)
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 36, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tok)},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        vocab_size=len(tok))
    encoder = seeded(lambda: Qwen3VLModel(config))
    scheduler = _flow_match(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                            max_image_seq_len=6400)
    pipe = modular("Krea2ModularPipeline", text_encoder=encoder, tokenizer=tok, transformer=transformer, vae=vae,
                   scheduler=scheduler, guider=ClassifierFreeGuidance(guidance_scale=4.5, use_original_formulation=True))
    return ModularCase(pipe, {"height": 32, "width": 32, "max_sequence_length": 16})


def hunyuan_video15():
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    tok = _qwen_tokenizer()
    transformer = seeded(lambda: HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1, num_refiner_layers=1,
        mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=32, image_embed_dim=12,
        rope_axes_dim=(2, 2, 4), target_size=16, task_type="t2v"))
    vae = seeded(lambda: AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
        upsample_match_channel=False))
    encoder = seeded(lambda: Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=len(tok), rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1e6})))
    byt5 = ByT5Tokenizer()
    encoder_2 = seeded(lambda: T5EncoderModel(T5Config(
        vocab_size=len(byt5), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        decoder_start_token_id=0, pad_token_id=byt5.pad_token_id)), 1)
    pipe = modular("HunyuanVideo15ModularPipeline", text_encoder=encoder, tokenizer=tok, text_encoder_2=encoder_2,
                   tokenizer_2=byt5, transformer=transformer, vae=vae, scheduler=_flow_match(shift=7.0))
    # the stock pipeline fails with more than one video per prompt
    return ModularCase(pipe, {"height": 16, "width": 16, "num_frames": 9}, images_arg=None)


def _qwenimage_vae():
    from diffusers import AutoencoderKLQwenImage

    return seeded(lambda: AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4))


def anima():
    from diffusers import AnimaTextConditioner, CosmosTransformer3DModel

    t5_tok = _t5_tokenizer()
    conditioner = seeded(lambda: AnimaTextConditioner(
        source_dim=16, target_dim=32, model_dim=32, num_layers=1, num_attention_heads=2, target_vocab_size=len(t5_tok),
        min_sequence_length=8), 3)
    transformer = seeded(lambda: CosmosTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=False, extra_pos_embed_type="learnable"))  # the padding mask needs torchvision
    pipe = modular("AnimaModularPipeline", text_encoder=_qwen3(), tokenizer=_qwen_tokenizer(), t5_tokenizer=t5_tok,
                   text_conditioner=conditioner, transformer=transformer, vae=_qwenimage_vae(), scheduler=_flow_match())
    return ModularCase(pipe, {"height": 32, "width": 32, "max_sequence_length": 16})


def ernie_image_parts() -> tuple:
    """Tiny Ernie-Image components, modular and classic (tests/builders/ernie_image.py) alike: the toy tokenizer, a
    2-layer ``Mistral3Model`` of width 16, a 1-layer ``ErnieImageTransformer2DModel`` (zero layers unzeroed)."""
    from diffusers import ErnieImageTransformer2DModel
    from transformers import Mistral3Config, Mistral3Model

    tok = _t5_tokenizer()
    config = Mistral3Config(
        text_config={"model_type": "mistral", "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tok)},
        vision_config={"model_type": "pixtral", "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "head_dim": 8, "image_size": 16, "patch_size": 4},
        vocab_size=len(tok))
    encoder = seeded(lambda: Mistral3Model(config))
    transformer = unzero(seeded(lambda: ErnieImageTransformer2DModel(
        hidden_size=16, num_attention_heads=1, num_layers=1, ffn_hidden_size=16, in_channels=16, out_channels=16,
        patch_size=1, text_in_dim=16, rope_theta=256, rope_axes_dim=(8, 4, 4), eps=1e-6, qk_layernorm=True)))
    return tok, encoder, transformer


def ernie_image():
    tok, encoder, transformer = ernie_image_parts()
    pipe = modular("ErnieImageModularPipeline", text_encoder=encoder, tokenizer=tok, transformer=transformer,
                   vae=_flux2_vae(latent_channels=4), scheduler=_flow_match())
    return ModularCase(pipe, {"height": 32, "width": 32})


# ---------------------------------------------------------------------------------------------------------
# Qwen-Image Edit / Edit Plus / Layered: a Qwen2.5-VL processor over a 1-block vision tower
# ---------------------------------------------------------------------------------------------------------


def _tiny_resize():
    """An image resize component that never goes above 28x28 (the VL encoder's 2x2 patches of 14): the stock
    steps resize condition images to a 1024x1024 (VAE) or 384x384 (VL) area."""
    from diffusers.image_processor import VaeImageProcessor

    class TinyResize(VaeImageProcessor):
        def resize(self, image, height=None, width=None, *args, **kwargs):
            return super().resize(image, 28, 28, *args, **kwargs)

    return TinyResize(vae_scale_factor=16)


def _vl_processor(cls, image_processor, tok):
    """A Qwen VL processor without a video processor (transformers cannot check one's class without torchvision)."""

    class Processor(cls):
        def check_argument_for_proper_class(self, name, arg):
            if arg is not None:
                return super().check_argument_for_proper_class(name, arg)

    return Processor(image_processor=image_processor, tokenizer=tok, video_processor=None, chat_template=CHAT)


def _qwen_edit_parts(template):
    from diffusers import QwenImageTransformer2DModel
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor

    from tiny_qwen import make_qwen_tokenizer, tiny_text_encoder

    tok = make_qwen_tokenizer(template=template)
    tok.chat_template = CHAT
    processor = _vl_processor(Qwen2VLProcessor, Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=28 * 28), tok)
    transformer = seeded(lambda: QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=32, guidance_embeds=False, axes_dims_rope=(8, 4, 4)))
    return dict(text_encoder=tiny_text_encoder(tok), processor=processor, transformer=transformer,
                vae=_qwenimage_vae(), scheduler=_flow_match(), image_resize_processor=_tiny_resize())


def qwenimage_edit():
    from diffusers.modular_pipelines.qwenimage.prompt_templates import QWENIMAGE_EDIT_PROMPT_TEMPLATE

    pipe = modular("QwenImageEditModularPipeline", **_qwen_edit_parts(QWENIMAGE_EDIT_PROMPT_TEMPLATE))
    # one condition image per prompt
    return ModularCase(pipe, {"image": [_image(32), _image(32, 1)], "height": 32, "width": 32, "negative_prompt": ["", ""]})


def qwenimage_edit_plus():
    from diffusers.modular_pipelines.qwenimage.prompt_templates import QWENIMAGE_EDIT_PLUS_PROMPT_TEMPLATE

    pipe = modular("QwenImageEditPlusModularPipeline", **_qwen_edit_parts(QWENIMAGE_EDIT_PLUS_PROMPT_TEMPLATE))
    # the images are references of one prompt (each prompt would need them all): one prompt, two images of it
    return ModularCase(pipe, {"image": [_image(32), _image(32, 1)], "height": 32, "width": 32, "negative_prompt": ""},
                       prompts=PROMPTS[0])


def qwenimage_layered():
    from diffusers.modular_pipelines.qwenimage.prompt_templates import QWENIMAGE_PROMPT_TEMPLATE

    parts = _qwen_edit_parts(QWENIMAGE_PROMPT_TEMPLATE)
    parts["tokenizer"] = parts["processor"].tokenizer
    pipe = modular("QwenImageLayeredModularPipeline", **parts)
    return ModularCase(pipe, {"image": _image(32), "layers": 2, "negative_prompt": ["", ""]})


def _qwen3_vl(tok, cls_name="Qwen3VLForConditionalGeneration", layers=2, hidden=16):
    import transformers

    ids = tok.convert_tokens_to_ids
    config = transformers.Qwen3VLConfig(
        text_config={"hidden_size": hidden, "intermediate_size": 16, "num_hidden_layers": layers,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tok),
                     "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1e6}},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": hidden,
                       "deepstack_visual_indexes": []},
        vocab_size=len(tok), image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    return seeded(lambda: getattr(transformers, cls_name)(config))


def qwenimage21():
    from diffusers import AutoencoderKLQwenImage21, QwenImage21Transformer2DModel
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor

    tok = _qwen_tokenizer()
    processor = _vl_processor(Qwen3VLProcessor, Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=28 * 28), tok)
    transformer = seeded(lambda: QwenImage21Transformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        context_in_dim=16, axes_dims_rope=(4, 6, 6)))
    vae = seeded(lambda: AutoencoderKLQwenImage21(  # only its config is read: the contract skips the decode
        base_dim=8, decoder_base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4))
    # Qwen-Image 2.1's default guider has guidance_scale 1 (off): with CFG on, as the base checkpoint runs it
    pipe = modular("QwenImage21ModularPipeline", text_encoder=_qwen3_vl(tok), processor=processor,
                   transformer=transformer, vae=vae, scheduler=_flow_match())
    return ModularCase(pipe, {"height": 32, "width": 32, "negative_prompt": ["", ""]}, reprefill=True)


def flux3():
    from diffusers import Flux3Transformer2DModel
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor

    tok = _qwen_tokenizer()
    processor = _vl_processor(Qwen3VLProcessor, Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=28 * 28), tok)
    transformer = seeded(lambda: Flux3Transformer2DModel(
        in_channels=4, cond_in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 4, 4)))
    # the prompt upsampler (a Qwen3.5 generating a longer prompt) is dropped, as diffusers documents it
    pipe = modular("Flux3ModularPipeline", drop=("prompt_upsampler",), text_encoder=_qwen3_vl(tok), tokenizer=processor,
                   transformer=transformer, vae=_flux2_vae(), scheduler=_flow_match(shift=6.93))
    # one prompt (the stock text step refuses a batch of prompts), two images of it
    return ModularCase(pipe, {"height": 16, "width": 16, "text_encoder_out_layers": (1, 2)}, prompts=PROMPTS[0])


def _wan_animate2(class_name, guidance_scale=5.0):
    """One 5-frame 32x32 segment (4x4 latents, a 2x2x2 patch grid), as diffusers' own tiny transformer test sizes it;
    the CLIP image features are 1280 wide (the transformer's image projection hardcodes it)."""
    from diffusers import WanAnimate2Transformer3DModel
    from diffusers.modular_pipelines.wan_animate_2.video_processor import WanAnimate2VideoProcessor
    from transformers import CLIPVisionConfig, CLIPVisionModel

    transformer = unzero(seeded(lambda: WanAnimate2Transformer3DModel(
        patch_size=(1, 2, 2), text_len=16, in_dim=36, dim=32, ffn_dim=32, freq_dim=32, text_dim=32, out_dim=16,
        num_heads=2, num_layers=2, cross_attn_norm=True, use_img_emb=True)))
    encoder = seeded(lambda: CLIPVisionModel(CLIPVisionConfig(
        hidden_size=1280, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=224,
        patch_size=32)))  # the pipeline's CLIP step resizes to 224
    processor = functools.partial(WanAnimate2VideoProcessor, vae_scale_factor=8, spatial_patch_size=(2, 2))
    pipe = modular(class_name, **_wan_text(), transformer=transformer, vae=_wan_vae(), image_encoder=encoder,
                   image_processor=processor(resample="bicubic"), video_processor=processor(resample="bilinear"),
                   scheduler=_flow_match(shift=5.0), guider=ClassifierFreeGuidance(guidance_scale=guidance_scale))
    video = [_image(32, seed=i) for i in range(5)]
    call = {"image": _image(32, 9), "driving_video": video, "height": 32, "width": 32, "segment_frame_length": 5,
            "max_sequence_length": 16}
    # the reference pass that fills each segment's KV cache (driving video and reference image, no text of the
    # negative) is not a step of the loop
    # each segment is decoded inside the segment loop: its frames are the output
    return ModularCase(pipe, call, images_arg=None, prompts=PROMPTS[0], output="segment_frames",
                       skip_call=lambda kwargs: kwargs.get("kv_cache_mode") == "extract")


def wan_animate2():
    return _wan_animate2("WanAnimate2ModularPipeline")


def wan_animate2_distilled():
    # its guider defaults to guidance_scale 1 (the distilled model runs without CFG): here with CFG on
    return _wan_animate2("WanAnimate2DistilledModularPipeline")


def _ltx2(class_name, guider_kwargs=None):
    """The classic tiny LTX-2's parts (tests/builders/ltx2.py: Gemma 3, connectors, one-layer audio-video transformer),
    a video and an audio ``LTX2Guidance``."""
    from diffusers.guiders import LTX2Guidance

    from builders import ltx2 as classic
    from tiny_gemma import make_gemma_tokenizer, tiny_gemma3

    tok = make_gemma_tokenizer(model_max_length=classic.TEXT_LEN)
    audio_vae = classic._audio_vae()
    # as the released defaults run: CFG, spatio-temporal guidance (perturbing the one block) and modality isolation on,
    # so each step makes four transformer passes (cond, uncond, stg, modality), the unconditional one second
    kw = {"stg_scale": 1.0, "modality_scale": 3.0, **(guider_kwargs or {})}
    pipe = modular(class_name, text_encoder=tiny_gemma3(tok, layers=classic.TEXT_LAYERS), tokenizer=tok,
                   connectors=classic._connectors(), transformer=classic._transformer(), vae=classic._vae(),
                   audio_vae=audio_vae, vocoder=classic._vocoder(audio_vae), scheduler=_flow_match(),
                   guider=LTX2Guidance(guidance_scale=3.0, spatio_temporal_guidance_blocks=[0], **kw),
                   audio_guider=LTX2Guidance(guidance_scale=7.0, **kw))
    call = {"height": classic.SIZE, "width": classic.SIZE, "num_frames": classic.FRAMES, "frame_rate": 25.0,
            "max_sequence_length": classic.TEXT_LEN}
    return ModularCase(pipe, call, images_arg="num_videos_per_prompt", output=["latents", "audio_latents"])


def ltx2():
    return _ltx2("LTX2ModularPipeline")


def ltx25():
    return _ltx2("LTX25ModularPipeline")


CASES = {
    "Flux2KleinBaseModularPipeline": flux2_klein_base,
    "QwenImage21ModularPipeline": qwenimage21,
    "WanModularPipeline": wan,
    "Wan22ModularPipeline": wan22,
    "WanImage2VideoModularPipeline": wan_i2v,
    "Wan22Image2VideoModularPipeline": wan22_i2v,
    "Wan22VaceModularPipeline": wan22_vace,
    "StableDiffusionXLModularPipeline": sdxl,
    "StableDiffusion3ModularPipeline": sd3,
    "QwenImageModularPipeline": qwenimage,
    "ZImageModularPipeline": z_image,
    "LTXModularPipeline": ltx,
    "HeliosModularPipeline": helios,
    "HeliosPyramidModularPipeline": helios_pyramid,
    "Krea2ModularPipeline": krea2,
    "HunyuanVideo15ModularPipeline": hunyuan_video15,
    "AnimaModularPipeline": anima,
    "ErnieImageModularPipeline": ernie_image,
    "QwenImageEditModularPipeline": qwenimage_edit,
    "QwenImageEditPlusModularPipeline": qwenimage_edit_plus,
    "QwenImageLayeredModularPipeline": qwenimage_layered,
    "Flux3ModularPipeline": flux3,
    "LTX2ModularPipeline": ltx2,
    "LTX25ModularPipeline": ltx25,
    "WanAnimate2ModularPipeline": wan_animate2,
    "WanAnimate2DistilledModularPipeline": wan_animate2_distilled,
}
