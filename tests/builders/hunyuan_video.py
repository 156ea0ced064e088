"""Tiny HunyuanVideo pipelines (text-to-video, image-to-video, SkyReels, Framepack) and HunyuanVideo 1.5 (text- and
image-to-video) of the real diffusers classes, built in code, offline.

Text encoders keep the pipelines' own prompt templates and crop indices unchanged:

- HunyuanVideo's Llama 3 tokenizer is a byte-level BPE ``PreTrainedTokenizerFast`` (Llama 3's pre-tokenizer regex,
  ``<|begin_of_text|>`` prepended) whose merges make every pre-token of the templates and of ``WORDS`` one token,
  as the real tokenizer does for these templates: the template prefix is then exactly the pipelines'
  ``crop_start`` (95 tokens, 103 for image-to-video, whose ``<image>`` sits at index 5 = ``image_emb_start``).
  The image-to-video encoder is a Llava whose vision tower gives exactly 576 = ``image_emb_len`` image tokens.
- HunyuanVideo 1.5's Qwen tokenizer is tests/tiny_qwen.py's ``Qwen2Tokenizer`` built for 1.5's system message, with
  a chat template in Qwen's format: the chat prefix is exactly ``prompt_template_encode_start_idx`` (108) tokens.
  Its ByT5 glyph encoder only sees text in quotes; the contract's prompts have none, so that branch is zeros.

Builders check these lengths and raise if a diffusers release changes a template.
"""

from __future__ import annotations

import inspect
import re

import PIL.Image
import torch
from diffusers import (
    AutoencoderKLHunyuanVideo,
    AutoencoderKLHunyuanVideo15,
    ClassifierFreeGuidance,
    FlowMatchEulerDiscreteScheduler,
    HunyuanSkyreelsImageToVideoPipeline,
    HunyuanVideo15ImageToVideoPipeline,
    HunyuanVideo15Pipeline,
    HunyuanVideo15Transformer3DModel,
    HunyuanVideoFramepackPipeline,
    HunyuanVideoFramepackTransformer3DModel,
    HunyuanVideoImageToVideoPipeline,
    HunyuanVideoPipeline,
    HunyuanVideoTransformer3DModel,
)
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    ByT5Tokenizer,
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerFast,
    Qwen2_5_VLTextConfig,
    Qwen2_5_VLTextModel,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
    T5Config,
    T5EncoderModel,
)

import tiny_qwen
from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import clip

LLAMA_DIM = 16  # Llama / Qwen hidden size = transformer text_embed_dim
CLIP_DIM = 32  # tiny_families.clip's width = pooled_projection_dim
SIZE = dict(height=16, width=16)
FRAMES = 5  # HunyuanVideo: 2 latent frames of 2x2
MAX_LEN = 16  # max_sequence_length of every call (tokens kept after the template prefix)
TRUE_CFG = dict(true_cfg_scale=4.0, negative_prompt=["", ""])  # HunyuanVideo 1.0 runs an unconditional pass only so

# Llama 3's pre-tokenizer (tiktoken cl100k-style); Qwen2's differs only in splitting digits one by one.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
BOS, EOS, PAD, IMAGE = "<|begin_of_text|>", "<|end_of_text|>", "<pad>", "<image>"
LLAMA_SPECIAL = (BOS, EOS, "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", IMAGE, PAD)


def euler(pipe=None):
    """HunyuanVideo's scheduler (the pipelines pass their own sigmas; shift as the checkpoints ship it)."""
    return FlowMatchEulerDiscreteScheduler(shift=7.0)


def euler_shift(pipe=None):
    """A second flow-matching schedule (other shift): the pipelines pass ``sigmas=`` so they need this family."""
    return FlowMatchEulerDiscreteScheduler(shift=3.0)


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def _template_prefix(template: str) -> str:
    return template.split("{}")[0]


def llama3_tokenizer(templates: list[str], words=WORDS) -> PreTrainedTokenizerFast:
    """A Llama 3-style tokenizer made here: byte-level BPE, every pre-token of ``templates`` and ``words`` one
    token, ``<|begin_of_text|>`` prepended, right padding with ``<pad>``; ``<image>`` and the header tokens special."""
    split = "|".join(map(re.escape, LLAMA_SPECIAL))
    pieces = [p for t in templates for p in re.split(split, t.replace("{}", " ")) if p]
    vocab, merges = tiny_qwen.vocab_and_merges(pieces + [" ".join(words)] + list(words))
    vocab = {t: i for t, i in vocab.items() if t not in tiny_qwen.SPECIAL}  # Qwen's specials come last: ids stay dense
    for token in LLAMA_SPECIAL:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    tokenizer.add_special_tokens({"additional_special_tokens": [t for t in LLAMA_SPECIAL if t not in (BOS, EOS, PAD)]})
    return tokenizer


def _check_prefix(tokenizer, template: dict) -> None:
    """The tokens before the prompt must be exactly the template's ``crop_start``, as with the real tokenizer."""
    n = len(tokenizer(_template_prefix(template["template"])).input_ids)
    if n != template["crop_start"]:
        raise RuntimeError(f"HunyuanVideo template prefix is {n} tokens, crop_start is {template['crop_start']}: "
                           "a diffusers release changed the template; rebuild the tiny tokenizer for it")


def _default_template(cls) -> dict:
    return inspect.signature(cls.__call__).parameters["prompt_template"].default


def _llama_config(tokenizer) -> LlamaConfig:
    ids = tokenizer.convert_tokens_to_ids
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=LLAMA_DIM, intermediate_size=37, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048, hidden_act="gelu",
        bos_token_id=ids(BOS), eos_token_id=ids(EOS), pad_token_id=ids(PAD),
    )


def clip_parts() -> dict:
    """HunyuanVideo's CLIP-L (pooled text): the word-level tokenizer, 77 tokens as the pipelines ask."""
    tokenizer_2 = make_tokenizer(WORDS, model_max_length=77)
    return dict(tokenizer_2=tokenizer_2, text_encoder_2=clip(tokenizer_2, 1))


def llama_parts(cls) -> dict:
    template = _default_template(cls)
    tokenizer = llama3_tokenizer([template["template"]])
    _check_prefix(tokenizer, template)
    text_encoder = _seeded(0, lambda: LlamaModel(_llama_config(tokenizer)))
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, **clip_parts())


def llava_parts(cls) -> dict:
    """Llava (Llama 3 text, CLIP vision) for image-to-video: a 24x24 image in 1x1 patches gives 576 image tokens."""
    template = _default_template(cls)
    tokenizer = llama3_tokenizer([template["template"]])
    _check_prefix(tokenizer, template)
    ids = tokenizer.convert_tokens_to_ids
    if tokenizer(_template_prefix(template["template"])).input_ids[template["image_emb_start"]] != ids(IMAGE):
        raise RuntimeError("HunyuanVideo image-to-video template: <image> is not at image_emb_start")
    side = int(template["image_emb_len"] ** 0.5)
    config = LlavaConfig(
        text_config=_llama_config(tokenizer),
        vision_config=CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2,
                                       image_size=side, patch_size=1, projection_dim=8),
        image_token_index=ids(IMAGE), pad_token_id=ids(PAD),
    )
    return dict(
        tokenizer=tokenizer, text_encoder=_seeded(0, lambda: LlavaForConditionalGeneration(config)),
        image_processor=CLIPImageProcessor(crop_size=side, size=side), **clip_parts(),
    )


def vae() -> AutoencoderKLHunyuanVideo:
    return _seeded(0, lambda: AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True,
    ))


TRANSFORMER = dict(
    out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1, num_single_layers=1,
    num_refiner_layers=1, patch_size=1, patch_size_t=1, text_embed_dim=LLAMA_DIM, pooled_projection_dim=CLIP_DIM,
    rope_axes_dim=(2, 4, 4),
)


def transformer(cls=HunyuanVideoTransformer3DModel, **config):
    return _seeded(0, lambda: cls(**{**TRANSFORMER, **config}))


def _pipe(cls, **components):
    pipe = cls(vae=vae(), scheduler=euler(), **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(seed=0, size=16) -> PIL.Image.Image:
    g = torch.Generator().manual_seed(seed)
    return PIL.Image.fromarray((torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy())


CALL = dict(**SIZE, num_frames=FRAMES, max_sequence_length=MAX_LEN, output_type="latent", **TRUE_CFG)
SCHEDULERS = (lambda p: euler(), euler_shift)
NO_CFG = {"true_cfg_scale": 1.0}


def hunyuan_video() -> Case:
    """Text-to-video, guidance-distilled (``guidance_scale`` is an embedded input, not CFG); the unconditional pass
    runs only with ``true_cfg_scale > 1`` and a negative (``cache_context("uncond")``)."""
    pipe = _pipe(HunyuanVideoPipeline, transformer=transformer(in_channels=4, guidance_embeds=True),
                 **llama_parts(HunyuanVideoPipeline))
    return Case(pipe, call=dict(CALL), no_cfg=NO_CFG, schedulers=SCHEDULERS, images_arg="num_videos_per_prompt")


def hunyuan_i2v() -> Case:
    """Image-to-video (HunyuanVideo-I2V, ``latent_concat``: 4 latent + 4 image + 1 mask channels, no guidance
    embedding). Its text is Llava over template + image; the negative is encoded with ONE black image.
    One prompt, one video: with CFG, several prompts fail in Llava (one black image for several rows,
    pipeline_hunyuan_video_image2video.py:849), and the text is not repeated for ``num_videos_per_prompt``
    (``_get_llama_prompt_embeds``/``_get_clip_prompt_embeds``), so more videos fail in the transformer."""
    pipe = _pipe(
        HunyuanVideoImageToVideoPipeline,
        transformer=transformer(in_channels=2 * 4 + 1, guidance_embeds=False, image_condition_type="latent_concat"),
        **llava_parts(HunyuanVideoImageToVideoPipeline),
    )
    return Case(pipe, call=dict(CALL, image=image(), negative_prompt=""), no_cfg=NO_CFG, schedulers=SCHEDULERS,
                images_arg=None)


def skyreels_i2v() -> Case:
    """SkyReels image-to-video: HunyuanVideo's text stack; image latents concatenated on channels (4 + 4). Its
    defaults are true_cfg_scale 6.0 and guidance_scale 1.0; the unconditional pass still needs a negative.
    The image latents are not repeated to the batch (pipeline_hunyuan_skyreels_image2video.py:452): it takes one
    image per video, so the case passes 4 images for 2 prompts x 2 videos (rows prompt-major)."""
    pipe = _pipe(HunyuanSkyreelsImageToVideoPipeline, transformer=transformer(in_channels=2 * 4, guidance_embeds=True),
                 **llama_parts(HunyuanSkyreelsImageToVideoPipeline))
    return Case(pipe, call=dict(CALL, image=[image(i) for i in range(4)]), no_cfg=NO_CFG, schedulers=SCHEDULERS,
                images_arg="num_videos_per_prompt")


def framepack() -> Case:
    """Framepack: one section (latent_window_size 2: 5 frames); SigLIP image embeds the same in both passes.
    One video per prompt: latents are made for ``batch_size`` only while the text is repeated
    ``num_videos_per_prompt`` times (pipeline_hunyuan_video_framepack.py), so more than one fails."""
    torch.manual_seed(0)
    siglip = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=16, intermediate_size=16, num_attention_heads=2, num_hidden_layers=1, image_size=16, patch_size=8,
    )).eval()
    pipe = _pipe(
        HunyuanVideoFramepackPipeline,
        transformer=transformer(
            HunyuanVideoFramepackTransformer3DModel, in_channels=4, patch_size=2, guidance_embeds=True,
            has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True,
        ),
        image_encoder=siglip, feature_extractor=SiglipImageProcessor(size={"height": 16, "width": 16}),
        **llama_parts(HunyuanVideoFramepackPipeline),
    )
    call = dict(CALL, image=[image(0), image(1)], latent_window_size=2)
    return Case(pipe, call=call, no_cfg=NO_CFG, schedulers=SCHEDULERS, images_arg=None)


# ---- HunyuanVideo 1.5 ----

QWEN_CHAT = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_parts(cls) -> dict:
    """Qwen2.5-VL text model (3 layers: hidden_states[-3] is after the first) with a tokenizer for 1.5's system
    message; ByT5 tokenizer (byte-level, needs no files) and a T5 encoder of width 32 for glyph text."""
    # The pipeline sets self.system_message in __init__; _check_qwen_prefix checks it against this default.
    system = inspect.signature(cls._get_mllm_prompt_embeds).parameters["system_message"].default
    chat = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{{}}<|im_end|>\n<|im_start|>assistant\n"
    tokenizer = tiny_qwen.make_qwen_tokenizer(template=chat)
    tokenizer.chat_template = QWEN_CHAT
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLTextConfig(
        hidden_size=LLAMA_DIM, intermediate_size=16, num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=2,
        vocab_size=len(tokenizer), max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1000000.0},
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id,
    )
    tokenizer_2 = ByT5Tokenizer()
    t5_config = T5Config(
        vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=tokenizer_2.pad_token_id,
    )
    return dict(
        tokenizer=tokenizer, text_encoder=_seeded(0, lambda: Qwen2_5_VLTextModel(config)),
        tokenizer_2=tokenizer_2, text_encoder_2=_seeded(1, lambda: T5EncoderModel(t5_config)),
    )


def _check_qwen_prefix(pipe) -> None:
    conversation = [[{"role": "system", "content": pipe.system_message}, {"role": "user", "content": "cat"}]]
    ids = pipe.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True)
    cat = pipe.tokenizer.convert_tokens_to_ids("cat")
    if ids["input_ids"][0].index(cat) != pipe.prompt_template_encode_start_idx:
        raise RuntimeError("HunyuanVideo 1.5's chat prefix is not prompt_template_encode_start_idx tokens: "
                           "a diffusers release changed the system message; rebuild the tiny tokenizer for it")


# ByT5 bytes: room for one quoted word ('Text "hat". ' + </s>); the ByT5 projection is 2048 wide whatever the config,
# so its cost grows with this length.
GLYPH_LEN = 16
VISION_TOKENS = 16  # SigLIP tokens of a 16x16 image in 4x4 patches


def vae15() -> AutoencoderKLHunyuanVideo15:
    return _seeded(0, lambda: AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
        upsample_match_channel=False,
    ))


def transformer15(task_type, image_embed_dim=12):
    return _seeded(0, lambda: HunyuanVideo15Transformer3DModel(
        in_channels=2 * 4 + 1, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=LLAMA_DIM,
        text_embed_2_dim=32, image_embed_dim=image_embed_dim, rope_axes_dim=(2, 2, 4), target_size=16,
        task_type=task_type,
    ))


def _pipe15(cls, **components):
    pipe = cls(vae=vae15(), scheduler=euler(), guider=ClassifierFreeGuidance(guidance_scale=6.0),
               **qwen_parts(cls), **components)
    _check_qwen_prefix(pipe)
    # Sequence lengths are plain attributes set in __init__ (1.0's equivalents are call arguments): shrink them.
    pipe.tokenizer_max_length = MAX_LEN  # Qwen tokens kept after the 108-token chat prefix (1000)
    pipe.tokenizer_2_max_length = GLYPH_LEN  # ByT5 bytes (256)
    pipe.vision_num_semantic_tokens = VISION_TOKENS  # text-to-video's all-zero image tokens (729)
    pipe.set_progress_bar_config(disable=True)
    return pipe


CALL15 = dict(num_frames=FRAMES, output_type="latent")


def hunyuan_video15() -> Case:
    """HunyuanVideo 1.5 text-to-video: guidance by ``pipe.guider`` (ClassifierFreeGuidance, scale 6), a separate
    denoiser call per guider batch in ``cache_context("pred_cond"/"pred_uncond")``. ``__call__`` has no guidance
    keyword: switching CFG off means replacing ``pipe.guider`` (scale 1.0), so ``no_cfg`` is empty here.
    One video per prompt: the zero image embeds are made for ``batch_size`` rows, not ``batch_size *
    num_videos_per_prompt`` (pipeline_hunyuan_video1_5.py:719), so more than one fails in the transformer."""
    pipe = _pipe15(HunyuanVideo15Pipeline, transformer=transformer15("t2v"))
    return Case(pipe, call=dict(CALL15, **SIZE), no_cfg=guider_off, schedulers=SCHEDULERS, images_arg=None)


def hunyuan_video15_i2v() -> Case:
    """HunyuanVideo 1.5 image-to-video: size from the image (16x16 = transformer ``target_size``); SigLIP image
    embeds the same in both passes. CFG as in text-to-video (``pipe.guider``)."""
    torch.manual_seed(0)
    siglip = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=12, intermediate_size=16, num_attention_heads=2, num_hidden_layers=1, image_size=16, patch_size=4,
    )).eval()
    pipe = _pipe15(HunyuanVideo15ImageToVideoPipeline, transformer=transformer15("i2v"), image_encoder=siglip,
                   feature_extractor=SiglipImageProcessor(size={"height": 16, "width": 16}))
    return Case(pipe, call=dict(CALL15, image=image()), no_cfg=guider_off, schedulers=SCHEDULERS,
                images_arg="num_videos_per_prompt")


# Cases that take ONE string prompt (and one string negative), not the contract's list of two: image-to-video
# encodes its negative with ONE black image, so Llava gets one image for several rows and fails.
ONE_PROMPT = frozenset({"HunyuanVideoImageToVideoPipeline"})


def guider_off(pipe):
    """HunyuanVideo 1.5 takes no guidance keyword: its guider decides. Switch it off; return how to undo."""
    from diffusers.guiders import ClassifierFreeGuidance

    own = pipe.guider
    pipe.guider = ClassifierFreeGuidance(guidance_scale=1.0)

    def undo():
        pipe.guider = own

    return undo

CASES = {
    "HunyuanVideoPipeline": hunyuan_video,
    "HunyuanVideoImageToVideoPipeline": hunyuan_i2v,
    "HunyuanSkyreelsImageToVideoPipeline": skyreels_i2v,
    "HunyuanVideoFramepackPipeline": framepack,
    "HunyuanVideo15Pipeline": hunyuan_video15,
    "HunyuanVideo15ImageToVideoPipeline": hunyuan_video15_i2v,
}
