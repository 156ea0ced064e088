"""The offline word-level CLIP tokenizer: every vocabulary word is one token, in any order of the list."""

import random

import pytest

from negdelay.toy.tokenizer import make_tokenizer

WORDS = "a red green blue yellow circle square triangle with dot on the light background small big glasses girl eating pizza wearing".split()


@pytest.mark.parametrize("seed", range(5))
def test_every_word_is_one_token_whatever_the_order(seed):
    words = WORDS[:]
    random.Random(seed).shuffle(words)
    tok = make_tokenizer(words, model_max_length=32)
    for w in words:
        ids = tok(w).input_ids
        assert len(ids) == 3, (w, tok.convert_ids_to_tokens(ids))  # bos, the word, eos
    ids = tok(" ".join(words)).input_ids
    assert len(ids) == len(words) + 2


def test_unknown_words_fall_back_to_characters():
    tok = make_tokenizer(["red"], model_max_length=16)
    assert tok.convert_ids_to_tokens(tok("rex").input_ids)[1:-1] == ["re", "x</w>"]
