"""Checks for the exercises of chapter 5 (the whole model).

References: ``math.log``, a Conv1D product written out with torch, numerical integration of the
normal density, and the bytes the tensors of a real ``torch.optim.AdamW`` step occupy, never
``gptlib.model``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._core import close, confirm, fail, require_answer
from .ch03 import _call, _to_numpy


def _number(ex: str, name: str, value) -> float:
    require_answer(ex, **{name: value})
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        fail(ex, f"`{name}` should be a number, got {type(value).__name__}.")
    return float(value)


# ----------------------------------------------------------------------------------------------
def check_initial_loss(vocab_size: int, expected_loss, expected_perplexity) -> None:
    """Exercise 5.1: the loss (nats/token) and perplexity of a model that predicts uniformly over
    ``vocab_size`` tokens."""
    ex = "5.1"
    loss = _number(ex, "expected_loss", expected_loss)
    ppl = _number(ex, "expected_perplexity", expected_perplexity)
    reference = math.log(vocab_size)
    if math.isclose(loss, math.log2(vocab_size), rel_tol=1e-6):
        fail(ex, "that is log2(V), in bits. PyTorch's cross-entropy uses the natural log: the loss "
                 "is in nats per token.")
    if math.isclose(loss, math.log10(vocab_size), rel_tol=1e-6):
        fail(ex, "that is log10(V). Cross-entropy uses the natural log (math.log).")
    close(ex, "expected_loss", loss, reference, atol=1e-4,
          hint="Each of the V tokens gets probability 1/V, and the loss is -ln(probability of the "
               "right token).")
    if math.isclose(ppl, loss, rel_tol=1e-6):
        fail(ex, "perplexity is exp(loss), not the loss itself.")
    close(ex, "expected_perplexity", ppl, math.exp(reference), rtol=1e-4, atol=1e-3,
          hint="Perplexity = exp(loss): the number of equally likely choices the model is torn between.")
    confirm(ex, f"a uniform guess over {vocab_size} tokens has loss ln {vocab_size} = {reference:.4f} "
                f"nats and perplexity {vocab_size}")


# ----------------------------------------------------------------------------------------------
def check_conv1d_to_linear(conv1d_to_linear) -> None:
    """Exercise 5.2: ``conv1d_to_linear(w)`` turns a Hugging Face Conv1D weight ``(in, out)`` into
    the ``(out, in)`` weight of ``nn.Linear`` that computes the same function."""
    ex = "5.2"
    g = torch.Generator().manual_seed(52)
    n_in, n_out = 6, 18
    w_hf = torch.randn(n_in, n_out, generator=g)
    b = torch.randn(n_out, generator=g)
    x = torch.randn(4, n_in, generator=g)
    reference = torch.addmm(b, x, w_hf)  # what Hugging Face's Conv1D computes: x @ W + b
    got = _call(ex, "conv1d_to_linear", conv1d_to_linear, w_hf.clone())
    if not isinstance(got, torch.Tensor):
        fail(ex, f"conv1d_to_linear should return a tensor, got {type(got).__name__}.")
    if tuple(got.shape) != (n_out, n_in):
        fail(ex, f"a Conv1D weight of shape ({n_in}, {n_out}) must become an nn.Linear weight of shape "
                 f"(out, in) = ({n_out}, {n_in}); you returned {tuple(got.shape)}.")
    if torch.equal(got, w_hf.reshape(n_out, n_in)):
        fail(ex, "reshape keeps the numbers in memory order, so it scrambles the matrix. You need the "
                 "transpose: rows become columns (w.t() or w.T).")
    y = F.linear(x, got, b)
    close(ex, "F.linear(x, conv1d_to_linear(w), b)", y, reference, atol=1e-5,
          hint="nn.Linear computes x @ weight.T + b; Conv1D computes x @ w + b.")
    confirm(ex, "the transposed weight makes nn.Linear compute exactly what Conv1D computes")


# ----------------------------------------------------------------------------------------------
def _truncated_normal_std(sigma: float, cut: float = 2.0) -> float:
    """Std of N(0, sigma^2) restricted to [-cut sigma, cut sigma], by numerical integration."""
    x = np.linspace(-cut, cut, 400_001)
    density = np.exp(-0.5 * x * x)
    return sigma * math.sqrt(np.trapezoid(x * x * density, x) / np.trapezoid(density, x))


def check_truncated_std(truncated_std) -> None:
    """Exercise 5.3: ``truncated_std(sigma)`` is the actual standard deviation of weights drawn by
    ``nn.init.trunc_normal_(w, std=sigma, a=-2 * sigma, b=2 * sigma)``."""
    ex = "5.3"
    for sigma in (0.02, 0.02 / math.sqrt(2 * 10), 1.0):
        got = _number(ex, f"truncated_std({sigma:.4g})", _call(ex, "truncated_std", truncated_std, sigma))
        expected = _truncated_normal_std(sigma)
        if math.isclose(got, sigma, rel_tol=1e-9):
            fail(ex, f"truncated_std({sigma:.4g}) returned sigma itself. Cutting off the tails at 2 sigma "
                     f"removes the largest values, so the spread is smaller than sigma.")
        if math.isclose(got, sigma * math.erf(2 / math.sqrt(2)), rel_tol=1e-6):
            fail(ex, "you multiplied by the probability mass inside [-2 sigma, 2 sigma] (0.9545). The "
                     "variance of the truncated normal is sigma^2 (1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2))), "
                     "with phi the standard normal density and Phi its CDF.")
        close(ex, f"truncated_std({sigma:.4g})", got, expected, rtol=1e-6, atol=0,
              hint="Var = sigma^2 * (1 - 2 c phi(c) / (Phi(c) - Phi(-c))) with c = 2; the std is its root.")
    confirm(ex, f"a normal cut at 2 sigma has std {expected:.4f} sigma, so 'std 0.02' draws weights with "
                f"std {_truncated_normal_std(0.02):.4f}")


# ----------------------------------------------------------------------------------------------
def _measured_mixed_precision_bytes() -> tuple[int, int]:
    """Parameters, and the bytes of the tensors mixed-precision AdamW training keeps, after one real
    step: a bf16 working copy of the weights, its bf16 gradients, an fp32 master copy of the weights
    and AdamW's two fp32 moments (activations not counted)."""
    torch.manual_seed(0)
    master = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))   # fp32 master weights
    working = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8)).to(torch.bfloat16)
    working.load_state_dict(master.state_dict())
    working(torch.randn(4, 16, dtype=torch.bfloat16)).float().square().mean().backward()
    for p_master, p_working in zip(master.parameters(), working.parameters()):
        p_master.grad = p_working.grad.float()        # a temporary: only the update needs it in fp32
    optimizer = torch.optim.AdamW(master.parameters(), lr=1e-3)
    optimizer.step()
    n = sum(p.numel() for p in master.parameters())
    tensors = [p for p in master.parameters()] + [p for p in working.parameters()]
    tensors += [p.grad for p in working.parameters()]
    tensors += [state[key] for state in optimizer.state.values() for key in ("exp_avg", "exp_avg_sq")]
    return n, sum(t.numel() * t.element_size() for t in tensors)


def check_mixed_precision_bytes(mixed_precision_bytes) -> None:
    """Exercise 5.4: ``mixed_precision_bytes(n_params)`` is the memory (bytes) of the state kept by
    mixed-precision AdamW training: bf16 weights and gradients, fp32 master weights, fp32 m and v."""
    ex = "5.4"
    n, measured = _measured_mixed_precision_bytes()
    per_param = measured // n
    got = _number(ex, "mixed_precision_bytes(n)",
                  _call(ex, "mixed_precision_bytes", mixed_precision_bytes, n))
    for wrong, what in ((4, "only one copy of the weights"),
                        (8, "the weights and gradients, but not AdamW's m and v or the master copy"),
                        (12, "everything except the fp32 master copy of the weights"),
                        (14, "the bf16 gradients at 4 bytes or the fp32 master copy at 2 bytes: check the "
                             "sizes, bf16 = 2 bytes, fp32 = 4"),
                        (20, "the gradients in fp32 as well as bf16; keep only the bf16 gradients")):
        if math.isclose(got, wrong * n):
            fail(ex, f"you counted {wrong} bytes per parameter: {what}.")
    if math.isclose(got, measured / 1e9) or math.isclose(got, measured / 2 ** 30):
        fail(ex, "return bytes, not gigabytes.")
    if not math.isclose(got, measured):
        fail(ex, f"for a model of {n} parameters the tensors of one real mixed-precision step take "
                 f"{measured:,} bytes ({per_param} per parameter); you said {got:,.0f}. Add up: bf16 "
                 f"weights, bf16 gradients, fp32 master weights, fp32 m, fp32 v.")
    big = 1_000_000_000
    got_big = _number(ex, "mixed_precision_bytes(1e9)",
                      _call(ex, "mixed_precision_bytes", mixed_precision_bytes, big))
    if not math.isclose(got_big, per_param * big):
        fail(ex, f"right for the small model but not for {big:,} parameters: is your rule proportional "
                 f"to n_params?")
    confirm(ex, f"{per_param} bytes per parameter, as a real mixed-precision step measures: the same as "
                f"fp32 training, because the fp32 master copy replaces the fp32 weights")
