"""Checks for the exercises of chapter 10 (mapping GPT onto the wafer).

Each check computes its reference on its own (a real :class:`gptlib.model.Block` built on the
``meta`` device for parameter counts, plain Python and numpy from the rules the chapter states);
gptlib never imports the chapter's simulator, ``wse_demo`` (the tests check that these references
agree with it).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..config import GPTConfig
from ._core import (call_answer, confirm, fail, number, refusing_packages,
                    require_callable)
from .ch03 import forbid

PE_FLOPS = 8 * 1.1e9  # FP16 FLOP/s of one PE (4 multiply-adds per cycle at 1.1 GHz, derived)
TRAINING_BYTES_PER_PARAM = 16  # FP16 weight + gradient, FP32 master copy + two Adam moments
BYTES_PER_VALUE = 2  # FP16 activations


# ----------------------------------------------------------------------------------------------
# Exercise 10.1: memory of one block in layer-pipelined training, for any FFN width
# ----------------------------------------------------------------------------------------------
WSE2_GRID_SRAM = 753_972 * 48 * 1024  # bytes: the SDK's 757 x 996 grid of 48 KB PEs (derived)


def _block_params(C: int, F: int) -> int:
    """Parameters of a real :class:`gptlib.model.Block` of width ``C`` and FFN width ``F``, built
    on the ``meta`` device (no memory is allocated)."""
    from ..model import Block

    config = GPTConfig(vocab_size=2, context_length=2, n_layer=1, n_head=1, d_model=C, d_ffn=F)
    with torch.device("meta"):
        block = Block(config)
    return sum(p.numel() for p in block.parameters())


def check_block_bytes(block_bytes) -> None:
    """``block_bytes(C, F)`` -> bytes one transformer block of width ``C`` and FFN width ``F``
    needs for its weights and Adam state in mixed-precision training (16 bytes per parameter:
    FP16 weight and gradient, FP32 master copy and two FP32 moments; no activations)."""
    ex = "10.1"
    require_callable(ex, "block_bytes", block_bytes)
    forbid(ex, "block_bytes", block_bytes, libraries=("gptlib", "torch", "wse_demo"),
           names=("numel", "parameters", "named_parameters", "param_count", "state_dict"),
           rule="count the parts from C and F, by arithmetic, without building a block.")
    block_bytes = refusing_packages(ex, "block_bytes", block_bytes,
                                    ("gptlib", "torch", "wse_demo"), "count the parts from C and "
                                    "F, by arithmetic, without building a block.")
    cases = [(2048, 8192), (768, 3072), (64, 100), (32, 32), (1, 1), (10, 3), (256, 2048),
             (5120, 20480), (96, 7)]
    answers = {c: number(ex, f"block_bytes{c}", call_answer(ex, "block_bytes", block_bytes, *c))
               for c in cases}
    expected = {c: _block_params(*c) * TRAINING_BYTES_PER_PARAM for c in cases}
    wrong = [c for c in cases if not math.isclose(answers[c], expected[c], rel_tol=1e-12)]
    if not wrong:
        per_block = block_bytes(2048, 8192)
        fit = int(WSE2_GRID_SRAM // per_block)
        return confirm(ex, f"a block of 1.3B's width needs {per_block / 1e6:,.0f} MB; WSE-2's grid "
                           f"holds the training state of {fit} such blocks, and 1.3B has 24")
    b = TRAINING_BYTES_PER_PARAM
    mistakes = [
        (lambda C, F: (12 * C * C + 13 * C) * b,
         "12 C^2 + 13 C is the count for F = 4 C only; here the FFN's width F is given: count its "
         "two matrices and its biases from F"),
        (lambda C, F: (4 * C * C + 2 * C * F) * b,
         "that counts the weight matrices only; add their biases (3C + C + F + C) and the two "
         "LayerNorms' gains and biases (4 C)"),
        (lambda C, F: (4 * C * C + 2 * C * F + 5 * C + F) * b,
         "you counted the matrices and their biases; the two LayerNorms have a gain and a bias "
         "each, 4 C more parameters"),
        (lambda C, F: (4 * C * C + 2 * C * F + 4 * C) * b,
         "you counted the matrices and the LayerNorms; the four linear layers also have biases "
         "(3 C + C + F + C)"),
        (lambda C, F: (4 * C * C + C * F + 8 * C + F) * b,
         "the FFN has two matrices, C x F and F x C"),
        (lambda C, F: (3 * C * C + 2 * C * F + 8 * C + F) * b,
         "attention has the Q, K, V projection (C x 3C) and the output projection (C x C)"),
        (lambda C, F: _block_params(C, F) * 2,
         "2 bytes per parameter is inference in FP16; training also keeps the gradient, an FP32 "
         "master copy and two Adam moments: 16 bytes"),
        (lambda C, F: _block_params(C, F),
         "that is the number of parameters; multiply by 16 bytes each"),
        (lambda C, F: _block_params(C, F) * b / 1e6,
         "that is in MB; the question asks for bytes"),
        (lambda C, F: _block_params(C, F) * b / 1e9,
         "that is in GB; the question asks for bytes"),
        (lambda C, F: _block_params(C, F) * b / 2 ** 20,
         "that is in MiB; the question asks for bytes"),
    ]
    for factor in (4, 8, 12):
        mistakes.append((lambda C, F, f=factor: _block_params(C, F) * f,
                         "count every copy: FP16 weight (2) and gradient (2), FP32 master weight "
                         "(4) and two FP32 Adam moments (4 + 4)"))
    for predict, hint in mistakes:
        if all(math.isclose(answers[c], predict(*c), rel_tol=1e-9) for c in cases):
            fail(ex, f"for C, F = {wrong[0]} you gave {answers[wrong[0]]:,.6g}: {hint}.")
    c = wrong[0]
    fail(ex, f"`block_bytes{c}` gave {answers[c]:,.6g} bytes, expected {expected[c]:,}. Count the "
             f"parameters of each part of a block (its four matrices, their biases, two "
             f"LayerNorms with a gain and a bias each), then multiply by 16.")


# ----------------------------------------------------------------------------------------------
# Exercise 10.3: the rate of a pipeline (after 10.2 on the page)
# ----------------------------------------------------------------------------------------------
def check_pipeline_rate(pipeline_rate) -> None:
    """``pipeline_rate(pes, flops_per_token, passes)``: two equal-length lists, the PEs of each stage
    and its forward FLOPs per token, and the forward passes' worth of FLOPs one training step costs
    (3 saving all activations, 4 recomputing them) -> training tokens/s of the layer pipeline at
    peak, 8.8 GFLOP/s per PE."""
    ex = "10.3"
    require_callable(ex, "pipeline_rate", pipeline_rate)
    rng = np.random.default_rng(103)
    cases = [([1000, 1000], [1e6, 1e6], 3), ([10, 20, 30], [3e6, 1e6, 3e6], 4), ([7], [5e5], 3)]
    for _ in range(12):
        n = int(rng.integers(2, 12))
        cases.append((rng.integers(1_000, 100_000, n).tolist(), rng.uniform(1e6, 1e8, n).tolist(),
                      int(rng.choice([3, 4]))))
    for pes, flops, passes in cases:
        given = (list(pes), list(flops))
        got = call_answer(ex, "pipeline_rate", pipeline_rate, given[0], given[1], passes)
        if given != (list(pes), list(flops)):
            fail(ex, "`pipeline_rate` changed the lists it was given; compute the rate without "
                     "modifying them.")
        got = number(ex, "pipeline_rate(...)", got)
        p, f = np.array(pes, float), np.array(flops, float)
        stage = p * PE_FLOPS / (passes * f)
        expected = float(stage.min())
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        if math.isclose(got, float(stage.max()), rel_tol=1e-6):
            fail(ex, "a pipeline runs at the pace of its SLOWEST stage: take the minimum rate.")
        if math.isclose(got, float((p * PE_FLOPS / (3 * f)).min()), rel_tol=1e-6):
            fail(ex, f"use the `passes` argument: recomputing activations costs {passes} forward "
                     f"passes' worth of FLOPs per step, not always 3.")
        if math.isclose(got, passes * expected, rel_tol=1e-6):
            fail(ex, "that is the forward-only rate; a training step costs `passes` times the "
                     "forward FLOPs.")
        if math.isclose(got, float(p.sum() * PE_FLOPS / (passes * f.sum())), rel_tol=1e-6):
            fail(ex, "that is the rate of a perfectly balanced pipeline; these stages are not "
                     "balanced, so the slowest one sets the rate.")
        if math.isclose(got, float(stage.mean()), rel_tol=1e-6):
            fail(ex, "the stages work on different tokens at once, so they do not average out: the "
                     "slowest one sets the rate.")
        if math.isclose(got, float(1 / (1 / stage).sum()), rel_tol=1e-6):
            fail(ex, "that adds the stages' times per token, as if one token went through them "
                     "alone; in a pipeline they work at the same time.")
        for unit, scale in (("thousands", 1e3), ("millions", 1e6)):
            if math.isclose(got * scale, expected, rel_tol=1e-6):
                fail(ex, f"that is the rate in {unit} of tokens/s; return tokens per second.")
        fail(ex, f"got {got:g} tokens/s, expected {expected:g}. Rate of a stage = its PEs x 8.8e9 "
                 f"/ (passes x its FLOPs per token).")
    confirm(ex, "your pipeline runs at the rate of its slowest stage")


# ----------------------------------------------------------------------------------------------
# Exercise 10.2: activation memory of a layer pipeline, under both policies
# ----------------------------------------------------------------------------------------------
def _activation_bytes(C: int, F: int, L: int, T: int, policy: str, in_flight_offset: int = 0,
                      working: bool = True, per_value: int = BYTES_PER_VALUE,
                      saved: int | None = None, input_twice: bool = False) -> float:
    """Activation bytes of ``L`` block stages: stage s (0-based) has ``L - s`` sequences in flight.
    Recomputing, each keeps its input (C per token) except the one being recomputed, which has its
    full ``8 C + 2 F`` (its input among them). The keyword arguments reproduce readers' mistakes
    (for the hints)."""
    block = 8 * C + 2 * F if saved is None else saved
    total = 0
    for s in range(L):
        in_flight = L - s + in_flight_offset
        if policy == "save all":
            total += in_flight * block * T
        else:
            kept = in_flight if (input_twice or not working) else in_flight - 1
            total += kept * C * T + (block * T if working else 0)
    return float(total * per_value)


def check_pipeline_activation_bytes(pipeline_activation_bytes) -> None:
    """``pipeline_activation_bytes(C, F, L, T, policy)`` -> bytes of FP16 activations the ``L`` block
    stages of a layer pipeline keep for backward (stage ``s``, counting from 0, has ``L - s``
    sequences of ``T`` tokens in flight): ``"save all"`` keeps ``8 C + 2 F`` values per token of each
    sequence in flight; ``"recompute"`` keeps ``C`` per token (the block's input) of each, except
    the one being recomputed, which has all its ``8 C + 2 F`` (its input among them)."""
    ex = "10.2"
    require_callable(ex, "pipeline_activation_bytes", pipeline_activation_bytes)
    cases = [(2048, 8192, 24, 2048), (768, 3072, 10, 2048), (64, 100, 1, 8), (32, 128, 3, 16),
             (5120, 20480, 40, 2048), (16, 40, 7, 5), (256, 1024, 2, 1)]
    rng = np.random.default_rng(105)
    for _ in range(8):
        C, F, L, T = (int(v) for v in rng.integers(1, 300, 4))
        cases.append((C, F, L, T))
    answers = {}
    for C, F, L, T in cases:
        for policy in ("save all", "recompute"):
            args = (C, F, L, T, policy)
            answers[args] = number(ex, f"pipeline_activation_bytes{args}",
                                   call_answer(ex, "pipeline_activation_bytes",
                                               pipeline_activation_bytes, *args))
    wrong = [a for a in answers if not math.isclose(answers[a], _activation_bytes(*a), rel_tol=1e-9)]
    if wrong:
        swap = {"save all": "recompute", "recompute": "save all"}
        mistakes = [
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, swap[p]),
             "the two policies are swapped: saving all keeps more, recomputing keeps less"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, per_value=1),
             "that is a count of values; the question asks for bytes, 2 per FP16 value"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p) / T,
             "that is per token; every sequence in flight has T tokens"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, working=False),
             "recomputing still needs room for one sequence's full activations (8 C + 2 F per "
             "token) while its backward pass runs"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, input_twice=True),
             "the sequence being recomputed has its full 8 C + 2 F per token, and its input is one "
             "of them: count its C once, not also among the kept inputs"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, "save all"),
             "recomputing keeps only each layer's input for the sequences in flight, not all "
             "their activations: that is what it saves"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, saved=16 * C),
             "use the given F: 8 C + 2 F is 16 C only when F = 4 C"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, saved=8 * C + F),
             "the FFN keeps its hidden layer twice, before and after GELU: 2 F"),
            (lambda C, F, L, T, p: _one_in_flight(C, F, L, T, p),
             "every stage keeps one sequence there; stage s still holds L - s sequences that "
             "are waiting for their backward pass"),
            (lambda C, F, L, T, p: _all_in_flight(C, F, L, T, p),
             "not every stage holds L sequences: the later a stage, the sooner its backward pass "
             "comes, so stage s holds L - s"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, in_flight_offset=1),
             "one sequence too many per stage: stage s (from 0) holds L - s, the last stage 1"),
            (lambda C, F, L, T, p: _activation_bytes(C, F, L, T, p, in_flight_offset=-1),
             "one sequence too few per stage: stage s (from 0) holds L - s, so the last stage "
             "still holds 1"),
        ]
        for predict, hint in mistakes:
            if all(math.isclose(answers[a], predict(*a), rel_tol=1e-9) for a in answers):
                fail(ex, f"for {wrong[0]} you gave {answers[wrong[0]]:,.0f}: {hint}.")
        a = wrong[0]
        fail(ex, f"`pipeline_activation_bytes{a}` gave {answers[a]:,.0f}, expected "
                 f"{_activation_bytes(*a):,.0f}. Add, stage by stage, the sequences in flight times "
                 f"the values each keeps per token, times T tokens, times 2 bytes.")
    save_all = pipeline_activation_bytes(2048, 8192, 24, 2048, "save all")
    recompute = pipeline_activation_bytes(2048, 8192, 24, 2048, "recompute")
    confirm(ex, f"for 1.3B's 24 blocks {save_all / 1e9:.1f} GB saving all, {recompute / 1e9:.1f} GB "
                f"recomputing")


def _one_in_flight(C, F, L, T, policy):
    """Every stage holds one sequence (recomputing: the one being recomputed, in full)."""
    return float(L * (8 * C + 2 * F) * T * BYTES_PER_VALUE)


def _all_in_flight(C, F, L, T, policy):
    """Every stage holds L sequences."""
    block = 8 * C + 2 * F
    per_stage = L * block * T if policy == "save all" else (L - 1) * C * T + block * T
    return float(L * per_stage * BYTES_PER_VALUE)


# ----------------------------------------------------------------------------------------------
# Exercise 10.4: how many systems keep weight streaming compute-bound
# ----------------------------------------------------------------------------------------------
def _micro_batch(batch: int, n: int, max_micro: int) -> float:
    share = batch / n
    return share / math.ceil(share / min(share, max_micro))


def _compute_bound_systems(batch: int, b_star: float, max_micro: int, n_max: int) -> list[int]:
    return [n for n in range(1, min(n_max, batch) + 1) if _micro_batch(batch, n, max_micro) >= b_star]


# 13B on WSE-2, recomputing: how many sequences fit on the wafer at once (chapter 10's
# placement.weight_streaming("13B", "WSE-2").max_micro_batch; gptlib does not import wse_demo, so
# the chapter's hidden check and a test keep the two equal)
_13B_MAX_MICRO = 31


def check_compute_bound_systems(compute_bound_systems) -> None:
    """``compute_bound_systems(batch, b_star, max_micro, n_max)`` -> the sorted list of every number
    of systems ``N`` from 1 to ``min(n_max, batch)`` at which each system's micro-batch is at least
    ``b_star`` sequences: a system's share ``batch / N`` (possibly fractional) is split into as few
    equal micro-batches of at most ``max_micro`` sequences as it takes. A micro-batch exactly equal
    to ``b_star`` counts as compute-bound."""
    ex = "10.4"
    require_callable(ex, "compute_bound_systems", compute_bound_systems)
    cases = [(1080, 21.6, 30, 64), (528, 21.6, 85, 32), (120, 20.0, 40, 12), (120, 21.6, 149, 8),
             (1040, 21.6, 44, 64), (264, 22.0, 131, 16), (100, 10.0, 25, 100), (7, 1.0, 2, 10),
             (90, 30.0, 30, 5), (64, 3.5, 7, 64), (6, 0.5, 4, 12), (100, 10.0, 8, 5)]
    rng = np.random.default_rng(107)
    for _ in range(10):
        batch = int(rng.integers(1, 1200))
        cases.append((batch, round(float(rng.uniform(1, 40)), 1), int(rng.integers(1, 150)),
                      int(rng.integers(1, 130))))
    answers = {}
    for case in cases:
        got = call_answer(ex, "compute_bound_systems", compute_bound_systems, *case)
        try:
            got = [int(n) for n in got]
        except (TypeError, ValueError):
            fail(ex, f"`compute_bound_systems{case}` should return a list of whole numbers, got "
                     f"{got!r}.")
        answers[case] = got
    wrong = [c for c in cases if answers[c] != _compute_bound_systems(*c)]
    if wrong:
        mistakes = [
            (lambda b, s, m, n: [k for k in range(1, min(n, b) + 1) if b / k >= s],
             "you compared each system's whole share with b*; the share is split into "
             "micro-batches of at most max_micro sequences, and each pass streams the weights "
             "again, so compare the micro-batch"),
            (lambda b, s, m, n: [k for k in range(1, min(n, b) + 1) if _micro_batch(b, k, m) > s],
             "a micro-batch exactly equal to b* counts as compute-bound (>=, not >)"),
            (lambda b, s, m, n: [k for k in range(1, min(n, b) + 1) if min(b / k, m) >= s],
             "the share is split into equal micro-batches, so each holds share / (number of "
             "micro-batches), not max_micro"),
            (lambda b, s, m, n: [k for k in range(1, min(n, b) + 1) if _micro_floor(b, k, m) >= s],
             "as few micro-batches as it takes: round the number of micro-batches up (a share of "
             "31 with max_micro 30 needs two)"),
            (lambda b, s, m, n: [k for k in range(1, min(n, b) + 1)
                                 if _micro_batch(b // k * k, k, m) >= s],
             "a system's share batch / N may be fractional; do not round it down"),
            (_first_run, "the micro-batch does not shrink steadily as N grows (one more system can "
                         "mean one micro-batch fewer): test every n_sys, not only until the first "
                         "that fails"),
            (lambda b, s, m, n: [k for k in range(1, min(n, b)) if _micro_batch(b, k, m) >= s],
             "the range includes its end: N goes from 1 to min(n_max, batch)"),
            (lambda b, s, m, n: [k for k in range(1, n + 1) if _micro_batch(b, k, m) >= s],
             "no more systems than sequences: N goes up to min(n_max, batch)"),
        ]
        for predict, hint in mistakes:
            try:
                same = all(answers[c] == predict(*c) for c in cases)
            except ZeroDivisionError:
                same = False
            if same:
                fail(ex, f"for {wrong[0]}: {hint}.")
        c = wrong[0]
        batch, b_star, max_micro, n_max = c
        mine, ref = set(answers[c]), set(_compute_bound_systems(*c))
        first = min(mine ^ ref)
        if not 1 <= first <= min(n_max, batch):
            fail(ex, f"for {c} your list has N = {first}; N goes from 1 to min(n_max, batch) = "
                     f"{min(n_max, batch)}.")
        micro = _micro_batch(batch, first, max_micro)
        side = "left out" if first in ref else "included"
        fail(ex, f"for {c} you {side} N = {first}: there each system's share, {batch / first:.4g} "
                 f"sequences, splits into micro-batches of {micro:.4g}, against b* = {b_star:g}. "
                 f"For each N, split the share into micro-batches and compare one with b*.")
    bound = compute_bound_systems(1080, 21.6, _13B_MAX_MICRO, 64)
    gaps = sorted(set(range(1, bound[-1] + 1)) - set(bound))
    confirm(ex, f"for 13B's batch of 1080, every n_sys up to {bound[-1]} is compute-bound except "
                f"{_ranges(gaps)}")


def _ranges(numbers: list[int]) -> str:
    """``[17, 26, 27, 28]`` -> ``"17 and 26-28"``."""
    if not numbers:
        return "none"
    runs = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    return " and ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else parts[0]


def _micro_floor(batch, n, max_micro):
    share = batch / n
    return share / max(1, math.floor(share / min(share, max_micro)))


def _first_run(batch, b_star, max_micro, n_max):
    out = []
    for n in range(1, min(n_max, batch) + 1):
        if _micro_batch(batch, n, max_micro) < b_star:
            break
        out.append(n)
    return out
