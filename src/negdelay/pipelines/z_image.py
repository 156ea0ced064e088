"""Z-Image: one denoiser call per step on a list-of-tensors batch, captions ``[conditional..., unconditional...]``
(each its own length, no mask); CFG truncation drops the unconditional half on the last steps (those calls are
left alone). The ControlNets get the same caption list. Guidance runs when ``guidance_scale > 0``. Omni's caption
rows are lists of segments (the text between condition-image slots): a row is swapped whole, and the negative is
encoded with the call's ``num_condition_images``, so its rows have the same segments."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_Z = dict(family="Z-Image", mode="list", inputs=("cap_feats",), encode=prompt_encoder({"cap_feats": 0}),
          needs="guidance_scale > 0 (and a step before cfg_truncation)")
register(Declaration(**_Z), "ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline", "ZImageOmniPipeline")
register(Declaration(**{**_Z, "denoisers": ("transformer", "controlnet")}),
         "ZImageControlNetPipeline", "ZImageControlNetInpaintPipeline")
