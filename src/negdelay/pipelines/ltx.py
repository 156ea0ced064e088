"""LTX-Video and LTX-2: one batched call per step ([unconditional, conditional], ``cache_context("cond_uncond")``).

LTX passes the T5 tokens and their attention mask. LTX-2 runs the Gemma features through ``connectors`` once before
the loop: the video and audio text streams and one mask (all ones with the connectors' registers) reach the
transformer; its extra guidance calls per step (``uncond_stg``, ``uncond_modality``) carry the conditional text only
and are left alone (their row count differs from the batched call's).
Both repeat masks in another order than embeddings for ``num_videos_per_prompt > 1`` (a diffusers bug): negdelay
pairs each row's mask with its own embedding; the stock pipeline does so only when the texts have equal lengths.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import positive_args

_LTX_INPUTS = ("encoder_hidden_states", "encoder_attention_mask")


def _encode_ltx(pipeline, texts, current, call):
    embeds, mask = call.original("encode_prompt")(**positive_args(call, texts, ("prompt",)))[:2]
    like = current["encoder_hidden_states"]
    return {"encoder_hidden_states": embeds.to(like.device, like.dtype),
            "encoder_attention_mask": mask.to(like.device, current["encoder_attention_mask"].dtype)}


register(Declaration(family="LTX-Video", mode="batched", inputs=_LTX_INPUTS, encode=_encode_ltx),
         "LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline")
# Long multi-prompt i2v: every temporal window encodes its text (and the negative, batch of one) and runs a schedule
# of its own behind a new progress bar; each window's encode_prompt begins a new call for negdelay, so the delayed
# negative starts (and stops) at the same step of every window, counted by that window's progress bar.
register(Declaration(family="LTX-Video", mode="batched", inputs=_LTX_INPUTS, encode=_encode_ltx, steps="progress",
                     note="per temporal window: steps count within each window"),
         "LTXI2VLongMultiPromptPipeline")

_LTX2_INPUTS = ("encoder_hidden_states", "audio_encoder_hidden_states", "encoder_attention_mask",
                "audio_encoder_attention_mask")


def _encode_ltx2(pipeline, texts, current, call):
    embeds, mask = call.original("encode_prompt")(**positive_args(call, texts, ("prompt",)))[:2]
    side = getattr(getattr(pipeline, "tokenizer", None), "padding_side", "left")
    video, audio, joint = pipeline.connectors(embeds, mask, padding_side=side)
    out = {"encoder_hidden_states": video, "audio_encoder_hidden_states": audio, "encoder_attention_mask": joint,
           "audio_encoder_attention_mask": joint}
    return {name: t.to(current[name].device, current[name].dtype) for name, t in out.items()}


register(Declaration(family="LTX-2", mode="batched", inputs=_LTX2_INPUTS, encode=_encode_ltx2,
                     needs="guidance_scale > 1 or audio_guidance_scale > 1"),
         "LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline", "LTX2HDRPipeline", "LTX2InContextPipeline")
