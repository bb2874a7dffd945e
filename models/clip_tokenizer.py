"""CLIP's byte-level BPE tokenizer: vocabulary lookup, text cleaning, pre-tokenization and BPE merges.

Reproduces OpenAI's `clip.tokenize` (the same ids for every string): the same ftfy repair, `regex` pattern and
merges, so both need to be installed (requirements.txt).
"""
import gzip
import html
import importlib.util
import math
import os
from functools import lru_cache

import ftfy
import regex
import torch

from util.util import UsageError
from util.weights import fetch_command

from .clip import DEFAULT_CLIP_DIR

VOCAB_FILENAME = 'bpe_simple_vocab_16e6.txt.gz'
SOT, EOT = '<|startoftext|>', '<|endoftext|>'


def bpe_vocab_candidates(path=None, clip_dir=DEFAULT_CLIP_DIR):
    """Where the BPE vocabulary may be, in order: `path` (--clip_vocab) alone, else inside `clip_dir`, then inside
    an installed `clip` or `open_clip` package (located with find_spec, so the package is never imported)."""
    if path:
        return [path]
    candidates = [os.path.join(os.path.expanduser(clip_dir), VOCAB_FILENAME)]
    for package in ('clip', 'open_clip'):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.join(folder, VOCAB_FILENAME))
    return candidates


def find_bpe_vocab(path=None, clip_dir=DEFAULT_CLIP_DIR):
    """The first of bpe_vocab_candidates that exists."""
    candidates = bpe_vocab_candidates(path, clip_dir)
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found:
        return found
    if path:
        raise UsageError(f'CLIP vocabulary not found: {path}; check --clip_vocab')
    raise UsageError(f'CLIP vocabulary not found at {candidates[0]}; fetch it with: {fetch_command(candidates[0])} '
                     '(or pass --clip_vocab; it ships in the openai/CLIP repository as clip/' + VOCAB_FILENAME + ')')


@lru_cache()
def bytes_to_unicode():
    """Byte -> printable character map of GPT-2/CLIP byte-level BPE. Printable bytes map to themselves and come
    first, the rest map to U+0100 onwards; this order is the order of the first 256 vocabulary ids."""
    keep = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    rest = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


# CLIP's pre-tokenizer: special tokens, English contractions, letter runs, single digits, runs of anything else.
# \p{L}/\p{N} come from the `regex` module's own Unicode tables (newer than Python's `unicodedata` can be), and its
# \s differs from str.isspace (U+001C..U+001F are not whitespace), so the same module is used, not `re`.
_PIECES = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
                        regex.IGNORECASE)


def clean_text(text):
    """CLIP's text cleaning, in its order: ftfy repair (mojibake, ligatures, full-width forms, ...), HTML entities
    unescaped twice, ends stripped, whitespace runs collapsed, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r'\s+', ' ', text).strip().lower()


class BPETokenizer:
    """CLIP's byte-level BPE tokenizer (vocab = 256 bytes + 256 bytes with </w> + merges + 2 specials)."""

    def __init__(self, vocab_path, vocab_size=49408):
        n_merges = vocab_size - 512 - 2
        try:
            with gzip.open(vocab_path, 'rt', encoding='utf-8') as f:
                lines = f.read().rstrip('\n').split('\n')[1:1 + n_merges]  # line 0 is a version header
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise UsageError(f'cannot read CLIP vocabulary {vocab_path} ({e}); use {VOCAB_FILENAME}') from None
        merges = [tuple(line.split()) for line in lines]
        if len(merges) < n_merges or any(len(m) != 2 for m in merges):
            raise UsageError(f'{vocab_path} holds {len(merges)} valid merges, but a vocabulary of {vocab_size} needs '
                             f'{n_merges}; use the {VOCAB_FILENAME} that matches the CLIP weights')
        self.byte_encoder = bytes_to_unicode()
        symbols = list(self.byte_encoder.values())
        vocab = symbols + [s + '</w>' for s in symbols] + [a + b for a, b in merges] + [SOT, EOT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.cache = {SOT: [SOT], EOT: [EOT]}

    def bpe(self, piece):
        """The BPE symbols of one pre-tokenized piece: merge the lowest-ranked adjacent pair, everywhere, until
        no pair is in the merge table."""
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + '</w>']
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, math.inf))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    def encode(self, text):
        ids = []
        for piece in _PIECES.findall(clean_text(text)):
            mapped = ''.join(self.byte_encoder[b] for b in piece.encode('utf-8'))  # specials map to themselves
            ids.extend(self.encoder[symbol] for symbol in self.bpe(mapped))
        return ids

    def decode(self, ids):
        byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        text = ''.join(self.decoder[i] for i in ids)
        return bytearray(byte_decoder[c] for c in text).decode('utf-8', errors='replace').replace('</w>', ' ')

    def __call__(self, texts, context_length=77, truncate=False):
        """(N, context_length) int32 token ids: start, text, end, zero padding (CLIP's `tokenize`)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        result = torch.zeros(len(texts), context_length, dtype=torch.int32)
        for row, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > context_length:
                if not truncate:
                    raise UsageError(f'text {text[:40]!r}... is {len(ids)} tokens, longer than the CLIP context of '
                                     f'{context_length}; shorten it')
                ids = ids[:context_length - 1] + [self.eot]
            result[row, :len(ids)] = torch.tensor(ids, dtype=torch.int32)
        return result
