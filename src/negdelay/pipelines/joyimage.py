"""JoyImage Edit and Edit Plus.

JoyImage Edit: the unconditional pass is the second transformer call of each step (``guidance_scale > 1``), its
only text input ``encoder_hidden_states`` (no mask: padded positions are zeros on the text-only path, the pad
tokens' hidden states on the image path). Two prompt encoders, one per path: ``encode_prompt`` (text to image) and
``encode_prompt_multiple_images`` (editing: the negative is encoded with the reference image); both start a call,
and the negative is encoded through the one the call used (``call.started_by``).

JoyImage Edit Plus: one batched ``[negative, prompt]`` transformer call per step, tokens and mask. Its only encoder,
``encode_prompt_multiple_images``, encodes the prompts and the negatives in two batches (each row wrapped by
``__call__`` in a chat turn with one image tag per reference image of its sample), which ``__call__`` zero-pads to the
wider of the two: a delayed negative of another width re-pads the prompt's block too (``padding.blocks_by_mask``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .padding import blocks_by_mask, merge_blocks

TOKENS = "encoder_hidden_states"


# rows of different widths (per-row schedules mixing own and delayed negative) are right-padded with zeros to the
# widest, as the text-only path pads a batch
JOYIMAGE_EDIT = Declaration(
    family="JoyImage", mode="ordered", inputs=(TOKENS,), encode=prompt_encoder({TOKENS: 0}), merge=merge_blocks(TOKENS),
    starts=("encode_prompt", "encode_prompt_multiple_images"),
    note="unconditional pass: the second transformer call of each step; the negative is encoded by the path the "
         "call took (with the reference image when editing)",
)
register(JOYIMAGE_EDIT, "JoyImageEditPipeline")


MASK = "encoder_hidden_states_mask"
_TURN, _END, _TAG = "<|im_start|>user\n", "<|im_end|>\n", "<image>\n"


def _as_turn(stock: str, text: str) -> str:
    """``text`` in the chat turn ``__call__`` made for the stock negative ``stock`` (its image tags kept)."""
    return _TURN + _TAG * stock.count(_TAG) + text + _END


def encode_plus(pipeline, texts, current, call):
    """The texts wrapped as ``__call__`` wraps a negative, one per sample, encoded in one batch with the call's
    reference images (the arguments of the call's negative encoding)."""
    stock = call.encode_args["prompt"]
    stock = [stock] if isinstance(stock, str) else list(stock)
    if len(texts) != len(stock):
        raise ValueError(f"negdelay.apply: {type(pipeline).__name__} takes one negative per prompt ({len(stock)}), "
                         f"got {len(texts)}")
    args = dict(call.encode_args, prompt=[_as_turn(s, t[0]) for s, t in zip(stock, texts)])
    embeds, mask = call.original(call.started_by)(**args)
    return {TOKENS: embeds.to(current[TOKENS].dtype), MASK: mask.to(current[MASK].dtype)}


register(Declaration(
    family="JoyImage", mode="batched", inputs=(TOKENS, MASK), encode=encode_plus,
    starts="encode_prompt_multiple_images",
    pad=blocks_by_mask(TOKENS, MASK), merge=merge_blocks(TOKENS, MASK),
    note="prompt and negative blocks zero-padded to each other: every block re-padded",
), "JoyImageEditPlusPipeline")
