"""AudioLDM 2: one batched UNet call per step, ``[unconditional, conditional]`` rows of three text inputs: the
GPT-2 sequence generated from the projected CLAP + T5 features (``encoder_hidden_states``), the T5 tokens
(``encoder_hidden_states_1``) and their mask (``encoder_attention_mask_1``). Guidance is a local of ``__call__``
passed to ``encode_prompt``.

A negative's T5 tokens are padded to the prompt's width and cut to it (the prompt's are padded to the longest
prompt): negatives are encoded through the pipeline's own negative path (stand-in prompt rows of this call's
shapes); ``encode_prompt`` returns ``[negative, prompt]`` rows, the first ``n`` are the negatives'."""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import by_encode_argument
from .own_negative import negative_path

GENERATED, TOKENS, MASK = "encoder_hidden_states", "encoder_hidden_states_1", "encoder_attention_mask_1"


def _first(index: int):
    return lambda result, n: result[index][:n]


register(
    Declaration(
        family="AudioLDM 2", mode="batched", inputs=(GENERATED, TOKENS, MASK), denoisers=("unet",),
        guided=by_encode_argument,
        encode=negative_path({TOKENS: _first(0), MASK: _first(1), GENERATED: _first(2)},
                             {"prompt_embeds": TOKENS, "attention_mask": MASK, "generated_prompt_embeds": GENERATED}),
        note="a negative's T5 tokens are cut to the prompt's length",
    ),
    "AudioLDM2Pipeline",
)
