"""Checks for the exercises of chapter 1 (text to tokens).

Each check runs the reader's answer on inputs it chooses and compares with a reference it computes
itself: Python's own UTF-8 encoder (1.1), tiktoken's GPT-2 encoder (1.2), and torch's ``unfold``
(1.3). It prints one confirmation line or raises :class:`ExerciseError` with a hint.
"""
from __future__ import annotations

import numpy as np
import torch

from ._core import confirm, fail, require_answer

# Code points at the edges of UTF-8's four length classes, plus a few everyday characters.
_EDGE_CODE_POINTS = (0x00, 0x41, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0x2014, 0x20AC, 0xD7FF, 0xE000,
                     0xFFFF, 0x10000, 0x1F600, 0x10FFFF)
_SURROGATES = range(0xD800, 0xE000)  # reserved for UTF-16; they are not characters and have no UTF-8


def _call(exercise: str, name: str, function, *args):
    """Call the reader's function, turning a crash into a message that names the input."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any crash in the reader's code becomes a hint
        shown = ", ".join(repr(a) if not isinstance(a, dict) else f"<dict of {len(a)} ranks>"
                          for a in args)
        fail(exercise, f"`{name}({shown})` raised {type(error).__name__}: {error}")


def _as_byte_list(exercise: str, value, what: str) -> list[int]:
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        fail(exercise, f"{what} should return a list of byte values (ints 0-255) or bytes, "
                       f"got {type(value).__name__}")
    if any(not 0 <= v <= 255 for v in out):
        fail(exercise, f"{what} returned {out}: every byte must be an integer in 0-255")
    return out


# ----------------------------------------------------------------------------------------------
def check_utf8_encode(utf8_encode) -> None:
    """Exercise 1.1: ``utf8_encode(code_point) -> list of bytes`` must match Python's UTF-8."""
    ex = "1.1"
    require_answer(ex, utf8_encode=utf8_encode)
    if not callable(utf8_encode):
        fail(ex, f"`utf8_encode` should be a function of one code point, got {type(utf8_encode).__name__}")
    rng = np.random.default_rng(0)
    sample = [int(c) for c in rng.integers(0, 0x110000, size=2000) if int(c) not in _SURROGATES]
    code_points = list(_EDGE_CODE_POINTS) + sample
    for cp in code_points:
        got = _as_byte_list(ex, _call(ex, "utf8_encode", utf8_encode, cp), f"utf8_encode({cp:#x})")
        expected = list(chr(cp).encode("utf-8"))
        if got != expected:
            def bits(bs):
                return " ".join(f"{b:08b}" for b in bs)
            hint = ""
            if len(got) != len(expected):
                hint = (f" U+{cp:04X} needs {len(expected)} byte(s): check which range it falls in "
                        f"(below 0x80, 0x800, 0x10000).")
            else:
                hint = (" The lead byte carries the high bits of the code point, each continuation "
                        "byte 10xxxxxx the next 6 bits.")
            fail(ex, f"U+{cp:04X} ({chr(cp)!r}) should encode to [{bits(expected)}], "
                     f"you gave [{bits(got)}].{hint}")
    confirm(ex, f"matches Python's UTF-8 on {len(code_points)} code points (1 to 4 bytes)")


# ----------------------------------------------------------------------------------------------
_TOY_RANKS_TEXT = b"abc"


def _toy_ranks() -> dict[bytes, int]:
    """All 256 bytes, then b"bc" (rank 256) learned before b"ab" (rank 257)."""
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"bc"] = 256
    ranks[b"ab"] = 257
    return ranks


def _check_ids(ex: str, got, expected: list[int], piece: bytes, ranks_name: str, hint: str) -> None:
    try:
        got_list = [int(i) for i in got]
    except (TypeError, ValueError):
        fail(ex, f"`bpe_encode_piece` should return a list of token ids (ints), got {type(got).__name__}")
    if got_list != expected:
        fail(ex, f"with {ranks_name}, {piece!r} should encode to {expected}, you gave {got_list}. {hint}")


def check_bpe_encode_piece(bpe_encode_piece) -> None:
    """Exercise 1.2: ``bpe_encode_piece(piece: bytes, ranks) -> ids`` must encode as GPT-2 does.

    Tested first on a toy rank table where the lowest-rank pair is not the leftmost one, then on
    every pre-tokenized piece of a few sentences with GPT-2's 50,000 merges, against tiktoken.
    """
    ex = "1.2"
    require_answer(ex, bpe_encode_piece=bpe_encode_piece)
    if not callable(bpe_encode_piece):
        fail(ex, "`bpe_encode_piece` should be a function (piece: bytes, ranks: dict) -> list of ids")
    toy = _toy_ranks()
    got = _call(ex, "bpe_encode_piece", bpe_encode_piece, _TOY_RANKS_TEXT, toy)
    _check_ids(ex, got, [ord("a"), 256], _TOY_RANKS_TEXT, "ranks {..., b'bc': 256, b'ab': 257}",
               "At each step merge the adjacent pair whose joined bytes have the LOWEST rank "
               "(b'bc' was learned first), not the leftmost pair.")

    from tiktoken.load import load_tiktoken_bpe

    from .. import assets, tokenizer
    ranks = load_tiktoken_bpe(str(assets.require(assets.GPT2_RANKS)),
                              expected_hash=assets.GPT2_RANKS.sha256)
    enc = tokenizer.gpt2()
    sentences = ("To be, or not to be, that is the question:",
                 "Whether 'tis nobler in the mind to suffer",
                 "The slings and arrows of outrageous fortune,",
                 "Cerebras-GPT was trained on the Pile in 2023.",
                 "naïve café — 😀 ünïcödé   tabs\tand\nnewlines")
    pieces = [p.encode("utf-8") for s in sentences for p in tokenizer.pretokenize(s)]
    for piece in pieces:
        expected = enc.encode_ordinary(piece.decode("utf-8"))
        got = _call(ex, "bpe_encode_piece", bpe_encode_piece, piece, ranks)
        _check_ids(ex, got, expected, piece, "GPT-2's ranks",
                   "Start from single bytes (ids = ranks[bytes([b])]), and stop when no adjacent "
                   "pair's joined bytes is in `ranks`.")
    confirm(ex, f"matches tiktoken's GPT-2 on all {len(pieces)} pieces")


# ----------------------------------------------------------------------------------------------
def check_make_xy(make_xy) -> None:
    """Exercise 1.3: ``make_xy(tokens, starts, context_length) -> (x, y)``, both ``(B, T)``."""
    ex = "1.3"
    require_answer(ex, make_xy=make_xy)
    if not callable(make_xy):
        fail(ex, "`make_xy` should be a function (tokens, starts, context_length) -> (x, y)")
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50257, (200,), generator=g)
    for starts, T in ((torch.tensor([0, 17, 150]), 8), (torch.tensor([5]), 1),
                      (torch.randint(0, 200 - 33, (6,), generator=g), 32)):
        out = _call(ex, "make_xy", make_xy, tokens, starts, T)
        if not isinstance(out, tuple) or len(out) != 2:
            fail(ex, f"`make_xy` should return a pair (x, y), got {type(out).__name__}")
        windows = tokens.unfold(0, T + 1, 1)[starts]  # (B, T + 1): every window of T + 1 tokens
        for name, got, expected in (("x", out[0], windows[:, :-1]), ("y", out[1], windows[:, 1:])):
            got = torch.as_tensor(got)
            if tuple(got.shape) != tuple(expected.shape):
                fail(ex, f"`{name}` has shape {tuple(got.shape)} for {len(starts)} starts and "
                         f"context_length={T}; expected (B, T) = {tuple(expected.shape)}.")
            if not torch.equal(got.long(), expected):
                hint = ("y must be x shifted by one: y[b, t] = tokens[starts[b] + t + 1]."
                        if name == "y" else "x[b, t] = tokens[starts[b] + t].")
                fail(ex, f"`{name}` has the wrong tokens for starts={starts.tolist()}, "
                         f"context_length={T}. {hint}")
    confirm(ex, "the right windows, with y one token ahead of x")
