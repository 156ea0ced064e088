"""A tiny AudioLDM 2 pipeline, built in code, offline.

Tokenizers of the classes the pipeline checks for (it picks prompt or transcription by tokenizer class): a byte-level
``RobertaTokenizer`` with no merges (every byte one token; padded to 77) for CLAP, and a unigram ``T5Tokenizer`` whose
pieces are the test words (``▁word``) and single letters. A ``ClapModel`` (1-layer text branch, tiny audio branch
never run), a 1-layer T5 (width 32), a 1-layer GPT-2 (width 16) generating 8 tokens, the projection model, a small
``AudioLDM2UNet2DConditionModel``, a 2x VAE and a tiny HiFi-GAN vocoder (never run: ``output_type="latent"``).
The pipeline's sizes come from the vocoder's sampling rate: 0.25 s -> 8 latent frames. The UNet's
``cross_attention_dim`` is per block, then per attention of a layer, as released: ``None`` (self-attention), GPT-2 (16), T5 (32);
with two entries both attend to the GPT-2 sequence and the T5 tokens go unused.
"""

from __future__ import annotations

import torch
from diffusers import (
    AudioLDM2Pipeline,
    AudioLDM2ProjectionModel,
    AudioLDM2UNet2DConditionModel,
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
)
from transformers import (
    ClapConfig,
    ClapModel,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaTokenizer,
    SpeechT5HifiGan,
    SpeechT5HifiGanConfig,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from contract_case import Case
from tiny import WORDS
from tiny_qwen import _bytes_to_unicode

CALL = dict(audio_length_in_s=0.25, guidance_scale=3.0, output_type="latent")


def roberta() -> RobertaTokenizer:
    symbols = list(_bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *symbols, "<mask>"])}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=77)


def t5_unigram() -> T5Tokenizer:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz,.'-"] + [("\u2581" + w, -1.0) for w in WORDS]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=77)


def _clap(tokenizer) -> ClapModel:
    torch.manual_seed(1)
    text = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, hidden_size=8,
                intermediate_size=37, num_attention_heads=1, num_hidden_layers=1, pad_token_id=tokenizer.pad_token_id,
                vocab_size=len(tokenizer), projection_dim=8)
    audio = dict(spec_size=8, window_size=4, num_mel_bins=8, intermediate_size=37, depths=[1, 1],
                 num_attention_heads=[1, 1], num_hidden_layers=1, hidden_size=192, projection_dim=8, patch_size=2,
                 patch_stride=2, patch_embed_input_channels=4)
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).eval()


def audioldm2() -> Case:
    tokenizer, tokenizer_2 = roberta(), t5_unigram()
    torch.manual_seed(0)
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=((None, 16, 32),) * 2,
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1, norm_num_groups=8, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2).eval()
    torch.manual_seed(2)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=32, d_ff=37, d_kv=8, num_heads=1,
                                             num_layers=1, pad_token_id=tokenizer_2.pad_token_id)).eval()
    torch.manual_seed(3)
    language_model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_head=1, n_layer=1, vocab_size=64, n_ctx=128,
                                                n_positions=128, bos_token_id=0, eos_token_id=0)).eval()
    language_model.config.max_new_tokens = 8
    torch.manual_seed(4)
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16).eval()
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False)).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = AudioLDM2Pipeline(vae=vae, text_encoder=_clap(tokenizer), text_encoder_2=text_encoder_2,
                             projection_model=projection, language_model=language_model, tokenizer=tokenizer,
                             tokenizer_2=tokenizer_2, feature_extractor=None, unet=unet, scheduler=scheduler,
                             vocoder=vocoder)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), images_arg="num_waveforms_per_prompt", schedulers=(
        (lambda p: p.scheduler), (lambda p: DPMSolverMultistepScheduler.from_config(p.scheduler.config))))


CASES = {"AudioLDM2Pipeline": audioldm2}
