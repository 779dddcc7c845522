"""Checks for the exercises of chapter 9 (the Wafer-Scale Engine).

Each check computes its reference on its own, from the rules the chapter states and plain Python
(gptlib never imports the chapter's simulator, ``wse_demo``; the tests check that these references
agree with it), and names the plausible wrong answer when it sees one.
"""
from __future__ import annotations

import math

import numpy as np

from ._core import call_answer, confirm, fail, number, require_callable

SRAM_PER_PE = 48 * 1024  # bytes of SRAM per PE on WSE-2 (Cerebras SDK; the book's reference table)


def _split(n: int, parts: int) -> list[int]:
    """Sizes of ``parts`` nearly equal chunks of ``n``, the first ``n % parts`` one larger."""
    return [n // parts + (1 if p < n % parts else 0) for p in range(parts)]


def _whole_number(exercise: str, name: str, value) -> int:
    """``value`` as an int: a finite number with no fractional part."""
    got = number(exercise, name, value)
    if got != int(got):
        fail(exercise, f"`{name}` should be a whole number, got {got:g}.")
    return int(got)


# ----------------------------------------------------------------------------------------------
# Exercise 9.1: XY routing
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
    ex = "9.1"
    require_callable(ex, "xy_route", xy_route)
    rng = np.random.default_rng(91)
    cases = [((0, 0), (3, 5)), ((4, 4), (1, 2)), ((2, 3), (2, 3)), ((5, 0), (0, 0)),
             ((0, 7), (0, 2)), ((6, 1), (2, 1))]
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
        if src == dst:
            fail(ex, f"`xy_route{(src, dst)}`: a wavelet sent to its own PE visits just that PE, "
                     f"[{src}]; you returned {got}.")
        if len(got) == hops:
            fail(ex, f"`xy_route{(src, dst)}` has {len(got)} PEs; it should include both ends: "
                     f"{hops} hops visit {hops + 1} PEs.")
        if sorted(got) == sorted(expected):
            fail(ex, f"`xy_route{(src, dst)}` visits the right PEs in the wrong order.")
        if len(got) == len(expected) and got[0] == src and got[-1] == dst:
            fail(ex, f"`xy_route{(src, dst)}` takes a path of the right length but not the XY one: "
                     f"move along the row (change the column) first, then along the column.")
        if len(got) < len(expected) and (src[0] > dst[0] or src[1] > dst[1]):
            fail(ex, f"`xy_route{(src, dst)}` is too short: the route must also work when the "
                     f"destination is north or west of the source (count down).")
        fail(ex, f"`xy_route{(src, dst)}` returned {got}; expected a path of {hops} hops from "
                 f"{src} to {dst}.")
    confirm(ex, "your routes follow the row first, then the column, one hop per step")


# ----------------------------------------------------------------------------------------------
# Exercise 9.2: wavelets moved by a weight-stationary multiply
# ----------------------------------------------------------------------------------------------
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
    ex = "9.2"
    require_callable(ex, "matmul_wavelets", matmul_wavelets)
    rng = np.random.default_rng(93)
    cases = [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8), (2, 30, 3, 4, 4), (4, 7, 7, 7, 7),
             (1, 1, 5, 3, 3), (2, 9, 1, 3, 4)]
    cases += [tuple(int(v) for v in rng.integers(1, 20, 5)) for _ in range(15)]
    for M, K, N, rows, cols in cases:
        args = (M, K, N, rows, cols)
        got = call_answer(ex, "matmul_wavelets", matmul_wavelets, *args)
        expected = _wavelets_brute_force(*args)
        got = number(ex, f"matmul_wavelets{args}", got)
        if got == expected:
            continue
        R, Q = min(K, rows), min(N, cols)
        if got == M * (K * (cols - 1) + N * (rows - 1)) and (R, Q) != (rows, cols):
            fail(ex, f"for {args} you used the whole grid; a {K} x {N} matrix uses "
                     f"only min(K, rows) x min(N, cols) = {R} x {Q} PEs.")
        if got == M * (K * Q + N * R):
            fail(ex, "you counted one hop too many per row and column: a row of Q PEs has Q - 1 "
                     "links between them.")
        if got == K * (Q - 1) + N * (R - 1):
            fail(ex, "that is the traffic of one token; every one of the M rows of X makes the trip.")
        if got == M * (K * (R - 1) + N * (Q - 1)):
            fail(ex, f"for {args} the two directions are swapped: the K activation values cross "
                     f"the links between the columns (east), the N partial sums those between the "
                     f"rows (south).")
        if got == M * (R * (Q - 1) + Q * (R - 1)):
            fail(ex, "that counts one wavelet per PE and link; each link carries every value of its "
                     "row's slice of X (or of its column's slice of Y), one wavelet per value.")
        fail(ex, f"`matmul_wavelets{args}` gave {got:g}, expected {expected}. Each "
                 f"activation value hops along its row, each partial sum down its column.")
    confirm(ex, "your formula counts every hop of every activation and partial sum")


# ----------------------------------------------------------------------------------------------
# Exercise 9.3: predict the cycles of a weight-stationary multiply
# ----------------------------------------------------------------------------------------------
def _cycles_reference(M: int, K: int, N: int, rows: int, cols: int, fmac: int) -> int:
    """The chapter's cycle model, one PE at a time: arrival ``a = j + k_i``, compute
    ``c = ceil(k_i n_j / fmac)``, send ``s_ij = max(a + c, s_(i-1)j + 1)``, the first token done at
    ``max_j s_(R-1)j + n_j``, the next one ``max(k, n, c)`` cycles behind."""
    R, Q = min(K, rows), min(N, cols)
    k, n = _split(K, R), _split(N, Q)
    first, interval = 0, 0
    for j in range(Q):
        send_above = None
        for i in range(R):
            compute = -(-k[i] * n[j] // fmac)
            ready = j + k[i] + compute
            send = ready if send_above is None else max(ready, send_above + 1)
            send_above = send
            interval = max(interval, k[i], n[j], compute)
        first = max(first, send_above + n[j])
    return (M - 1) * interval + first


def check_matmul_cycles(matmul_cycles) -> None:
    """``matmul_cycles(M, K, N, rows, cols, fmac)`` -> cycles the weight-stationary multiply
    ``X (M, K) @ W (K, N)`` takes on a ``rows x cols`` grid of PEs doing ``fmac`` multiply-adds
    per cycle, by the cycle model of section 9.4 (no bias)."""
    ex = "9.3"
    require_callable(ex, "matmul_cycles", matmul_cycles)
    rng = np.random.default_rng(95)
    cases = [(4, 8, 8, 4, 4, 4), (5, 10, 7, 3, 4, 4), (1, 50, 70, 6, 8, 4), (3, 9, 9, 3, 3, 1),
             (2, 6, 6, 6, 6, 16), (7, 3, 20, 5, 5, 4), (1, 1, 1, 1, 1, 4), (6, 13, 4, 4, 8, 2),
             (2, 40, 40, 8, 8, 8)]
    for _ in range(25):
        M, K, N, rows, cols = (int(v) for v in rng.integers(1, 24, 5))
        cases.append((M, K, N, rows, cols, int(rng.choice([1, 2, 4, 8, 16]))))
    for case in cases:
        M, K, N, rows, cols, fmac = case
        got = _whole_number(ex, f"matmul_cycles{case}",
                            call_answer(ex, "matmul_cycles", matmul_cycles, *case))
        expected = _cycles_reference(*case)
        if got == expected:
            continue
        R, Q = min(K, rows), min(N, cols)
        first = expected - (M - 1) * _interval(K, N, R, Q, fmac)
        if M > 1 and got == M * first:
            fail(ex, f"for {case} you ran the tokens one after another; the next token enters "
                     f"as soon as the busiest PE or link is free, while earlier ones are still "
                     f"in flight.")
        if M > 1 and got == M * _interval(K, N, R, Q, fmac) + first:
            fail(ex, f"for {case}: token 0 starts at cycle 0, so the last token starts M - 1 "
                     f"intervals later, not M.")
        if got == _variant(case, interval="sum"):
            fail(ex, f"for {case}: a PE computes while its links move wavelets, so the interval "
                     f"between tokens is the largest of the three, not their sum.")
        if got == _variant(case, chain=False) or got == _variant(case, chain_step=0):
            fail(ex, f"for {case}: a PE cannot pass the partial sum on before the PE above it has "
                     f"sent it, and each step down the column takes one more cycle.")
        if got == _variant(case, split="floor"):
            fail(ex, f"for {case}: when K or N does not divide evenly the first chunks are one "
                     f"larger, and the biggest tile sets the pace.")
        if fmac != 4 and got == _cycles_reference(M, K, N, rows, cols, 4):
            fail(ex, f"for {case}: use the `fmac` argument ({fmac} multiply-adds per cycle), not "
                     f"WSE-2's 4.")
        if (R, Q) != (rows, cols) and got == _variant(case, use_whole_grid=True):
            fail(ex, f"for {case}: a {K} x {N} matrix uses only min(K, rows) x min(N, cols) = "
                     f"{R} x {Q} PEs.")
        fail(ex, f"`matmul_cycles{case}` gave {got}, expected {expected}. Follow the rules of "
                 f"section 9.4 for one token, PE by PE, then add the tokens behind it.")
    small = [matmul_cycles(4, 8, 8, 4, 4, f) for f in (4, 8)]
    big = [matmul_cycles(64, 50, 70, 6, 8, f) for f in (4, 8)]
    confirm(ex, f"your model predicts the simulator's cycles. Twice the lanes: the 4 x 4 example "
                f"{small[0]} -> {small[1]} cycles, the 64-token 50 x 70 multiply on 6 x 8 PEs "
                f"{big[0]:,} -> {big[1]:,}")


def _interval(K: int, N: int, R: int, Q: int, fmac: int) -> int:
    k, n = _split(K, R), _split(N, Q)
    return max(max(k), max(n), max(-(-a * b // fmac) for a in k for b in n))


def _variant(case, interval: str = "max", chain: bool = True, chain_step: int = 1,
             split: str = "exact", use_whole_grid: bool = False) -> int:
    """The cycle model with one of the mistakes readers make (for the hints)."""
    M, K, N, rows, cols, fmac = case
    R, Q = (rows, cols) if use_whole_grid else (min(K, rows), min(N, cols))
    if split == "floor":
        k, n = [max(K // R, 1)] * R, [max(N // Q, 1)] * Q
    elif use_whole_grid:
        k = [K // R + (1 if p < K % R else 0) for p in range(R)]
        n = [N // Q + (1 if p < N % Q else 0) for p in range(Q)]
    else:
        k, n = _split(K, R), _split(N, Q)
    first, gaps = 0, []
    for j in range(Q):
        above = None
        for i in range(R):
            c = -(-k[i] * n[j] // fmac)
            ready = j + k[i] + c
            send = ready if (above is None or not chain) else max(ready, above + chain_step)
            above = send
            gaps.append(k[i] + n[j] + c if interval == "sum" else max(k[i], n[j], c))
        first = max(first, above + n[j])
    return (M - 1) * max(gaps) + first


# ----------------------------------------------------------------------------------------------
# Exercise 9.4: the smallest square grid that holds a weight matrix
# ----------------------------------------------------------------------------------------------
def _pe_bytes(K: int, N: int, side: int, bytes_per_value: int) -> int:
    """Bytes the busiest PE (the first one: the largest tile) holds while the multiply runs on a
    ``side x side`` grid: its tile, one token's slice of X and two partial-sum vectors."""
    k = -(-K // min(K, side))
    n = -(-N // min(N, side))
    return (k * n + k + 2 * n) * bytes_per_value


def _smallest_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    side = 1
    while _pe_bytes(K, N, side, bytes_per_value) > sram_per_pe:
        side += 1
    return side


def _tiles_only_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    side = 1
    while -(-K // min(K, side)) * -(-N // min(N, side)) * bytes_per_value > sram_per_pe:
        side += 1
    return side


def _even_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    return max(1, math.ceil(math.sqrt((K * N + K + 2 * N) * bytes_per_value / sram_per_pe)))


def check_smallest_grid(smallest_grid) -> None:
    """``smallest_grid(K, N, sram_per_pe, bytes_per_value)`` -> the smallest side n of a square
    ``n x n`` grid on which the weight-stationary multiply of a ``(K, N)`` weight runs without a PE
    running out of SRAM: the busiest PE holds its tile, one token's slice of X and two partial-sum
    vectors, ``bytes_per_value`` bytes each."""
    ex = "9.4"
    require_callable(ex, "smallest_grid", smallest_grid)
    cases = [(768, 3072, SRAM_PER_PE, 4), (768, 3072, 2 * SRAM_PER_PE, 4), (768, 3072, SRAM_PER_PE, 2),
             (256, 256, SRAM_PER_PE, 4), (128, 128, SRAM_PER_PE, 4), (10, 7, SRAM_PER_PE, 4),
             (2048, 8192, SRAM_PER_PE, 2), (100, 3, 64, 4), (5, 5, 16, 4), (1, 1, 16, 4),
             (300, 300, 4 * 96 + 4 * 3, 4)]
    rng = np.random.default_rng(97)
    for _ in range(12):
        K, N = (int(v) for v in rng.integers(1, 3000, 2))
        cases.append((K, N, int(rng.choice([4096, 16384, SRAM_PER_PE])), int(rng.choice([2, 4]))))
    answers = {case: _whole_number(ex, f"smallest_grid{case}",
                                   call_answer(ex, "smallest_grid", smallest_grid, *case))
               for case in cases}
    wrong = [c for c in cases if answers[c] != _smallest_side(*c)]
    if wrong:
        # name the mistake whose predictions the answer matches on every case
        mistakes = [
            (_tiles_only_side, "the tiles alone fit on that grid, but while it multiplies a PE "
                               "also holds one token's slice of X and two partial-sum vectors"),
            (_even_side, "you divided the whole matrix evenly; the chunks are whole rows and "
                         "columns, and when K or N does not divide evenly the first PE gets one "
                         "more of each"),
            (lambda K, N, sram, value: _smallest_side(K, N, sram, 4),
             "use `bytes_per_value`, not always 4 bytes per value"),
            (lambda *c: _smallest_side(*c) - 1, "that grid is one too small: its first PE "
                                                "holds more than its SRAM"),
            (lambda *c: _smallest_side(*c) + 1, "a grid one smaller already fits: you returned "
                                                "the first side after it (check your loop's end)"),
        ]
        for predict, hint in mistakes:
            if all(answers[c] == predict(*c) for c in cases):
                case = wrong[0]
                fail(ex, f"for {case} you gave {answers[case]}: {hint}.")
        case = wrong[0]
        got, expected = answers[case], _smallest_side(*case)
        if got < 1:
            fail(ex, f"`smallest_grid{case}` gave {got}; a grid has at least one PE a side.")
        fail(ex, f"`smallest_grid{case}` gave {got}, expected {expected}. Find the bytes the "
                 f"first PE holds on an n x n grid and grow n until they fit.")
    base = _smallest_side(768, 3072, SRAM_PER_PE, 4)
    double = smallest_grid(768, 3072, 2 * SRAM_PER_PE, 4)
    confirm(ex, f"the 768 x 3072 matrix needs at least {base} x {base} PEs of 48 KB in float32, "
                f"{double} x {double} with twice the SRAM")
