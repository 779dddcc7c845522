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

from exercise_checks import passes, rejects

SIMULATOR = "without running wse_demo's simulator"


# ----------------------------------------------------------------------------------------------
# 9.1 the links of an XY route
# ----------------------------------------------------------------------------------------------
def right_links(src, dst):
    (r, c), (r2, c2) = src, dst
    out = []
    while c != c2:
        if c2 > c:
            out.append(("east", r, c))
            c += 1
        else:
            out.append(("west", r, c - 1))
            c -= 1
    while r != r2:
        if r2 > r:
            out.append(("south", r, c))
            r += 1
        else:
            out.append(("north", r - 1, c))
            r -= 1
    return out


def links_from_pes(src, dst):  # written differently: the PEs of the route, then their pairs
    (r, c), (r2, c2) = src, dst
    step = 1 if c2 >= c else -1
    pes = [(r, cc) for cc in range(c, c2 + step, step)]
    step = 1 if r2 >= r else -1
    pes += [(rr, c2) for rr in range(r + step, r2 + step, step)]
    out = []
    for (a, b), (a2, b2) in zip(pes, pes[1:]):
        if a == a2:
            out.append(["east", a, b] if b2 > b else ["west", a, b2])
        else:
            out.append(["south", a, b] if a2 > a else ["north", a2, b])
    return out


def links_with(src, dst, mistake):
    (r, c), (r2, c2) = src, dst
    moves = []
    row_leg = [("col", 1 if c2 > c else -1)] * abs(c2 - c)
    col_leg = [("row", 1 if r2 > r else -1)] * abs(r2 - r)
    if mistake == "no negative step":  # range() without a negative step: nothing going back
        return ([("east", r, cc) for cc in range(c, c2)]
                + [("south", rr, c2) for rr in range(r, r2)])
    moves = col_leg + row_leg if mistake == "column first" else row_leg + col_leg
    out = []
    for axis, step in moves:
        if axis == "col":
            if step > 0:
                out.append(("east", r, c))
            elif mistake == "by axis":
                out.append(("east", r, c - 1))
            else:
                out.append(("west", r, c if mistake == "source index" else c - 1))
            c += step
        else:
            if step > 0:
                out.append(("south", r, c))
            elif mistake == "by axis":
                out.append(("south", r - 1, c))
            else:
                out.append(("north", r if mistake == "source index" else r - 1, c))
            r += step
    if mistake == "reversed":
        return out[::-1]
    if mistake == "self link" and src == dst:
        return [("east", r, c)]
    if mistake == "duplicate" and out:
        return out[:1] + out
    if mistake == "missing last" and out:
        return out[:-1]
    return out


@pytest.mark.parametrize("mistake, hint", [
    ("column first", "YX route"), ("source index", "indexed by its west or north end"),
    ("by axis", "crosses a west link"), ("reversed", "wrong order"),
    ("no negative step", "north or west of the source"), ("self link", "crosses no link"),
    ("duplicate", "appears twice"), ("missing last", "one link each"),
])
def test_xy_links_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch09.check_xy_links, lambda s, d: links_with(s, d, mistake), match=hint)


def test_xy_links(capsys):
    passes(capsys, ch09.check_xy_links, right_links)
    passes(capsys, ch09.check_xy_links, links_from_pes)
    rejects(ch09.check_xy_links, ..., match="not answered yet")
    rejects(ch09.check_xy_links, 42, match="should be a function")
    # the route's PEs instead of its links (the shape Fabric.route returns), and the simulator itself
    rejects(ch09.check_xy_links, lambda s, d: ch09._route_pes(s, d), match="returned PEs")
    rejects(ch09.check_xy_links, lambda s, d: Fabric(9, 9).route(s, d), match=SIMULATOR)
    rejects(ch09.check_xy_links, lambda s, d: 1 / 0, match="ZeroDivisionError")
    rejects(ch09.check_xy_links, lambda s, d: 3, match="list of \\(direction, row, col\\)")
    rejects(ch09.check_xy_links, lambda s, d: [("east", "a", 0)], match="whole numbers")


def test_the_links_reference_is_what_the_fabric_counts():
    rng = np.random.default_rng(0)
    for a, b, c, d in rng.integers(0, 7, (30, 4)):
        src, dst = (int(a), int(b)), (int(c), int(d))
        f = Fabric(7, 7)
        f.add_routes([src], [dst], [1])
        counted = sorted((name, int(r), int(col)) for name, arr in f.links.items()
                         for r, col in zip(*np.nonzero(arr)))
        assert sorted(ch09._links_reference(src, dst)) == counted


# ----------------------------------------------------------------------------------------------
# 9.2 wavelets
# ----------------------------------------------------------------------------------------------
def right_wavelets(M, K, N, rows, cols):
    R, Q = min(K, rows), min(N, cols)
    return M * (K * (Q - 1) + N * (R - 1)) + M * N * (rows - R)  # the multiply, then the drain


def wavelets_per_value(M, K, N, rows, cols):  # written differently: sum over the values
    Q = min(N, cols)
    return sum(Q - 1 for _ in range(M * K)) + sum(rows - 1 for _ in range(M * N))


def wavelets_measured(M, K, N, rows, cols):  # not an answer: it runs the simulator
    f = Fabric(rows, cols)
    kernels.matmul(f, torch.zeros(M, K), torch.zeros(K, N))
    return f.stats().wavelets


def test_matmul_wavelets(capsys):
    passes(capsys, ch09.check_matmul_wavelets, right_wavelets)
    passes(capsys, ch09.check_matmul_wavelets, wavelets_per_value)
    rejects(ch09.check_matmul_wavelets, wavelets_measured, match=SIMULATOR)
    rejects(ch09.check_matmul_wavelets, ..., match="not answered yet")
    no_drain = lambda M, K, N, rows, cols: M * (K * (min(N, cols) - 1) + N * (min(K, rows) - 1))
    rejects(ch09.check_matmul_wavelets, no_drain, match="unused rows below it")
    whole_grid = lambda M, K, N, rows, cols: M * (K * (cols - 1) + N * (rows - 1))
    rejects(ch09.check_matmul_wavelets, whole_grid, match="only through the min\\(N, cols\\)")
    one_token = lambda M, K, N, rows, cols: right_wavelets(1, K, N, rows, cols)
    rejects(ch09.check_matmul_wavelets, one_token, match="one token")
    too_many = lambda M, K, N, rows, cols: M * (K * min(N, cols) + N * rows)
    rejects(ch09.check_matmul_wavelets, too_many, match="one hop too many")
    rejects(ch09.check_matmul_wavelets, too_many, match="io_in and io_out")
    swapped = lambda M, K, N, rows, cols: (M * (K * (min(K, rows) - 1) + N * (min(N, cols) - 1))
                                           + M * N * (rows - min(K, rows)))
    rejects(ch09.check_matmul_wavelets, swapped, match="swapped")
    per_pe = lambda M, K, N, rows, cols: M * (min(K, rows) * (min(N, cols) - 1)
                                              + min(N, cols) * (rows - 1))
    rejects(ch09.check_matmul_wavelets, per_pe, match="one wavelet per value")
    with_edges = lambda M, K, N, rows, cols: right_wavelets(M, K, N, rows, cols) + M * (K + N)
    rejects(ch09.check_matmul_wavelets, with_edges, match="io_in and io_out")  # = too_many
    # two mistakes at once: no hint fits, but the message says where the count goes wrong
    both = lambda M, K, N, rows, cols: no_drain(M, K, N, rows, cols) + 1
    rejects(ch09.check_matmul_wavelets, both, match="expected")
    rejects(ch09.check_matmul_wavelets, lambda *a: "many", match="should be a number")


@pytest.mark.parametrize("shape", [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8),
                                   (2, 30, 3, 4, 4), (5, 2, 3, 6, 2)])
def test_the_wavelet_reference_matches_the_simulator(shape):
    M, K, N, rows, cols = shape
    f = Fabric(rows, cols)
    kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
    assert f.stats().wavelets == ch09._wavelets_brute_force(*shape)  # the drain included


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
    return (M - 1) * interval + first + (rows - R)


def numpy_cycles(M, K, N, rows, cols, fmac):  # written differently: whole arrays at once
    R, Q = min(K, rows), min(N, cols)
    k = np.array(chunks(K, R))[:, None]
    n = np.array(chunks(N, Q))[None, :]
    compute = -(-k * n // fmac)
    ready = np.arange(Q)[None, :] + k + compute
    i = np.arange(R)[:, None]
    send = np.maximum.accumulate(ready - i, axis=0) + i
    first = int((send[-1] + n[0]).max())
    return float((M - 1) * max(k.max(), n.max(), compute.max()) + first + rows - R)


def cycles_measured(M, K, N, rows, cols, fmac):  # not an answer: it runs the simulator
    f = Fabric(wafer=WaferSpec.custom(rows, cols, flops_per_cycle=2 * fmac))
    kernels.matmul(f, torch.zeros(M, K), torch.zeros(K, N))
    return f.cycles


@pytest.mark.parametrize("mistake, hint", [
    ("serial", "one after another"),
    ("M intervals", "M - 1 intervals"),
    ("sum", "largest of the three"),
    ("compute only", "must also cover the links"),
    ("links only", "must also cover the arithmetic"),
    ("no n", "must also cover the partial sums"),
    ("no k", "must also cover the activations"),
    ("no chain", "PE above it"),
    ("chain without hop", "one cycle after the PE above"),
    ("no last wavelets", "take n_j cycles to come out"),
    ("min over columns", "every column is done"),
    ("floor", "first chunks are one"),
    ("ceil", "only the first K mod R rows"),
    ("fmac", "use the `fmac` argument"),
    ("whole grid", "uses only min"),
    ("no drain", "unused rows to the south edge"),
])
def test_matmul_cycles_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch09.check_matmul_cycles, lambda *a: ch09._cycles_variant(*a, mistake=mistake),
            match=hint)


def test_every_cycle_mistake_differs_from_the_model_on_some_case():
    # a mistake the cases cannot tell from the model would be a wrong answer that passes
    rng = np.random.default_rng(1)
    cases = [(4, 8, 8, 4, 4, 4), (3, 5, 40, 8, 8, 4), (1, 50, 70, 6, 8, 4), (3, 9, 9, 3, 3, 1)]
    cases += [tuple(int(v) for v in rng.integers(1, 24, 5)) + (int(rng.choice([1, 4, 16])),)
              for _ in range(60)]
    for mistake, _ in ch09.CYCLE_MISTAKES:
        assert any(ch09._cycles_variant(*c, mistake=mistake) != ch09._cycles_reference(*c)
                   for c in cases), mistake


def test_a_compute_only_interval_is_not_told_about_the_chain():
    # the reviewers' wrong answer: interval = max c_ij; it coincides with a chain mistake on the
    # 4 x 4 example, and must get the hint about the links
    compute_only = lambda *a: ch09._cycles_variant(*a, mistake="compute only")
    with pytest.raises(ExerciseError) as info:
        ch09.check_matmul_cycles(compute_only)
    assert "links" in str(info.value) and "PE above" not in str(info.value)


def test_matmul_cycles(capsys):
    passes(capsys, ch09.check_matmul_cycles, right_cycles)
    passes(capsys, ch09.check_matmul_cycles, numpy_cycles)
    rejects(ch09.check_matmul_cycles, cycles_measured, match=SIMULATOR)
    ch09.check_matmul_cycles(numpy_cycles)  # a float answer is printed as a whole number
    assert "17 -> 17" in capsys.readouterr().out
    rejects(ch09.check_matmul_cycles, ..., match="not answered yet")
    rejects(ch09.check_matmul_cycles, lambda *a: right_cycles(*a) + 0.5, match="whole number")
    rejects(ch09.check_matmul_cycles, lambda *a: 17, match="expected")
    drain_and_serial = lambda M, K, N, rows, cols, fmac: ch09._cycles_variant(
        M, K, N, rows, cols, fmac, "no drain") + 1
    rejects(ch09.check_matmul_cycles, drain_and_serial, match="expected")


def test_the_cycle_reference_matches_the_simulator_for_any_number_of_lanes():
    rng = np.random.default_rng(9)
    cases = [(4, 8, 8, 4, 4, 4), (5, 10, 7, 3, 4, 4), (1, 50, 70, 6, 8, 4), (3, 5, 40, 8, 8, 4)]
    cases += [tuple(int(v) for v in rng.integers(1, 20, 5)) + (int(rng.choice([1, 2, 8, 16])),)
              for _ in range(40)]
    for M, K, N, rows, cols, fmac in cases:
        f = Fabric(wafer=WaferSpec.custom(rows, cols, flops_per_cycle=2 * fmac))
        kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
        assert f.cycles == ch09._cycles_reference(M, K, N, rows, cols, fmac)  # the drain too


# ----------------------------------------------------------------------------------------------
# 9.4 the smallest grid
# ----------------------------------------------------------------------------------------------
def right_grid(K, N, sram_per_pe, bytes_per_value):
    g = 1
    while True:
        k, m = math.ceil(K / min(K, g)), math.ceil(N / min(N, g))
        if (k * m + k + 2 * m) * bytes_per_value <= sram_per_pe:
            return g
        g += 1


def bisect_grid(K, N, sram_per_pe, bytes_per_value):  # written differently: binary search
    def fits(g):
        k, m = -(-K // min(K, g)), -(-N // min(N, g))
        return (k * m + k + 2 * m) * bytes_per_value <= sram_per_pe
    lo, hi = 1, max(K, N)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def grid_with(K, N, sram, value, mistake):
    g = 1
    while g <= max(K, N) + 1:
        if mistake == "even":
            held = K * N / g ** 2 + K / g + 2 * N / g
        elif mistake == "spread":
            held = (K * N + K + 2 * N) / g ** 2
        else:
            k, m = math.ceil(K / min(K, g)), math.ceil(N / min(N, g))
            held = {"tiles only": k * m, "one partial sum": k * m + k + m,
                    "no slice": k * m + 2 * m}.get(mistake, k * m + k + 2 * m)
        size = held * (4 if mistake == "always 4" else value)
        if (size < sram) if mistake == "strict" else (size <= sram):
            return g
        g += 1
    return g


@pytest.mark.parametrize("mistake, hint", [
    ("tiles only", "also holds one token"), ("one partial sum", "two partial-sum vectors"),
    ("no slice", "slice of X \\(its k values\\)"), ("even", "whole rows and columns"),
    ("spread", "only the tile is spread"), ("always 4", "use `bytes_per_value`"),
    ("strict", "exactly equal"),
])
def test_smallest_grid_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch09.check_smallest_grid, lambda *a: grid_with(*a, mistake), match=hint)


def test_smallest_grid(capsys):
    passes(capsys, ch09.check_smallest_grid, right_grid)
    passes(capsys, ch09.check_smallest_grid, bisect_grid)
    rejects(ch09.check_smallest_grid, ..., match="not answered yet")
    rejects(ch09.check_smallest_grid, lambda *a: right_grid(*a) - 1, match="one too small")
    rejects(ch09.check_smallest_grid, lambda *a: right_grid(*a) + 1, match="already fits")
    rejects(ch09.check_smallest_grid, lambda K, N, s, b: right_grid(K, N, 48_000, b),
            match="expected")
    rejects(ch09.check_smallest_grid, lambda *a: 0, match="at least one PE")


def test_the_even_split_is_not_what_costs_a_row_at_48_kb():
    # the chapter's sentence: on 14 x 14 the rounded tiles alone fit; the slice and the two
    # partial-sum vectors push the first PE over, and even fractional chunks would not fit either
    assert ch09._pe_bytes(768, 3072, 14, 4, partial_sums=0, slice_=False) <= 48 * 1024
    assert ch09._pe_bytes(768, 3072, 14, 4) > 48 * 1024
    assert ch09._even_side(768, 3072, 48 * 1024, 4) == ch09._smallest_side(768, 3072, 48 * 1024, 4)


@pytest.mark.parametrize("K, N, sram", [(768, 3072, 49152), (768, 3072, 98304), (256, 256, 49152),
                                        (100, 3, 64), (300, 300, 396), (12, 12, 72)])
def test_the_grid_reference_matches_the_simulator(K, N, sram):
    g = ch09._smallest_side(K, N, sram, 4)  # the simulator holds float32, 4 bytes a value
    kernels.matmul(Fabric(g, g, sram_per_pe=sram), torch.randn(1, K), torch.randn(K, N))
    with pytest.raises(SramError):
        kernels.matmul(Fabric(g - 1, g - 1, sram_per_pe=sram), torch.randn(1, K), torch.randn(K, N))


@pytest.mark.parametrize("check", [ch09.check_xy_links, ch09.check_matmul_wavelets,
                                   ch09.check_matmul_cycles, ch09.check_smallest_grid])
def test_every_exercise_of_the_chapter_refuses_the_simulator(check):
    """The four exercises predict what wse_demo does; an answer that runs it (directly, through a
    helper of its own, or by importing it inside) is refused by name."""
    def helper(*args):
        return int(kernels.split_sizes(4, 2)[0])

    def imports_inside(*args):
        from wse_demo.fabric import Fabric as F
        return F(2, 2).rows

    rejects(check, lambda *a: kernels.split_sizes(4, 2)[0], match=SIMULATOR)
    rejects(check, lambda *a: helper(*a), match=SIMULATOR)
    rejects(check, imports_inside, match=SIMULATOR)


SIMULATOR_PARTS = {"kernels": kernels}


@pytest.mark.parametrize("check", [ch09.check_xy_links, ch09.check_matmul_wavelets,
                                   ch09.check_matmul_cycles, ch09.check_smallest_grid])
def test_the_simulator_is_refused_however_it_is_reached(check):
    """What runs counts, not only what the answer's code names: the simulator held in a default
    argument or in a dict is refused too."""
    def through_default(*args, _k=kernels):
        return int(_k.split_sizes(4, 2)[0])

    rejects(check, through_default, match=SIMULATOR)
    rejects(check, lambda *a: int(SIMULATOR_PARTS["kernels"].split_sizes(4, 2)[0]), match=SIMULATOR)


def systolic_schedule(M, K, N, rows, cols, fmac):  # the reader's own helper, named like kernels'
    return right_cycles(M, K, N, rows, cols, fmac)


def test_a_helper_of_ones_own_may_share_a_name_with_the_simulator(capsys):
    passes(capsys, ch09.check_matmul_cycles, lambda *a: systolic_schedule(*a))


def test_a_search_that_never_stops_is_told_so_instead_of_hanging():
    """A reader's search with `<` where an exact fit needs `<=` runs forever on the exact-fit
    case; the check stops it and says where to look."""
    def strict_search(K, N, sram, bytes_per_value):
        g = 1
        while True:
            tile = math.ceil(K / g) * math.ceil(N / g)
            if (tile + math.ceil(K / g) + 2 * math.ceil(N / g)) * bytes_per_value < sram:
                return g
            g += 1 if g < K or g < N else 0  # past the matrix the tile stops shrinking

    rejects(ch09.check_smallest_grid, strict_search, match="without returning.*<=, not <")
