"""A1111 prompt editing in the negative prompt -> negdelay's schedule.

``[to:when]``, ``[from:to:when]`` and ``[from::when]``, nested and with several switch points, as the
AUTOMATIC1111 web UI reads them (``modules/prompt_parser.py``, current scheduling), turned into the core's
segments. See docs/a1111.md for the exact semantics; the short version:

- ``when`` with a decimal point (``0.25``, ``.5``, ``1.0``, ``3.``) is a fraction of ``steps``: ``int(w *
  steps)``; without one (``5``, ``1e1``) it is a step count: ``int(w)``. Either is capped at ``steps``.
- A1111's schedule entry ``(k, text)`` holds while its 0-based step counter is ``<= k``: ``[glasses:5]`` at
  20 steps guides steps 0-5 with the empty negative and steps 6-19 with "glasses". negdelay's step ``s``
  (the 0-based progress-bar step) is A1111's counter value ``s``, so the text of an entry after ``(k, _)``
  starts at our step ``k + 1``.
- ``(word:1.2)``, ``[word]`` and ``BREAK`` stay in the text as they are: diffusers' text encoder reads them
  as plain text (no weighting). Escapes (``\\[``, ``\\]``, ``\\(``, ``\\)``, ``\\:``, ``\\\\``) are literal
  characters: they never count as syntax, and the texts handed to the pipeline have the backslash removed,
  as A1111's attention parser removes it.

Refused with a ``ValueError`` that names the construct (A1111 would silently do something else):
alternation ``[a|b]``, ``AND``, unbalanced or stray brackets, a ``[...:...]`` whose last part is not a
number, ``|`` outside brackets together with prompt editing, a trailing backslash.

Usage::

    neg, cb = delayed_negative("[glasses:0.25]", steps=20)
    pipe(prompt, negative_prompt=neg, callback_on_step_end=cb, num_inference_steps=20)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

from .schedule import Point

__all__ = ["delayed_negative", "per_step", "schedule", "segments", "unescape"]

# lark's SIGNED_NUMBER (what A1111's grammar accepts after the last ':'), with the optional whitespace
# A1111's grammar allows on both sides of it. Digits are ASCII only, as in lark.
_WHEN = re.compile(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*")
_AND = re.compile(r"\bAND\b")
_MAX_DEPTH = 100
_SHOWN = 80  # a prompt longer than this is shown in errors as a short excerpt around the position


def _shown(text: str, at: int) -> str:
    """The prompt for an error message: itself when short; else its length and an excerpt around position ``at``
    (a 10,000-character prompt is not repeated in full)."""
    if len(text) <= _SHOWN:
        return repr(text)
    a, b = max(0, at - _SHOWN // 2), min(len(text), at + _SHOWN // 2)
    excerpt = ("..." if a else "") + text[a:b] + ("..." if b < len(text) else "")
    return f"({len(text)} characters; around position {at}: {excerpt!r})"


# -- the tree ------------------------------------------------------------------------------------------------


@dataclass
class _Text:
    source: str  # verbatim, escapes included


@dataclass
class _Group:
    """``(...)`` or ``[...]`` that is not prompt editing: kept as text, brackets included."""

    open: str
    children: list
    close: str


@dataclass
class _Edit:
    """``[from:to:when]`` (``before`` is the from part; empty for ``[to:when]``)."""

    before: list
    after: list
    when: str  # the number as written
    step: int = 0  # resolved for a given number of steps


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.depth = 0
        self.stray_pipe: int | None = None
        self.edits: list[_Edit] = []
        self.edit_ends: list[int] = []  # position just after each edit's ']'
        self.stray_colons: set[int] = set()  # ':' that A1111's grammar can only read as stray text
        self.group_end: dict[int, int] = {}  # position of '(' / '[' -> position after its closing bracket

    def error(self, what: str, at: int) -> ValueError:
        return ValueError(f"A1111 negative prompt {_shown(self.text, at)}: {what} at position {at}")

    def parse(self) -> list:
        nodes = self.sequence(closer=None)
        for end in self.edit_ends:
            # A1111's grammar can also read "]", brackets right after it and a ':' as stray text; lark then picks
            # one reading or the other (with A1111's pinned lark 1.1.2 it even changes with Python's hash seed)
            after = end
            while after < len(self.text):
                if self.text[after] in ")]":
                    after += 1
                elif after in self.group_end:
                    after = self.group_end[after]
                else:
                    break
            if after in self.stray_colons:
                raise self.error(
                    f"':' right after the ']' that closes prompt editing (at {end - 1}), with only brackets between: "
                    "A1111's parser reads this ambiguously and may keep the editing as plain text; put a space "
                    "before the ':' or escape it as '\\:'",
                    after,
                )
        if self.stray_pipe is not None and self.edits:
            raise self.error(
                "'|' outside [...] (A1111 then cannot parse the text and ignores all its prompt editing, using "
                "the whole text as it is); escape it as '\\|' or remove it",
                self.stray_pipe,
            )
        return nodes

    def sequence(self, closer: str | None, in_square: bool = False) -> list:
        """Nodes up to ``closer`` (not consumed). Inside ``[...]`` a ``:`` is a separator: returned as ``None``."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"brackets nested more than {_MAX_DEPTH} deep", self.pos)
        try:
            return self._sequence(closer, in_square)
        finally:
            self.depth -= 1

    def _sequence(self, closer: str | None, in_square: bool) -> list:
        nodes: list = []
        buf: list[str] = []
        paren_colon_seen = False

        def flush():
            if buf:
                nodes.append(_Text("".join(buf)))
                buf.clear()

        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(text):
                    raise self.error("a trailing backslash escapes nothing (write '\\\\' for a backslash)", self.pos)
                buf.append(text[self.pos : self.pos + 2])
                self.pos += 2
            elif c == closer:
                flush()
                return nodes
            elif c in ")]":
                want = f"'{closer}' first" if closer else "no open bracket"
                raise self.error(
                    f"unbalanced '{c}' ({want}); escape it as '\\{c}' if it is meant as text", self.pos
                )
            elif c == "(":
                flush()
                start = self.pos
                self.pos += 1
                children = self.sequence(")")
                if self.pos >= len(text):
                    raise self.error("unbalanced '(' (never closed); escape it as '\\(' if it is meant as text", start)
                self.pos += 1
                self.group_end[start] = self.pos
                nodes.append(_Group("(", children, ")"))
            elif c == "[":
                flush()
                nodes.append(self.square())
            elif c == ":" and in_square:
                flush()
                nodes.append(None)
                self.pos += 1
            elif c == ":":
                # text; A1111 reads the first ':' of a (...) as its weight separator, every other one as stray
                if closer is None or paren_colon_seen:
                    self.stray_colons.add(self.pos)
                paren_colon_seen = True
                buf.append(c)
                self.pos += 1
            elif c == "|":
                if in_square:
                    raise self.error(
                        "alternation [a|b] is not supported (A1111 switches between the parts at every step); "
                        "write the switches as [a:b:when] or escape '|' as '\\|'",
                        self.pos,
                    )
                if self.stray_pipe is None:
                    self.stray_pipe = self.pos
                buf.append(c)
                self.pos += 1
            else:
                buf.append(c)
                self.pos += 1
        if closer is not None:
            return nodes  # the caller reports the unclosed bracket
        flush()
        return nodes

    def square(self) -> object:
        start = self.pos
        self.pos += 1
        nodes = self.sequence("]", in_square=True)
        if self.pos >= len(self.text):
            raise self.error("unbalanced '[' (never closed); escape it as '\\[' if it is meant as text", start)
        self.pos += 1
        self.group_end[start] = self.pos
        parts: list[list] = [[]]
        for node in nodes:
            if node is None:
                parts.append([])
            else:
                parts[-1].append(node)
        if len(parts) == 1:
            return _Group("[", parts[0], "]")
        if len(parts) > 3:
            raise self.error(
                f"[...] with {len(parts) - 1} ':' (prompt editing is [to:when] or [from:to:when]; escape a ':' "
                "meant as text as '\\:')",
                start,
            )
        last = parts[-1]
        source = last[0].source if len(last) == 1 and isinstance(last[0], _Text) else None
        match = _WHEN.fullmatch(source) if source is not None else None
        if match is None:
            shown = self.text[start : self.pos]
            raise self.error(
                f"{shown!r} is not prompt editing: the part after the last ':' must be a number (a step such as 5 "
                "or a fraction of the steps such as 0.25); A1111 would keep the whole bracket as plain text. "
                "Escape ':' as '\\:' if that is what you mean",
                start,
            )
        edit = _Edit(before=parts[0] if len(parts) == 3 else [], after=parts[-2], when=match.group(1))
        self.edits.append(edit)
        self.edit_ends.append(self.pos)
        return edit


def _parse(text: object, steps: object) -> tuple[list, list[_Edit]]:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (an A1111 negative prompt), got {type(text).__name__} {text!r}")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise ValueError(f"steps must be an int >= 1 (the num_inference_steps of the call), got {steps!r}")
    m = _AND.search(text)
    if m:
        raise ValueError(
            f"A1111 negative prompt {_shown(text, m.start())}: 'AND' at position {m.start()} is not supported (A1111 uses AND to "
            "compose positive prompts; in a negative prompt it is just a word to A1111). Write it in lower case "
            "or leave it out"
        )
    parser = _Parser(text)
    nodes = parser.parse()
    for edit in parser.edits:
        edit.step = _resolve_when(edit.when, int(steps))
    return nodes, parser.edits


def _resolve_when(when: str, steps: int) -> int:
    """A1111's rule: with a '.' a fraction of ``steps``, else a step count; truncated; at most ``steps``."""
    v = float(when)
    if "." in when:
        v = v * steps
    if v >= steps:
        return steps
    if v < 1:
        return 0  # never holds (A1111's counter starts at 0 but compares from its first entry on): 'to' from the start
    return int(v)


def _render(nodes: list, t: int) -> str:
    out = []
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.source)
        elif isinstance(node, _Group):
            out.append(node.open + _render(node.children, t) + node.close)
        else:
            out.append(_render(node.before if t <= node.step else node.after, t))
    return "".join(out)


# -- public API ----------------------------------------------------------------------------------------------


def schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """A1111's prompt schedule of ``text`` for ``steps`` steps: ``[(k, text_k), ...]``, ``k`` ascending, the
    last ``k == steps``. ``text_k`` holds while A1111's 0-based step counter is ``<= k`` (and after the entry
    before it). Texts are as A1111 produces them: escapes and emphasis kept verbatim.

    >>> schedule("a [b:3]", 10)
    [(3, 'a '), (10, 'a b')]
    """
    nodes, edits = _parse(text, steps)
    points = sorted({steps} | {e.step for e in edits if e.step >= 1})
    return [(k, _render(nodes, k)) for k in points]


def unescape(text: str) -> str:
    """Remove A1111's escape backslashes: ``\\X`` -> ``X`` (``\\\\`` -> ``\\``), as A1111's attention parser does."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.S)


def per_step(text: str, steps: int, *, unescape_texts: bool = True) -> list[str]:
    """The negative text of each step ``0 .. steps-1``: at step ``s`` the first schedule entry with ``s <= k``
    (A1111's own lookup, with our step ``s`` = A1111's step counter)."""
    entries = schedule(text, steps)
    texts = [next(t for k, t in entries if s <= k) for s in range(steps)]
    return [unescape(t) for t in texts] if unescape_texts else texts


def segments(text: str, steps: int, *, unescape_texts: bool = True) -> tuple[str, list[tuple[Point, str | None]]]:
    """``(step0_text, [(Point("step", s), text_or_None), ...])`` for negdelay's core.

    ``step0_text`` is what steps 0.. use until the first switch: a step-end callback cannot change step 0,
    so it must be the pipeline's own ``negative_prompt``. Each later segment starts at our step ``s = k + 1``
    after A1111's entry ``(k, _)``; texts equal to ``step0_text`` get the key ``None`` (the pipeline's own
    unconditional embedding, which *is* ``step0_text``'s when the pipeline is given
    ``negative_prompt=step0_text``). Entries that would start at or after ``steps`` never come and are left
    out, and so are entries that do not change the text.
    """
    entries = schedule(text, steps)
    texts = [unescape(t) if unescape_texts else t for _, t in entries]
    step0 = texts[0]
    out: list[tuple[Point, str | None]] = []
    current = step0
    for (k, _), new in zip(entries, texts[1:]):
        start = k + 1
        if start >= steps or new == current:
            continue
        out.append((Point("step", start), None if new == step0 else new))
        current = new
    return step0, out


def _callback_class(family_or_pipe):
    from .callback import DelayedNegative, DelayedNegativeBase, callback_class
    from .families import Family, family_for

    if family_or_pipe is None:
        base = DelayedNegative
    elif isinstance(family_or_pipe, Family):
        base = callback_class(family_or_pipe)
    else:
        family = family_for(family_or_pipe)
        if family is None:
            DelayedNegativeBase.for_pipeline(family_or_pipe, None, segments=[[]])  # raises, naming the class
            raise TypeError(f"{type(family_or_pipe).__name__} is not supported")  # pragma: no cover
        base = callback_class(family)
    if base not in _CHECKED:
        _CHECKED[base] = type(f"A1111{base.__name__}", (_StepsCheck, base), {})
    return _CHECKED[base]


class _StepsCheck:
    """Mixin: A1111 steps are resolved for one step count; refuse a call that runs a different number."""

    a1111_steps: int

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        if step_index == 0:
            from .families import run_facts

            n = run_facts(pipeline, False).n_steps
            if n != self.a1111_steps:
                raise ValueError(
                    f"this A1111 negative was resolved for steps={self.a1111_steps}, but the call runs {n} steps; "
                    f"build it with delayed_negative(text, steps={n}) (img2img: the steps that run after strength)"
                )
        return super().callback_fn(pipeline, step_index, timestep, callback_kwargs)


_CHECKED: dict = {}


def delayed_negative(text: str | Sequence[str], steps: int, family_or_pipe=None, *, unescape_texts: bool = True):
    """``(negative_prompt, callback_or_None)`` for ``pipe(..., negative_prompt=..., callback_on_step_end=...)``.

    ``text``: an A1111 negative prompt, or a list of them (one per prompt, or per image row, of the batch).
    ``steps``: the steps the call runs (``num_inference_steps``; img2img: the steps that run after
    ``strength``); the callback refuses a call that runs a different number.
    ``family_or_pipe``: the pipeline (or a ``Family``) to pick the callback class for; ``None``: SD 1.x/2.x.

    The negative prompt is the text of step 0, which a step-end callback cannot change. It is ``None`` when
    every text of the schedule is empty (as A1111, which then uses zeros on SDXL: ``None`` gives SDXL's zeros
    too); otherwise the step-0 text, ``""`` included. The callback is ``None`` when nothing changes after step 0.
    """
    texts = [text] if isinstance(text, str) else list(text) if isinstance(text, (list, tuple)) else None
    if not texts:
        raise TypeError(f"text must be a str or a non-empty list of str, got {text!r}")
    rows = []
    negatives = []
    all_empty = True
    for t in texts:
        step0, segs = segments(t, steps, unescape_texts=unescape_texts)
        all_empty = all_empty and all(not s for _, s in schedule(t, steps))
        negatives.append(step0)
        rows.append(segs)
    negative = None if all_empty else (negatives[0] if isinstance(text, str) else negatives)
    if not any(rows):
        return negative, None
    cls = _callback_class(family_or_pipe)
    callback = cls(segments=rows)
    callback.a1111_steps = int(steps)
    return negative, callback
