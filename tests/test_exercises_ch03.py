"""Every exercise check of chapter 3 accepts the reference answer, rejects the student edition's
``...`` stub, and rejects the plausible wrong answers readers actually write, with a useful hint."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch03


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)



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
