"""``negdelay.apply`` / ``negdelay.remove``: a delayed negative for every served pipeline, through diffusers hooks.

``apply`` looks the pipeline up in the registry (``negdelay.pipelines``), wraps the two instance methods that mark
a pipeline call (``calls.py``) and registers one ``ModelHook`` per denoiser, of the class of the declaration's mode
(``modes.py``). ``remove`` undoes both; the pipeline is then stock again, bit for bit.

    negdelay.apply(pipe, "glasses", start_fraction=0.2)      # idempotent: a second apply replaces the first
    pipe(prompt, ...)
    negdelay.remove(pipe)

    with negdelay.apply(pipe, "glasses", start_step=5):       # or scoped
        pipe(prompt, ...)
"""

from .api import Applied, apply, is_applied, remove, supports
from .modes import HOOK_NAME

__all__ = ["Applied", "HOOK_NAME", "apply", "is_applied", "remove", "supports"]
