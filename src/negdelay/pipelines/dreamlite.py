"""DreamLite: one batched UNet call per step, ``[negative, prompt]`` (text to image) or ``[negative + no image, negative
+ image, prompt + image]`` (editing: the first two blocks are unconditional). The negative and the prompt are encoded in
ONE ``encode_prompt`` call and padded to the longer of the two (``text_pad_embedding`` at padded positions,
``encoder_attention_mask`` 0), so a delayed negative of another length re-pads the prompt's rows too
(``padding.rows_by_mask``). The negative is encoded in the same batch as the stock pipeline encodes it (with the call's
prompt) and its row taken; that batch's prompt row is kept too: the text encoder's output for the prompt depends on the
batch's width in the last bits, so a step whose unconditional rows all take one text gets the prompt rows the stock
pipeline encodes next to that text (exactly the stock inputs for that ``negative_prompt``). Guidance is always on in the
stock loop: the negative counts unless its weight is zero (``guidance_scale == 1``, and when editing
``image_guidance_scale == 1`` too)."""

from __future__ import annotations

from .declaration import Declaration, register
from .padding import merge_rows, rows_by_mask

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def _fill(call):
    vector = call.encode_args.get("text_pad_embedding")
    return None if vector is None else vector.reshape(-1)


_REPAD = rows_by_mask(TOKENS, MASK, fill=_fill)
PROMPT = "prompt next to each text"  # encode's extra entry: the prompt's row of each text's stock batch


def PAD(parts, call=None, keys=None):
    """``rows_by_mask``; where every unconditional row takes the same text, the conditional block (the last) takes
    the prompt row encoded next to that text, as in the stock batch."""
    negative = getattr(call, "negative", None) if call is not None else None
    texts = set(keys or ())
    if negative is not None and PROMPT in negative and len(texts) == 1 and isinstance(next(iter(texts)), int):
        prompt = negative[PROMPT][next(iter(texts))]
        rows = len(parts[-1][TOKENS])
        parts = [*parts[:-1], {n: prompt[n].expand(rows, *prompt[n].shape[1:]) for n in (TOKENS, MASK)}]
    return _REPAD(parts, call)


def _editing(call) -> bool:
    return call.encode_args.get("mode") == "edit"


def encode(pipeline, texts, current, call):
    """Each text in the stock batch, in place of the pipeline's negative(s) next to the call's prompt; its row."""
    stock = list(call.encode_args["prompts"])
    rows, prompts = [], []
    for text in texts:
        args = dict(call.encode_args, prompts=[text[0]] * (len(stock) - 1) + stock[-1:])
        embeds, mask = call.original(call.started_by)(**args)
        embeds, mask = embeds.to(current[TOKENS].dtype), mask.to(current[MASK].dtype)
        rows.append({TOKENS: embeds[:1], MASK: mask[:1]})
        prompts.append({TOKENS: embeds[-1:], MASK: mask[-1:]})
    return {**_REPAD(rows, call), PROMPT: prompts}


def guided(pipeline, call, denoiser, total) -> bool:
    return pipeline.guidance_scale != 1 or (_editing(call) and pipeline.image_guidance_scale != 1)


def layout(pipeline, call):
    return (3, (0, 1)) if _editing(call) else (2, (0,))


register(Declaration(family="DreamLite", mode="batched", inputs=(TOKENS, MASK), denoisers=("unet",), encode=encode,
                     pad=PAD, merge=merge_rows(PAD), guided=guided, layout=layout,
                     needs="guidance_scale != 1 (editing: or image_guidance_scale != 1)",
                     note="negative and prompt padded to each other: every block re-padded; editing swaps the "
                          "first two of three blocks"),
         "DreamLitePipeline")
