"""Exercise checks of chapters 1 and 2: each confirms a correct answer and rejects the unanswered
stub ``...`` and a plausible wrong answer with an ExerciseError that names the mistake."""
import math

import numpy as np
import pytest
import torch

from gptlib.config import GPTConfig
from gptlib.exercises import ExerciseError, ch01, ch02


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


# ---------------------------------------------------------------------------------------------- 2.1
def test_2_1(capsys):
    ids = torch.tensor([4, 1, 1, 0, 6])
    W = torch.randn(7, 3, generator=torch.Generator().manual_seed(2))
    one_hot = torch.zeros(5, 7)
    one_hot[torch.arange(5), ids] = 1.0
    ch02.check_one_hot(one_hot, one_hot @ W, ids, W)
    assert "Exercise 2.1" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_one_hot(..., ..., ids, W)
    with pytest.raises(ExerciseError, match="transposed"):
        ch02.check_one_hot(one_hot.T, one_hot @ W, ids, W)
    with pytest.raises(ExerciseError, match="dtype"):
        ch02.check_one_hot(one_hot.long(), one_hot @ W, ids, W)
    shifted = torch.roll(one_hot, 1, dims=1)  # off by one column
    with pytest.raises(ExerciseError, match="one_hot"):
        ch02.check_one_hot(shifted, shifted @ W, ids, W)
    with pytest.raises(ExerciseError, match="embedded"):
        ch02.check_one_hot(one_hot, W[:5], ids, W)


# ---------------------------------------------------------------------------------------------- 2.2
def test_2_2(capsys):
    def pe_dot(k, d_model):
        return float(np.cos(10000.0 ** (-np.arange(0, d_model, 2) / d_model) * k).sum())

    ch02.check_offset_dot(pe_dot)
    assert "Exercise 2.2" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_offset_dot(...)
    with pytest.raises(ExerciseError, match="pe_dot"):  # sums over C frequencies instead of C/2
        ch02.check_offset_dot(lambda k, d: float(np.cos(10000.0 ** (-np.arange(d) / d) * k).sum()))
    with pytest.raises(ExerciseError, match="pe_dot"):  # exponent i/C instead of 2i/C
        ch02.check_offset_dot(lambda k, d: float(np.cos(10000.0 ** (-np.arange(d // 2) / d) * k).sum()))


# ---------------------------------------------------------------------------------------------- 2.3
def test_2_3(capsys):
    def rotation(omega, k):
        c, s = math.cos(omega * k), math.sin(omega * k)
        return torch.tensor([[c, s], [-s, c]])

    ch02.check_rotation(rotation)
    assert "Exercise 2.3" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_rotation(...)
    with pytest.raises(ExerciseError, match="is not"):  # the transpose rotates the other way
        ch02.check_rotation(lambda omega, k: rotation(omega, k).T)
    with pytest.raises(ExerciseError, match="shape"):
        ch02.check_rotation(lambda omega, k: torch.eye(3))


# ---------------------------------------------------------------------------------------------- 2.4
def test_2_4(capsys):
    c = GPTConfig.cerebras("111M")
    right = (c.vocab_size - 32000) * c.d_model + c.context_length * c.d_model
    ch02.check_parameters_saved(right)
    assert "Exercise 2.4" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_parameters_saved(...)
    with pytest.raises(ExerciseError, match="counted once"):  # untied head counted too
        ch02.check_parameters_saved(right + (c.vocab_size - 32000) * c.d_model)
    with pytest.raises(ExerciseError, match="position table"):
        ch02.check_parameters_saved(right - c.context_length * c.d_model)
    with pytest.raises(ExerciseError, match="whole number"):
        ch02.check_parameters_saved(right + 0.5)
