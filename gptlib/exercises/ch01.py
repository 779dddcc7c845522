"""Checks for the exercises of chapter 1 (text to tokens).

Each check runs the reader's answer on inputs it chooses and compares with a reference it computes
itself, never from the notebook's variables: Python's own UTF-8 encoder (1.1), tiktoken's GPT-2
encoder (1.2), and torch's ``unfold`` over a stream built here (1.3). Each prints one
confirmation line or raises :class:`ExerciseError` with a hint that names the mistake.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from ._core import confirm, fail, require_answer

# Code points at the edges of UTF-8's four length classes, plus a few everyday characters.
_EDGE_CODE_POINTS = (0x00, 0x41, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0x2014, 0x20AC, 0xD7FF, 0xE000,
                     0xFFFF, 0x10000, 0x1F600, 0x10FFFF)
_SURROGATES = range(0xD800, 0xE000)  # reserved for UTF-16: not characters, no UTF-8 form


def _call(exercise: str, name: str, function, *args):
    """Call the reader's function, turning a crash into a message that names the input."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any crash in the reader's code becomes a hint
        shown = ", ".join(f"<dict of {len(a)} ranks>" if isinstance(a, dict)
                          else f"<{len(a)} documents>" if isinstance(a, list) else repr(a)
                          for a in args)
        fail(exercise, f"`{name}({shown})` raised {type(error).__name__}: {error}")


def _as_byte_list(exercise: str, value, what: str) -> list[int]:
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, str):
        fail(exercise, f"{what} returned the string {value!r}; return the byte values as a list "
                       f"of integers 0-255 (or a bytes object)")
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        fail(exercise, f"{what} should return a list of byte values (ints 0-255) or bytes, "
                       f"got {type(value).__name__}")
    if any(not 0 <= v <= 255 for v in out):
        fail(exercise, f"{what} returned {out}: every byte must be an integer in 0-255")
    return out


def _bits(values) -> str:
    return " ".join(f"{b:08b}" for b in values)


def _utf8_hint(cp: int, got: list[int], expected: list[int]) -> str:
    """Name the first rule of the templates that ``got`` breaks."""
    n = len(expected)
    if len(got) != n:
        return (f" U+{cp:04X} needs {n} byte(s): check which range it falls in (below 0x80, "
                f"0x800, 0x10000); the boundaries themselves belong to the longer form.")
    lead_prefix = {1: (0x80, 0x00), 2: (0xE0, 0xC0), 3: (0xF0, 0xE0), 4: (0xF8, 0xF0)}[n]
    if got[0] & lead_prefix[0] != lead_prefix[1]:
        return (" The lead byte is wrong: an n-byte character's lead byte starts with n ones and "
                "a zero (110xxxxx, 1110xxxx, 11110xxx), a 1-byte one with a single 0.")
    if any(b & 0xC0 != 0x80 for b in got[1:]):
        return " Every continuation byte must start with the two bits 10 (10xxxxxx)."
    if sorted(got[1:]) == sorted(expected[1:]) and got[1:] != expected[1:]:
        return (" The right bytes in the wrong order: the bits of the code point go in high bits "
                "first, so the lead byte holds the highest bits and the last byte the lowest 6.")
    return (" The lead byte carries the high bits of the code point, each continuation byte "
            "10xxxxxx the next 6 bits.")


# ----------------------------------------------------------------------------------------------
def check_utf8_encode(utf8_encode) -> None:
    """Exercise 1.1: ``utf8_encode(code_point) -> list of bytes`` must match Python's UTF-8 on
    every length class, its boundaries, and 2,000 random code points."""
    ex = "1.1"
    require_answer(ex, utf8_encode=utf8_encode)
    if not callable(utf8_encode):
        fail(ex, f"`utf8_encode` should be a function of one code point, "
                 f"got {type(utf8_encode).__name__}")
    rng = np.random.default_rng(0)
    sample = [int(c) for c in rng.integers(0, 0x110000, size=2000) if int(c) not in _SURROGATES]
    code_points = list(_EDGE_CODE_POINTS) + sample
    for cp in code_points:
        got = _as_byte_list(ex, _call(ex, "utf8_encode", utf8_encode, cp),
                            f"utf8_encode({cp:#x})")
        expected = list(chr(cp).encode("utf-8"))
        if got != expected:
            fail(ex, f"U+{cp:04X} ({chr(cp)!r}) should encode to [{_bits(expected)}], "
                     f"you gave [{_bits(got)}].{_utf8_hint(cp, got, expected)}")
    confirm(ex, f"matches Python's UTF-8 on {len(code_points)} code points (1 to 4 bytes)")


# ----------------------------------------------------------------------------------------------
def _byte_ranks() -> dict[bytes, int]:
    return {bytes([b]): b for b in range(256)}


def _toy_cases():
    """(piece, ranks, ranks as written in a message, expected ids, hint if wrong).

    Each case isolates one rule of the question: the lowest rank wins over the leftmost pair;
    when the lowest-rank pair occurs more than once the leftmost occurrence is joined first,
    including when two occurrences overlap (b"aaa").
    """
    lowest_first = _byte_ranks() | {b"bc": 256, b"ab": 257}
    repeated = _byte_ranks() | {b"aa": 256, b"ab": 257}
    overlap = _byte_ranks() | {b"aa": 256}
    a, b = ord("a"), ord("b")
    return [
        (b"abc", lowest_first, "{..., b'bc': 256, b'ab': 257}", [a, 256],
         "At each step join the adjacent pair whose joined bytes have the LOWEST rank "
         "(b'bc' was learned first), not the leftmost pair."),
        (b"aaab", repeated, "{..., b'aa': 256, b'ab': 257}", [256, 257],
         "b'aa' occurs twice here (the pairs overlap): join its LEFTMOST occurrence, then look "
         "at the pairs again."),
        (b"aaa", overlap, "{..., b'aa': 256}", [256, a],
         "The two b'aa' pairs of b'aaa' overlap, so only one can be joined: the leftmost."),
        (b"ab", overlap, "{..., b'aa': 256}", [a, b],
         "No adjacent pair is in `ranks`, so the piece stays as single bytes (stop when no pair "
         "is left, rather than failing)."),
    ]


# Sentences for the GPT-2 part: everyday text, and pieces with a repeated pair ("Aaaaah",
# "!!!!!!", " eeee", " ######") where joining its rightmost occurrence gives other tokens.
_SENTENCES = ("To be, or not to be, that is the question:",
              "Whether 'tis nobler in the mind to suffer",
              "The slings and arrows of outrageous fortune,",
              "Cerebras-GPT was trained on the Pile in 2023.",
              "naïve café — 😀 ünïcödé   tabs\tand\nnewlines",
              "Aaaaah!!!!!! A 1000000 ducats, eeee...... ######")


def _ids(ex: str, got) -> list[int]:
    if isinstance(got, (bytes, bytearray, str)):
        fail(ex, f"`bpe_encode_piece` should return a list of token ids (ints), got "
                 f"{type(got).__name__}: look the final tokens up in `ranks`")
    try:
        return [int(i) for i in got]
    except (TypeError, ValueError):
        fail(ex, f"`bpe_encode_piece` should return a list of token ids (ints), got "
                 f"{type(got).__name__}")


def _rightmost_reference(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The classic slip: the lowest rank, but its rightmost occurrence (used only for hints)."""
    parts = [bytes([x]) for x in piece]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        best = min(joined)
        if best == math.inf:
            break
        i = max(j for j, r in enumerate(joined) if r == best)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def check_bpe_encode_piece(bpe_encode_piece) -> None:
    """Exercise 1.2: ``bpe_encode_piece(piece: bytes, ranks) -> ids`` must encode as GPT-2 does.

    Tested on toy rank tables that isolate each rule (lowest rank first; the leftmost of a
    repeated or overlapping pair), then on every pre-tokenized piece of a few sentences with
    GPT-2's 50,000 merges, against tiktoken. The ranks passed in must come back unchanged.
    """
    ex = "1.2"
    require_answer(ex, bpe_encode_piece=bpe_encode_piece)
    if not callable(bpe_encode_piece):
        fail(ex, "`bpe_encode_piece` should be a function (piece: bytes, ranks: dict) -> ids")
    for piece, ranks, written, expected, hint in _toy_cases():
        given = dict(ranks)
        got = _ids(ex, _call(ex, "bpe_encode_piece", bpe_encode_piece, piece, given))
        if given != ranks:
            fail(ex, "`bpe_encode_piece` changed the `ranks` dict it was given; it must only "
                     "read it (the same dict encodes every piece).")
        if got != expected:
            fail(ex, f"with ranks {written}, {piece!r} should encode to {expected}, you gave "
                     f"{got}. {hint}")

    from tiktoken.load import load_tiktoken_bpe

    from .. import assets, tokenizer
    ranks = load_tiktoken_bpe(str(assets.require(assets.GPT2_RANKS)),
                              expected_hash=assets.GPT2_RANKS.sha256)
    given = dict(ranks)
    enc = tokenizer.gpt2()
    pieces = [p.encode("utf-8") for s in _SENTENCES for p in tokenizer.pretokenize(s)]
    for piece in pieces:
        expected = enc.encode_ordinary(piece.decode("utf-8"))
        got = _ids(ex, _call(ex, "bpe_encode_piece", bpe_encode_piece, piece, given))
        if got != expected:
            if got == _rightmost_reference(piece, ranks):
                hint = ("The lowest-rank pair occurs more than once in this piece: join its "
                        "leftmost occurrence first.")
            else:
                hint = ("Start from single bytes (ids = ranks[bytes([b])]), join one pair at a "
                        "time, and stop only when no adjacent pair's joined bytes is in `ranks`.")
            fail(ex, f"with GPT-2's ranks, {piece!r} should encode to {expected}, you gave "
                     f"{got}. {hint}")
    if given != ranks:
        fail(ex, "`bpe_encode_piece` changed the `ranks` dict it was given; it must only read it.")
    confirm(ex, f"matches tiktoken's GPT-2 on 4 toy tables and all {len(pieces)} pieces")


# ----------------------------------------------------------------------------------------------
def _stream(documents, eot, where="after"):
    """The documents joined into one list, with ``eot`` after (or before, or between) them."""
    out: list[int] = []
    for k, doc in enumerate(documents):
        if where == "before" or (where == "between" and k > 0):
            out.append(eot)
        out += list(doc)
        if where == "after":
            out.append(eot)  # where == "none": no separator at all
    return out


def _windows(stream: list[int], T: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of T + 1 tokens starting at 0, stride, 2 stride, ...: (N, T) x and y."""
    s = torch.tensor(stream, dtype=torch.long)
    if len(s) < T + 1:
        empty = torch.zeros(0, T, dtype=torch.long)
        return empty, empty.clone()
    w = s.unfold(0, T + 1, stride)  # (N, T + 1)
    return w[:, :-1], w[:, 1:]


def _pack_cases():
    """(documents, context_length, eot, what the case tests)."""
    g = torch.Generator().manual_seed(0)
    many = [torch.randint(0, 50256, (int(n),), generator=g).tolist()
            for n in torch.randint(1, 40, (30,), generator=g)]
    return [
        ([[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20, 21], [22]], 4, 0,
         "four short documents"),
        ([[1, 2, 3], [4, 5, 6, 7]], 4, 99, "a stream of exactly 2 T + 1 tokens"),
        ([[1, 2, 3], [4, 5, 6]], 4, 99, "a stream of exactly 2 T tokens"),
        ([[1, 2], [3]], 8, 99, "a stream shorter than one window"),
        ([[7, 7, 7], [], [8, 8]], 1, 50256, "an empty document and T = 1"),
        (many, 16, 50256, "30 documents of 1 to 39 tokens"),
    ]


def check_pack_documents(pack_documents) -> None:
    """Exercise 1.3: ``pack_documents(documents, context_length, eot) -> (x, y)``.

    The documents (lists of token ids) are joined into one stream with ``eot`` after every
    document, the last one included, and the stream is cut into windows of ``T + 1`` tokens
    that start every ``T`` tokens (consecutive windows share one token); the tail that does not
    fill a window is dropped. ``x`` and ``y`` are ``(N, T)`` integer tensors, ``N =
    (len(stream) - 1) // T`` (zero windows when the stream is shorter than ``T + 1``).
    """
    ex = "1.3"
    require_answer(ex, pack_documents=pack_documents)
    if not callable(pack_documents):
        fail(ex, "`pack_documents` should be a function (documents, context_length, eot) "
                 "-> (x, y)")
    for documents, T, eot, what in _pack_cases():
        given = copy.deepcopy(documents)
        out = _call(ex, "pack_documents", pack_documents, given, T, eot)
        if given != documents:
            fail(ex, f"on {what}, `pack_documents` changed the documents it was given (e.g. "
                     f"`doc.append(eot)`); build a new stream instead and leave the input "
                     f"as it was.")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            fail(ex, f"`pack_documents` should return a pair (x, y), got {type(out).__name__}")
        try:
            x, y = (torch.as_tensor(v) for v in out)
        except (TypeError, ValueError, RuntimeError):
            fail(ex, "`pack_documents` should return two (N, T) tensors of token ids")
        stream = _stream(documents, eot)
        x_ref, y_ref = _windows(stream, T, T)
        N = x_ref.shape[0]
        for name, got in (("x", x), ("y", y)):
            if got.dtype.is_floating_point or got.dtype == torch.bool:
                fail(ex, f"`{name}` has dtype {got.dtype}; token ids are integers "
                         f"(torch.long).")
        x, y = x.long(), y.long()
        if (tuple(x.shape), tuple(y.shape)) == ((N, T), (N, T)) \
                and torch.equal(x, x_ref) and torch.equal(y, y_ref):
            continue
        # the answer is wrong: name the mistake if it is one of the usual ones
        usual = [(_windows(_stream(documents, eot, "between"), T, T),
                  "Put `eot` after EVERY document, the last one included: it marks where "
                  "each document ends."),
                 (_windows(_stream(documents, eot, "before"), T, T),
                  "`eot` goes after each document, not before it."),
                 (_windows(_stream(documents, eot, "none"), T, T),
                  "The stream must hold `eot` after every document; yours has none."),
                 (_windows(stream, T, T + 1),
                  "Windows start every T tokens, not every T + 1: consecutive windows share "
                  "one token, so every token after the first is a target exactly once."),
                 ((x_ref, x_ref), "y must be x shifted one token ahead, not x itself."),
                 ((y_ref, x_ref), "x and y are swapped: y is the one shifted ahead.")]
        for (alt_x, alt_y), hint in usual:
            if x.shape == alt_x.shape and y.shape == alt_y.shape and torch.equal(x, alt_x) \
                    and torch.equal(y, alt_y):
                fail(ex, f"on {what} (context_length={T}, eot={eot}): {hint}")
        for name, got in (("x", x), ("y", y)):
            if tuple(got.shape) != (N, T):
                fail(ex, f"on {what} (context_length={T}), the stream has {len(stream)} tokens, "
                         f"so it holds (len(stream) - 1) // T = {N} windows and `{name}` should "
                         f"have shape ({N}, {T}); yours has {tuple(got.shape)}. A window needs "
                         f"T + 1 tokens, and a tail too short for one is dropped, not padded.")
        hint = ("x[n] is stream[n T : n T + T] and y[n] is stream[n T + 1 : n T + T + 1], "
                "where stream is every document followed by `eot`, in order.")
        if torch.equal(x, x_ref):
            hint = "y must be x shifted one token ahead: y[n, t] is the token after x[n, t]."
        fail(ex, f"on {what} (context_length={T}, eot={eot}), your windows are not the "
                 f"packed stream's. {hint}")
    confirm(ex, "your windows match the packed stream on all 6 cases")
