"""ConsisID: CogVideoX image-to-video's loop, one batched ``[unconditional, conditional]`` call per step with T5
tokens only; the face features (``id_vit_hidden``, ``id_cond``) are the same for both halves. Guidance is a local
of ``__call__``, passed to ``encode_prompt``.

diffusers instantiates ``ConsisIDPipeline`` only with OpenCV (``cv2``) installed: the test extra installs
``opencv-python-headless`` (tests/builders/consisid.py builds it).
"""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

CONSISID = Declaration(family="ConsisID", mode="batched", inputs=("encoder_hidden_states",), guided=by_encode_argument,
                       encode=prompt_encoder({"encoder_hidden_states": 0}))
register(CONSISID, "ConsisIDPipeline")
