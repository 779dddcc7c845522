"""Every exercise check of chapters 3-5 accepts the reference answer, rejects the student edition's
``...`` stub, and rejects the plausible wrong answers readers actually write, with a useful hint."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch03, ch04, ch05


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)


# ------------------------------------------------------------------------------- chapter 3
def test_scaled_scores():
    q, k = torch.randn(5, 16), torch.randn(5, 16)
    ch03.check_scaled_scores(q, k, q @ k.T / math.sqrt(16))
    with raises("not answered"):
        ch03.check_scaled_scores(q, k, ...)
    with raises("sqrt"):
        ch03.check_scaled_scores(q, k, q @ k.T)
    with raises("muP"):
        ch03.check_scaled_scores(q, k, q @ k.T / 16)
    with raises("transposed"):
        ch03.check_scaled_scores(q, k, k @ q.T / 4)


def test_causal_softmax():
    def right(s):
        T = s.size(-1)
        return torch.softmax(s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")), -1)

    def zeroed_after(s):
        return torch.softmax(s, -1) * torch.ones_like(s).tril()

    def masked_with_zero(s):
        return torch.softmax(s * torch.ones_like(s).tril(), -1)

    def upper(s):
        T = s.size(-1)
        return torch.softmax(s.masked_fill(~torch.ones(T, T, dtype=torch.bool).triu(), float("-inf")), -1)

    ch03.check_causal_softmax(right)
    with raises("not answered"):
        ch03.check_causal_softmax(...)
    with raises("sum to 1"):
        ch03.check_causal_softmax(zeroed_after)
    with raises("above the diagonal"):
        ch03.check_causal_softmax(masked_with_zero)
    with raises("above the diagonal"):
        ch03.check_causal_softmax(upper)
    with raises("forget the `return`"):
        ch03.check_causal_softmax(lambda s: None)


def test_split_heads():
    def right(x, n_head):
        B, T, C = x.shape
        return x.view(B, T, n_head, C // n_head).transpose(1, 2)

    def no_transpose(x, n_head):
        B, T, C = x.shape
        return x.view(B, n_head, T, C // n_head)

    ch03.check_split_heads(right)
    with raises("not answered"):
        ch03.check_split_heads(...)
    with raises("wrong contents"):
        ch03.check_split_heads(no_transpose)
    with raises("raised"):
        ch03.check_split_heads(lambda x, h: x.view(7, 7))


def test_retemper():
    def right(w, tau):
        p = w ** (1 / tau)
        return p / p.sum(-1, keepdim=True)

    def power_tau(w, tau):
        p = w ** tau
        return p / p.sum(-1, keepdim=True)

    ch03.check_retemper(right)
    with raises("not answered"):
        ch03.check_retemper(...)
    with raises("power tau"):
        ch03.check_retemper(power_tau)
    with raises("sum to 1"):
        ch03.check_retemper(lambda w, tau: w / tau)


# ------------------------------------------------------------------------------- chapter 4
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


# ------------------------------------------------------------------------------- chapter 5
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
