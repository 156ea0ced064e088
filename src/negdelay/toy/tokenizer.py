"""An offline word-level CLIP tokenizer: every word of a small vocabulary is one token.

The real ``transformers.CLIPTokenizer`` is a byte-pair encoder. Given the merges that build each word
from its characters, it maps every known word to a single id, and anything else to its characters
(or the unknown token). No file is downloaded: vocabulary and merges are made here from a word list.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.-'"


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word as CLIP's tokenizer does it: merge the best-ranked adjacent pair first."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), None), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        best = min((r, i) for r, i in pairs if r is not None) if any(r is not None for r, _ in pairs) else None
        if best is None:
            break
        pair = (parts[best[1]], parts[best[1] + 1])
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


def vocab_and_merges(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary (token -> id) and BPE merges that make each word in ``words`` a single token.

    Merges are added until byte-pair encoding, which applies the best-ranked merge first across the whole
    word, turns every word into one token (a merge made for "red" must not split "green" into g/re/e/n).
    """
    tokens: list[str] = []
    seen: set[str] = set()

    def add(tok: str) -> None:
        if tok not in seen:
            seen.add(tok)
            tokens.append(tok)

    for ch in _CHARS:
        add(ch)
        add(ch + "</w>")
    clean = []
    for word in words:
        w = word.lower()
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"words: {word!r} is not a single lower-case word")
        clean.append(w)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    changed = True
    while changed:  # each pass only appends merges; a word's encoding only gets shorter, so this ends
        changed = False
        for w in clean:
            parts = _bpe(w, ranks)
            while len(parts) > 1:
                pair = (parts[0], parts[1])
                ranks[pair] = len(merges)
                merges.append(pair)
                add(pair[0] + pair[1])
                parts = _bpe(w, ranks)
                changed = True
            add(parts[0])
    add(BOS)
    add(EOS)
    return {t: i for i, t in enumerate(tokens)}, merges


def make_tokenizer(words: list[str], model_max_length: int = 16) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` built in memory, offline, for ``words``."""
    vocab, merges = vocab_and_merges(words)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def save_tokenizer_files(words: list[str], folder: str | Path, model_max_length: int = 16) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` for ``words`` and save a loadable tokenizer folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    make_tokenizer(words, model_max_length).save_pretrained(str(folder))
    return folder
