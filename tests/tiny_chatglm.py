"""A tiny ChatGLM3 text encoder and tokenizer for Kolors, built in code (no hub, no sentencepiece).

The tokenizer is diffusers' own ``ChatGLMTokenizer`` (its ``[gMASK] sop`` prefix, left padding, position ids and
attention mask) over a word-level stand-in for its SentencePiece model: the toy word list of tests/tiny.py.
"""

from __future__ import annotations

import torch
from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig, ChatGLMModel
from diffusers.pipelines.kolors.tokenizer import ChatGLMTokenizer
from transformers import PreTrainedTokenizer

from tiny import WORDS

_SPECIALS = ("[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>")


class WordPieces:
    """What ``ChatGLMTokenizer`` reads of its SentencePiece wrapper (``SPTokenizer``), over whole words:
    ids 0-2 are ``<unk>`` (also the padding), ``<s>``, ``</s>``; the chat specials follow the words."""

    def __init__(self, words):
        self.pieces = ["<unk>", "<s>", "</s>", *dict.fromkeys(words)]
        self.ids = {p: i for i, p in enumerate(self.pieces)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self.special_tokens = {t: len(self.pieces) + i for i, t in enumerate(_SPECIALS)}
        self.index_special_tokens = {i: t for t, i in self.special_tokens.items()}
        self.n_words = len(self.pieces) + len(_SPECIALS)

    def tokenize(self, s, encode_special_tokens=False):
        return s.split()

    def encode(self, s, bos=False, eos=False):
        return [self.bos_id] * bos + [self.ids.get(w, 0) for w in s.split()] + [self.eos_id] * eos

    def decode_tokens(self, tokens):
        return " ".join(tokens)

    def convert_token_to_id(self, token):
        return self.special_tokens.get(token, self.ids.get(token, 0))

    def convert_id_to_token(self, index):
        if index in self.index_special_tokens:
            return self.index_special_tokens[index]
        return "" if index < 3 else self.pieces[index]


class TinyChatGLMTokenizer(ChatGLMTokenizer):
    """``ChatGLMTokenizer`` on ``WordPieces`` instead of a SentencePiece file."""

    def __init__(self, words=WORDS, **kwargs):
        self.name = "GLMTokenizer"
        self.vocab_file = None
        self.tokenizer = WordPieces(words)
        self.special_tokens = {"<bos>": 1, "<eos>": 2, "<pad>": 0}
        self.encode_special_tokens = False
        PreTrainedTokenizer.__init__(self, padding_side="left", clean_up_tokenization_spaces=False, **kwargs)


def tiny_chatglm(tokenizer, hidden=32, seed=3):
    """A 2-layer ChatGLM3 (hidden 32, 4 heads, 2 query groups); use ``max_sequence_length <= 16``."""
    torch.manual_seed(seed)
    config = ChatGLMConfig(
        num_layers=2, padded_vocab_size=tokenizer.vocab_size, hidden_size=hidden, ffn_hidden_size=37, kv_channels=8,
        num_attention_heads=4, seq_length=16, multi_query_attention=True, multi_query_group_num=2, original_rope=True,
    )
    model = ChatGLMModel(config, empty_init=False).eval()
    with torch.no_grad():  # its RMSNorm weights are torch.empty (no init hook): set every weight, deterministically
        for name, param in model.named_parameters():
            param.fill_(1.0) if "layernorm" in name else param.normal_(0, 0.2)
    return model
