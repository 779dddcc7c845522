"""Every exercise check of chapter 4 accepts the reference answer and differently written correct
answers, rejects the student edition's ``...`` stub, and rejects the plausible wrong answers
readers actually write, each with the hint meant for it."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch04


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)


# ------------------------------------------------------------------ 4.1 the GELU's slope
def slope(x):
    Phi = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    phi = torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
    return Phi + x * phi


def slope_autograd(x):
    """Correct, written differently: let autograd differentiate x * Phi(x)."""
    x = x.detach().clone().requires_grad_(True)
    y = x * torch.distributions.Normal(0.0, 1.0).cdf(x)
    return torch.autograd.grad(y.sum(), x)[0]


def bisect(f, lo=-2.0, hi=0.0):
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(torch.tensor(mid, dtype=torch.float64)) < 0 else (lo, mid)
    return (lo + hi) / 2


X_MIN = bisect(slope)


def test_gelu_slope_accepts_correct_answers():
    ch04.check_gelu_slope(slope, X_MIN)
    ch04.check_gelu_slope(slope_autograd, round(X_MIN, 4))           # four decimals suffice
    ch04.check_gelu_slope(slope, torch.tensor(X_MIN))                 # a one-element tensor
    assert abs(ch04.gelu_minimum() - (-0.7518)) < 1e-4


def sqrt2pi_missing(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * torch.exp(-x ** 2 / 2)


def in_place_slope(x):
    phi = torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi)
    x.mul_(phi).add_(0.5 * (1 + torch.erf(x / math.sqrt(2))))
    return x


@pytest.mark.parametrize("answer, x_min, hint", [
    (..., X_MIN, "`gelu_slope` is not answered yet"),
    (slope, ..., "`gelu_min_x` is not answered yet"),
    (lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2))), X_MIN, "Phi\\(x\\) alone"),
    (lambda x: x * torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi), X_MIN, "x \\* phi\\(x\\) alone"),
    (lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2)))
     - x * torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi), X_MIN, "wrong sign"),
    (sqrt2pi_missing, X_MIN, "missing its 1/sqrt\\(2 pi\\)"),
    (lambda x: 0.5 * (1 + torch.erf(x)) + x * torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi),
     X_MIN, "sqrt\\(2\\) inside the erf"),
    (lambda x: slope(x).numpy(), X_MIN, "should return a tensor"),
    (lambda x: torch.func.vmap(torch.func.grad(lambda t: F.gelu(t, approximate="tanh")))(
        x.flatten()).reshape(x.shape), X_MIN, "tanh approximation"),
    (lambda x: F.gelu(x), X_MIN, "GELU\\(x\\) itself"),
    (in_place_slope, X_MIN, "changed its input `x` in place"),
    (slope, -0.75, "rounded to two digits"),
    (slope, 0.7518, "negative x"),
    (slope, -0.17, "value of GELU at its minimum"),
    (slope, -0.7525, "tanh approximation is smallest"),
    (slope, -0.76, "more than 1e-4"),
    (slope, "-0.7518", "should be a number"),
])
def test_gelu_slope_rejects_wrong_answers(answer, x_min, hint):
    with raises(hint):
        ch04.check_gelu_slope(answer, x_min)


# ------------------------------------------------------------------ 4.2 RMSNorm
def rms_norm(x, weight, eps):
    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps) * weight


def test_rms_norm_accepts_correct_answers():
    ch04.check_rms_norm(rms_norm)
    ch04.check_rms_norm(lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w)
    ch04.check_rms_norm(lambda x, w, eps: F.rms_norm(x, x.shape[-1:], w, eps))
    ch04.check_rms_norm(lambda x, w, eps: w * x / (x.norm(dim=-1, keepdim=True) ** 2
                                                   / x.size(-1) + eps).sqrt())


def in_place_rms(x, weight, eps):
    x /= torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps)
    return x * weight


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda x, w, eps: F.layer_norm(x, x.shape[-1:], w, eps=eps), "subtracted the mean"),
    (lambda x, w, eps: x / torch.sqrt(x.var(-1, keepdim=True) + eps) * w, "standard deviation"),
    (lambda x, w, eps: x / (torch.sqrt((x ** 2).mean(-1, keepdim=True)) + eps) * w,
     "inside the square root"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).sum(-1, keepdim=True) + eps) * w, "norm"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).sum(-1, keepdim=True) / (x.size(-1) - 1) + eps)
     * w, "not C - 1"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean() + eps) * w, "whole tensor"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-2, keepdim=True) + eps) * w,
     "wrong dimension"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-1, keepdim=True)) * w, "eps is missing"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-5) * w,
     "fixed eps"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps), "never multiplied"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) + w, "don't add"),
    (in_place_rms, "changed its input `x` in place"),
])
def test_rms_norm_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_rms_norm(answer)


# ------------------------------------------------------------------ 4.3 parameters per block
def block_parameters(C, F):
    return 4 * C * C + 2 * C * F + 9 * C + F


def test_block_parameters_accepts_correct_answers():
    ch04.check_block_parameters(block_parameters)
    ch04.check_block_parameters(lambda C, F: float((C + 1) * 3 * C + (C + 1) * C + (C + 1) * F
                                                   + (F + 1) * C + 4 * C))


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda C, F: 4 * C * C + 2 * C * F, "only the weight matrices"),
    (lambda C, F: 4 * C * C + 2 * C * F + 5 * C + F, "two LayerNorms, each with a gain"),
    (lambda C, F: 4 * C * C + 2 * C * F + 7 * C + F, "two LayerNorms per block"),
    (lambda C, F: 12 * C * C + 13 * C, "assumed F = 4C"),
    (lambda C, F: 2 * C * C + 2 * C * F + 7 * C + F, "C -> 3C"),
    (lambda C, F: 4 * C * C + 2 * C * F + 9 * C + F + 1, "difference \\+1"),
    (lambda C, F: "many", "whole number"),
    (lambda C, F: 4 * C * C + 2 * C * F + 9 * C + F + 0.5, "not a whole number"),
])
def test_block_parameters_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_block_parameters(answer)


# ------------------------------------------------------------------ 4.4 FLOPs per block
def block_flops(C, F, T):
    return 2 * (4 * C * C + 2 * C * F) + 4 * T * C


def test_block_flops_accepts_correct_answers():
    ch04.check_block_flops(block_flops)
    ch04.check_block_flops(lambda C, F, T: torch.tensor(2.0 * (3 * C * C + C * C + 2 * C * F
                                                               + 2 * T * C)))


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda C, F, T: block_flops(C, F, T) / 2, "multiply-adds"),
    (lambda C, F, T: 3 * block_flops(C, F, T), "forward pass only"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F), "weight matrices only"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 2 * T * C, "half what it should be"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 2 * (T + 1) * C, "T/2 keys"),
    (lambda C, F, T: block_flops(C, F, T) + 2 * (5 * C + F), "biases"),
    (lambda C, F, T: 2 * (4 * C * C + 8 * C * C) + 4 * T * C, "FLOP counter measures"),
    (lambda C, F, T: "lots", "should be a number"),
])
def test_block_flops_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_block_flops(answer)


# ------------------------------------------------------------------ 4.5 SwiGLU width
def swiglu_width(C, multiple_of):
    return math.ceil(8 * C / 3 / multiple_of) * multiple_of


def test_swiglu_width_accepts_correct_answers():
    ch04.check_swiglu_width(swiglu_width)
    ch04.check_swiglu_width(lambda C, m: -(-(-(-8 * C // 3)) // m) * m)   # integers only
    ch04.check_swiglu_width(lambda C, m: float(math.ceil(8 * C / (3 * m)) * m))
    assert swiglu_width(4096, 256) == 11008                              # LLaMA 7B


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda C, m: 4 * C, "GELU network's width"),
    (lambda C, m: 8 * C / 3, "not a whole number"),
    (lambda C, m: (8 * C // 3) // m * m, "rounded down"),
    (lambda C, m: round(8 * C / 3 / m) * m, "nearest multiple"),
    (lambda C, m: (8 * C // 3 // m + 1) * m, "already a multiple"),
    (lambda C, m: m * ((int(2 * 4 * C / 3) + m - 1) // m), "down to a whole number before"),
    (lambda C, m: math.ceil(8 * C / 3 / 256) * 256, "multiple of 256 whatever"),
    (lambda C, m: math.ceil(2 * C / m) * m, "Count the weights"),
])
def test_swiglu_width_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_swiglu_width(answer)


def test_checks_do_not_touch_the_global_random_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    ch04.check_gelu_slope(slope, X_MIN)
    ch04.check_rms_norm(rms_norm)
    ch04.check_block_parameters(block_parameters)
    ch04.check_block_flops(block_flops)
    ch04.check_swiglu_width(swiglu_width)
    assert torch.equal(before, torch.random.get_rng_state())
