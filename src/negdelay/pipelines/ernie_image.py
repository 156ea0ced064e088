"""Ernie-Image: one batched ``[unconditional, conditional]`` transformer call per step. ``encode_prompt`` returns one
hidden-state tensor per text, of its own token length; ``__call__`` pads the whole call's rows (negatives and prompts)
to the longest into ``text_bth`` with their lengths in ``text_lens``. A delayed negative of another length re-pads
every row of the call (``padding.rows_by_length``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .padding import merge_rows, rows_by_length

TOKENS, LENGTHS = "text_bth", "text_lens"
PAD = rows_by_length(TOKENS, LENGTHS)


def encode(pipeline, texts, current, call):
    """The texts through the pipeline's ``encode_prompt`` (one row each), padded as ``__call__`` pads a batch."""
    args = dict(call.encode_args, prompt=[t[0] for t in texts], num_images_per_prompt=1)
    hiddens = call.original(call.started_by)(**args)
    like = current[TOKENS]
    rows = [h.to(device=like.device, dtype=like.dtype) for h in hiddens]
    lengths = current[LENGTHS].new_tensor([row.shape[0] for row in rows])
    return PAD([{TOKENS: row[None], LENGTHS: lengths[i : i + 1]} for i, row in enumerate(rows)])


register(Declaration(family="Ernie-Image", mode="batched", inputs=(TOKENS, LENGTHS), encode=encode, pad=PAD,
                     merge=merge_rows(PAD), note="rows of per-text length: every block re-padded to the longest row"),
         "ErnieImagePipeline")
