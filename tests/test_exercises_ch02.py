"""Exercise checks of chapter 2: each confirms a correct answer and rejects the unanswered
stub ``...`` and plausible wrong answers with an ExerciseError that names the mistake."""
import math

import numpy as np
import pytest
import torch

from gptlib.config import GPTConfig
from gptlib.exercises import ExerciseError, ch02


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
