"""Exercise checks of chapter 1: each confirms a correct answer and rejects the unanswered
stub ``...`` and plausible wrong answers with an ExerciseError that names the mistake."""
import math

import numpy as np
import pytest
import torch

from gptlib.config import GPTConfig
from gptlib.exercises import ExerciseError, ch01


# ---------------------------------------------------------------------------------------------- 1.1
def utf8_encode(c):
    if c < 0x80:
        return [c]
    if c < 0x800:
        return [0xC0 | (c >> 6), 0x80 | (c & 0x3F)]
    if c < 0x10000:
        return [0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)]
    return [0xF0 | (c >> 18), 0x80 | ((c >> 12) & 0x3F), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)]


def utf8_encode_wrong_boundary(c):  # uses 2 bytes up to 0xFFFF
    if c < 0x80:
        return [c]
    if c < 0x10000:
        return [0xC0 | (c >> 6), 0x80 | (c & 0x3F)]
    return utf8_encode(c)


def utf8_encode_little_endian(c):  # continuation bytes in the wrong order
    out = utf8_encode(c)
    return out[:1] + out[1:][::-1]


def test_1_1(capsys):
    ch01.check_utf8_encode(utf8_encode)
    assert "Exercise 1.1" in capsys.readouterr().out
    ch01.check_utf8_encode(lambda c: chr(c).encode("utf-8"))  # bytes are accepted too
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_utf8_encode(...)
    with pytest.raises(ExerciseError, match="needs 3 byte"):
        ch01.check_utf8_encode(utf8_encode_wrong_boundary)
    with pytest.raises(ExerciseError, match="continuation"):
        ch01.check_utf8_encode(utf8_encode_little_endian)
    with pytest.raises(ExerciseError, match="raised ValueError"):
        ch01.check_utf8_encode(lambda c: [int("x")])


# ---------------------------------------------------------------------------------------------- 1.2
def bpe_encode_piece(piece, ranks):
    parts = [bytes([x]) for x in piece]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        best = min(range(len(joined)), key=joined.__getitem__)
        if joined[best] == math.inf:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [ranks[p] for p in parts]


def bpe_encode_leftmost(piece, ranks):  # merges the leftmost known pair, ignoring rank
    parts = [bytes([x]) for x in piece]
    merged = True
    while merged:
        merged = False
        for i in range(len(parts) - 1):
            if parts[i] + parts[i + 1] in ranks:
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
                merged = True
                break
    return [ranks[p] for p in parts]


def test_1_2(capsys):
    ch01.check_bpe_encode_piece(bpe_encode_piece)
    assert "Exercise 1.2" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_bpe_encode_piece(...)
    with pytest.raises(ExerciseError, match="LOWEST rank"):
        ch01.check_bpe_encode_piece(bpe_encode_leftmost)
    with pytest.raises(ExerciseError, match="should encode to"):  # no merging at all: raw byte ids
        ch01.check_bpe_encode_piece(lambda piece, ranks: [ranks[bytes([x])] for x in piece])


# ---------------------------------------------------------------------------------------------- 1.3
def make_xy(tokens, starts, T):
    windows = tokens[starts[:, None] + torch.arange(T + 1)]
    return windows[:, :-1], windows[:, 1:]


def test_1_3(capsys):
    ch01.check_make_xy(make_xy)
    assert "Exercise 1.3" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_make_xy(...)
    with pytest.raises(ExerciseError, match="shifted by one"):  # no shift: y == x
        ch01.check_make_xy(lambda tokens, starts, T: (make_xy(tokens, starts, T)[0],) * 2)
    with pytest.raises(ExerciseError, match=r"expected \(B, T\)"):  # windows of T + 1 as x
        ch01.check_make_xy(lambda tokens, starts, T: (tokens[starts[:, None] + torch.arange(T + 1)],
                                                      make_xy(tokens, starts, T)[1]))
