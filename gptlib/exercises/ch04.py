"""Checks for the exercises of chapter 4 (feed-forward network, LayerNorm and the block).

References come from torch itself (``F.gelu``, ``F.layer_norm``), from counting the parameters of
plain ``torch.nn`` layers, and from torch's own FLOP counter, never from ``gptlib.model``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ._core import close, confirm, fail, require_answer
from .ch03 import _call, _to_numpy


# ----------------------------------------------------------------------------------------------
def check_gelu_tanh(gelu_tanh) -> None:
    """Exercise 4.1: ``gelu_tanh(x)`` is GPT-2's tanh approximation of GELU, elementwise."""
    ex = "4.1"
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    got = _to_numpy(ex, "gelu_tanh(x)", _call(ex, "gelu_tanh", gelu_tanh, x.clone()))
    expected = F.gelu(x, approximate="tanh").numpy()
    if got.shape != expected.shape:
        fail(ex, f"gelu_tanh should act elementwise and keep the shape {expected.shape}, got {got.shape}.")
    if np.allclose(got, F.gelu(x).numpy(), atol=1e-9):
        fail(ex, "that is the exact GELU, x * Phi(x) with erf. This exercise asks for the tanh "
                 "approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).")
    close(ex, "gelu_tanh(x)", got, expected, atol=1e-7, rtol=1e-6,
          hint="Check the constants: sqrt(2 / pi) and 0.044715, and the cube x**3 inside the tanh.")
    confirm(ex, "gelu_tanh matches F.gelu(x, approximate='tanh') on [-6, 6]")


# ----------------------------------------------------------------------------------------------
def check_layer_norm(layer_norm) -> None:
    """Exercise 4.2: ``layer_norm(x, weight, bias, eps)`` normalises the last dimension of ``x``."""
    ex = "4.2"
    g = torch.Generator().manual_seed(42)
    x = torch.randn(2, 3, 8, generator=g, dtype=torch.float64) * 3 + 1
    weight = torch.randn(8, generator=g, dtype=torch.float64)
    bias = torch.randn(8, generator=g, dtype=torch.float64)
    eps = 1e-5
    got = _to_numpy(ex, "layer_norm(x, weight, bias, eps)",
                    _call(ex, "layer_norm", layer_norm, x.clone(), weight.clone(), bias.clone(), eps))
    expected = F.layer_norm(x, (8,), weight, bias, eps).numpy()
    if got.shape != expected.shape:
        fail(ex, f"layer_norm should keep the shape {tuple(x.shape)}, got {got.shape}.")
    centred = x - x.mean(-1, keepdim=True)
    unbiased = (centred / torch.sqrt(x.var(-1, keepdim=True, unbiased=True) + eps) * weight + bias).numpy()
    if np.allclose(got, unbiased, atol=1e-8):
        fail(ex, "you used the unbiased variance (divide by C - 1; torch.var's default). LayerNorm "
                 "divides by C: use x.var(-1, unbiased=False, keepdim=True) or ((x - mean)**2).mean(-1).")
    no_affine = F.layer_norm(x, (8,), eps=eps).numpy()
    if np.allclose(got, no_affine, atol=1e-8):
        fail(ex, "the normalisation is right, but multiply by `weight` (gamma) and add `bias` (beta) at "
                 "the end.")
    over_time = ((x - x.mean(-2, keepdim=True)) / torch.sqrt(x.var(-2, keepdim=True, unbiased=False) + eps)
                 * weight + bias).numpy()
    if np.allclose(got, over_time, atol=1e-8):
        fail(ex, "you normalised over the sequence (dim -2). LayerNorm normalises each position over "
                 "its C channels, the last dimension.")
    close(ex, "layer_norm(x, weight, bias, eps)", got, expected, atol=1e-8,
          hint="(x - mean) / sqrt(var + eps) * weight + bias, mean and var over the last dimension; "
               "eps goes inside the square root.")
    confirm(ex, "layer_norm matches F.layer_norm")


# ----------------------------------------------------------------------------------------------
def _count_block(d_model: int, d_ffn: int) -> int:
    """Parameters of one pre-LN block built from plain torch.nn layers (independent of gptlib)."""
    with torch.device("meta"):
        layers = [nn.LayerNorm(d_model), nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model),
                  nn.LayerNorm(d_model), nn.Linear(d_model, d_ffn), nn.Linear(d_ffn, d_model)]
    return sum(p.numel() for layer in layers for p in layer.parameters())


def check_block_parameters(block_parameters) -> None:
    """Exercise 4.3: ``block_parameters(d_model, d_ffn)`` counts one block's parameters."""
    ex = "4.3"
    for C, Fw in ((768, 3072), (1088, 4352), (64, 100), (5120, 20480)):
        got = _call(ex, "block_parameters", block_parameters, C, Fw)
        expected = _count_block(C, Fw)
        if isinstance(got, bool) or not isinstance(got, (int, np.integer, float)) or got != int(got):
            fail(ex, f"block_parameters should return a whole number, got {got!r}.")
        got = int(got)
        weights_only = 4 * C * C + 2 * C * Fw
        if got == weights_only:
            fail(ex, f"for d_model={C}, d_ffn={Fw} you counted only the weight matrices ({got:,}). Every "
                     f"Linear also has a bias (one per output), and each of the two LayerNorms has a "
                     f"gain and a bias of C values.")
        if got == expected - 4 * C:
            fail(ex, f"for d_model={C}, d_ffn={Fw} you are {4 * C:,} short: the two LayerNorms, each "
                     f"with a gain and a bias of C values.")
        if got != expected:
            fail(ex, f"for d_model={C}, d_ffn={Fw} you counted {got:,}; the block has {expected:,} "
                     f"(difference {got - expected:+,}). Count c_attn (C -> 3C), attn.c_proj (C -> C), "
                     f"mlp.c_fc (C -> F), mlp.c_proj (F -> C), each with a bias, and two LayerNorms.")
    confirm(ex, "block_parameters matches the parameters of torch.nn layers for four sizes")


# ----------------------------------------------------------------------------------------------
def _measure_block_flops(d_model: int, d_ffn: int, seq_len: int, n_head: int = 1) -> float:
    """Forward FLOPs per token of one block's matrix products, counted by torch's FlopCounterMode
    on a block written here with plain torch (attention over all seq_len keys, unmasked)."""
    C, Fw, T = d_model, d_ffn, seq_len
    c_attn, c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
    c_fc, c_proj2 = nn.Linear(C, Fw), nn.Linear(Fw, C)
    x = torch.randn(1, T, C)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        q, k, v = c_attn(x).split(C, dim=-1)
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C), dim=-1)
        x = x + c_proj(w @ v)
        x = x + c_proj2(F.gelu(c_fc(x)))
    return counter.get_total_flops() / T


def check_block_flops(block_flops) -> None:
    """Exercise 4.4: ``block_flops(d_model, d_ffn, seq_len)`` counts the forward matmul FLOPs of one
    block for one token that attends to ``seq_len`` keys (2 FLOPs per multiply-add)."""
    ex = "4.4"
    for C, Fw, T in ((64, 256, 16), (96, 200, 40), (32, 128, 128)):
        got = _call(ex, "block_flops", block_flops, C, Fw, T)
        if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
            fail(ex, f"block_flops should return a number, got {type(got).__name__}.")
        expected = _measure_block_flops(C, Fw, T)
        if math.isclose(got, expected / 2, rel_tol=1e-9):
            fail(ex, f"for C={C}, F={Fw}, T={T} you counted multiply-adds ({got:,.0f}); count 2 FLOPs per "
                     f"multiply-add (one multiply, one add).")
        if math.isclose(got, expected - 4 * T * C, rel_tol=1e-9):
            fail(ex, f"for C={C}, F={Fw}, T={T} you counted the weight matrices only. Attention also does "
                     f"Q K^T (T dot products of length C) and A V (a weighted sum of T vectors of length "
                     f"C): 2 T C FLOPs each.")
        if not math.isclose(got, expected, rel_tol=1e-9):
            fail(ex, f"for C={C}, F={Fw}, T={T} you got {got:,.0f}, torch's FLOP counter measures "
                     f"{expected:,.0f} per token. Matmuls: Q,K,V (C x 3C), output (C x C), FFN (C x F and "
                     f"F x C), plus Q K^T and A V over T keys.")
    confirm(ex, "block_flops matches torch's FLOP counter for three block shapes")
