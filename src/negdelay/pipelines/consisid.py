"""ConsisID: CogVideoX image-to-video's loop, one batched ``[unconditional, conditional]`` call per step with T5
tokens only; the face features (``id_vit_hidden``, ``id_cond``) are the same for both halves. Guidance is a local
of ``__call__``, passed to ``encode_prompt``.

Not registered yet: diffusers instantiates ``ConsisIDPipeline`` only with OpenCV (``cv2``) installed, which the
test environment lacks; with ``opencv-python-headless`` installed this declaration passes the contract
(tests/builders/consisid.py). Registering it is one line: ``register(CONSISID, "ConsisIDPipeline")``.
"""

from __future__ import annotations

from .declaration import Declaration
from .encoders import prompt_encoder
from .guidance import by_encode_argument

CONSISID = Declaration(family="ConsisID", mode="batched", inputs=("encoder_hidden_states",), guided=by_encode_argument,
                       encode=prompt_encoder({"encoder_hidden_states": 0}))
