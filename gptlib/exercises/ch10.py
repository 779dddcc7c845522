"""Checks for the exercises of chapter 10 (mapping GPT onto the wafer).

Each check computes its reference on its own (a real :class:`gptlib.model.Block` built on the
``meta`` device for parameter counts, numpy for rates, the published table for FLOPs); gptlib never
imports the chapter's simulator, ``wse_demo``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..config import CEREBRAS_GPT, GPTConfig
from ._core import ExerciseError, confirm, fail, number, require_callable

WSE2_GRID = (757, 996)  # the SDK's PE grid of WSE-2
WSE2_CORES = 850_000
PE_FLOPS = 8 * 1.1e9  # FP16 FLOP/s of one PE (4 multiply-adds per cycle at 1.1 GHz, derived)
STREAMING_BANDWIDTH = 150e9  # bytes/s, the chapter's stated assumption
TRAINING_BYTES_PER_PARAM = 16  # FP16 weight + gradient, FP32 master copy + two Adam moments


# ----------------------------------------------------------------------------------------------
# Exercise 10.1: memory of one block in layer-pipelined training
# ----------------------------------------------------------------------------------------------
def _block_params(name: str) -> int:
    from ..model import Block

    with torch.device("meta"):
        block = Block(GPTConfig.cerebras(name))
    return sum(p.numel() for p in block.parameters())


def check_block_training_bytes(block_bytes) -> None:
    """``block_bytes``: bytes one transformer block of Cerebras-GPT 1.3B needs for its weights and
    Adam state in mixed-precision training (16 bytes per parameter; activations not included)."""
    ex = "10.1"
    got = number(ex, "block_bytes", block_bytes)
    params = _block_params("1.3B")
    expected = params * TRAINING_BYTES_PER_PARAM
    if got == expected:
        return confirm(ex, f"{params:,} parameters x 16 bytes = {expected / 1e6:,.0f} MB per block")
    c = GPTConfig.cerebras("1.3B")
    if got == 12 * c.d_model ** 2 * TRAINING_BYTES_PER_PARAM:
        fail(ex, "12 C^2 counts the weight matrices only; add the biases and the two LayerNorms' "
                 "gains and biases (13 C more parameters).")
    if got == params * 2:
        fail(ex, "2 bytes per parameter is inference in FP16; training also keeps the gradient, an "
                 "FP32 master copy and two Adam moments: 16 bytes.")
    if got == params:
        fail(ex, "that is the number of parameters; multiply by 16 bytes each.")
    fail(ex, f"{got:g} bytes is not it. Count a block's parameters (or build one on the meta device "
             f"and sum p.numel()), then multiply by 16.")


# ----------------------------------------------------------------------------------------------
# Exercise 10.3: the micro-batch at which weight streaming is compute-bound
# ----------------------------------------------------------------------------------------------
def check_compute_bound_micro_batch(micro_batch) -> None:
    """``micro_batch``: sequences of 2048 tokens per pass at which a layer's forward compute on the
    WSE-2 grid (757 x 996 PEs at 8.8 GFLOP/s each) takes as long as streaming its FP16 weights at
    150 GB/s, ignoring attention's score FLOPs (each weight: 2 FLOP per token, 2 bytes)."""
    ex = "10.3"
    got = number(ex, "micro_batch", micro_batch)
    peak = WSE2_GRID[0] * WSE2_GRID[1] * PE_FLOPS
    # compute for b sequences = 2 P b T / peak ; I/O = 2 P / bandwidth  ->  b = peak / (bandwidth T)
    expected = peak / (STREAMING_BANDWIDTH * 2048)
    if math.isclose(got, expected, rel_tol=0.02) or got == math.ceil(expected):
        return confirm(ex, f"about {expected:.1f} sequences ({expected * 2048:,.0f} tokens) per pass")
    if math.isclose(got, expected * 2048, rel_tol=0.02):
        fail(ex, "that is in tokens; divide by 2048 tokens per sequence.")
    if math.isclose(got, expected * 2, rel_tol=0.02) or math.isclose(got, expected / 2, rel_tol=0.02):
        fail(ex, "check the factors of 2: a weight is 2 bytes in FP16 and does 2 FLOP per token, so "
                 "they cancel.")
    if math.isclose(got, WSE2_CORES * PE_FLOPS / (STREAMING_BANDWIDTH * 2048), rel_tol=0.02):
        fail(ex, "use the grid's 757 x 996 PEs, not all 850,000 cores.")
    fail(ex, f"{got:g} is not it. Set compute time (2 P b T / peak) equal to I/O time "
             f"(2 P / bandwidth) and solve for b.")


# ----------------------------------------------------------------------------------------------
# Exercise 10.2: the rate of a pipeline
# ----------------------------------------------------------------------------------------------
def check_pipeline_rate(pipeline_rate) -> None:
    """``pipeline_rate(pes, flops_per_token)``: two equal-length sequences, the PEs of each stage and
    its forward FLOPs per token -> training tokens/s of the layer pipeline at peak (8.8 GFLOP/s per
    PE; training costs 3 x forward)."""
    ex = "10.2"
    require_callable(ex, "pipeline_rate", pipeline_rate)
    rng = np.random.default_rng(103)
    for _ in range(10):
        n = int(rng.integers(2, 12))
        pes = rng.integers(1_000, 100_000, n)
        flops = rng.uniform(1e6, 1e8, n)
        try:
            got = pipeline_rate(pes.tolist(), flops.tolist())
        except ExerciseError:
            raise
        except Exception as error:
            fail(ex, f"`pipeline_rate` raised {type(error).__name__}: {error} (pes and "
                     f"flops_per_token are lists of {n} numbers)")
        got = number(ex, "pipeline_rate(...)", got)
        stage = pes * PE_FLOPS / (3 * flops)
        expected = float(stage.min())
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        if math.isclose(got, float(stage.max()), rel_tol=1e-6):
            fail(ex, "a pipeline runs at the pace of its SLOWEST stage: take the minimum rate.")
        if math.isclose(got, 3 * expected, rel_tol=1e-6):
            fail(ex, "training does forward and backward: 3 x the forward FLOPs per token.")
        if math.isclose(got, float(pes.sum() * PE_FLOPS / (3 * flops.sum())), rel_tol=1e-6):
            fail(ex, "that is the rate of a perfectly balanced pipeline; these stages are not "
                     "balanced, so the slowest one sets the rate.")
        fail(ex, f"got {got:g} tokens/s, expected {expected:g}. Rate of a stage = its PEs x 8.8e9 "
                 f"/ (3 x its FLOPs per token).")
    confirm(ex, "your pipeline runs at the rate of its slowest stage")


# ----------------------------------------------------------------------------------------------
# Exercise 10.4: how long 13B took at least
# ----------------------------------------------------------------------------------------------
def check_training_days(days) -> None:
    """``days``: a lower bound on Cerebras-GPT 13B's training time, from the paper's training
    FLOPs and its number of CS-2 systems, each at the peak of all 850,000 cores."""
    ex = "10.4"
    got = number(ex, "days", days)
    run = CEREBRAS_GPT["13B"]
    per_system = WSE2_CORES * PE_FLOPS
    expected = run.reported_flops / (run.n_cs2 * per_system) / 86400
    if math.isclose(got, expected, rel_tol=0.02):
        return confirm(ex, f"at least {expected:.1f} days on {run.n_cs2} CS-2")
    if math.isclose(got, expected * run.n_cs2, rel_tol=0.02):
        fail(ex, f"that is on one CS-2; the paper used {run.n_cs2} of them.")
    if math.isclose(got, expected * 24, rel_tol=0.02):
        fail(ex, "that is in hours; the question asks for days.")
    if math.isclose(got, expected * 86400, rel_tol=0.02):
        fail(ex, "that is in seconds; divide by 86,400.")
    fail(ex, f"{got:g} days is not it: FLOPs / (systems x FLOP/s per system) / seconds per day.")
