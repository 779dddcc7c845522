"""Checks for the exercises of chapter 9 (the Wafer-Scale Engine).

Each check computes its reference on its own, from the published numbers and plain Python or
numpy (gptlib never imports the chapter's simulator, ``wse_demo``), and names the plausible wrong
answer when it sees one.
"""
from __future__ import annotations

import math

import numpy as np

from ..config import GPTConfig
from ._core import call_answer, confirm, fail, number, require_callable

# Published per-PE facts of WSE-2 (Cerebras SDK; the book's reference table)
SRAM_PER_PE = 48 * 1024
CLOCK_HZ = 1.1e9
FLOPS_PER_CYCLE = 8  # 4 FP16 multiply-add lanes (derived)
WSE2_CORES = 850_000


# ----------------------------------------------------------------------------------------------
# Exercise 9.2: XY routing
# ----------------------------------------------------------------------------------------------
def _xy_reference(src, dst) -> list[tuple[int, int]]:
    """Walk one hop at a time: first change the column, then the row."""
    (r, c), (r2, c2) = src, dst
    path = [(r, c)]
    while c != c2:
        c += 1 if c2 > c else -1
        path.append((r, c))
    while r != r2:
        r += 1 if r2 > r else -1
        path.append((r, c))
    return path


def check_xy_route(xy_route) -> None:
    """``xy_route(src, dst)``: two PEs ``(row, col)`` -> the list of PEs a wavelet visits, both ends
    included, moving along the row first (east or west), then along the column."""
    ex = "9.2"
    require_callable(ex, "xy_route", xy_route)
    rng = np.random.default_rng(91)
    cases = [((0, 0), (3, 5)), ((4, 4), (1, 2)), ((2, 3), (2, 3)), ((5, 0), (0, 0))]
    cases += [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in rng.integers(0, 9, (20, 4))]
    for src, dst in cases:
        got = call_answer(ex, "xy_route", xy_route, src, dst)
        try:
            got = [tuple(int(v) for v in pe) for pe in got]
        except (TypeError, ValueError):
            fail(ex, f"`xy_route{(src, dst)}` should return a list of (row, col) pairs, got {got!r}.")
        expected = _xy_reference(src, dst)
        if got == expected:
            continue
        hops = len(expected) - 1
        if len(got) == hops:
            fail(ex, f"`xy_route{(src, dst)}` has {len(got)} PEs; it should include both ends: "
                     f"{hops} hops visit {hops + 1} PEs.")
        if sorted(got) == sorted(expected):
            fail(ex, f"`xy_route{(src, dst)}` visits the right PEs in the wrong order.")
        if len(got) == len(expected) and got[0] == src and got[-1] == dst:
            fail(ex, f"`xy_route{(src, dst)}` takes a path of the right length but not the XY one: "
                     f"move along the row (change the column) first, then along the column. "
                     f"Expected {expected}.")
        fail(ex, f"`xy_route{(src, dst)}` returned {got}; expected {expected}.")
    confirm(ex, "your routes follow the row first, then the column, one hop per step")


# ----------------------------------------------------------------------------------------------
# Exercise 9.4: how many PEs hold one weight matrix
# ----------------------------------------------------------------------------------------------
def check_pes_for_ffn(pes_for_ffn) -> None:
    """``pes_for_ffn``: the fewest 48 KB PEs that can hold the first FFN matrix (C x F) of
    Cerebras-GPT 111M in FP16 (2 bytes per weight), weights only."""
    ex = "9.4"
    got = number(ex, "pes_for_ffn", pes_for_ffn)
    c = GPTConfig.cerebras("111M")
    weights = c.d_model * c.d_ffn
    expected = math.ceil(weights * 2 / SRAM_PER_PE)
    if got == expected:
        return confirm(ex, f"{weights:,} FP16 weights need {expected} PEs of 48 KB")
    if got == math.ceil(weights * 4 / SRAM_PER_PE):
        fail(ex, "that is the count for 4-byte (FP32) weights; the question asks for FP16, 2 bytes.")
    if got == math.ceil(weights / SRAM_PER_PE):
        fail(ex, "you divided the number of weights by the bytes per PE; each weight is 2 bytes.")
    if got == math.ceil(weights * 2 / 48_000):
        fail(ex, "48 KB here is 48 x 1024 = 49,152 bytes.")
    if got == weights * 2 / SRAM_PER_PE:
        fail(ex, "you cannot use a fraction of a PE: round up (math.ceil).")
    fail(ex, f"{got:g} is not it. Count the weights (C x F with C = d_model, F = d_ffn), multiply by "
             f"2 bytes, divide by 48 x 1024 and round up.")


# ----------------------------------------------------------------------------------------------
# Exercise 9.3: wavelets moved by a weight-stationary multiply
# ----------------------------------------------------------------------------------------------
def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if p < n % parts else 0) for p in range(parts)]


def _wavelets_brute_force(M: int, K: int, N: int, rows: int, cols: int) -> int:
    """Follow every value: each x[m, k] visits every PE of its row of the used grid (one hop between
    neighbours), and each running partial sum of y[m, n] goes down every PE of its column."""
    R, Q = min(K, rows), min(N, cols)
    row_of_k = [i for i, size in enumerate(_split(K, R)) for _ in range(size)]
    col_of_n = [j for j, size in enumerate(_split(N, Q)) for _ in range(size)]
    total = 0
    for _ in range(M):
        for i in row_of_k:  # x[m, k] enters PE (i, 0), then hops east to (i, Q - 1)
            total += sum(1 for _col in range(1, Q))
        for j in col_of_n:  # the partial sum of y[m, n] hops from (0, j) south to (R - 1, j)
            total += sum(1 for _row in range(1, R))
    return total


def check_matmul_wavelets(matmul_wavelets) -> None:
    """``matmul_wavelets(M, K, N, rows, cols)`` -> wavelets that cross a link between two PEs when
    ``X (M, K) @ W (K, N)`` runs weight stationary on a ``rows x cols`` grid (which uses
    ``min(K, rows) x min(N, cols)`` PEs): activations flowing east plus partial sums flowing south."""
    ex = "9.3"
    require_callable(ex, "matmul_wavelets", matmul_wavelets)
    rng = np.random.default_rng(93)
    cases = [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8), (2, 30, 3, 4, 4)]
    cases += [tuple(int(v) for v in rng.integers(1, 20, 5)) for _ in range(15)]
    for M, K, N, rows, cols in cases:
        got = call_answer(ex, "matmul_wavelets", matmul_wavelets, M, K, N, rows, cols)
        expected = _wavelets_brute_force(M, K, N, rows, cols)
        got = number(ex, f"matmul_wavelets{(M, K, N, rows, cols)}", got)
        if got == expected:
            continue
        R, Q = min(K, rows), min(N, cols)
        if got == M * (K * (cols - 1) + N * (rows - 1)) and (R, Q) != (rows, cols):
            fail(ex, f"for {(M, K, N, rows, cols)} you used the whole grid; a {K} x {N} matrix uses "
                     f"only min(K, rows) x min(N, cols) = {R} x {Q} PEs.")
        if got == M * (K * Q + N * R):
            fail(ex, "you counted one hop too many per row and column: a row of Q PEs has Q - 1 "
                     "links between them.")
        if got == K * (Q - 1) + N * (R - 1):
            fail(ex, "that is the traffic of one token; every one of the M rows of X makes the trip.")
        fail(ex, f"`matmul_wavelets{(M, K, N, rows, cols)}` gave {got:g}, expected {expected}. Each "
                 f"activation value hops along its row, each partial sum down its column.")
    confirm(ex, "your formula counts every hop of every activation and partial sum")


# ----------------------------------------------------------------------------------------------
# Exercise 9.1: the peak of a wafer
# ----------------------------------------------------------------------------------------------
def check_peak_pflops(peak_pflops) -> None:
    """``peak_pflops``: WSE-2's peak FP16 rate in PFLOP/s if all 850,000 cores do 4 multiply-adds
    per cycle at 1.1 GHz."""
    ex = "9.1"
    got = number(ex, "peak_pflops", peak_pflops)
    expected = WSE2_CORES * FLOPS_PER_CYCLE * CLOCK_HZ / 1e15
    if math.isclose(got, expected, rel_tol=0.01):
        return confirm(ex, f"about {expected:.2f} PFLOP/s, Andromeda's 120 PFLOP/s over 16 CS-2")
    if math.isclose(got, expected / 2, rel_tol=0.01):
        fail(ex, "a multiply-add counts as 2 FLOP: 4 multiply-adds per cycle are 8 FLOP per cycle.")
    if math.isclose(got, expected * 1e15, rel_tol=0.01):
        fail(ex, "that is in FLOP/s; the question asks for PFLOP/s (divide by 1e15).")
    if math.isclose(got, 757 * 996 * FLOPS_PER_CYCLE * CLOCK_HZ / 1e15, rel_tol=0.01):
        fail(ex, "that is the SDK grid's 753,972 PEs; the question asks for all 850,000 cores.")
    fail(ex, f"{got:g} PFLOP/s is not it: multiply cores x FLOP per cycle x cycles per second.")
