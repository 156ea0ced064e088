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


def vocab_and_merges(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary (token -> id) and BPE merges that make each word in ``words`` a single token."""
    tokens: list[str] = []
    merges: list[tuple[str, str]] = []

    def add(tok: str) -> None:
        if tok not in seen:
            seen.add(tok)
            tokens.append(tok)

    seen: set[str] = set()
    for ch in _CHARS:
        add(ch)
        add(ch + "</w>")
    merge_seen: set[tuple[str, str]] = set()
    for word in words:
        w = word.lower()
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"words: {word!r} is not a single lower-case word")
        parts = list(w[:-1]) + [w[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            merge = (left, right)
            left = left + right
            if merge not in merge_seen:
                merge_seen.add(merge)
                merges.append(merge)
            add(left)
        add(left if len(parts) > 1 else parts[0])
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
