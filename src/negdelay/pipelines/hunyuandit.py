"""HunyuanDiT (and its ControlNet): one batched call per step, ``[unconditional, conditional]`` rows of two text
streams, each with its mask: the CLIP/BERT one (``encoder_hidden_states``, ``text_embedding_mask``) and the T5 one
(``encoder_hidden_states_t5``, ``text_embedding_mask_t5``).

``__call__`` calls ``encode_prompt`` once per encoder (``text_encoder_index`` 0 and 1, ``max_sequence_length`` 77
and 256, which are ``encode_prompt``'s own defaults for them); the call record holds the last call's arguments.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import positive_args

#: per ``text_encoder_index``: the denoiser's (tokens, mask) inputs
STREAMS = (("encoder_hidden_states", "text_embedding_mask"), ("encoder_hidden_states_t5", "text_embedding_mask_t5"))


def encode_streams(pipeline, texts, current, call):
    """Each encoder's negative rows as ``encode_prompt`` encodes its ``negative_prompt`` (same max length)."""
    encode = call.original("encode_prompt")
    recorded = call.encode_args.get("text_encoder_index", 0)
    out = {}
    for index, (tokens, mask) in enumerate(STREAMS):
        args = positive_args(call, texts, ("prompt",))
        args["text_encoder_index"] = index
        if index != recorded:  # the other encoder's call: encode_prompt's default length, as __call__ passes it
            args["max_sequence_length"] = None
        embeds, _, attention, _ = encode(**args)
        out[tokens] = embeds.to(current[tokens].device, current[tokens].dtype)
        out[mask] = attention.to(current[mask].device, current[mask].dtype)
    return out


_INPUTS = tuple(name for stream in STREAMS for name in stream)
_HUNYUAN = dict(family="HunyuanDiT", mode="batched", inputs=_INPUTS, encode=encode_streams)
register(Declaration(**_HUNYUAN), "HunyuanDiTPipeline")
register(Declaration(**_HUNYUAN, denoisers=("transformer", "controlnet")), "HunyuanDiTControlNetPipeline")
