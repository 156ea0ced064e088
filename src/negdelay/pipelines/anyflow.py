"""AnyFlow: one batched ``[unconditional, conditional]`` call per step with T5 tokens only (Wan's encoder path, the
same for prompt and negative). Its released checkpoints fold CFG into the weights: guidance runs only with
``guidance_scale > 1``.

AnyFlow FAR generates chunk after chunk, each a full run of ``num_inference_steps`` (the scheduler's timesteps set
anew per chunk): ``steps="chunks"`` places the start within every chunk, and the KV-cache pass after a chunk (the
same rows at timestep 0, attended to by the later chunks) takes the text of the chunk's last step."""

from __future__ import annotations

from dataclasses import replace

from .declaration import Declaration, register
from .encoders import prompt_encoder

# steps="chunks" for the one-chunk pipeline too: its loop also skips an item whose timestep equals the next sigma's
# (a repeated custom sigma) without a scheduler step, and the start is placed in the items of the schedule
ANYFLOW = register(Declaration(family="AnyFlow", mode="batched", inputs=("encoder_hidden_states",),
                               encode=prompt_encoder({"encoder_hidden_states": 0}), steps="chunks"),
                   "AnyFlowPipeline")

register(replace(ANYFLOW,
                 note="per chunk: step k counts within each chunk; the KV-cache pass after a chunk takes its last "
                      "step's text; no video context (video= / video_latents=)"),
         "AnyFlowFARPipeline")
