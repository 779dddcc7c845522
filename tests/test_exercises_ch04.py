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


def slope_normal(x):
    """Correct, written differently: Phi and phi from torch.distributions.Normal."""
    normal = torch.distributions.Normal(torch.zeros((), dtype=x.dtype),
                                        torch.ones((), dtype=x.dtype))
    return normal.cdf(x) + x * normal.log_prob(x).exp()


def slope_autograd(x):
    """Not allowed (the exercise says not autograd): differentiate x * Phi(x) with autograd."""
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
    ch04.check_gelu_slope(slope_normal, round(X_MIN, 4))             # four decimals suffice
    grid = torch.linspace(-2, 0, 200_001, dtype=torch.float64)        # a fine grid is allowed
    ch04.check_gelu_slope(slope, float(grid[(grid * 0.5 * (1 + torch.erf(grid / 2 ** 0.5)))
                                            .argmin()]))
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
    (lambda x: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
     + 0.5 * x * (1 - torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)) ** 2)
     * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x ** 2), X_MIN, "tanh approximation"),
    (lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))), X_MIN, "GELU\\(x\\) itself"),
    (lambda x: F.gelu(x), X_MIN, "uses `gelu`, which the exercise rules out"),
    (in_place_slope, X_MIN, "changed its input `x` in place"),
    (slope, -0.75, "rounded to two digits"),
    (slope, 0.7518, "negative x"),
    (slope, -0.17, "value of GELU at its minimum"),
    (slope, -0.7525, "tanh approximation is smallest"),
    (slope, -0.76, "more than 1e-4"),
    (slope, "-0.7518", "should be a number"),
    (slope_autograd, X_MIN, "uses `autograd`, which the exercise rules out"),
    (lambda x: torch.func.vmap(torch.func.grad(F.gelu))(x.flatten()).reshape(x.shape), X_MIN,
     "uses `gelu`|uses `func`"),
    (lambda x: slope(x.float()), X_MIN, "rounding, not the formula.*torch.float32"),
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
    (lambda x, w, eps: F.rms_norm(x, x.shape[-1:], w, eps), "uses `rms_norm`"),
    (lambda x, w, eps: torch.nn.RMSNorm(x.shape[-1], eps=eps, dtype=x.dtype)(x) * w,
     "uses `RMSNorm`"),
    (lambda x, w, eps: x / torch.sqrt((x ** 2).mean(-1) + eps) * w, "keepdim=True"),
])
def test_rms_norm_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_rms_norm(answer)


# ------------------------------------------------------------------ 4.3 parameters per block
def _imported_inside(C, F):
    import torch.nn as q
    layer = q.Linear(C, F, device="meta")
    return layer.weight.nelement() + layer.bias.nelement()


def test_block_parameters_refuses_torch_however_it_is_imported():
    with raises("without building the modules"):
        ch04.check_block_parameters(_imported_inside)


def block_parameters(C, F):
    return 4 * C * C + 2 * C * F + 9 * C + F


def block_from_modules(C, F):
    """Not allowed: build the six modules (on the meta device) and count their parameters."""
    with torch.device("meta"):
        layers = [torch.nn.LayerNorm(C), torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C),
                  torch.nn.LayerNorm(C), torch.nn.Linear(C, F), torch.nn.Linear(F, C)]
    return sum(p.numel() for layer in layers for p in layer.parameters())


def block_from_gptlib(C, F):
    """Not allowed (the expert's copy of section 4.4): gptlib's Block on the meta device."""
    from gptlib import GPTConfig
    from gptlib.model import Block
    with torch.device("meta"):
        block = Block(GPTConfig(vocab_size=8, d_model=C, d_ffn=F, n_head=1))
    return sum(p.numel() for p in block.parameters())


def test_block_parameters_accepts_correct_answers():
    ch04.check_block_parameters(block_parameters)
    ch04.check_block_parameters(lambda C, F: float((C + 1) * 3 * C + (C + 1) * C + (C + 1) * F
                                                   + (F + 1) * C + 4 * C))


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda C, F: 4 * C * C + 2 * C * F, "only the weight matrices"),
    (lambda C, F: 4 * C * C + 2 * C * F + 5 * C + F, "two LayerNorms, each with a gain"),
    (lambda C, F: 4 * C * C + 2 * C * F + 7 * C + F, "bias counted as C.*or one of the two"),
    (lambda C, F: (C * 3 * C + C) + (C * C + C) + (C * F + F) + (F * C + C) + 4 * C,
     "c_attn's bias counted as C values"),                       # the expert's slip
    (lambda C, F: 4 * C * C + 2 * C * F + 6 * C + F, "c_attn's bias is missing"),
    (lambda C, F: 4 * C * C + 2 * C * F + 8 * C + F, "one bias or gain of C values"),
    (lambda C, F: 4 * C * C + 2 * C * F + 9 * C, "mlp.c_fc's bias"),
    (block_from_modules, "uses `numel`, which the exercise rules out"),
    (block_from_gptlib, "from gptlib|uses `numel`|from torch"),
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


SEQ_LEN = 3072          # 4 T C = 4 C F: T = F for 111M


def block_flops_terms(d_model, d_ffn, seq_len):
    """Correct, written differently: one term per product, as multiply-adds times two."""
    products = {"qkv": d_model * 3 * d_model, "out": d_model * d_model,
                "fc": d_model * d_ffn, "proj": d_ffn * d_model,
                "scores": seq_len * d_model, "values": seq_len * d_model}
    return 2.0 * sum(products.values())


def test_block_flops_accepts_correct_answers():
    ch04.check_block_flops(block_flops, SEQ_LEN)
    ch04.check_block_flops(block_flops_terms, 3072.0)
    ch04.check_block_flops(lambda C, F, T: 2 * (3 * C * C + C * C + 2 * C * F + 2 * T * C),
                           torch.tensor(3072))


def block_flops_counted(C, F, T):
    """Not allowed (the expert's copy of section 4.5): torch's FLOP counter on a meta block."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"):
        fc, proj = torch.nn.Linear(C, F), torch.nn.Linear(F, C)
        qkv, out = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
        x = torch.empty(1, T, C)
    with FlopCounterMode(display=False) as counter:
        q, k, v = qkv(x).split(C, -1)
        out(torch.softmax(q @ k.mT, -1) @ v)
        proj(fc(x))
    return counter.get_total_flops() / T


def block_flops_gptlib(C, F, T):
    """Not allowed: the five matmul terms of gptlib's flops_per_token."""
    from gptlib import GPTConfig
    f = GPTConfig(vocab_size=8, d_model=C, d_ffn=F, n_head=1, n_layer=1).flops_per_token(T)
    return sum(f[t] for t in ("qkv", "attention_scores", "attention_values",
                              "attention_output", "ffn"))


@pytest.mark.parametrize("answer, hint", [
    (..., "`block_flops` is not answered yet"),
    (lambda C, F, T: block_flops(C, F, T) / 2, "multiply-adds"),
    (lambda C, F, T: 3 * block_flops(C, F, T), "forward pass only"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F), "weight matrices only"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 2 * T * C, "half what it should be"),
    (lambda C, F, T: 2 * (4 * C * C + 2 * C * F) + 2 * (T + 1) * C, "T/2 keys"),
    (lambda C, F, T: block_flops(C, F, T) + 2 * (5 * C + F), "biases"),
    (lambda C, F, T: block_flops(C, F, T) + 2 * C, "FLOP counter measures"),
    (lambda C, F, T: "lots", "should be a number"),
    (lambda C, F, T: 24 * C * C + 4 * T * C, "assumes F = 4C"),
    (block_flops_counted, "uses `FlopCounterMode`|from torch"),
    (block_flops_gptlib, "uses `flops_per_token`|from gptlib"),
])
def test_block_flops_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch04.check_block_flops(answer, SEQ_LEN)


@pytest.mark.parametrize("seq_len, hint", [
    (..., "`attention_equals_ffn` is not answered yet"),
    (6144, "one of the two products \\(2TC\\)"),        # 2TC = 4CF
    (1536, "half the FFN"),                               # 4TC = 2CF (or = 8C^2)
    (4608, "all the weight matrices"),                    # 4TC = 24C^2
    (768, "is not where Q K\\^T and A V"),
    ("3072", "should be a number"),
])
def test_block_flops_prediction_rejects_wrong_answers(seq_len, hint):
    with raises(hint):
        ch04.check_block_flops(block_flops, seq_len)


# ------------------------------------------------------------------ 4.5 SwiGLU width
def swiglu_width(C, F, multiple_of):
    exact = (2 * C * F + F + C) / (3 * C)    # 3 C F' = 2 C F + F + C
    return math.ceil(exact / multiple_of) * multiple_of


def test_swiglu_width_accepts_correct_answers():
    ch04.check_swiglu_width(swiglu_width)
    ch04.check_swiglu_width(lambda C, F, m: -(-(-(-(2 * C * F + F + C) // (3 * C))) // m) * m)
    ch04.check_swiglu_width(lambda C, F, m: float(math.ceil((2 * C * F + F + C) / (3 * C * m))
                                                  * m))
    assert swiglu_width(4096, 16384, 256) == 11008                        # LLaMA 7B


def up(x, m):
    return math.ceil(x / m) * m


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda C, F, m: F, "GELU network's width"),
    (lambda C, F, m: (2 * C * F + F + C) / (3 * C), "not a whole number"),
    (lambda C, F, m: up(2 * F / 3, m), "weights only, 2 C F"),
    (lambda C, F, m: up((8 * C + 5) / 3, m), "you assumed F = 4C; use the d_ffn"),
    (lambda C, F, m: math.ceil(2 / 3 * 4 * C / m) * m, "assumed F = 4C and counted weights"),
    (lambda C, F, m: up((2 * C * F + F) / (3 * C + 2), m), "SwiGLU network biases too"),
    (lambda C, F, m: (2 * C * F + F + C) // (3 * C) // m * m, "rounded down"),
    (lambda C, F, m: round((2 * C * F + F + C) / (3 * C) / m) * m, "nearest multiple"),
    (lambda C, F, m: ((2 * C * F + F + C) // (3 * C) // m + 1) * m, "already a multiple"),
    (lambda C, F, m: m * ((int((2 * C * F + F + C) / (3 * C)) + m - 1) // m),
     "down to a whole number before.*LLaMA's released code"),
    (lambda C, F, m: up((2 * C * F + F + C) / (3 * C), 256), "multiple of 256 whatever"),
    (lambda C, F, m: up(2 * C, m), "Count the parameters"),
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
    ch04.check_block_flops(block_flops, SEQ_LEN)
    ch04.check_swiglu_width(swiglu_width)
    assert torch.equal(before, torch.random.get_rng_state())
