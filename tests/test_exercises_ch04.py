"""Every exercise check of chapter 4 accepts the reference answer, rejects the student edition's
``...`` stub, and rejects the plausible wrong answers readers actually write, with a useful hint."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch04


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)



def test_gelu_tanh():
    ch04.check_gelu_tanh(lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))))
    with raises("not answered"):
        ch04.check_gelu_tanh(...)
    with raises("exact GELU"):
        ch04.check_gelu_tanh(lambda x: F.gelu(x))
    with raises("constants"):
        ch04.check_gelu_tanh(lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.04 * x ** 3))))
    with raises("constants"):
        ch04.check_gelu_tanh(lambda x: x * torch.sigmoid(1.702 * x))


def test_layer_norm():
    def right(x, weight, bias, eps):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * weight + bias

    def unbiased(x, weight, bias, eps):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias

    ch04.check_layer_norm(right)
    with raises("not answered"):
        ch04.check_layer_norm(...)
    with raises("unbiased"):
        ch04.check_layer_norm(unbiased)
    with raises("multiply by `weight`"):
        ch04.check_layer_norm(lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], eps=eps))
    with raises("eps goes inside"):
        ch04.check_layer_norm(lambda x, w, b, eps: (x - x.mean(-1, keepdim=True))
                              / (x.std(-1, unbiased=False, keepdim=True) + eps) * w + b + 1e-3)


def test_block_parameters():
    ch04.check_block_parameters(lambda C, F: 4 * C * C + 2 * C * F + 9 * C + F)
    with raises("not answered"):
        ch04.check_block_parameters(...)
    with raises("only the weight matrices"):
        ch04.check_block_parameters(lambda C, F: 4 * C * C + 2 * C * F)
    with raises("two LayerNorms"):
        ch04.check_block_parameters(lambda C, F: 4 * C * C + 2 * C * F + 5 * C + F)
    with raises("whole number"):
        ch04.check_block_parameters(lambda C, F: "many")


def test_block_flops():
    right = lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 4 * T * C  # noqa: E731
    ch04.check_block_flops(right)
    with raises("not answered"):
        ch04.check_block_flops(...)
    with raises("multiply-add"):
        ch04.check_block_flops(lambda C, F, T: right(C, F, T) / 2)
    with raises("weight matrices only"):
        ch04.check_block_flops(lambda C, F, T: 2 * (4 * C * C + 2 * C * F))
    with raises("FLOP counter"):
        ch04.check_block_flops(lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 2 * T * C)
