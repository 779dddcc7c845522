"""Chapter 9's exercise checks confirm right answers, reject the stub and plausible wrong answers,
and their references agree with the simulator the chapter uses."""
import math

import numpy as np
import pytest
import torch

from gptlib.exercises import ExerciseError, ch09
from wse_demo import kernels
from wse_demo.fabric import Fabric


def passes(capsys, check, *args):
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    with pytest.raises(ExerciseError, match=match):
        check(*args)


def right_route(src, dst):
    (r, c), (r2, c2) = src, dst
    step = 1 if c2 >= c else -1
    path = [(r, cc) for cc in range(c, c2 + step, step)]
    step = 1 if r2 >= r else -1
    return path + [(rr, c2) for rr in range(r + step, r2 + step, step)]


def test_xy_route(capsys):
    passes(capsys, ch09.check_xy_route, right_route)
    passes(capsys, ch09.check_xy_route, lambda s, d: Fabric(9, 9).route(s, d))  # the library agrees
    rejects(ch09.check_xy_route, ..., match="not answered yet")
    yx = lambda s, d: [tuple(reversed(p)) for p in right_route(s[::-1], d[::-1])]  # column first
    rejects(ch09.check_xy_route, yx, match="not the XY one")
    rejects(ch09.check_xy_route, lambda s, d: right_route(s, d)[1:], match="both ends")
    rejects(ch09.check_xy_route, lambda s, d: 1 / 0, match="ZeroDivisionError")


def test_pes_for_ffn(capsys):
    passes(capsys, ch09.check_pes_for_ffn, math.ceil(768 * 3072 * 2 / (48 * 1024)))
    rejects(ch09.check_pes_for_ffn, ..., match="not answered yet")
    rejects(ch09.check_pes_for_ffn, math.ceil(768 * 3072 * 4 / 49152), match="FP32")
    rejects(ch09.check_pes_for_ffn, math.ceil(768 * 3072 * 2 / 48000), match="49,152")
    rejects(ch09.check_pes_for_ffn, "96", match="should be a number")


def right_wavelets(M, K, N, rows, cols):
    R, Q = min(K, rows), min(N, cols)
    return M * (K * (Q - 1) + N * (R - 1))


def test_matmul_wavelets(capsys):
    passes(capsys, ch09.check_matmul_wavelets, right_wavelets)
    rejects(ch09.check_matmul_wavelets, ..., match="not answered yet")
    whole_grid = lambda M, K, N, rows, cols: M * (K * (cols - 1) + N * (rows - 1))
    rejects(ch09.check_matmul_wavelets, whole_grid, match="uses only")
    one_token = lambda M, K, N, rows, cols: right_wavelets(1, K, N, rows, cols)
    rejects(ch09.check_matmul_wavelets, one_token, match="one token")


@pytest.mark.parametrize("shape", [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8), (2, 30, 3, 4, 4)])
def test_the_wavelet_reference_matches_the_simulator(shape):
    M, K, N, rows, cols = shape
    f = Fabric(rows, cols)
    kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
    (op,) = [r for r in f.log if r.kind == "matmul"]  # the multiply itself, not the trip off the edge
    assert op.wavelets == ch09._wavelets_brute_force(*shape)


def test_peak_pflops(capsys):
    passes(capsys, ch09.check_peak_pflops, 850_000 * 8 * 1.1e9 / 1e15)
    rejects(ch09.check_peak_pflops, ..., match="not answered yet")
    rejects(ch09.check_peak_pflops, 850_000 * 4 * 1.1e9 / 1e15, match="2 FLOP")
    rejects(ch09.check_peak_pflops, 757 * 996 * 8 * 1.1e9 / 1e15, match="850,000")
    rejects(ch09.check_peak_pflops, float("nan"), match="finite")
