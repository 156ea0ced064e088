"""One declaration per served pipeline class: where its unconditional pass is and how to encode a negative for it.

A declaration is data. The hook classes (``negdelay.hooks.modes``) read it; the contract test, ``negdelay pipelines``
and docs/pipelines.md are generated from the same registry, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: how the unconditional pass is found in the denoiser calls of one loop iteration
MODES = {
    "batched": "one denoiser call per step with [unconditional, conditional] rows; the first half is swapped",
    "context": "a separate denoiser call inside cache_context(\"uncond\"); that call's text inputs are swapped",
    "ordered": "a separate denoiser call, the second of each step (no cache context); its text inputs are swapped",
    "list": "one call with a list-of-tensors batch [conditional..., unconditional...]; the second half is swapped",
}

#: how the loop iteration (the step a schedule point is resolved against) of a denoiser call is counted
STEPS = {
    "scheduler": "the scheduler's step index, relative to the call's first denoiser call (calls where it has none)",
    "progress": "the step of the pipeline's last opened progress bar (its update() calls so far); a new bar restarts "
                "at 0, and its total is the run's step count (step and fraction points only)",
    "chunks": "the loop item of the scheduler's step index within the running chunk of a loop that sets the "
              "scheduler's timesteps anew per chunk, each chunk a full run (AnyFlow FAR; AnyFlow is one chunk): every "
              "chunk has the same plan, items the loop skips count, and a call after a chunk's last step (a KV-cache "
              "pass of the chunk) takes that last step's text",
}


@dataclass(frozen=True)
class Declaration:
    """How negdelay serves the pipeline classes it is registered for.

    family: a name for grouping (docs, ``negdelay pipelines``).
    mode: one of ``MODES``.
    inputs: the denoiser's keyword arguments that carry the text in the unconditional pass (a dotted name reads a
        nested dict: ``added_cond_kwargs.text_embeds``). The contract test checks this list is complete.
    encode: ``(pipeline, texts, current, call) -> {input: one row per text}``: the negative texts (tuples, one text
        per encoder) encoded as the stock pipeline encodes its ``negative_prompt`` in this call. ``current`` holds
        this call's unconditional inputs; ``call`` the pipeline call's record (``call.encode_args``: the bound
        arguments of the pipeline's own ``encode_prompt`` call).
    denoisers: pipeline attributes of the models that see the unconditional pass (the first one must exist).
    prompts: per-encoder negatives ``apply()`` accepts besides ``negative_prompt`` (``negative_prompt_2``, ...).
    needs: what the user passes so that the pipeline runs an unconditional pass.
    merge: ``(own, negative, keys) -> inputs``: rows from the pipeline's own pass (key None) or the negative's.
    guided: batched mode: ``(pipeline, call, denoiser, rows) -> bool``, whether this call holds unconditional rows;
        decided once per pipeline call and denoiser. Default: the pipeline's ``do_classifier_free_guidance``.
    layout: batched mode: ``(pipeline, call) -> (blocks, unconditional block indices)`` for calls made of equal
        blocks of rows, read once per call. Default ``(2, (0,))``: ``[unconditional, conditional]``.
    pad: batched mode, for pipelines that pad prompt and negative token rows to one width: ``(parts, call, keys)
        -> inputs`` joins the call's blocks (one ``{input: rows}`` per block, each padded as its source padded it)
        as the stock pipeline pads them (``negdelay.pipelines.padding``; ``keys``: the step's plan, the text of each
        unconditional row; the denoiser call's arguments: ``call.denoiser_kwargs``); the unconditional blocks are
        swapped one by one and every block is re-padded, the conditional rows too.
    starts: the instance method whose call marks the start of a pipeline call (wrapped by ``apply``), or a tuple of
        them (one encoder per path: JoyImage Edit's text-only and image paths); ``call.started_by`` names the one
        whose arguments ``call.encode_args`` holds.
    context: context mode: the name of the ``cache_context`` of the unconditional pass (a guider's ``pred_uncond``).
    callback: the step-end callback class that also serves these classes, if any.
    steps: how the step of a denoiser call is counted, one of ``STEPS``: ``"progress"`` where the pipeline's loop
        does not step ``pipeline.scheduler`` once per step (diffusion forcing's per-frame scheduler copies, a
        pyramid's stages that each set the scheduler's timesteps anew); ``"chunks"`` where a loop over chunks runs
        ``num_inference_steps`` steps per chunk (the points are placed within each chunk).
    batch_axes: inputs whose rows are not on dim 0 (HiDream's Llama-3 states ``[layers, batch, tokens, dim]``: 1). The
        session sees them batch-first (``movedim``) and the declaration's encode returns them batch-first; the
        first input must be batch-first (its rows are counted).
    refill: context and ordered modes, for a denoiser that caches the unconditional pass's text after its first call
        (Qwen-Image 2.1's prefix KV cache): ``kwargs -> kwargs`` for an unconditional call whose text differs from
        the previous one's (the start, the stop), making the denoiser fill its cache again from this call's inputs.
    grouped: inputs with one row per group of consecutive rows of the first input (AnimateDiff SDXL: the pooled
        text one row per video, the tokens one per frame); the group size is the ratio of their rows in each call,
        and the rows of a group take one negative.
    note: one line for the docs.
    parts: a wrapper pipeline that calls served sub-pipelines (``wrapper()``): ``(attribute, declaration)`` of each
        sub-pipeline that receives the negative text; ``apply()`` applies each declaration to its sub-pipeline with the
        same negative and schedule, ``remove()`` removes them. A part's ``encode`` that takes a ``wrapper`` keyword is
        given the wrapper pipeline (a decoder whose negative the wrapper's prior encodes). ``inputs``, ``denoisers``
        and ``mode`` then describe the parts (the wrapper's own attribute names of their denoisers); ``encode`` is None.
    """

    family: str
    mode: str
    inputs: tuple[str, ...]
    encode: Callable | None = None
    denoisers: tuple[str, ...] = ("transformer",)
    prompts: tuple[str, ...] = ()
    needs: str = "guidance_scale > 1"
    merge: Callable | None = None
    guided: Callable | None = None
    layout: Callable | None = None
    pad: Callable | None = None
    starts: str | tuple[str, ...] = "encode_prompt"
    context: str = "uncond"
    callback: str | None = None
    steps: str = "scheduler"
    batch_axes: dict[str, int] = field(default_factory=dict, compare=False)
    grouped: tuple[str, ...] = ()
    refill: Callable | None = None
    note: str = ""
    parts: tuple[tuple[str, Declaration], ...] = ()
    classes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {self.mode!r}")
        if self.steps not in STEPS:
            raise ValueError(f"steps must be one of {sorted(STEPS)}, got {self.steps!r}")
        if set(self.batch_axes) - set(self.inputs[1:]):
            raise ValueError(f"batch_axes must name inputs other than the first, got {sorted(self.batch_axes)}")
        if set(self.grouped) - set(self.inputs[1:]):
            raise ValueError(f"grouped must name inputs other than the first, got {list(self.grouped)}")
        if not self.inputs or not self.denoisers:
            raise ValueError("a declaration needs at least one text input and one denoiser")
        if self.encode is None and not self.parts:
            raise ValueError("a declaration needs encode (how to encode a negative), or parts (a wrapper)")


def wrapper(family: str, parts: dict[str, Declaration], denoisers: tuple[str, ...], needs: str,
            note: str = "") -> Declaration:
    """A wrapper pipeline that calls sub-pipelines (Kandinsky's and Stable Cascade's combined pipelines), served by
    applying to them: ``parts`` maps the attributes of the sub-pipelines that receive the negative text to the
    declarations that serve them there (their mode must agree); ``denoisers`` names the parts' denoisers as the
    wrapper's own attributes (``prior_prior``); ``needs`` says it in the wrapper's arguments."""
    declared = list(parts.values())
    modes = {d.mode for d in declared}
    prompts = {d.prompts for d in declared}
    if not parts or len(modes) > 1 or len(prompts) > 1:
        raise ValueError(f"a wrapper needs parts of one mode taking the same negatives, got {sorted(modes)}")
    inputs = tuple(dict.fromkeys(name for d in declared for name in d.inputs))
    return Declaration(family=family, mode=declared[0].mode, inputs=inputs, denoisers=denoisers,
                       prompts=declared[0].prompts, needs=needs, note=note, parts=tuple(parts.items()))


#: class name -> declaration (filled by the family modules of this package)
REGISTRY: dict[str, Declaration] = {}


def register(declaration: Declaration, *classes: str) -> Declaration:
    """Serve ``classes`` (diffusers pipeline class names) as ``declaration`` says."""
    from dataclasses import replace

    declaration = replace(declaration, classes=tuple(classes))
    for name in classes:
        if name in REGISTRY:
            raise ValueError(f"{name} is declared twice")
        REGISTRY[name] = declaration
    return declaration


def declaration_for(pipeline) -> Declaration | None:
    """The declaration that serves ``pipeline`` (by its class or the nearest registered base class), or None."""
    for cls in type(pipeline).__mro__:
        found = REGISTRY.get(cls.__name__)
        if found is not None:
            return found
    return None
