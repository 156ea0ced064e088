"""An offline word-level CLIP tokenizer: every word of a small vocabulary is one token.

The real ``transformers.CLIPTokenizer`` is a byte-pair encoder. Given the merges that build each word
from its characters, it maps every known word to a single id, and anything else to its characters
(or the unknown token). No file is downloaded: vocabulary and merges are made here from a word list.
"""

from __future__ import annotations

from pathlib import Path

from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.-'"


def bpe(parts: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of a symbol list as the tokenizers do it: merge the best-ranked adjacent pair (all its
    occurrences) first, until no ranked pair is left."""
    parts = list(parts)
    while len(parts) > 1:
        ranked = [(ranks[p], i) for i, p in enumerate(zip(parts, parts[1:])) if p in ranks]
        if not ranked:
            break
        _, i = min(ranked)
        pair = (parts[i], parts[i + 1])
        merged, j = [], 0
        while j < len(parts):
            if j + 1 < len(parts) and (parts[j], parts[j + 1]) == pair:
                merged.append(parts[j] + parts[j + 1])
                j += 2
            else:
                merged.append(parts[j])
                j += 1
        parts = merged
    return parts


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """One word as CLIP's tokenizer encodes it: its characters, the last one marked end-of-word, then ``bpe``."""
    return bpe(list(word[:-1]) + [word[-1] + "</w>"], ranks)


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
