"""Tokenizers: GPT-2's byte-level BPE (offline), the book's own BPE trainer, and characters.

Derived in chapter 1. All three share one interface, ``encode(str) -> list[int]`` and
``decode(list[int]) -> str``: the two BPE tokenizers are tiktoken ``Encoding`` objects, and
:class:`CharTokenizer` mimics the same two methods plus ``n_vocab``.
"""
from __future__ import annotations

import collections
from typing import Iterator

import numpy as np
import regex
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tiktoken_ext.openai_public import r50k_pat_str

from . import checks
from .assets import GPT2_RANKS, require

GPT2_SPLIT_PATTERN = r50k_pat_str
"""GPT-2's pre-tokenization regex: contractions, runs of letters, of digits, of other symbols,
and whitespace, each optionally with one leading space. BPE never merges across these pieces."""

ENDOFTEXT = "<|endoftext|>"

_gpt2_cache: tiktoken.Encoding | None = None


def gpt2() -> tiktoken.Encoding:
    """The real GPT-2 tokenizer (50257 ids, ``<|endoftext|>`` = 50256), the one Cerebras-GPT uses.

    Loaded from the offline ranks file prepared by ``make data`` (hash-checked); nothing is
    downloaded. ``gpt2().encode("Hello world") == [15496, 995]``.
    """
    global _gpt2_cache
    if _gpt2_cache is None:
        ranks = load_tiktoken_bpe(str(require(GPT2_RANKS)), expected_hash=GPT2_RANKS.sha256)
        _gpt2_cache = tiktoken.Encoding(
            name="gpt2", pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
            special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)
    return _gpt2_cache


# ----------------------------------------------------------------------------------------------
# The book's byte-level BPE trainer (chapter 1)
# ----------------------------------------------------------------------------------------------
def pretokenize(text: str, pattern: str = GPT2_SPLIT_PATTERN) -> list[str]:
    """Split text into the pieces BPE works inside (GPT-2's regex by default)."""
    return regex.findall(pattern, text)


def bpe_merges(text: str, n_merges: int, pattern: str = GPT2_SPLIT_PATTERN,
               progress: bool = False) -> Iterator[tuple[bytes, bytes, int]]:
    """Learn byte-pair merges from ``text``, yielding ``(left, right, count)`` one merge at a time.

    The algorithm, as in Sennrich et al. (2016) and GPT-2:

    1. split the text into pieces with the regex and count how often each distinct piece occurs;
    2. write every piece as a sequence of single bytes (the 256 starting tokens);
    3. repeatedly find the adjacent pair of tokens that occurs most often (counting each piece as
       many times as it appears), make it a new token, and rewrite every piece that contains it.

    Step 3 keeps a running count of every pair and an index from each pair to the pieces that hold
    it, so a merge only touches the pieces it changes. Ties are broken by the pair's bytes, so the
    result is deterministic. Stops early if no pair occurs twice.
    """
    piece_counts = collections.Counter(pretokenize(text, pattern))
    words = [[bytes([b]) for b in piece.encode("utf-8")] for piece in piece_counts]
    freqs = list(piece_counts.values())
    pair_counts: collections.Counter = collections.Counter()
    where: dict[tuple[bytes, bytes], set[int]] = collections.defaultdict(set)
    for i, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(i)

    steps = range(n_merges)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="BPE merges", unit="merge")
    for _ in steps:
        if not pair_counts:
            return
        best, count = max(pair_counts.items(), key=lambda kv: (kv[1], kv[0]))
        if count < 2:
            return
        merged = best[0] + best[1]
        for i in list(where[best]):
            word, freq = words[i], freqs[i]
            for pair in zip(word, word[1:]):  # forget this word's old pairs ...
                pair_counts[pair] -= freq
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                where[pair].discard(i)
            new, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and word[j] == best[0] and word[j + 1] == best[1]:
                    new.append(merged)
                    j += 2
                else:
                    new.append(word[j])
                    j += 1
            words[i] = new
            for pair in zip(new, new[1:]):  # ... and count its new ones
                pair_counts[pair] += freq
                where[pair].add(i)
        where.pop(best, None)
        yield best[0], best[1], count


def train_bpe(text: str, vocab_size: int, pattern: str = GPT2_SPLIT_PATTERN,
              progress: bool = False, name: str = "book-bpe") -> tiktoken.Encoding:
    """Train a byte-level BPE tokenizer on ``text`` and return it as a tiktoken ``Encoding``.

    Ids 0-255 are the single bytes; each later id is the next merge that makes a new byte string.
    (Two different merges can spell the same bytes, e.g. ``"a" + "bc"`` and ``"ab" + "c"``; the
    string gets one id, the first time.) Because every byte is a token, any string round-trips:
    ``enc.decode(enc.encode(s)) == s``. tiktoken applies merges in rank order, which is the order
    they were learned, so encoding matches the trainer's own merges.

    Args:
        text: training text.
        vocab_size: total ids wanted, at least 256; fewer result if the text runs out of pairs.
        pattern: the pre-tokenization regex (GPT-2's by default).
        progress: show a tqdm progress bar over the new ids.
    """
    checks.integer("vocab_size", vocab_size, low=256, hint="the 256 byte tokens")
    checks.instance("text", text, str)
    ranks = {bytes([b]): b for b in range(256)}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=vocab_size - 256, desc="BPE merges", unit="merge")
    # each merge adds at most one new id, and at most len(text) merges can ever happen
    for left, right, _ in bpe_merges(text, len(text.encode("utf-8")), pattern):
        if len(ranks) >= vocab_size:
            break
        if left + right not in ranks:
            ranks[left + right] = len(ranks)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


# ----------------------------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------------------------
class CharTokenizer:
    """One id per character of a fixed alphabet (the small Shakespeare models use this).

    Ids follow the sorted alphabet, so the same text always gives the same vocabulary: the id of a
    character is its rank among the alphabet's code points, which :meth:`encode_array` finds for a
    whole text at once with a binary search (``np.searchsorted``), fast enough for the 4.8 million
    characters of the corpus.
    """

    def __init__(self, alphabet: str):
        chars = sorted(set(alphabet))
        if not chars:
            raise checks.ArgumentError("CharTokenizer needs a non-empty alphabet")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self._code_points = np.array([ord(c) for c in chars], dtype=np.uint32)  # sorted

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The tokenizer whose alphabet is every character that occurs in ``text``."""
        return cls("".join(set(text)))

    @property
    def n_vocab(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Characters to ids. Raises ``ValueError`` naming any character outside the alphabet."""
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Characters to ids as an ``(N,)`` int64 array (what :meth:`encode` returns as a list)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._code_points, codes)
        known = self._code_points[np.minimum(ids, self.n_vocab - 1)] == codes
        if not known.all():
            unknown = sorted({c for c in text if c not in self.stoi})
            raise checks.ArgumentError(f"characters {unknown!r} are not in this tokenizer's alphabet "
                                       f"of {self.n_vocab} characters ({''.join(self.chars)!r})")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """Ids to text. Raises ``ValueError`` for an id outside ``[0, n_vocab)``."""
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.n_vocab]
        if bad:
            raise checks.ArgumentError(f"token ids {bad[:5]} are outside [0, {self.n_vocab})")
        return "".join(self.chars[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharTokenizer(n_vocab={self.n_vocab})"
