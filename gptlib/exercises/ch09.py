"""Checks for the exercises of chapter 9 (the Wafer-Scale Engine).

Each check computes its reference on its own, from the rules the chapter states and plain Python
(gptlib never imports the chapter's simulator, ``wse_demo``; the tests check that these references
agree with it), and names the plausible wrong answer when it sees one. Where a wrong answer is
recognised by the mistake it makes, the check tests the mistake's prediction on *every* case, so
that a coincidence on one case cannot give the wrong hint.
"""
from __future__ import annotations

import math

import numpy as np

from ._core import (call_answer, confirm, fail, number, refusing_packages,
                    require_callable, within_lines)
from .ch03 import forbid

# Each exercise of chapter 9 predicts what the simulator does; running it is not an answer.
_SIMULATOR_NAMES = ("wse_demo", "Fabric", "WaferSpec", "kernels", "systolic_schedule")
_SIMULATOR_RULE = "work it out yourself, without running wse_demo's simulator."


def _without_simulator(exercise: str, name: str, function):
    """Fail if the answer names anything of ``wse_demo`` (a global, a helper's global, or one of
    its names); return it wrapped so that running anything of ``wse_demo`` fails too, however it
    is reached (a default argument, a dict, a subclass, an import inside the answer)."""
    forbid(exercise, name, function, names=_SIMULATOR_NAMES, libraries=("wse_demo",),
           rule=_SIMULATOR_RULE)
    return refusing_packages(exercise, name, function, ("wse_demo",), _SIMULATOR_RULE)

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


def _first_matching(answers: dict, mistakes: list, cases: list):
    """The hint of the first mistake whose prediction equals the answer on every case (a mistake
    whose prediction raises is skipped), or None."""
    for predict, hint in mistakes:
        try:
            if all(answers[c] == predict(*c) for c in cases):
                return hint
        except (ZeroDivisionError, ValueError, IndexError):
            continue
    return None


# ----------------------------------------------------------------------------------------------
# Exercise 9.1: the links of an XY route
# ----------------------------------------------------------------------------------------------
def _links_reference(src, dst, column_first: bool = False, index_by_source: bool = False,
                     names_by_axis: bool = False) -> list[tuple[str, int, int]]:
    """Walk one hop at a time, row first (or ``column_first``), and name each link as the fabric's
    counters index it: ``east[r, c]`` joins (r, c) -> (r, c + 1), ``west[r, c]`` (r, c + 1) ->
    (r, c), ``south[r, c]`` (r, c) -> (r + 1, c), ``north[r, c]`` (r + 1, c) -> (r, c). The keyword
    arguments reproduce readers' mistakes (for the hints)."""
    (r, c), (r2, c2) = src, dst
    out = []

    def along_row():
        nonlocal c
        while c != c2:
            step = 1 if c2 > c else -1
            if step == 1:
                out.append(("east", r, c))
            elif names_by_axis:
                out.append(("east", r, c - 1))
            else:
                out.append(("west", r, c if index_by_source else c - 1))
            c += step

    def along_column():
        nonlocal r
        while r != r2:
            step = 1 if r2 > r else -1
            if step == 1:
                out.append(("south", r, c))
            elif names_by_axis:
                out.append(("south", r - 1, c))
            else:
                out.append(("north", r if index_by_source else r - 1, c))
            r += step

    if column_first:
        along_column()
        along_row()
    else:
        along_row()
        along_column()
    return out


def _route_pes(src, dst) -> list[tuple[int, int]]:
    (r, c), (r2, c2) = src, dst
    path = [(r, c)]
    while c != c2:
        c += 1 if c2 > c else -1
        path.append((r, c))
    while r != r2:
        r += 1 if r2 > r else -1
        path.append((r, c))
    return path


def _as_links(exercise: str, case, got) -> list:
    """The answer as a list of ``(str, int, int)``; PEs or other shapes get a clear message."""
    try:
        items = list(got)
    except TypeError:
        fail(exercise, f"`xy_links{case}` should return a list of (direction, row, col) links, "
                       f"got {got!r}.")
    links = []
    for item in items:
        try:
            parts = tuple(item)
        except TypeError:
            parts = ()
        if len(parts) == 2 and not isinstance(parts[0], str):
            fail(exercise, f"`xy_links{case}` returned PEs such as {tuple(parts)}; return the links "
                           f"between them, one (direction, row, col) per hop, e.g. ('east', 0, 0) "
                           f"for the hop from (0, 0) to (0, 1).")
        if len(parts) != 3 or not isinstance(parts[0], str):
            fail(exercise, f"`xy_links{case}` should return (direction, row, col) triples, got "
                           f"{item!r}.")
        try:
            links.append((parts[0], int(parts[1]), int(parts[2])))
        except (TypeError, ValueError):
            fail(exercise, f"`xy_links{case}`: the row and column of a link are whole numbers, got "
                           f"{item!r}.")
    return links


def check_xy_links(xy_links) -> None:
    """``xy_links(src, dst)``: two PEs ``(row, col)`` -> the links a wavelet crosses on its XY route
    (along the row first, then along the column), in the order it crosses them, each as
    ``(direction, row, col)`` indexed as the fabric's link counters are: ``("east", r, c)`` from
    (r, c) to (r, c + 1), ``("west", r, c)`` from (r, c + 1) to (r, c), ``("south", r, c)`` from
    (r, c) to (r + 1, c), ``("north", r, c)`` from (r + 1, c) to (r, c). A wavelet sent to its own PE
    crosses none: ``[]``."""
    ex = "9.1"
    require_callable(ex, "xy_links", xy_links)
    xy_links = _without_simulator(ex, "xy_links", xy_links)
    rng = np.random.default_rng(91)
    cases = [((0, 0), (3, 5)), ((4, 4), (1, 2)), ((2, 3), (2, 3)), ((5, 0), (0, 0)),
             ((0, 7), (0, 2)), ((6, 1), (2, 1)), ((1, 6), (4, 1)), ((3, 0), (0, 4))]
    cases += [((int(a), int(b)), (int(c), int(d))) for a, b, c, d in rng.integers(0, 9, (20, 4))]
    answers = {}
    for src, dst in cases:
        case = (src, dst)
        got = call_answer(ex, "xy_links", xy_links, src, dst)
        answers[case] = _as_links(ex, case, got)
    wrong = [c for c in cases if answers[c] != _links_reference(*c)]
    if not wrong:
        links = _links_reference((0, 0), (3, 5))
        east = sum(1 for d, _, _ in links if d == "east")
        return confirm(ex, f"your links are the ones the fabric's counters count: (0, 0) -> (3, 5) "
                           f"crosses {east} east links, then {len(links) - east} south links")
    mistakes = [
        (lambda s, d: _links_reference(s, d, column_first=True),
         "that is the YX route: a wavelet moves along its row first (changing the column), then "
         "along its column"),
        (lambda s, d: _links_reference(s, d, index_by_source=True),
         "a west or north link is indexed by its west or north end: the hop from (r, c) to "
         "(r, c - 1) crosses west[r, c - 1], the hop from (r, c) to (r - 1, c) north[r - 1, c]"),
        (lambda s, d: _links_reference(s, d, names_by_axis=True),
         "a hop toward smaller columns crosses a west link (and toward smaller rows a north "
         "link): east and south links carry wavelets only east and south"),
        (lambda s, d: _links_reference(s, d)[::-1],
         "the links are right but in the wrong order: list them in the order the wavelet "
         "crosses them, from the source"),
        (lambda s, d: ([("east", s[0], c) for c in range(s[1], d[1])]
                       + [("south", r, d[1]) for r in range(s[0], d[0])]),
         "the route must also work when the destination lies north or west of the source "
         "(a range that counts down needs a negative step)"),
    ]
    hint = _first_matching(answers, mistakes, cases)
    case = wrong[0]
    got, expected = answers[case], _links_reference(*case)
    if hint:
        fail(ex, f"for {case} you gave {got}: {hint}.")
    if case[0] == case[1]:
        fail(ex, f"`xy_links{case}`: a wavelet sent to its own PE crosses no link, so the answer "
                 f"is []; you returned {got}.")
    seen = set()
    for link in got:
        if link in seen:
            fail(ex, f"`xy_links{case}`: {link} appears twice; each hop crosses one new link.")
        seen.add(link)
    hops = len(_route_pes(*case)) - 1
    if len(got) != hops:
        fail(ex, f"`xy_links{case}` has {len(got)} links; the route makes |Δrow| + |Δcol| = {hops} "
                 f"hops, one link each.")
    fail(ex, f"`xy_links{case}` returned {got}; expected {hops} links, starting with "
             f"{expected[0]}.")


# ----------------------------------------------------------------------------------------------
# Exercise 9.2: wavelets moved by a weight-stationary multiply
# ----------------------------------------------------------------------------------------------
def _wavelets_brute_force(M: int, K: int, N: int, rows: int, cols: int) -> int:
    """Follow every value: each x[m, k] visits every PE of its row of the used grid (one hop between
    neighbours); each running partial sum of y[m, n] goes down every PE of its column of the used
    grid, and the finished y[m, n] goes on south through the unused rows to the fabric's edge."""
    R, Q = min(K, rows), min(N, cols)
    row_of_k = [i for i, size in enumerate(_split(K, R)) for _ in range(size)]
    col_of_n = [j for j, size in enumerate(_split(N, Q)) for _ in range(size)]
    total = 0
    for _ in range(M):
        for _i in row_of_k:  # x[m, k] enters PE (i, 0), then hops east to (i, Q - 1)
            total += sum(1 for _col in range(1, Q))
        for _j in col_of_n:  # y[m, n] hops from (0, j) down to (R - 1, j), then to (rows - 1, j)
            total += sum(1 for _row in range(1, R)) + sum(1 for _row in range(R, rows))
    return total


def check_matmul_wavelets(matmul_wavelets) -> None:
    """``matmul_wavelets(M, K, N, rows, cols)`` -> wavelets that cross a link between two PEs when
    ``kernels.matmul`` runs ``X (M, K) @ W (K, N)`` weight stationary on a ``rows x cols`` fabric,
    as ``fabric.stats().wavelets`` counts them: activations east along the rows of the used
    ``min(K, rows) x min(N, cols)`` PEs, partial sums south down its columns, and the results on
    south through any unused rows below to the fabric's south edge."""
    ex = "9.2"
    require_callable(ex, "matmul_wavelets", matmul_wavelets)
    matmul_wavelets = _without_simulator(ex, "matmul_wavelets", matmul_wavelets)
    rng = np.random.default_rng(93)
    cases = [(1, 2, 2, 2, 2), (6, 12, 9, 4, 3), (3, 5, 40, 8, 8), (2, 30, 3, 4, 4), (4, 7, 7, 7, 7),
             (1, 1, 5, 3, 3), (2, 9, 1, 3, 4), (5, 2, 3, 6, 2)]
    cases += [tuple(int(v) for v in rng.integers(1, 20, 5)) for _ in range(15)]
    answers = {c: number(ex, f"matmul_wavelets{c}",
                         call_answer(ex, "matmul_wavelets", matmul_wavelets, *c)) for c in cases}
    wrong = [c for c in cases if answers[c] != _wavelets_brute_force(*c)]
    if not wrong:
        return confirm(ex, "your formula counts every hop of every activation and partial sum, "
                           "as the fabric does")

    def used(K, N, rows, cols):
        return min(K, rows), min(N, cols)

    def no_drain(M, K, N, rows, cols):
        R, Q = used(K, N, rows, cols)
        return M * (K * (Q - 1) + N * (R - 1))

    mistakes = [
        (no_drain, "when the matrix uses fewer rows than the fabric has (K < rows), its results "
                   "still cross the unused rows below it to reach the fabric's south edge, one hop "
                   "per row"),
        (lambda M, K, N, rows, cols: M * (K * (cols - 1) + N * (rows - 1)),
         "the activations hop east only through the min(N, cols) columns the matrix uses, not "
         "the whole fabric"),
        (lambda M, K, N, rows, cols: K * (min(N, cols) - 1) + N * (rows - 1),
         "that is the traffic of one token; every one of the M rows of X makes the trip"),
        (lambda M, K, N, rows, cols: M * (K * min(N, cols) + N * rows),
         "you counted one hop too many per row and column: a row of Q PEs has Q - 1 links "
         "between them, and the trips in from outside the fabric and out of it are not hops "
         "between two PEs (the fabric counts them apart, as io_in and io_out)"),
        (lambda M, K, N, rows, cols: M * (K * (min(K, rows) - 1) + N * (min(N, cols) - 1))
         + M * N * (rows - min(K, rows)),
         "the two directions are swapped: the K activation values cross the links between the "
         "columns (east), the N partial sums those between the rows (south)"),
        (lambda M, K, N, rows, cols: M * (min(K, rows) * (min(N, cols) - 1)
                                          + min(N, cols) * (rows - 1)),
         "that counts one wavelet per PE and link; each link carries every value of its row's "
         "slice of X (or of its column's slice of Y), one wavelet per value"),
    ]
    hint = _first_matching(answers, mistakes, cases)
    case = wrong[0]
    got, expected = answers[case], _wavelets_brute_force(*case)
    if hint:
        fail(ex, f"for {case} you gave {got:g}: {hint}.")
    M, K, N, rows, cols = case
    if all(c[1] < c[3] for c in wrong):
        fail(ex, f"`matmul_wavelets{case}` gave {got:g}, expected {expected}: your count is right "
                 f"wherever the matrix fills the fabric's rows and wrong where it does not "
                 f"(K < rows); follow the results below the matrix.")
    fail(ex, f"`matmul_wavelets{case}` gave {got:g}, expected {expected}. Each activation value "
             f"hops along its row, each partial sum down its column and on to the south edge.")


# ----------------------------------------------------------------------------------------------
# Exercise 9.3: predict the cycles of a weight-stationary multiply
# ----------------------------------------------------------------------------------------------
def _cycles_variant(M: int, K: int, N: int, rows: int, cols: int, fmac: int,
                    mistake: str = "") -> int:
    """The chapter's cycle model (``mistake == ""``), or the model with one of the mistakes
    readers make. Per PE: arrival ``a = j + k_i``, compute ``c = ceil(k_i n_j / fmac)``, send
    ``s_ij = max(a + c, s_(i-1)j + 1)``; the first token is done at ``max_j s_(R-1)j + n_j``; the
    next follows ``max(k, n, c)`` cycles behind; the results then cross ``rows - R`` unused rows
    to the south edge, one cycle each."""
    R, Q = (rows, cols) if mistake == "whole grid" else (min(K, rows), min(N, cols))
    if mistake == "floor":
        k, n = [max(K // R, 1)] * R, [max(N // Q, 1)] * Q
    elif mistake == "ceil":
        k, n = [math.ceil(K / R)] * R, [math.ceil(N / Q)] * Q
    else:
        k, n = _split(K, R), _split(N, Q)
    lanes = 4 if mistake == "fmac" else fmac
    first, gaps = None, []
    for j in range(Q):
        above = None
        for i in range(R):
            c = -(-k[i] * n[j] // lanes)
            ready = j + k[i] + c
            if above is None or mistake == "no chain":
                send = ready
            else:
                send = max(ready, above + (0 if mistake == "chain without hop" else 1))
            above = send
            gaps.append({"sum": k[i] + n[j] + c, "compute only": c, "links only": max(k[i], n[j]),
                         "no n": max(k[i], c), "no k": max(n[j], c)}.get(mistake,
                                                                         max(k[i], n[j], c)))
        end = above + (0 if mistake == "no last wavelets" else n[j])
        if first is None:
            first = end
        else:
            first = min(first, end) if mistake == "min over columns" else max(first, end)
    drain = 0 if mistake == "no drain" else rows - R
    if mistake == "serial":
        return M * first + drain
    tokens = M if mistake == "M intervals" else M - 1
    return tokens * max(gaps) + first + drain


def _cycles_reference(M: int, K: int, N: int, rows: int, cols: int, fmac: int) -> int:
    """The cycles ``kernels.matmul`` reports (``fabric.cycles``) for ``X (M, K) @ W (K, N)`` on a
    ``rows x cols`` fabric whose PEs do ``fmac`` multiply-adds per cycle."""
    return _cycles_variant(M, K, N, rows, cols, fmac)


CYCLE_MISTAKES = [
    ("serial", "you ran the tokens one after another; the next token enters as soon as the "
               "busiest PE or link is free, while earlier ones are still in flight"),
    ("M intervals", "token 0 starts at cycle 0, so the last token starts M - 1 intervals later, "
                    "not M"),
    ("sum", "a PE computes while its links move wavelets, so the interval between tokens is the "
            "largest of the three, not their sum"),
    ("compute only", "the interval must also cover the links: each token puts k_i activation "
                     "wavelets on a link of row i and n_j partial-sum wavelets on a link of column "
                     "j, one wavelet per cycle"),
    ("links only", "the interval must also cover the arithmetic: a PE needs ceil(k_i n_j / fmac) "
                   "cycles per token"),
    ("no n", "the interval must also cover the partial sums: a link of column j carries n_j "
             "wavelets per token"),
    ("no k", "the interval must also cover the activations: a link of row i carries k_i "
             "wavelets per token"),
    ("no chain", "a PE cannot pass the partial sum on before the PE above it has sent it, and "
                 "each step down the column takes one more cycle"),
    ("chain without hop", "each step down the column takes one cycle: a PE sends at the earliest "
                          "one cycle after the PE above it"),
    ("no last wavelets", "the bottom row starts sending at s, but its n_j results take n_j "
                         "cycles to come out, one wavelet per cycle"),
    ("min over columns", "a token is done when every column is done: take the latest column, "
                         "not the earliest"),
    ("floor", "when K or N does not divide evenly the first chunks are one larger, and the "
              "biggest tile sets the pace"),
    ("ceil", "only the first K mod R rows (and N mod Q columns) get the larger chunk; the "
             "others are one smaller"),
    ("fmac", "use the `fmac` argument, not WSE-2's 4 multiply-adds per cycle"),
    ("whole grid", "a K x N matrix uses only min(K, rows) x min(N, cols) PEs"),
    ("no drain", "when the matrix uses fewer rows than the fabric (K < rows), its results still "
                 "cross the unused rows to the south edge, one cycle per row, and fabric.cycles "
                 "counts that"),
]


def check_matmul_cycles(matmul_cycles) -> None:
    """``matmul_cycles(M, K, N, rows, cols, fmac)`` -> the cycles ``kernels.matmul`` reports
    (``fabric.cycles``) for ``X (M, K) @ W (K, N)`` on a ``rows x cols`` fabric of PEs doing
    ``fmac`` multiply-adds per cycle: the multiply by the cycle model of section 9.4, plus one
    cycle per unused row for the results to reach the south edge."""
    ex = "9.3"
    require_callable(ex, "matmul_cycles", matmul_cycles)
    matmul_cycles = _without_simulator(ex, "matmul_cycles", matmul_cycles)
    rng = np.random.default_rng(95)
    cases = [(4, 8, 8, 4, 4, 4), (5, 10, 7, 3, 4, 4), (1, 50, 70, 6, 8, 4), (3, 9, 9, 3, 3, 1),
             (2, 6, 6, 6, 6, 16), (7, 3, 20, 5, 5, 4), (1, 1, 1, 1, 1, 4), (6, 13, 4, 4, 8, 2),
             (2, 40, 40, 8, 8, 8), (3, 5, 40, 8, 8, 4), (4, 2, 9, 6, 3, 1), (9, 7, 3, 2, 2, 8)]
    for _ in range(25):
        M, K, N, rows, cols = (int(v) for v in rng.integers(1, 24, 5))
        cases.append((M, K, N, rows, cols, int(rng.choice([1, 2, 4, 8, 16]))))
    answers = {c: _whole_number(ex, f"matmul_cycles{c}",
                                call_answer(ex, "matmul_cycles", matmul_cycles, *c))
               for c in cases}
    wrong = [c for c in cases if answers[c] != _cycles_reference(*c)]
    if not wrong:
        small = [int(matmul_cycles(4, 8, 8, 4, 4, f)) for f in (4, 8)]
        big = [int(matmul_cycles(64, 50, 70, 6, 8, f)) for f in (4, 8)]
        return confirm(ex, f"your model predicts the simulator's cycles. Twice the lanes: the "
                           f"4 x 4 example {small[0]} -> {small[1]} cycles, the 64-token 50 x 70 "
                           f"multiply on 6 x 8 PEs {big[0]:,} -> {big[1]:,}")
    mistakes = [(lambda *c, m=m: _cycles_variant(*c, mistake=m), hint)
                for m, hint in CYCLE_MISTAKES]
    hint = _first_matching(answers, mistakes, cases)
    case = wrong[0]
    got, expected = answers[case], _cycles_reference(*case)
    if hint:
        fail(ex, f"for {case} you gave {got}: {hint}.")
    if all(c[1] < c[3] for c in wrong):
        fail(ex, f"`matmul_cycles{case}` gave {got}, expected {expected}: your count is right "
                 f"wherever the matrix fills the fabric's rows and wrong where it does not "
                 f"(K < rows); follow the results below the matrix to the edge.")
    fail(ex, f"`matmul_cycles{case}` gave {got}, expected {expected}. Follow the rules of "
             f"section 9.4 for one token, PE by PE, then add the tokens behind it and the trip "
             f"to the south edge.")


# ----------------------------------------------------------------------------------------------
# Exercise 9.4: the smallest square grid that holds a weight matrix
# ----------------------------------------------------------------------------------------------
def _pe_bytes(K: int, N: int, side: int, bytes_per_value: int, partial_sums: int = 2,
              slice_: bool = True) -> int:
    """Bytes the busiest PE (the first one: the largest tile) holds while the multiply runs on a
    ``side x side`` grid: its tile, one token's slice of X and two partial-sum vectors (the keyword
    arguments reproduce readers' mistakes)."""
    k = -(-K // min(K, side))
    n = -(-N // min(N, side))
    return (k * n + (k if slice_ else 0) + partial_sums * n) * bytes_per_value


def _first_side(fits, K: int, N: int) -> int:
    """The smallest side g >= 1 with ``fits(g)``; past max(K, N) + 1 nothing changes any more, so
    the search stops there (a grid that never fits returns that bound + 1)."""
    side, last = 1, max(K, N) + 1
    while side <= last and not fits(side):
        side += 1
    return side


def _smallest_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int, **mistake) -> int:
    return _first_side(lambda g: _pe_bytes(K, N, g, bytes_per_value, **mistake) <= sram_per_pe,
                       K, N)


def _strict_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    return _first_side(lambda g: _pe_bytes(K, N, g, bytes_per_value) < sram_per_pe, K, N)


def _tiles_only_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    return _first_side(lambda g: -(-K // min(K, g)) * -(-N // min(N, g)) * bytes_per_value
                       <= sram_per_pe, K, N)


def _even_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    """The side if chunks could be fractional: the smallest ``g`` with
    ``(K N / g^2 + K / g + 2 N / g) * bytes_per_value <= sram_per_pe`` (a PE's tile is spread over
    the whole grid, its slice of X over the rows, its partial sums over the columns)."""
    return _first_side(lambda g: (K * N / g ** 2 + K / g + 2 * N / g) * bytes_per_value
                       <= sram_per_pe, K, N)


def _spread_side(K: int, N: int, sram_per_pe: int, bytes_per_value: int) -> int:
    """The side if everything, the slice and the partial sums too, were spread over all g^2 PEs."""
    return max(1, math.ceil(math.sqrt((K * N + K + 2 * N) * bytes_per_value / sram_per_pe)))


def check_smallest_grid(smallest_grid) -> None:
    """``smallest_grid(K, N, sram_per_pe, bytes_per_value)`` -> the smallest side g of a square
    ``g x g`` grid on which the weight-stationary multiply of a ``(K, N)`` weight runs without a PE
    running out of SRAM: the busiest PE holds its tile, one token's slice of X and two partial-sum
    vectors, ``bytes_per_value`` bytes each. Chunks are whole rows and columns; a PE whose bytes
    equal its SRAM exactly fits."""
    ex = "9.4"
    require_callable(ex, "smallest_grid", smallest_grid)
    smallest_grid = within_lines(ex, "smallest_grid",
                                 _without_simulator(ex, "smallest_grid", smallest_grid), 2_000_000,
                                 "does its search stop when a PE's bytes equal its SRAM exactly "
                                 "(that fits: <=, not <), and when the grid grows past the "
                                 "matrix?")
    cases = [(768, 3072, SRAM_PER_PE, 4), (768, 3072, 2 * SRAM_PER_PE, 4), (768, 3072, SRAM_PER_PE, 2),
             (256, 256, SRAM_PER_PE, 4), (128, 128, SRAM_PER_PE, 4), (10, 7, SRAM_PER_PE, 4),
             (2048, 8192, SRAM_PER_PE, 2), (100, 3, 64, 4), (5, 5, 16, 4), (1, 1, 16, 4),
             (300, 300, 4 * 96 + 4 * 3, 4), (12, 12, 72, 4), (30, 20, 152, 4), (9, 2, 40, 2)]
    rng = np.random.default_rng(97)
    for _ in range(12):
        K, N = (int(v) for v in rng.integers(1, 3000, 2))
        cases.append((K, N, int(rng.choice([4096, 16384, SRAM_PER_PE])), int(rng.choice([2, 4]))))
    answers = {case: _whole_number(ex, f"smallest_grid{case}",
                                   call_answer(ex, "smallest_grid", smallest_grid, *case))
               for case in cases}
    wrong = [c for c in cases if answers[c] != _smallest_side(*c)]
    if not wrong:
        base = _smallest_side(768, 3072, SRAM_PER_PE, 4)
        double = int(smallest_grid(768, 3072, 2 * SRAM_PER_PE, 4))
        return confirm(ex, f"the 768 x 3072 matrix needs at least {base} x {base} PEs of 48 KB "
                           f"in float32, {double} x {double} with twice the SRAM")
    mistakes = [
        (_tiles_only_side, "the tiles alone fit on that grid, but while it multiplies a PE also "
                           "holds one token's slice of X and two partial-sum vectors"),
        (lambda *c: _smallest_side(*c, partial_sums=1),
         "a PE holds two partial-sum vectors, one for the sum coming in from above and one for "
         "the sum it sends on"),
        (lambda *c: _smallest_side(*c, slice_=False),
         "while it multiplies, a PE also holds one token's slice of X (its k values)"),
        (_even_side, "chunks are whole rows and columns: the first PE holds ceil(K / g) rows and "
                     "ceil(N / g) columns, not K / g and N / g"),
        (_spread_side, "only the tile is spread over the whole grid; the token's slice is split "
                       "over the rows (about K / g values a PE) and the partial sums over the "
                       "columns (about N / g), not over all g x g PEs"),
        (lambda K, N, sram, value: _smallest_side(K, N, sram, 4),
         "use `bytes_per_value`, not always 4 bytes per value"),
        (_strict_side, "a PE whose bytes exactly equal its SRAM still fits (<=, not <)"),
        (lambda *c: _smallest_side(*c) - 1, "that grid is one too small: its first PE holds more "
                                            "than its SRAM"),
        (lambda *c: _smallest_side(*c) + 1, "a grid one smaller already fits: you returned the "
                                            "first side after it (check your loop's end)"),
    ]
    hint = _first_matching(answers, mistakes, cases)
    case = wrong[0]
    got, expected = answers[case], _smallest_side(*case)
    if hint:
        fail(ex, f"for {case} you gave {got}: {hint}.")
    if got < 1:
        fail(ex, f"`smallest_grid{case}` gave {got}; a grid has at least one PE a side.")
    fail(ex, f"`smallest_grid{case}` gave {got}, expected {expected}. Find the bytes the first "
             f"PE holds on a g x g grid and grow g until they fit.")
