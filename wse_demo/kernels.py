"""Distributed operations on the simulated fabric that compute real numbers (chapters 9 and 10).

Shapes: ``X (M, K)`` holds M token vectors, ``W (K, N)`` a weight matrix, and a region has R rows and
Q columns of PEs (C stays the model width, as on the book's notation page).

The central one is the weight-stationary matrix multiply ``Y = X W``: PE ``(i, j)`` of a region keeps
the tile ``W[K_i, N_j]`` in its SRAM; the slice ``X[:, K_i]`` of each token's activation vector
enters at the west edge of row ``i`` and flows east through the row; every PE multiplies it by its
tile and the partial sums flow south down each column, adding up, so the bottom row ends up holding
``Y[:, N_j]``. Shapes that do not divide the grid are split as evenly as possible (the first chunks
get one extra row or column), and a matrix smaller than its region uses only ``min(K, rows) x
min(N, cols)`` PEs.

On top of it :class:`GPTOnFabric` places every weight matrix of a small :class:`gptlib.GPT` in its own
strip of the fabric (layer pipelined) and runs a whole forward pass: embedding, LayerNorm, attention
(one PE per head), the FFN with GELU, residual adds and the tied output head. Its logits equal
gptlib's to 1e-4.

The values are computed with vectorised torch operations on the per-PE tiles (a batched matrix
multiply over the PE rows, then the column sums), never a Python loop per PE per cycle; the cycle
counts follow the schedule model stated on :func:`systolic_schedule` and in
:mod:`wse_demo.assumptions`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from . import assumptions
from .fabric import Fabric, FabricError, Region

BYTES = assumptions.SIMULATOR_BYTES_PER_VALUE  # float32 values, one 32-bit wavelet each


# ----------------------------------------------------------------------------------------------
# Splitting shapes over the grid
# ----------------------------------------------------------------------------------------------
def split_sizes(n: int, parts: int) -> np.ndarray:
    """Sizes of ``parts`` nearly equal chunks of ``n`` (the first ``n % parts`` one larger).

    >>> split_sizes(10, 4).tolist()
    [3, 3, 2, 2]
    """
    if n < 1 or parts < 1:
        raise FabricError(f"cannot split {n} values into {parts} chunks: both must be >= 1")
    sizes = np.full(parts, n // parts, dtype=np.int64)
    sizes[: n % parts] += 1
    return sizes


def bounds_of(sizes: np.ndarray) -> np.ndarray:
    """Chunk boundaries ``[0, s0, s0 + s1, ..., n]`` of a list of chunk sizes."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _chunk_index(bounds: np.ndarray, width: int) -> torch.Tensor:
    """``(P, width)`` column indices of each chunk padded with ``n`` (an appended zero column)."""
    sizes = np.diff(bounds)
    n = int(bounds[-1])
    idx = bounds[:-1, None] + np.arange(width)[None, :]
    idx = np.where(np.arange(width)[None, :] < sizes[:, None], idx, n)
    return torch.as_tensor(idx, dtype=torch.long)


def _pad_chunks(x: torch.Tensor, bounds: np.ndarray) -> torch.Tensor:
    """``(M, n) -> (M, P, w)``: the chunks of the last dimension side by side, zero padded to the
    largest chunk ``w``."""
    width = int(np.diff(bounds).max())
    x_ext = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    return x_ext[:, _chunk_index(bounds, width)]


# ----------------------------------------------------------------------------------------------
# Activations held on PEs
# ----------------------------------------------------------------------------------------------
@dataclass
class Activations:
    """The activations of M tokens, their feature dimension split into chunks held by PEs.

    Attributes:
        values: ``(M, n)`` float32; chunk ``p`` is ``values[:, bounds[p]:bounds[p + 1]]``.
        bounds: ``(P + 1,)`` chunk boundaries.
        pes: ``(P, 2)`` ``(row, col)`` of the PE holding chunk ``p`` (a PE may hold several chunks).
        buffer: the name of the SRAM allocation holding them, or None while they stream.
    """

    values: torch.Tensor
    bounds: np.ndarray
    pes: np.ndarray
    buffer: str | None = None

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    def same_layout(self, bounds: np.ndarray, pes: np.ndarray) -> bool:
        return (len(bounds) == len(self.bounds) and bool((bounds == self.bounds).all())
                and bool((np.asarray(pes) == self.pes).all()))


_buffer_ids = itertools.count()


def _hold(fabric: Fabric, act: Activations, name: str) -> Activations:
    """Reserve SRAM for ``act`` on its PEs (``M * chunk * 4`` bytes per chunk) under a fresh name."""
    m = act.values.shape[0]
    per_pe = np.zeros((fabric.rows, fabric.cols), dtype=np.int64)
    np.add.at(per_pe, (act.pes[:, 0], act.pes[:, 1]), m * act.sizes * BYTES)
    r0, c0 = act.pes.min(axis=0)
    r1, c1 = act.pes.max(axis=0) + 1
    act.buffer = f"{name}#{next(_buffer_ids)}"
    fabric.allocate(act.buffer, per_pe[r0:r1, c0:c1], int(r0), int(c0))
    return act


def release(fabric: Fabric, act: Activations) -> None:
    """Free the SRAM buffer of ``act`` (if it has one)."""
    if act.buffer is not None:
        fabric.free(act.buffer)
        act.buffer = None


def _link_snapshot(fabric: Fabric) -> dict:
    return {d: a.copy() for d, a in fabric.links.items()}


def _max_new_load(fabric: Fabric, before: dict) -> int:
    return max((int((fabric.links[d] - before[d]).max()) if before[d].size else 0) for d in before)


def move(fabric: Fabric, act: Activations, bounds, pes, name: str = "move",
         keep_source: bool = False) -> Activations:
    """Send activations to a new layout: chunk boundaries ``bounds`` on PEs ``pes``.

    Every overlap of a source chunk with a destination chunk travels, ``M * overlap`` wavelets, on
    its XY route. The op takes the longer of its longest single transfer (hops + wavelets - 1) and
    the load of its busiest link (transfers sharing a link take turns).

    Args:
        act: the activations, ``(M, n)``.
        bounds: ``(Q + 1,)`` destination boundaries, a partition of ``[0, n)``.
        pes: ``(Q, 2)`` destination PEs.
        keep_source: keep the source buffer (e.g. the residual stream used twice).
    Returns:
        The same values in the new layout, held in a new SRAM buffer.
    """
    bounds = np.asarray(bounds, dtype=np.int64)
    pes = np.asarray(pes, dtype=np.int64).reshape(-1, 2)
    n = act.values.shape[1]
    if bounds[0] != 0 or bounds[-1] != n or (np.diff(bounds) <= 0).any() or len(pes) != len(bounds) - 1:
        raise FabricError(f"destination bounds must split [0, {n}) into {len(pes)} non-empty chunks, "
                          f"got {bounds.tolist()}")
    edges = np.union1d(act.bounds, bounds)
    lo = edges[:-1]
    src_chunk = np.searchsorted(act.bounds, lo, side="right") - 1
    dst_chunk = np.searchsorted(bounds, lo, side="right") - 1
    m = act.values.shape[0]
    before = _link_snapshot(fabric)
    single = fabric.add_routes(act.pes[src_chunk], pes[dst_chunk], m * np.diff(edges))
    cycles = max(int(single.max(initial=0)), _max_new_load(fabric, before))
    hops = np.abs(act.pes[src_chunk] - pes[dst_chunk]).sum(axis=1)
    out = _hold(fabric, Activations(act.values, bounds, pes), name)
    if not keep_source:
        release(fabric, act)
    fabric.finish_op(name, "move", cycles, 0.0, int((m * np.diff(edges) * hops).sum()))
    return out


# ----------------------------------------------------------------------------------------------
# The weight-stationary matrix multiply
# ----------------------------------------------------------------------------------------------
@dataclass
class DistributedMatrix:
    """A weight matrix ``W (K, N)`` (and optional bias ``(N,)``) stationary on a region:
    PE ``(i, j)`` holds ``W[row_bounds[i]:row_bounds[i+1], col_bounds[j]:col_bounds[j+1]]``.

    Attributes:
        region: the PEs used, ``min(K, rows) x min(N, cols)``.
        tiles: ``(R, Q, kb, nb)`` the tiles, zero padded to the largest tile.
        bias: ``(N,)``, held by the bottom row (each PE its ``N_j`` slice), or None.
    """

    name: str
    region: Region
    K: int
    N: int
    row_bounds: np.ndarray
    col_bounds: np.ndarray
    tiles: torch.Tensor
    bias: torch.Tensor | None

    @property
    def west_pes(self) -> np.ndarray:
        """``(R, 2)``: where each row's slice of X must be before a multiply (the west edge)."""
        i = np.arange(self.region.rows)
        return np.stack([self.region.row0 + i, np.full_like(i, self.region.col0)], axis=1)

    @property
    def south_pes(self) -> np.ndarray:
        """``(Q, 2)``: where each column's slice of Y ends up (the bottom row)."""
        j = np.arange(self.region.cols)
        return np.stack([np.full_like(j, self.region.row0 + self.region.rows - 1),
                         self.region.col0 + j], axis=1)

    def weight(self) -> torch.Tensor:
        """``(K, N)``: the matrix put back together from the tiles (for checks)."""
        r, c, kb, nb = self.tiles.shape
        full = self.tiles.permute(0, 2, 1, 3).reshape(r * kb, c * nb)
        rows = _chunk_index(self.row_bounds, kb).reshape(-1)
        cols = _chunk_index(self.col_bounds, nb).reshape(-1)
        keep_r = rows < self.K
        keep_c = cols < self.N
        out = torch.zeros(self.K, self.N, dtype=self.tiles.dtype)
        out[rows[keep_r][:, None], cols[keep_c][None, :]] = full[keep_r][:, keep_c]
        return out

    def free(self) -> None:
        """Release the tiles' SRAM."""
        fabric = self.region.fabric
        for suffix in ("", ".bias"):
            if self.name + suffix in fabric.allocations:
                fabric.free(self.name + suffix)


def place_matrix(region: Region, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 name: str = "W") -> DistributedMatrix:
    """Store ``weight (K, N)`` weight-stationary on ``region`` (``K`` over its rows, ``N`` over its
    columns, as evenly as possible) and ``bias (N,)`` on the bottom row.

    Raises:
        SramError: a tile does not fit in one PE's SRAM (the message names the PE and the bytes).
        FabricError: a weight that is not a 2-D matrix, or a bias of the wrong length.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.numel() == 0:
        raise FabricError(f"weight must be a non-empty 2-D tensor (K, N), got "
                          f"{getattr(weight, 'shape', type(weight).__name__)}")
    K, N = weight.shape
    if bias is not None and tuple(bias.shape) != (N,):
        raise FabricError(f"bias must have shape ({N},) to match weight {tuple(weight.shape)}, "
                          f"got {tuple(bias.shape)}")
    R, Q = min(K, region.rows), min(N, region.cols)
    used = Region(region.fabric, region.row0, region.col0, R, Q, region.name)
    row_bounds, col_bounds = bounds_of(split_sizes(K, R)), bounds_of(split_sizes(N, Q))
    kb, nb = int(np.diff(row_bounds).max()), int(np.diff(col_bounds).max())
    w = weight.detach().to(torch.float32)
    w_ext = torch.zeros(K + 1, N + 1, dtype=torch.float32)
    w_ext[:K, :N] = w
    ri, ci = _chunk_index(row_bounds, kb), _chunk_index(col_bounds, nb)
    tiles = w_ext[ri[:, None, :, None], ci[None, :, None, :]]  # (R, Q, kb, nb)
    tile_bytes = np.outer(np.diff(row_bounds), np.diff(col_bounds)) * BYTES
    used.allocate(name, tile_bytes)
    b = None
    if bias is not None:
        b = bias.detach().to(torch.float32).clone()
        region.fabric.allocate(name + ".bias", (np.diff(col_bounds) * BYTES)[None, :],
                               used.row0 + R - 1, used.col0)
    return DistributedMatrix(name, used, K, N, row_bounds, col_bounds, tiles, b)


@dataclass
class Schedule:
    """When each PE of a weight-stationary multiply does what, for the first token (cycles).

    Token ``m`` does the same ``m * interval`` cycles later. Arrays are ``(R, Q)``.

    Attributes:
        k, n: ``(R,)`` activation slice per row, ``(Q,)`` output slice per column.
        arrive: cycle the whole activation slice has reached PE ``(i, j)``.
        compute: cycles PE ``(i, j)`` multiplies (``k_i n_j / 4`` multiply-adds per cycle).
        send: cycle PE ``(i, j)`` starts sending its running partial sum south.
        interval: cycles between consecutive tokens in steady state.
        done: cycle the last token's result is complete in the bottom row.
        tokens: M.
    """

    k: np.ndarray
    n: np.ndarray
    arrive: np.ndarray
    compute: np.ndarray
    send: np.ndarray
    interval: int
    done: int
    tokens: int


def systolic_schedule(k: np.ndarray, n: np.ndarray, compute: np.ndarray, tokens: int,
                      bottom_extra: np.ndarray | None = None) -> Schedule:
    """The cycle model of a weight-stationary multiply on an ``R x Q`` block of PEs.

    For one token, entering the west edge at cycle 0:

    - its activation slice (``k_i`` wavelets) streams east along row ``i``; the last wavelet reaches
      PE ``(i, j)`` at ``arrive = j + k_i`` (one hop per cycle, one wavelet per cycle);
    - the PE then multiplies for ``compute[i, j]`` cycles;
    - partial sums flow south with cut-through adds: PE ``(i, j)`` starts sending at
      ``send = max(arrive + compute, send of the PE above + 1)``;
    - the bottom row's sums (``n_j`` wavelets, plus ``bottom_extra`` cycles, e.g. for a bias) are
      complete at ``send + n_j``.

    Consecutive tokens follow ``interval = max(k_i, n_j, compute)`` cycles apart: the busiest link or
    PE sets the pace (compute and communication overlap). ``done = (M - 1) interval +`` the first
    token's completion.
    """
    k = np.asarray(k, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    R, Q = len(k), len(n)
    i = np.arange(R)[:, None]
    j = np.arange(Q)[None, :]
    arrive = j + k[:, None]
    ready = arrive + compute
    send = np.maximum.accumulate(ready - i, axis=0) + i
    extra = np.zeros(Q, dtype=np.int64) if bottom_extra is None else np.asarray(bottom_extra)
    finish = send[-1] + n + extra
    interval = int(max(k.max(), n.max(), compute.max(), (n + extra).max()))
    done = (tokens - 1) * interval + int(finish.max())
    return Schedule(k, n, arrive, compute, send, interval, done, tokens)


def run_matmul(fabric: Fabric, act: Activations, matrix: DistributedMatrix, name: str | None = None,
               keep_output: bool = True) -> Activations:
    """``Y = X W (+ b)`` with ``X`` already at the matrix's west edge; ``Y`` ends in its bottom row.

    Args:
        act: ``(M, K)`` activations laid out as ``matrix.row_bounds`` on ``matrix.west_pes``
            (use :func:`move` to get them there).
        keep_output: hold ``Y`` in the bottom row's SRAM (False: it streams out as it is made).
    Returns:
        ``(M, N)`` activations on ``matrix.south_pes`` split as ``matrix.col_bounds``.
    """
    name = name or matrix.name
    if not act.same_layout(matrix.row_bounds, matrix.west_pes):
        raise FabricError(f"{name}: the activations must sit at the west edge of the matrix's region, "
                          f"split like its rows {matrix.row_bounds.tolist()}; move them there first "
                          f"(kernels.move)")
    x = act.values
    M = x.shape[0]
    R, Q, kb, nb = matrix.tiles.shape
    # Every PE's partial product at once: (R, M, kb) @ (R, kb, Q * nb) -> (R, M, Q * nb)
    x_rows = _pad_chunks(x, matrix.row_bounds).permute(1, 0, 2)  # (R, M, kb)
    partial = torch.bmm(x_rows, matrix.tiles.permute(0, 2, 1, 3).reshape(R, kb, Q * nb))
    y_pad = partial.sum(dim=0).reshape(M, Q, nb)  # the partial sums flowing south, added up
    cols = _chunk_index(matrix.col_bounds, nb)
    valid = cols < matrix.N
    y = y_pad[:, valid]
    if matrix.bias is not None:
        y = y + matrix.bias

    k, n = np.diff(matrix.row_bounds), np.diff(matrix.col_bounds)
    compute = -(-np.outer(k, n) // fabric.fmac_per_cycle)
    extra = n * assumptions.ELEMENTWISE_PER_CYCLE if matrix.bias is not None else None
    sched = systolic_schedule(k, n, compute, M, extra)
    reg = matrix.region
    before = _link_snapshot(fabric)
    if Q > 1:
        fabric.links["east"][reg.row0:reg.row0 + R, reg.col0:reg.col0 + Q - 1] += M * k[:, None]
    if R > 1:
        fabric.links["south"][reg.row0:reg.row0 + R - 1, reg.col0:reg.col0 + Q] += M * n[None, :]
    moved = sum(int((fabric.links[d] - before[d]).sum()) for d in before)
    flops = 2.0 * M * np.outer(k, n)
    busy = M * compute.astype(np.float64)
    if matrix.bias is not None:
        busy[-1] += M * n
    fabric.add_compute(reg.row0, reg.col0, busy, flops)
    # a PE keeps one token's activation slice and two partial-sum vectors while it works
    scratch = f"{name}.scratch#{next(_buffer_ids)}"
    fabric.allocate(scratch, (k[:, None] + 2 * n[None, :]) * BYTES, reg.row0, reg.col0)
    fabric.free(scratch)
    if fabric.tracing:
        fabric.trace.append({"op": name, "kind": "matmul", "row0": reg.row0, "col0": reg.col0,
                             "schedule": sched})
    fabric.finish_op(name, "matmul", sched.done, float(flops.sum()), moved)
    out = Activations(y.to(torch.float32), matrix.col_bounds.copy(), matrix.south_pes)
    return _hold(fabric, out, name + ".out") if keep_output else out


def matmul(fabric: Fabric, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           region: Region | None = None, name: str = "matmul") -> torch.Tensor:
    """``X W (+ b)`` on the fabric, weight stationary, and the statistics recorded on ``fabric``.

    The weight is placed on ``region`` (default: the whole fabric), the rows of ``X`` stream in at
    the west edge one token after another, the result streams out of the bottom row to the
    fabric's south edge (through any rows the matrix does not use), and the weight's SRAM is freed.

    Args:
        x: ``(M, K)``; weight: ``(K, N)``; bias: ``(N,)`` or None.
    Returns:
        ``(M, N)`` float32, equal to ``x @ weight (+ bias)`` up to float32 rounding.

    Raises:
        SramError: a tile of ``weight`` does not fit in a PE.
        FabricError: shapes that do not match.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] == 0:
        raise FabricError(f"x must be a 2-D tensor (M, K) with M >= 1, got "
                          f"{getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or x.shape[1] != weight.shape[0]:
        raise FabricError(f"x (M, K) and weight (K, N) must agree on K, got {tuple(x.shape)} and "
                          f"{tuple(getattr(weight, 'shape', ()))}")
    region = region or fabric.whole()
    matrix = place_matrix(region, weight, bias, name)
    try:
        west = matrix.west_pes
        entry = np.stack([west[:, 0], np.zeros(len(west), dtype=np.int64)], axis=1)
        fabric.add_routes(entry, west, x.shape[0] * np.diff(matrix.row_bounds))
        fabric.io_in += x.numel()
        act = Activations(x.detach().to(torch.float32), matrix.row_bounds.copy(), west)
        out = run_matmul(fabric, act, matrix, name, keep_output=False)
        south = matrix.south_pes
        exit_ = np.stack([np.full(len(south), fabric.rows - 1), south[:, 1]], axis=1)
        fabric.add_routes(south, exit_, x.shape[0] * np.diff(matrix.col_bounds))
        fabric.io_out += out.values.numel()
        drain = fabric.rows - 1 - int(south[0, 0])  # rows below the matrix the results cross
        if drain > 0:  # they stream out as they are made: only the hops' latency adds
            fabric.finish_op(name + ".drain", "move", drain * assumptions.HOP_CYCLES, 0.0,
                             drain * out.values.numel())
    finally:
        matrix.free()
    return out.values


# ----------------------------------------------------------------------------------------------
# Element-wise and normalisation kernels on activations where they are
# ----------------------------------------------------------------------------------------------
def _elementwise(fabric: Fabric, act: Activations, ops_per_element: int, name: str) -> int:
    """Charge ``ops_per_element`` cycles per element to each PE holding a chunk; return the op's
    cycles (the busiest PE's)."""
    m = act.values.shape[0]
    busy = m * act.sizes * ops_per_element * assumptions.ELEMENTWISE_PER_CYCLE
    fabric.add_compute_at(act.pes, busy, 0.0)
    per_pe = np.zeros((fabric.rows, fabric.cols))
    np.add.at(per_pe, (act.pes[:, 0], act.pes[:, 1]), busy)
    return int(per_pe.max())


def layer_norm(fabric: Fabric, act: Activations, weight: torch.Tensor | None,
               bias: torch.Tensor | None, eps: float, name: str = "layer_norm") -> Activations:
    """LayerNorm of each token's vector, ``(M, C) -> (M, C)``, on the PEs that hold its chunks.

    Each PE sums its chunk; the sums travel along the chain of PEs to the last one and the mean
    travels back; the same again for the squared deviations (the variance) and ``1/sqrt(var + eps)``.
    So each link of the chain carries 2 wavelets per token each way. The op takes
    ``M * max(5 * chunk, 4)`` cycles plus the chain's latency ``4 * hops``.
    """
    x = act.values
    C = x.shape[1]
    chunks = _pad_chunks(x, act.bounds)  # (M, P, w), zero padded
    mean = chunks.sum(dim=2).sum(dim=1, keepdim=True) / C  # local sums, then the chain's sum
    valid = torch.as_tensor(np.arange(chunks.shape[2])[None, :] < act.sizes[:, None])
    dev = torch.where(valid, chunks - mean[:, :, None], torch.zeros(()))
    var = (dev * dev).sum(dim=2).sum(dim=1, keepdim=True) / C
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight.detach()
    if bias is not None:
        y = y + bias.detach()
    m = x.shape[0]
    before = _link_snapshot(fabric)
    if len(act.pes) > 1:
        fabric.add_routes(act.pes[:-1], act.pes[1:], 2 * m)
        fabric.add_routes(act.pes[1:], act.pes[:-1], 2 * m)
    moved = sum(int((fabric.links[d] - before[d]).sum()) for d in before)
    chain_hops = int(np.abs(np.diff(act.pes, axis=0)).sum()) if len(act.pes) > 1 else 0
    local = _elementwise(fabric, act, 5, name)
    cycles = max(local, 4 * m) + 4 * chain_hops * assumptions.HOP_CYCLES
    fabric.finish_op(name, "layer_norm", cycles, 0.0, moved)
    return _hold(fabric, Activations(y.to(torch.float32), act.bounds, act.pes), name + ".out")


def gelu(fabric: Fabric, act: Activations, approximate: str = "none", name: str = "gelu") -> Activations:
    """GELU in place on the PEs that hold ``act``: exact ``x Phi(x)`` (``"none"``, Cerebras-GPT) or
    GPT-2's tanh approximation (``"tanh"``). One cycle per element (an assumption)."""
    if approximate not in ("none", "tanh"):
        raise FabricError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    x = act.values
    if approximate == "none":
        y = 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    else:
        y = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    cycles = _elementwise(fabric, act, 1, name)
    fabric.finish_op(name, "gelu", cycles, 0.0, 0)
    return Activations(y, act.bounds, act.pes, act.buffer)


def add(fabric: Fabric, a: Activations, b: Activations, name: str = "add") -> Activations:
    """``a + b`` for two activations with the same layout (the residual connection); the result
    replaces ``a`` in its buffer and ``b``'s buffer is freed."""
    if a.values.shape != b.values.shape or not b.same_layout(a.bounds, a.pes):
        raise FabricError(f"{name}: both operands must have the same shape and layout; move one first")
    cycles = _elementwise(fabric, a, 1, name)
    fabric.finish_op(name, "add", cycles, 0.0, 0)
    release(fabric, b)
    return Activations(a.values + b.values, a.bounds, a.pes, a.buffer)


def scale(fabric: Fabric, act: Activations, factor: float, name: str = "scale") -> Activations:
    """Multiply by a constant in place (muP's embedding and logit multipliers)."""
    if factor == 1.0:
        return act
    cycles = _elementwise(fabric, act, 1, name)
    fabric.finish_op(name, "scale", cycles, 0.0, 0)
    return Activations(act.values * factor, act.bounds, act.pes, act.buffer)


# ----------------------------------------------------------------------------------------------
# Attention: one PE per head
# ----------------------------------------------------------------------------------------------
def head_pes(region: Region, n_head: int) -> np.ndarray:
    """``(H, 2)``: head ``h`` runs on the region's PE ``(h % rows, h // rows)`` (column by column)."""
    if n_head > region.rows * region.cols:
        raise FabricError(f"{n_head} heads need {n_head} PEs; region {region.name!r} has "
                          f"{region.rows * region.cols}")
    h = np.arange(n_head)
    return np.stack([region.row0 + h % region.rows, region.col0 + h // region.rows], axis=1)


def attention(fabric: Fabric, qkv: Activations, region: Region, n_head: int, batch: int,
              seq_len: int, scale: float, name: str = "attention") -> Activations:
    """Causal multi-head attention, each head on its own PE of ``region``.

    ``qkv`` holds ``(M, 3C)`` with ``M = batch * seq_len`` tokens in order (sequence, position) and
    the columns ``[Q | K | V]`` as gptlib's ``c_attn`` makes them. Head ``h``'s slices of Q, K and V
    move to its PE, which computes ``softmax(Q K^T * scale + causal mask) V`` for each sequence.

    Cycles: each head PE does ``2 T^2 D`` multiply-adds per sequence (all of ``Q K^T`` and ``A V``,
    masked entries included) at 4 per cycle plus 3 element-wise ops per score.
    Returns ``(M, C)`` activations, head ``h``'s ``D`` columns on its PE.
    """
    M, three_c = qkv.values.shape
    C = three_c // 3
    if three_c % 3 or C % n_head or M != batch * seq_len:
        raise FabricError(f"{name}: qkv must be (batch * seq_len, 3 C) with C divisible by n_head; "
                          f"got {tuple(qkv.values.shape)} for batch {batch}, seq_len {seq_len}, "
                          f"n_head {n_head}")
    D = C // n_head
    pes = head_pes(region, n_head)
    dst_pes = pes[np.arange(3 * n_head) % n_head]
    qkv = move(fabric, qkv, np.arange(0, three_c + 1, D), dst_pes, name + ".gather_qkv")
    q, k, v = qkv.values.view(batch, seq_len, 3, n_head, D).permute(2, 0, 3, 1, 4)  # (B, H, T, D)
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, T, T)
    allowed = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    scores = scores.masked_fill(~allowed, float("-inf"))
    scores = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    weights = scores / scores.sum(dim=-1, keepdim=True)
    y = (weights @ v).permute(0, 2, 1, 3).reshape(M, C)  # heads side by side again

    scratch = f"{name}.scores#{next(_buffer_ids)}"
    # each head PE holds one T x T score matrix at a time while it works through the sequences
    per_pe = np.zeros((fabric.rows, fabric.cols), dtype=np.int64)
    np.add.at(per_pe, (pes[:, 0], pes[:, 1]), seq_len * seq_len * BYTES)
    r0, c0 = pes.min(axis=0)
    r1, c1 = pes.max(axis=0) + 1
    fabric.allocate(scratch, per_pe[r0:r1, c0:c1], int(r0), int(c0))
    fabric.free(scratch)
    fmacs = 2 * batch * seq_len * seq_len * D
    busy = -(-fmacs // fabric.fmac_per_cycle) + 3 * batch * seq_len * seq_len
    fabric.add_compute_at(pes, busy, 2.0 * fmacs)
    fabric.finish_op(name, "attention", int(busy), 2.0 * fmacs * n_head, 0)
    out = _hold(fabric, Activations(y.contiguous(), np.arange(0, C + 1, D), pes), name + ".out")
    release(fabric, qkv)
    return out


# ----------------------------------------------------------------------------------------------
# Embedding lookup: the table stationary, token ids streaming in
# ----------------------------------------------------------------------------------------------
def embedding(fabric: Fabric, table: DistributedMatrix, ids: torch.Tensor,
              name: str = "embedding") -> Activations:
    """Rows of ``table (V, C)`` for each token id, ``(M,) -> (M, C)``, in the table's bottom row.

    Each id (one wavelet) streams east along every row of the table's region; the PE whose rows
    contain it copies that row's slice, the others contribute zeros, and the column sums flowing
    south deliver the row to the bottom edge (adding zeros is exact).
    """
    ids = ids.reshape(-1)
    V = table.K
    if ids.numel() == 0 or int(ids.min()) < 0 or int(ids.max()) >= V:
        raise FabricError(f"{name}: token ids must be in [0, {V}), got {ids.tolist()[:8]}...")
    M = ids.numel()
    R, Q, kb, nb = table.tiles.shape
    starts = torch.as_tensor(table.row_bounds[:-1])
    sizes = torch.as_tensor(np.diff(table.row_bounds))
    local = ids[None, :] - starts[:, None]  # (R, M) index inside each row block
    mine = (local >= 0) & (local < sizes[:, None])
    rows = table.tiles[torch.arange(R)[:, None], :, local.clamp(0, kb - 1)]  # (R, M, Q, nb)
    partial = torch.where(mine[:, :, None, None], rows, torch.zeros(()))
    y_pad = partial.sum(dim=0)  # (M, Q, nb): the reduction down each column
    cols = _chunk_index(table.col_bounds, nb)
    y = y_pad[:, cols < table.N]

    n = np.diff(table.col_bounds)
    k = np.ones(R, dtype=np.int64)  # one wavelet (the id) per token per row
    copy = np.broadcast_to(n[None, :] * assumptions.ELEMENTWISE_PER_CYCLE, (R, Q)).copy()
    sched = systolic_schedule(k, n, copy, M)
    reg = table.region
    west = table.west_pes
    fabric.add_routes(np.stack([west[:, 0], np.zeros(R, dtype=np.int64)], 1), west, M)
    fabric.io_in += M * R
    before = _link_snapshot(fabric)
    if Q > 1:
        fabric.links["east"][reg.row0:reg.row0 + R, reg.col0:reg.col0 + Q - 1] += M
    if R > 1:
        fabric.links["south"][reg.row0:reg.row0 + R - 1, reg.col0:reg.col0 + Q] += M * n[None, :]
    moved = sum(int((fabric.links[d] - before[d]).sum()) for d in before)
    fabric.add_compute(reg.row0, reg.col0, M * copy.astype(np.float64), np.zeros((R, Q)))
    fabric.finish_op(name, "embedding", sched.done, 0.0, moved)
    return _hold(fabric, Activations(y.contiguous(), table.col_bounds.copy(), table.south_pes),
                 name + ".out")


# ----------------------------------------------------------------------------------------------
# A whole GPT, layer pipelined: every weight matrix in its own strip of the fabric
# ----------------------------------------------------------------------------------------------
def _strip_widths(weights: list[float], fixed: list[int], cols: int) -> list[int]:
    """Columns per strip: ``fixed[s]`` where it is > 0, the rest shared in proportion to
    ``weights[s]`` (at least one each, largest remainders first)."""
    free = cols - sum(fixed)
    flexible = [s for s, f in enumerate(fixed) if f == 0]
    if free < len(flexible):
        raise FabricError(f"the fabric has {cols} columns but this model needs at least "
                          f"{sum(fixed) + len(flexible)} (one strip per weight matrix); use a wider "
                          f"fabric or a model with fewer layers")
    total = sum(weights[s] for s in flexible)
    share = {s: (free - len(flexible)) * weights[s] / total for s in flexible}
    widths = list(fixed)
    for s in flexible:
        widths[s] = 1 + int(share[s])
    left = cols - sum(widths)
    for s in sorted(flexible, key=lambda s: share[s] - int(share[s]), reverse=True)[:left]:
        widths[s] += 1
    return widths


class GPTOnFabric:
    """A :class:`gptlib.GPT` placed on a fabric, layer pipelined, and run with real numbers.

    The fabric is cut into vertical strips, left to right in the order the data flows: the embedding
    table, then for each block ``c_attn``, the attention heads (one PE each), ``attn.c_proj``,
    ``mlp.c_fc``, ``mlp.c_proj``, and finally the output head (which holds its own copy of the tied
    embedding matrix). Matrix strips get columns in proportion to their weights. LayerNorm
    parameters sit at the west edge of the matrix that follows them; position embeddings in the
    embedding strip's bottom row. Between ops the activations :func:`move` on XY routes.

    Args:
        fabric: the :class:`~wse_demo.fabric.Fabric` (its SRAM limit is enforced while placing).
        model: a :class:`gptlib.GPT` (in eval mode; dropout is not simulated).
    Raises:
        SramError: some PE cannot hold its share; the message names it.
        FabricError: the fabric has fewer columns than strips, or too few rows for the heads.
    """

    def __init__(self, fabric: Fabric, model):
        from gptlib.model import GPT  # wse_demo imports gptlib, never the other way round

        if not isinstance(model, GPT):
            raise FabricError(f"model must be a gptlib.GPT, got {type(model).__name__}")
        if model.training and model.config.dropout > 0:
            raise FabricError("the fabric runs inference only: call model.eval() first")
        self.fabric, self.model, self.config = fabric, model, model.config
        cfg = self.config
        L, C, H, F, V = cfg.n_layer, cfg.d_model, cfg.n_head, cfg.d_ffn, cfg.vocab_size
        heads_width = -(-H // fabric.rows)
        names, weights, fixed = ["embedding"], [V * C + cfg.context_length * C], [0]
        for layer in range(L):
            for part, w in (("attn.c_attn", 3 * C * C), ("attn.heads", 0), ("attn.c_proj", C * C),
                            ("mlp.c_fc", C * F), ("mlp.c_proj", F * C)):
                names.append(f"h.{layer}.{part}")
                weights.append(w)
                fixed.append(heads_width if part == "attn.heads" else 0)
        names.append("lm_head")
        weights.append(C * V)
        fixed.append(0)
        widths = _strip_widths(weights, fixed, fabric.cols)
        col = 0
        self.regions: dict[str, Region] = {}
        for name, w in zip(names, widths):
            self.regions[name] = fabric.region(0, col, fabric.rows, w, name)
            col += w

        tr = model.transformer
        self.matrices: dict[str, DistributedMatrix] = {}
        self.matrices["embedding"] = place_matrix(self.regions["embedding"], tr.wte.weight, None,
                                                  "embedding.wte")
        emb = self.matrices["embedding"]
        wpe_bytes = cfg.context_length * np.diff(emb.col_bounds) * BYTES
        fabric.allocate("embedding.wpe", wpe_bytes[None, :], emb.region.row0 + emb.region.rows - 1,
                        emb.region.col0)
        self.wpe = tr.wpe.weight.detach().to(torch.float32)
        self.layer_norms: dict[str, tuple] = {}
        for layer, block in enumerate(tr.h):
            p = f"h.{layer}."
            for part, lin in (("attn.c_attn", block.attn.c_attn), ("attn.c_proj", block.attn.c_proj),
                              ("mlp.c_fc", block.mlp.c_fc), ("mlp.c_proj", block.mlp.c_proj)):
                # nn.Linear keeps (out, in); the fabric multiplies X (M, in) by W (in, out)
                self.matrices[p + part] = place_matrix(self.regions[p + part], lin.weight.T,
                                                       lin.bias, p + part)
            self._place_layer_norm(p + "ln_1", block.ln_1, self.matrices[p + "attn.c_attn"])
            self._place_layer_norm(p + "ln_2", block.ln_2, self.matrices[p + "mlp.c_fc"])
        self.matrices["lm_head"] = place_matrix(self.regions["lm_head"], model.lm_head.weight.T, None,
                                                "lm_head")
        self._place_layer_norm("ln_f", tr.ln_f, self.matrices["lm_head"])
        self.head_pes = {layer: head_pes(self.regions[f"h.{layer}.attn.heads"], H) for layer in range(L)}

    def _place_layer_norm(self, name: str, ln, matrix: DistributedMatrix) -> None:
        per_pe = np.diff(matrix.row_bounds) * BYTES * (1 + (ln.bias is not None))
        self.fabric.allocate(name, per_pe[:, None], matrix.region.row0, matrix.region.col0)
        self.layer_norms[name] = (ln.weight, ln.bias, ln.eps)

    def _to_west_edge(self, act: Activations, matrix: DistributedMatrix, name: str,
                      keep_source: bool = False) -> Activations:
        return move(self.fabric, act, matrix.row_bounds, matrix.west_pes, name, keep_source)

    def _layer_norm(self, act: Activations, name: str) -> Activations:
        w, b, eps = self.layer_norms[name]
        return layer_norm(self.fabric, act, w, b, eps, name)

    @torch.no_grad()
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` for token ids ``idx (B, T)``, computed on the fabric.

        Ops run one after another (their cycles add up in ``fabric.cycles``); every activation
        buffer is freed at the end, so only the weights stay in SRAM.
        """
        self.model.check_input(idx)
        f, cfg = self.fabric, self.config
        B, T = idx.shape
        M = B * T
        mx = self.matrices
        x = embedding(f, mx["embedding"], idx.reshape(-1), "embedding")
        emb = mx["embedding"]
        pos = torch.arange(T).repeat(B)
        wpe_rows = self.wpe[pos]  # each bottom-row PE adds its slice of the position embedding
        x = Activations(x.values + wpe_rows, x.bounds, x.pes, x.buffer)
        f.add_compute_at(emb.south_pes, M * np.diff(emb.col_bounds), 0.0)
        f.finish_op("embedding.add_position", "add", int(M * np.diff(emb.col_bounds).max()), 0.0, 0)
        if cfg.mup:
            x = scale(f, x, self.model.embedding_multiplier, "embedding.mup_multiplier")
        scale_attn = self.model.transformer.h[0].attn.scale
        for layer in range(cfg.n_layer):
            p = f"h.{layer}."
            x = self._to_west_edge(x, mx[p + "attn.c_attn"], p + "move_in")
            h = self._layer_norm(x, p + "ln_1")
            qkv = run_matmul(f, h, mx[p + "attn.c_attn"], p + "attn.c_attn")
            release(f, h)
            att = attention(f, qkv, self.regions[p + "attn.heads"], cfg.n_head, B, T, scale_attn,
                            p + "attn")
            att = self._to_west_edge(att, mx[p + "attn.c_proj"], p + "attn.move_heads")
            y = run_matmul(f, att, mx[p + "attn.c_proj"], p + "attn.c_proj")
            release(f, att)
            residual = move(f, x, y.bounds, y.pes, p + "residual_1")
            x = add(f, y, residual, p + "residual_1.add")
            x = self._to_west_edge(x, mx[p + "mlp.c_fc"], p + "mlp.move_in")
            h = self._layer_norm(x, p + "ln_2")
            h2 = run_matmul(f, h, mx[p + "mlp.c_fc"], p + "mlp.c_fc")
            release(f, h)
            h2 = gelu(f, h2, "none" if cfg.activation == "gelu" else "tanh", p + "mlp.gelu")
            h2 = self._to_west_edge(h2, mx[p + "mlp.c_proj"], p + "mlp.move_hidden")
            y = run_matmul(f, h2, mx[p + "mlp.c_proj"], p + "mlp.c_proj")
            release(f, h2)
            residual = move(f, x, y.bounds, y.pes, p + "residual_2")
            x = add(f, y, residual, p + "residual_2.add")
        x = self._to_west_edge(x, mx["lm_head"], "ln_f.move_in")
        h = self._layer_norm(x, "ln_f")
        release(f, x)
        logits = run_matmul(f, h, mx["lm_head"], "lm_head", keep_output=False)
        release(f, h)
        if cfg.mup:
            logits = Activations(logits.values * self.model.logit_multiplier, logits.bounds, logits.pes)
            f.finish_op("lm_head.mup_multiplier", "scale", int(M * logits.sizes.max()), 0.0, 0)
        south = mx["lm_head"].south_pes
        f.add_routes(south, np.stack([np.full(len(south), f.rows - 1), south[:, 1]], 1),
                     M * logits.sizes)
        f.io_out += logits.values.numel()
        return logits.values.reshape(B, T, -1)

    __call__ = forward

    def strips(self) -> list[dict]:
        """One row per strip: name, columns, PEs used by its weights and their bytes."""
        out = []
        for name, region in self.regions.items():
            m = self.matrices.get(name)
            used = m.region.rows * m.region.cols if m is not None else (
                self.config.n_head if name.endswith("heads") else 0)
            weight_bytes = m.K * m.N * BYTES if m is not None else 0
            out.append({"strip": name, "columns": f"{region.col0}..{region.col0 + region.cols - 1}",
                        "PEs used": used, "weight bytes": weight_bytes})
        return out


def gpt_forward(fabric: Fabric, model, idx: torch.Tensor) -> torch.Tensor:
    """Place ``model`` on ``fabric`` and return its logits ``(B, T, V)`` for ``idx (B, T)``; see
    :class:`GPTOnFabric`. The weights stay placed (call ``fabric.reset_stats()`` between runs to
    separate their statistics)."""
    return GPTOnFabric(fabric, model).forward(idx)
