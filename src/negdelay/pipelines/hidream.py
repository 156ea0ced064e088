"""HiDream-I1: batched ``[unconditional, conditional]`` rows of three text inputs: T5 tokens and the pooled CLIP
pair (rows on dim 0), and the Llama-3 hidden states of every layer, ``[layers, batch, tokens, dim]`` (rows on dim 1:
the pipeline joins negative and prompt with ``torch.cat(..., dim=1)``), declared as a batch axis. A negative per
encoder (``negative_prompt_2`` .. ``_4``) as the pipeline takes them; each defaults to ``negative_prompt``."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

LLAMA = "encoder_hidden_states_llama3"


def _llama_rows_first(got, current, call):
    """``encode_prompt`` returns the Llama-3 states ``[layers, batch, ...]``: rows first, as the session sees them."""
    got[LLAMA] = got[LLAMA].movedim(1, 0)
    return got


register(Declaration(
    family="HiDream", mode="batched", inputs=("encoder_hidden_states_t5", LLAMA, "pooled_embeds"),
    batch_axes={LLAMA: 1}, prompts=("negative_prompt_2", "negative_prompt_3", "negative_prompt_4"),
    encode=prompt_encoder({"encoder_hidden_states_t5": 0, LLAMA: 2, "pooled_embeds": 4},
                          ("prompt", "prompt_2", "prompt_3", "prompt_4"), post=_llama_rows_first),
    note="Llama-3 states batched on dim 1",
), "HiDreamImagePipeline")
