"""Every exercise check of chapter 5 accepts the reference answer, rejects the student edition's
``...`` stub, and rejects the plausible wrong answers readers actually write, with a useful hint."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch05


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)



def test_initial_loss():
    V = 50257
    ch05.check_initial_loss(V, math.log(V), V)
    with raises("not answered"):
        ch05.check_initial_loss(V, ..., V)
    with raises("not answered"):
        ch05.check_initial_loss(V, math.log(V), ...)
    with raises("bits"):
        ch05.check_initial_loss(V, math.log2(V), V)
    with raises("exp\\(loss\\)"):
        ch05.check_initial_loss(V, math.log(V), math.log(V))


def test_conv1d_to_linear():
    ch05.check_conv1d_to_linear(lambda w: w.t())
    with raises("not answered"):
        ch05.check_conv1d_to_linear(...)
    with raises("transpose"):
        ch05.check_conv1d_to_linear(lambda w: w.reshape(w.shape[1], w.shape[0]))
    with raises("shape"):
        ch05.check_conv1d_to_linear(lambda w: w)


def test_truncated_std():
    factor = math.sqrt(1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2)))
    ch05.check_truncated_std(lambda sigma: sigma * factor)
    with raises("not answered"):
        ch05.check_truncated_std(...)
    with raises("sigma itself"):
        ch05.check_truncated_std(lambda sigma: sigma)
    with raises("probability mass"):
        ch05.check_truncated_std(lambda sigma: sigma * math.erf(2 / math.sqrt(2)))
    with raises("Var = sigma"):
        ch05.check_truncated_std(lambda sigma: sigma * 0.88)


def test_mixed_precision_bytes():
    ch05.check_mixed_precision_bytes(lambda n: (2 + 2 + 4 + 4 + 4) * n)
    with raises("not answered"):
        ch05.check_mixed_precision_bytes(...)
    with raises("except the fp32 master"):
        ch05.check_mixed_precision_bytes(lambda n: 12 * n)
    with raises("fp32 as well as bf16"):
        ch05.check_mixed_precision_bytes(lambda n: 20 * n)
    with raises("not gigabytes"):
        ch05.check_mixed_precision_bytes(lambda n: 16 * n / 1e9)
    with raises("proportional"):
        ch05.check_mixed_precision_bytes(lambda n: 16 * n if n < 10_000 else 0)
    with raises("bf16 weights, bf16 gradients"):
        ch05.check_mixed_precision_bytes(lambda n: 18 * n)
