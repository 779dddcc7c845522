"""Chapter 9's exercise checks confirm right answers (written more than one way), reject the stub
and the wrong answers readers write, each with the hint meant for it, and their references agree
with the simulator the chapter uses."""
import math

import numpy as np
import pytest
import torch

from gptlib.exercises import ExerciseError, ch09
from wse_demo import kernels
from wse_demo.fabric import Fabric, SramError
from wse_demo.wafer import WaferSpec


def passes(capsys, check, *args):
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    with pytest.raises(ExerciseError, match=match):
        check(*args)


# ----------------------------------------------------------------------------------------------
# 9.1 XY routes
# ----------------------------------------------------------------------------------------------
def right_route(src, dst):
    (r, c), (r2, c2) = src, dst
    step = 1 if c2 >= c else -1
    path = [(r, cc) for cc in range(c, c2 + step, step)]
    step = 1 if r2 >= r else -1
    return path + [(rr, c2) for rr in range(r + step, r2 + step, step)]


def route_by_hops(src, dst):  # written differently: one hop at a time
    (r, c), (r2, c2) = src, dst
    out = [[r, c]]
    while (r, c) != (r2, c2):
        if c != c2:
            c += (c2 > c) - (c2 < c)
        else:
            r += (r2 > r) - (r2 < r)
        out.append([r, c])
    return out


def only_forward(src, dst):  # range() without a negative step: empty going north or west
    (r, c), (r2, c2) = src, dst
    return [(r, cc) for cc in range(c, c2 + 1)] + [(rr, c2) for rr in range(r + 1, r2 + 1)]


def test_xy_route(capsys):
    passes(capsys, ch09.check_xy_route, right_route)
    passes(capsys, ch09.check_xy_route, route_by_hops)
    passes(capsys, ch09.check_xy_route, lambda s, d: Fabric(9, 9).route(s, d))  # the library agrees
    rejects(ch09.check_xy_route, ..., match="not answered yet")
    rejects(ch09.check_xy_route, 42, match="should be a function")
    yx = lambda s, d: [tuple(reversed(p)) for p in right_route(s[::-1], d[::-1])]  # column first
    rejects(ch09.check_xy_route, yx, match="not the XY one")
    rejects(ch09.check_xy_route, lambda s, d: right_route(s, d)[1:], match="both ends")
    rejects(ch09.check_xy_route, lambda s, d: right_route(s, d)[:-1], match="both ends")
    rejects(ch09.check_xy_route, lambda s, d: right_route(s, d)[::-1], match="wrong order")
    rejects(ch09.check_xy_route, only_forward, match="north or west")
    rejects(ch09.check_xy_route, lambda s, d: [s, d], match="own PE|both ends|expected a path")
    rejects(ch09.check_xy_route, lambda s, d: 1 / 0, match="ZeroDivisionError")
    rejects(ch09.check_xy_route, lambda s, d: 3, match="list of \\(row, col\\) pairs")


# ----------------------------------------------------------------------------------------------
# 9.2 wavelets
# ----------------------------------------------------------------------------------------------
def right_wavelets(M, K, N, rows, cols):
    R, Q = min(K, rows), min(N, cols)
    return M * (K * (Q - 1) + N * (R - 1))


def wavelets_per_value(M, K, N, rows, cols):  # written differently: sum over the values
    Q, R = min(N, cols), min(K, rows)
    return sum(Q - 1 for _ in range(M * K)) + sum(R - 1 for _ in range(M * N))


def test_matmul_wavelets(capsys):
    passes(capsys, ch09.check_matmul_wavelets, right_wavelets)
    passes(capsys, ch09.check_matmul_wavelets, wavelets_per_value)
    rejects(ch09.check_matmul_wavelets, ..., match="not answered yet")
    whole_grid = lambda M, K, N, rows, cols: M * (K * (cols - 1) + N * (rows - 1))
    rejects(ch09.check_matmul_wavelets, whole_grid, match="uses only")
    one_token = lambda M, K, N, rows, cols: right_wavelets(1, K, N, rows, cols)
    rejects(ch09.check_matmul_wavelets, one_token, match="one token")
    too_many = lambda M, K, N, rows, cols: M * (K * min(N, cols) + N * min(K, rows))
    rejects(ch09.check_matmul_wavelets, too_many, match="one hop too many")
    swapped = lambda M, K, N, rows, cols: M * (K * (min(K, rows) - 1) + N * (min(N, cols) - 1))
    rejects(ch09.check_matmul_wavelets, swapped, match="swapped")
    per_pe = lambda M, K, N, rows, cols: M * (min(K, rows) * (min(N, cols) - 1)
                                              + min(N, cols) * (min(K, rows) - 1))
    rejects(ch09.check_matmul_wavelets, per_pe, match="one wavelet per value")
    rejects(ch09.check_matmul_wavelets, lambda *a: "many", match="should be a number")


@pytest.mark.parametrize("shape", [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8),
                                   (2, 30, 3, 4, 4)])
def test_the_wavelet_reference_matches_the_simulator(shape):
    M, K, N, rows, cols = shape
    f = Fabric(rows, cols)
    kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
    (op,) = [r for r in f.log if r.kind == "matmul"]  # the multiply itself, not the trip off the edge
    assert op.wavelets == ch09._wavelets_brute_force(*shape)


# ----------------------------------------------------------------------------------------------
# 9.3 cycles
# ----------------------------------------------------------------------------------------------
def chunks(n, parts):
    return [n // parts + (p < n % parts) for p in range(parts)]


def right_cycles(M, K, N, rows, cols, fmac):
    R, Q = min(K, rows), min(N, cols)
    k, n = chunks(K, R), chunks(N, Q)
    first = 0
    for j in range(Q):
        send = -1
        for i in range(R):
            send = max(j + k[i] + math.ceil(k[i] * n[j] / fmac), send + 1)
        first = max(first, send + n[j])
    interval = max(max(k), max(n), max(math.ceil(a * b / fmac) for a in k for b in n))
    return (M - 1) * interval + first


def numpy_cycles(M, K, N, rows, cols, fmac):  # written differently: whole arrays at once
    R, Q = min(K, rows), min(N, cols)
    k = np.array(chunks(K, R))[:, None]
    n = np.array(chunks(N, Q))[None, :]
    compute = -(-k * n // fmac)
    ready = np.arange(Q)[None, :] + k + compute
    i = np.arange(R)[:, None]
    send = np.maximum.accumulate(ready - i, axis=0) + i
    first = int((send[-1] + n[0]).max())
    return int((M - 1) * max(k.max(), n.max(), compute.max()) + first)


def cycles_with(M, K, N, rows, cols, fmac, mistake):
    R, Q = (rows, cols) if mistake == "whole grid" else (min(K, rows), min(N, cols))
    if mistake == "floor":
        k, n = [max(K // R, 1)] * R, [max(N // Q, 1)] * Q
    else:
        k, n = chunks(K, R), chunks(N, Q)
    lanes = 4 if mistake == "fmac" else fmac
    first, gaps = 0, []
    for j in range(Q):
        send = None
        for i in range(R):
            c = math.ceil(k[i] * n[j] / lanes)
            ready = j + k[i] + c
            if send is None or mistake == "no chain":
                send = ready
            else:
                send = max(ready, send + (0 if mistake == "chain without hop" else 1))
            gaps.append(k[i] + n[j] + c if mistake == "sum" else max(k[i], n[j], c))
        first = max(first, send + n[j])
    if mistake == "serial":
        return M * first
    if mistake == "M intervals":
        return M * max(gaps) + first
    return (M - 1) * max(gaps) + first


@pytest.mark.parametrize("mistake, hint", [
    ("serial", "one after another"),
    ("M intervals", "M - 1 intervals"),
    ("sum", "largest of the three"),
    ("no chain", "PE above it"),
    ("chain without hop", "one more cycle"),
    ("floor", "first chunks are one"),
    ("fmac", "use the `fmac` argument"),
    ("whole grid", "uses only min"),
])
def test_matmul_cycles_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch09.check_matmul_cycles, lambda *a: cycles_with(*a, mistake), match=hint)


def test_matmul_cycles(capsys):
    passes(capsys, ch09.check_matmul_cycles, right_cycles)
    passes(capsys, ch09.check_matmul_cycles, numpy_cycles)
    rejects(ch09.check_matmul_cycles, ..., match="not answered yet")
    rejects(ch09.check_matmul_cycles, lambda *a: right_cycles(*a) + 0.5, match="whole number")
    rejects(ch09.check_matmul_cycles, lambda *a: 17, match="expected")


def test_the_cycle_reference_matches_the_simulator_for_any_number_of_lanes():
    rng = np.random.default_rng(9)
    cases = [(4, 8, 8, 4, 4, 4), (5, 10, 7, 3, 4, 4), (1, 50, 70, 6, 8, 4)]
    cases += [tuple(int(v) for v in rng.integers(1, 20, 5)) + (int(rng.choice([1, 2, 8, 16])),)
              for _ in range(40)]
    for M, K, N, rows, cols, fmac in cases:
        f = Fabric(wafer=WaferSpec.custom(rows, cols, flops_per_cycle=2 * fmac))
        kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
        (op,) = [r for r in f.log if r.kind == "matmul"]
        assert op.cycles == ch09._cycles_reference(M, K, N, rows, cols, fmac)


# ----------------------------------------------------------------------------------------------
# 9.4 the smallest grid
# ----------------------------------------------------------------------------------------------
def right_grid(K, N, sram_per_pe, bytes_per_value):
    n = 1
    while True:
        k, m = math.ceil(K / min(K, n)), math.ceil(N / min(N, n))
        if (k * m + k + 2 * m) * bytes_per_value <= sram_per_pe:
            return n
        n += 1


def bisect_grid(K, N, sram_per_pe, bytes_per_value):  # written differently: binary search
    def fits(n):
        k, m = -(-K // min(K, n)), -(-N // min(N, n))
        return (k * m + k + 2 * m) * bytes_per_value <= sram_per_pe
    lo, hi = 1, max(K, N)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def grid_tiles_only(K, N, sram_per_pe, bytes_per_value):
    n = 1
    while math.ceil(K / min(K, n)) * math.ceil(N / min(N, n)) * bytes_per_value > sram_per_pe:
        n += 1
    return n


def grid_evenly(K, N, sram_per_pe, bytes_per_value):
    return max(1, math.ceil(math.sqrt((K * N + K + 2 * N) * bytes_per_value / sram_per_pe)))


def test_smallest_grid(capsys):
    passes(capsys, ch09.check_smallest_grid, right_grid)
    passes(capsys, ch09.check_smallest_grid, bisect_grid)
    rejects(ch09.check_smallest_grid, ..., match="not answered yet")
    rejects(ch09.check_smallest_grid, grid_tiles_only, match="also holds one token")
    rejects(ch09.check_smallest_grid, grid_evenly, match="divided the whole matrix evenly")
    rejects(ch09.check_smallest_grid, lambda *a: right_grid(*a) - 1, match="one too small")
    rejects(ch09.check_smallest_grid, lambda *a: right_grid(*a) + 1, match="already fits")
    rejects(ch09.check_smallest_grid, lambda K, N, s, b: right_grid(K, N, s, 4),
            match="use `bytes_per_value`")
    rejects(ch09.check_smallest_grid, lambda K, N, s, b: right_grid(K, N, 48_000, b),
            match="expected|one too small|already fits")
    rejects(ch09.check_smallest_grid, lambda *a: 0, match="at least one PE")


@pytest.mark.parametrize("K, N, sram", [(768, 3072, 49152), (768, 3072, 98304), (256, 256, 49152),
                                        (100, 3, 64), (300, 300, 396)])
def test_the_grid_reference_matches_the_simulator(K, N, sram):
    n = ch09._smallest_side(K, N, sram, 4)  # the simulator holds float32, 4 bytes a value
    kernels.matmul(Fabric(n, n, sram_per_pe=sram), torch.randn(1, K), torch.randn(K, N))
    with pytest.raises(SramError):
        kernels.matmul(Fabric(n - 1, n - 1, sram_per_pe=sram), torch.randn(1, K), torch.randn(K, N))
