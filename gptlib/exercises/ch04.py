"""Checks for the exercises of chapter 4 (feed-forward network, LayerNorm and the block).

References come from torch itself (autograd through ``F.gelu``, ``F.rms_norm``), from plain
Python (``math.erf`` and a bisection), from counting the parameters of plain ``torch.nn`` layers,
and from torch's own FLOP counter, never from ``gptlib.model`` and never from the notebook's
variables. The inputs expose the usual mistakes: rows at very different scales (one so small
that epsilon matters, one all zeros), several shapes and widths, an epsilon that is not the
usual one, and a check that the answer leaves its input unchanged. Where an exercise rules out a
shortcut (autograd, ``F.rms_norm``, counting a built module's parameters, a FLOP counter), the
check reads the names the answer's code uses and refuses it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ._core import confirm, fail, number, refusing_packages, require_callable
from .ch03 import _call, _run, _run_tensor, _same, forbid, keepdim_hint


def _whole(ex: str, name: str, value, where: str) -> int:
    """An answer that must be a whole number (int, numpy int, or a float with no fraction)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                   np.floating)):
        fail(ex, f"`{name}` should return a whole number, got {value!r}.")
    if not math.isfinite(float(value)) or float(value) != int(value):
        fail(ex, f"for {where} `{name}` returned {value!r}, which is not a whole number.")
    return int(value)


# ----------------------------------------------------------------------------------------------
# Exercise 4.1: the GELU's slope and its minimum
# ----------------------------------------------------------------------------------------------
def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def gelu_minimum() -> float:
    """Where the exact GELU is smallest: the root of Phi(x) + x phi(x) on [-2, 0], by bisection
    in plain Python floats (about -0.7518)."""
    lo, hi = -2.0, 0.0          # slope < 0 at -2, > 0 at 0
    for _ in range(200):
        mid = (lo + hi) / 2
        if _Phi(mid) + mid * _phi(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _autograd_slope(x: torch.Tensor, approximate: str = "none") -> np.ndarray:
    x = x.detach().clone().requires_grad_(True)
    (slope,) = torch.autograd.grad(F.gelu(x, approximate=approximate).sum(), x)
    return slope.numpy()


def check_gelu_slope(gelu_slope, gelu_min_x) -> None:
    """Exercise 4.1: ``gelu_slope(x)`` is d/dx [x Phi(x)], elementwise on any shape, and
    ``gelu_min_x`` the x where the exact GELU is smallest (to within 1e-4)."""
    ex = "4.1"
    require_callable(ex, "gelu_slope", gelu_slope)
    forbid(ex, "gelu_slope", gelu_slope, libraries=("gptlib",),
           names=("gelu", "GELU", "autograd", "grad", "backward", "vjp", "jacobian", "func"),
           rule="derive the slope and write it from torch.erf and torch.exp (not autograd, not "
                "F.gelu).")
    grid = torch.linspace(-6, 6, 241, dtype=torch.float64)
    block = torch.randn(3, 5, generator=torch.Generator().manual_seed(41), dtype=torch.float64) * 3
    for x, where in ((grid, "x from -6 to 6, shape (241,)"), (block, "x of shape (3, 5)")):
        result = _run_tensor(ex, "gelu_slope", gelu_slope, {"x": x.clone()}, where)
        got = result.double().numpy()
        expected = _autograd_slope(x)
        if got.shape != expected.shape:
            fail(ex, f"gelu_slope should act elementwise and keep the shape {tuple(x.shape)}, "
                     f"got {got.shape}.")
        if _same(got, expected, atol=1e-8):
            continue
        xn = x.numpy()
        Phi = 0.5 * (1 + np.vectorize(math.erf)(xn / math.sqrt(2)))
        phi = np.exp(-xn ** 2 / 2) / math.sqrt(2 * math.pi)
        erf_no_root = 0.5 * (1 + np.vectorize(math.erf)(xn))
        mistakes = [
            (Phi, "that is Phi(x) alone. GELU(x) = x * Phi(x) is a product, so its derivative "
                  "has two terms (the product rule)."),
            (xn * phi, "that is x * phi(x) alone. GELU(x) = x * Phi(x) is a product, so its "
                       "derivative has two terms (the product rule)."),
            (Phi - xn * phi, "the second term has the wrong sign: Phi'(x) = phi(x) > 0."),
            (Phi + xn * phi * math.sqrt(2 * math.pi),
             "the density phi is missing its 1/sqrt(2 pi): phi(x) = exp(-x^2/2) / sqrt(2 pi)."),
            (erf_no_root + xn * phi, "Phi(x) = (1 + erf(x / sqrt(2))) / 2: the sqrt(2) inside "
                                     "the erf is missing."),
            (_autograd_slope(x, "tanh"), "that is the slope of the tanh approximation; the "
                                         "question asks for the exact GELU, x * Phi(x)."),
            (F.gelu(x).numpy(), "that is GELU(x) itself; the question asks for its slope."),
        ]
        for wrong, hint in mistakes:
            if _same(got, wrong, atol=1e-6):
                fail(ex, hint)
        worst = int(np.abs(got - expected).argmax())
        gap = float(np.abs(got - expected).max())
        if gap < 1e-5:  # the formula is right; the precision is not
            fail(ex, f"on {where}, at x = {xn.flat[worst]:.3f} your slope is "
                     f"{got.flat[worst]:.12g}, autograd through F.gelu gives "
                     f"{expected.flat[worst]:.12g}: a gap of {gap:.1e}, which is rounding, not "
                     f"the formula. Part of your computation runs in lower precision "
                     f"(your result is {result.dtype}; x is float64, and a constant made with "
                     f"torch.tensor(...) is float32 by default): keep it in x's dtype, or use "
                     f"math.sqrt and math.pi for the constants.")
        fail(ex, f"on {where}, at x = {xn.flat[worst]:.3f} your slope is {got.flat[worst]:.6g}, "
                 f"autograd through F.gelu gives {expected.flat[worst]:.6g}. Differentiate "
                 f"x * Phi(x) with the product rule, using Phi' = phi.")
    x_min = number(ex, "gelu_min_x", gelu_min_x)
    reference = gelu_minimum()
    if abs(x_min - reference) <= 1e-4:
        confirm(ex, f"gelu_slope equals autograd; GELU is smallest at x = {reference:.4f}")
        return
    grid_x = torch.linspace(-0.8, -0.7, 100_001, dtype=torch.float64)
    tanh_min = float(grid_x[F.gelu(grid_x, approximate="tanh").argmin()])
    if x_min >= 0:
        fail(ex, "GELU is smallest for a negative x: it dips below zero left of 0, then rises "
                 "back towards 0 as x goes to -infinity.")
    if abs(x_min - (-0.75)) < 5e-6:
        fail(ex, "-0.75 is the text's value, rounded to two digits; the question asks for four. "
                 "Find where your slope is zero, e.g. by bisection on [-2, 0].")
    if abs(x_min - float(F.gelu(torch.tensor(reference, dtype=torch.float64)))) < 1e-3:
        fail(ex, "that is the value of GELU at its minimum; gelu_min_x should be the x where it "
                 "is reached.")
    if abs(x_min - tanh_min) < 1e-4:
        fail(ex, "that is where the tanh approximation is smallest; the exact GELU's minimum is "
                 "a little to the right.")
    fail(ex, f"gelu_min_x = {x_min:.6g} is more than 1e-4 from where GELU is smallest. There the "
             f"slope is zero: bisect on [-2, 0], keeping the half where the slope changes sign.")


# ----------------------------------------------------------------------------------------------
# Exercise 4.2: RMSNorm
# ----------------------------------------------------------------------------------------------
def _rms_inputs():
    g = torch.Generator().manual_seed(42)
    cases = []
    x = torch.randn(5, 8, generator=g, dtype=torch.float64)
    x = x * torch.tensor([1.0, 1e-3, 100.0, 1.0, 1.0], dtype=torch.float64)[:, None] + \
        torch.tensor([0.0, 0.0, 0.0, 3.0, 0.0], dtype=torch.float64)[:, None]
    x[4] = 0.0                                   # a token of all zeros
    cases.append((x, torch.randn(8, generator=g, dtype=torch.float64), 1e-5,
                  "x of shape (5, 8) whose rows differ in scale (one tiny, one all zeros)"))
    cases.append((torch.randn(2, 3, 16, generator=g, dtype=torch.float64) * 2 + 1,
                  torch.randn(16, generator=g, dtype=torch.float64), 1e-5, "x of shape (2, 3, 16)"))
    cases.append((torch.randn(7, generator=g, dtype=torch.float64) * 0.3,
                  torch.randn(7, generator=g, dtype=torch.float64), 0.1,
                  "x of shape (7,) with eps = 0.1"))
    return cases


def check_rms_norm(rms_norm) -> None:
    """Exercise 4.2: ``rms_norm(x, weight, eps)`` divides each vector along the last dimension of
    ``x`` ``(..., C)`` by its root mean square (eps inside the root) and multiplies by ``weight``
    ``(C,)``; the reference is ``F.rms_norm``."""
    ex = "4.2"
    require_callable(ex, "rms_norm", rms_norm)
    forbid(ex, "rms_norm", rms_norm, names=("rms_norm", "RMSNorm"),
           rule="write RMSNorm from its formula, not with F.rms_norm or nn.RMSNorm.")
    for x, weight, eps, where in _rms_inputs():
        C = x.shape[-1]
        got = _run(ex, "rms_norm", rms_norm, {"x": x.clone(), "weight": weight.clone(), "eps": eps},
                   where, crash_hint=keepdim_hint)
        expected = F.rms_norm(x, (C,), weight, eps).numpy()
        if got.shape != expected.shape:
            fail(ex, f"rms_norm should keep the shape of x, {tuple(x.shape)}, got {got.shape}.")
        if _same(got, expected, atol=1e-9):
            continue
        xn, w = x.numpy(), weight.numpy()
        ms = (xn ** 2).mean(-1, keepdims=True)
        centred = xn - xn.mean(-1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mistakes = [
                (centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * w,
                 "you subtracted the mean, which makes it LayerNorm. RMSNorm does not centre: it "
                 "only divides by the root mean square of the values themselves."),
                (centred / np.sqrt((centred ** 2).sum(-1, keepdims=True) / max(C - 1, 1) + eps) * w,
                 "you divided by a standard deviation, which subtracts the mean. RMSNorm divides "
                 "by the root mean square of the values themselves."),
                (xn / np.sqrt((centred ** 2).sum(-1, keepdims=True) / max(C - 1, 1) + eps) * w,
                 "you divided by a standard deviation (x.var or x.std subtract the mean first). "
                 "RMSNorm divides by the root mean square of the values themselves."),
                (xn / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * w,
                 "you divided by a standard deviation (x.var or x.std subtract the mean first). "
                 "RMSNorm divides by the root mean square of the values themselves."),
                (xn / (np.sqrt(ms) + eps) * w,
                 f"eps must go inside the square root, sqrt(mean(x^2) + eps), as in LayerNorm; it "
                 f"matters for the tiny token on {where}."),
                (xn / np.sqrt((xn ** 2).sum(-1, keepdims=True) + eps) * w,
                 "you divided by the square root of the sum of squares (the vector's norm). The "
                 "root mean square divides that sum by C first."),
                (xn / np.sqrt((xn ** 2).sum(-1, keepdims=True) / max(C - 1, 1) + eps) * w,
                 "the mean of the squares divides by C, not C - 1."),
                (xn / np.sqrt((xn ** 2).mean() + eps) * w,
                 "you used one mean square for the whole tensor. Each token (each vector along "
                 "the last dimension) is divided by its own; one shared value is right only when "
                 "every row has the same scale."),
                (xn / np.sqrt(ms) * w, "eps is missing (the all-zero token gives 0 / 0 without "
                                       "it)."),
                (xn / np.sqrt(ms + 1e-5) * w, "you used a fixed eps = 1e-5 instead of the `eps` "
                                              "argument."),
                (xn / np.sqrt(ms + eps), "the result is never multiplied by `weight` (the "
                                         "learned gain)."),
                (xn / np.sqrt(ms + eps) + w, "`weight` is a gain: multiply by it, don't add it."),
            ]
            if xn.ndim > 1:
                mistakes.append((xn / np.sqrt((xn ** 2).mean(0, keepdims=True) + eps) * w,
                                 "the mean of the squares runs over the wrong dimension: "
                                 "normalise each token over its C channels, the last "
                                 "dimension."))
        for wrong, hint in mistakes:
            if _same(got, wrong, atol=1e-9):
                fail(ex, hint)
        if np.isnan(got).any():
            fail(ex, f"on {where} the result has NaN: the all-zero token must come out as zeros "
                     f"(eps keeps the root above 0).")
        worst = np.unravel_index(int(np.abs(got - expected).argmax()), expected.shape)
        fail(ex, f"on {where}, at index {tuple(int(i) for i in worst)} you have "
                 f"{got[worst]:.6g}, F.rms_norm gives {expected[worst]:.6g}. Divide each vector "
                 f"by sqrt(mean of its squares + eps), then multiply by weight.")
    confirm(ex, "rms_norm matches F.rms_norm, zero token and tiny rows included")


# ----------------------------------------------------------------------------------------------
# Exercise 4.3: parameters of a block
# ----------------------------------------------------------------------------------------------
def _count_block(d_model: int, d_ffn: int) -> int:
    """Parameters of one pre-LN block built from plain torch.nn layers (independent of gptlib)."""
    with torch.device("meta"):
        layers = [nn.LayerNorm(d_model), nn.Linear(d_model, 3 * d_model),
                  nn.Linear(d_model, d_model), nn.LayerNorm(d_model), nn.Linear(d_model, d_ffn),
                  nn.Linear(d_ffn, d_model)]
    return sum(p.numel() for layer in layers for p in layer.parameters())


def check_block_parameters(block_parameters) -> None:
    """Exercise 4.3: ``block_parameters(d_model, d_ffn)`` counts one block's parameters."""
    ex = "4.3"
    require_callable(ex, "block_parameters", block_parameters)
    forbid(ex, "block_parameters", block_parameters, libraries=("gptlib", "torch"),
           names=("numel", "parameters", "named_parameters", "param_count", "state_dict"),
           rule="count from the shapes of the six modules, by arithmetic, without building "
                "them (no torch, no gptlib).")
    block_parameters = refusing_packages(ex, "block_parameters", block_parameters,
                                         ("gptlib", "torch"), "count from the shapes, by "
                                         "arithmetic, without building the modules.")
    for C, Fw in ((768, 3072), (1088, 4352), (64, 100), (5120, 20480), (96, 96)):
        where = f"d_model = {C}, d_ffn = {Fw}"
        got = _whole(ex, "block_parameters", _call(ex, "block_parameters", block_parameters, C, Fw),
                     where)
        expected = _count_block(C, Fw)
        if got == expected:
            continue
        weights_only = 4 * C * C + 2 * C * Fw
        if got == weights_only:
            fail(ex, f"for {where} you counted only the weight matrices ({got:,}). Every Linear "
                     f"also has a bias (one per output), and each of the two LayerNorms has a "
                     f"gain and a bias of C values.")
        if got == expected - 4 * C:
            also = (" (or, since F = 4C here, mlp.c_fc's bias of F values)" if Fw == 4 * C
                    else "")
            fail(ex, f"for {where} you are {4 * C:,} short: the two LayerNorms, each with a gain "
                     f"and a bias of C values{also}.")
        if got == expected - 2 * C:
            fail(ex, f"for {where} you are 2C = {2 * C:,} short. Two usual causes: c_attn's "
                     f"bias counted as C values (it has one per output, 3C), or one of the two "
                     f"LayerNorms (a gain and a bias of C values each) missing.")
        if got == expected - 3 * C:
            fail(ex, f"for {where} you are 3C = {3 * C:,} short: c_attn's bias is missing (one "
                     f"value per output, 3C), or a LayerNorm and one more bias of C.")
        if got == expected - C:
            fail(ex, f"for {where} you are C = {C:,} short: one bias or gain of C values is "
                     f"missing (attn.c_proj's bias, mlp.c_proj's bias, or a LayerNorm's gain or "
                     f"bias).")
        if got == expected - Fw and Fw != C:
            fail(ex, f"for {where} you are F = {Fw:,} short: mlp.c_fc's bias (one value per "
                     f"hidden unit) is missing.")
        if got == _count_block(C, 4 * C) and Fw != 4 * C:
            fail(ex, f"for {where} you assumed F = 4C; use the d_ffn you are given (here "
                     f"F / C = {Fw / C:g}).")
        if got == expected - 2 * C * C - 2 * C:
            fail(ex, f"for {where} you are {2 * C * C + 2 * C:,} short: c_attn makes the queries, "
                     f"keys and values, C -> 3C, not C -> C.")
        fail(ex, f"for {where} you counted {got:,}; the block has {expected:,} (difference "
                 f"{got - expected:+,}). Count c_attn (C -> 3C), attn.c_proj (C -> C), mlp.c_fc "
                 f"(C -> F), mlp.c_proj (F -> C), each with a bias, and two LayerNorms.")
    confirm(ex, "block_parameters matches torch.nn layers for five sizes")


# ----------------------------------------------------------------------------------------------
# Exercise 4.4: FLOPs of a block
# ----------------------------------------------------------------------------------------------
def _measure_block_flops(d_model: int, d_ffn: int, seq_len: int) -> float:
    """Forward FLOPs per token of one block's matrix products, counted by torch's FlopCounterMode
    on a block written here with plain torch (attention over all seq_len keys, unmasked)."""
    C, Fw, T = d_model, d_ffn, seq_len
    with torch.device("meta"):  # shapes only: no arithmetic, no use of the random generator
        c_attn, c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        c_fc, c_proj2 = nn.Linear(C, Fw), nn.Linear(Fw, C)
        x = torch.empty(1, T, C)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        q, k, v = c_attn(x).split(C, dim=-1)
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C), dim=-1)
        x = x + c_proj(w @ v)
        x = x + c_proj2(F.gelu(c_fc(x)))
    return counter.get_total_flops() / T


def check_block_flops(block_flops, attention_equals_ffn) -> None:
    """Exercise 4.4: ``block_flops(d_model, d_ffn, seq_len)`` counts the forward matmul FLOPs of one
    block for one token that attends to ``seq_len`` keys (2 FLOPs per multiply-add), and
    ``attention_equals_ffn`` is the ``seq_len`` at which Q K^T and A V together cost as much as the
    FFN's two matrices for Cerebras-GPT 111M (C = 768, F = 3072)."""
    ex = "4.4"
    require_callable(ex, "block_flops", block_flops)
    forbid(ex, "block_flops", block_flops, libraries=("gptlib", "torch"),
           names=("FlopCounterMode", "get_total_flops", "flops_per_token"),
           rule="count the products from their shapes, by arithmetic (no FLOP counter, no "
                "gptlib, no torch).")
    block_flops = refusing_packages(ex, "block_flops", block_flops, ("gptlib", "torch"),
                                    "count the products from their shapes, by arithmetic.")
    for C, Fw, T in ((64, 256, 16), (96, 200, 40), (32, 128, 128)):
        where = f"C = {C}, F = {Fw}, T = {T}"
        got = number(ex, "block_flops(...)", _call(ex, "block_flops", block_flops, C, Fw, T))
        expected = _measure_block_flops(C, Fw, T)
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        weights = 2 * (4 * C * C + 2 * C * Fw)
        biases = 3 * C + C + Fw + C
        if math.isclose(got, expected / 2, rel_tol=1e-9):
            fail(ex, f"for {where} you counted multiply-adds ({got:,.0f}); count 2 FLOPs per "
                     f"multiply-add (one multiply, one add).")
        if math.isclose(got, 3 * expected, rel_tol=1e-9):
            fail(ex, f"for {where} you counted a training step (forward and backward, 3x); the "
                     f"question asks for the forward pass only.")
        if math.isclose(got, weights, rel_tol=1e-9):
            fail(ex, f"for {where} you counted the weight matrices only. Attention also does Q K^T "
                     f"(T dot products of length C) and A V (a weighted sum of T vectors of "
                     f"length C): 2 T C FLOPs each.")
        if any(math.isclose(got, weights + 4 * keys * C, rel_tol=1e-9)
               for keys in (T / 2, (T + 1) / 2)):
            fail(ex, f"for {where} attention's T-dependent part is half what it should be: "
                     f"Q K^T and A V each cost 2 T C FLOPs per token, over all seq_len keys (the "
                     f"question, like a dense kernel, does not count only the T/2 keys the "
                     f"causal mask leaves on average).")
        if math.isclose(got, expected + 2 * biases, rel_tol=1e-9) or \
                math.isclose(got, expected + biases, rel_tol=1e-9):
            fail(ex, f"for {where} you counted the biases; the question leaves them out (they "
                     f"are additions, not matrix products).")
        if math.isclose(got, 24 * C * C + 4 * T * C, rel_tol=1e-9):
            fail(ex, f"for {where} you used 24C^2 + 4TC, which assumes F = 4C; here F / C = "
                     f"{Fw / C:.3g}. Write the FFN's part with d_ffn.")
        fail(ex, f"for {where} you got {got:,.0f}, torch's FLOP counter measures {expected:,.0f} "
                 f"per token. Matmuls: Q,K,V (C x 3C), output (C x C), FFN (C x F and F x C), "
                 f"plus Q K^T and A V over T keys.")
    C, Fw = 768, 3072                             # Cerebras-GPT 111M
    guess = number(ex, "attention_equals_ffn", attention_equals_ffn)
    per_key = _measure_block_flops(C, Fw, 2) - _measure_block_flops(C, Fw, 1)  # 4C
    ffn = 2 * 2 * C * Fw
    crossing = ffn / per_key
    if math.isclose(guess, crossing, rel_tol=1e-9):
        confirm(ex, f"block_flops matches torch's FLOP counter for three block shapes, and at "
                    f"seq_len = {crossing:,.0f} attention's two products cost as much as the FFN")
        return
    known = [(2 * crossing, "at that seq_len one of the two products (2TC) matches the FFN; Q K^T "
                            "and A V together cost 4TC per token"),
             (crossing / 2, "that is where the two products match half the FFN (or the four "
                            "projections, 8C^2): the FFN has two matrices, C x F and F x C"),
             (2 * (4 * C * C + 2 * C * Fw) / per_key,
              "that is where the two products match all the weight matrices of the block "
              "(projections and FFN), not the FFN alone")]
    for value, hint in known:
        if math.isclose(guess, value, rel_tol=1e-9):
            fail(ex, f"attention_equals_ffn = {guess:,.0f}: {hint}.")
    fail(ex, f"attention_equals_ffn = {guess:g} is not where Q K^T and A V (together) cost as "
             f"much as the FFN for C = {C}, F = {Fw}: set your count of the two products equal "
             f"to the FFN's and solve for seq_len.")


# ----------------------------------------------------------------------------------------------
# Exercise 4.5: the width of a SwiGLU feed-forward network of the same size
# ----------------------------------------------------------------------------------------------
SWIGLU_CASES = (  # d_model, d_ffn, multiple_of
    (768, 3072, 256),     # 111M: the GELU network's biases push F' past 2048
    (4096, 16384, 256),   # LLaMA 7B's width: 11,008
    (1088, 4352, 1),      # multiple_of = 1, and the exact width is a whole number, 2,903
    (1024, 4096, 1),      # multiple_of = 1: 2,732.33 rounds up to 2,733
    (1000, 3000, 64),     # F = 3C, not 4C
    (57, 285, 64),        # the exact width, 192, is already a multiple of 64
    (96, 200, 32),
)


def swiglu_width_reference(d_model: int, d_ffn: int, multiple_of: int) -> int:
    """The smallest multiple of ``multiple_of`` that is at least (2 C F + F + C) / (3 C): a
    SwiGLU network without biases with as many parameters as a GELU network of width F with its
    biases. In integers, so that an exact width is not lost to rounding."""
    C, F = d_model, d_ffn
    need = -(-(2 * C * F + F + C) // (3 * C))        # ceil: 3 C F' >= 2 C F + F + C
    return -(-need // multiple_of) * multiple_of


def check_swiglu_width(swiglu_width) -> None:
    """Exercise 4.5: ``swiglu_width(d_model, d_ffn, multiple_of)`` is the hidden width F' of a
    SwiGLU FFN (three matrices, no biases) with at least the parameters of a GELU FFN of width F
    (two matrices and their biases), rounded up to a multiple of ``multiple_of``.

    The answer is run on every case first, then compared, case by case, with the rules readers
    use instead (no biases, F = 4C, round down, round to nearest, ...): the hint names the rule
    that fits them all.
    """
    ex = "4.5"
    require_callable(ex, "swiglu_width", swiglu_width)
    answers = []
    for C, Fw, m in SWIGLU_CASES:
        where = f"d_model = {C}, d_ffn = {Fw}, multiple_of = {m}"
        raw = _call(ex, "swiglu_width", swiglu_width, C, Fw, m)
        exact = (2 * C * Fw + Fw + C) / (3 * C)
        if isinstance(raw, (float, np.floating)) and math.isclose(float(raw), exact) and \
                exact != int(exact):
            fail(ex, f"for {where} you returned the exact width {exact:.2f}, which is not a whole "
                     f"number of hidden units: round it up to a multiple of multiple_of.")
        answers.append(_whole(ex, "swiglu_width", raw, where))
    expected = [swiglu_width_reference(*case) for case in SWIGLU_CASES]
    if answers == expected:
        confirm(ex, "swiglu_width is right for seven networks (11,008 for LLaMA 7B's C = 4096)")
        return

    def up(x, m):
        return math.ceil(x / m) * m

    rules = [
        (lambda C, F, m: F,
         "you returned d_ffn, the GELU network's width. SwiGLU has three matrices of C x F' where "
         "the GELU network has two of C x F, so at equal size its F' is smaller."),
        (lambda C, F, m: up(2 * F / 3, m),
         "you matched the GELU network's weights only, 2 C F. The question counts its two "
         "biases too (F in c_fc, C in c_proj); SwiGLU has none."),
        (lambda C, F, m: up((8 * C * C + 5 * C) / (3 * C), m),
         "you assumed F = 4C; use the d_ffn you are given (the check tries other ratios)."),
        (lambda C, F, m: up(8 * C / 3, m),
         "you assumed F = 4C and counted weights only (the 8C/3 of LLaMA's paper). Use the d_ffn "
         "you are given, and count the GELU network's two biases."),
        (lambda C, F, m: up((2 * C * F + F) / (3 * C + 2), m),
         "you gave the SwiGLU network biases too; as in LLaMA it has none (only the GELU network "
         "it replaces has biases)."),
        (lambda C, F, m: math.floor((2 * C * F + F + C) / (3 * C) / m) * m,
         "you rounded down; the width must be at least the exact value, so round up to the next "
         "multiple."),
        (lambda C, F, m: round((2 * C * F + F + C) / (3 * C) / m) * m,
         "you rounded to the nearest multiple; the question asks for the smallest multiple that "
         "is at least the exact value."),
        (lambda C, F, m: (math.floor((2 * C * F + F + C) / (3 * C) / m) + 1) * m,
         "where the exact width is already a multiple of multiple_of (192 for d_model = 57, "
         "d_ffn = 285, multiple_of = 64; 2,903 for d_model = 1088 with multiple_of = 1), you "
         "still rounded up to the next one; it is the answer itself."),
        (lambda C, F, m: up(math.floor((2 * C * F + F + C) / (3 * C)), m),
         "you rounded the exact width down to a whole number before rounding up to a multiple "
         "(it shows for multiple_of = 1). LLaMA's released code does this, int(...) then round "
         "up, but the question asks for a width at least the exact value."),
        (lambda C, F, m: swiglu_width_reference(C, F, 256),
         "you rounded to a multiple of 256 whatever multiple_of says; use the argument."),
    ]
    for rule, hint in rules:
        if answers == [rule(*case) for case in SWIGLU_CASES]:
            fail(ex, hint)
    (C, Fw, m), got = next((case, a) for case, a, e in zip(SWIGLU_CASES, answers, expected)
                           if a != e)
    fail(ex, f"for d_model = {C}, d_ffn = {Fw}, multiple_of = {m} you gave {got:,}. Count the "
             f"parameters: the GELU network has 2 C F weights and F + C biases; SwiGLU's three "
             f"matrices have 3 C F'. Solve for F', then take the smallest multiple of "
             f"multiple_of that is not below it.")
