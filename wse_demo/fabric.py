"""A functional simulator of a grid of processing elements (PEs), the fabric of a Wafer-Scale Engine
(chapter 9).

Each PE has its own SRAM of fixed capacity (enforced: :class:`SramError` names the PE and the bytes),
and a router with a link to each of its four neighbours. Messages are 32-bit wavelets; a wavelet
crosses one link per cycle (:mod:`wse_demo.assumptions` states every timing assumption). The
simulator keeps the statistics a hardware designer would look at: cycles, wavelets per link, peak
SRAM per PE, busy cycles (utilisation) per PE, wavelets in and out of the fabric's edge, a log of
ops, and optionally a trace of each kernel's schedule for animation.

Everything is vectorised with numpy: link loads of many routes at once are added with difference
arrays, never with a Python loop per PE per cycle. The distributed operations themselves (matrix
multiply, attention, a whole GPT) live in :mod:`wse_demo.kernels`.

Coordinates are ``(row, col)``: row 0 is the north edge, col 0 the west edge. Link arrays:

- ``east[r, c]``: wavelets sent from ``(r, c)`` to ``(r, c + 1)``, shape ``(rows, cols - 1)``
- ``west[r, c]``: from ``(r, c + 1)`` to ``(r, c)``, shape ``(rows, cols - 1)``
- ``south[r, c]``: from ``(r, c)`` to ``(r + 1, c)``, shape ``(rows - 1, cols)``
- ``north[r, c]``: from ``(r + 1, c)`` to ``(r, c)``, shape ``(rows - 1, cols)``
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import assumptions
from .wafer import KB, WaferSpec, get_wafer

DIRECTIONS = ("east", "west", "south", "north")


class SramError(MemoryError):
    """A PE was asked to hold more bytes than its SRAM has; the message names the PE and the bytes."""


class FabricError(ValueError):
    """A coordinate, size or argument the fabric cannot use; the message says what is allowed."""


@dataclass
class OpRecord:
    """One operation run on the fabric: its name, kind, cycles, FLOPs and the wavelets it moved."""

    name: str
    kind: str
    cycles: int
    flops: float
    wavelets: int


@dataclass
class Region:
    """A rectangle of PEs, ``rows x cols`` with its north-west corner at ``(row0, col0)``."""

    fabric: "Fabric"
    row0: int
    col0: int
    rows: int
    cols: int
    name: str = ""

    def pe(self, i, j):
        """Absolute ``(row, col)`` of the region's PE ``(i, j)`` (ints or arrays)."""
        return self.row0 + np.asarray(i), self.col0 + np.asarray(j)

    def allocate(self, name: str, nbytes) -> None:
        """Reserve ``nbytes`` (a number, or an array of the region's shape or a corner of it) on
        each PE of the region under ``name``; see :meth:`Fabric.allocate`."""
        self.fabric.allocate(name, nbytes, self.row0, self.col0)

    def __repr__(self) -> str:
        return (f"Region({self.name!r}, rows {self.row0}..{self.row0 + self.rows - 1}, "
                f"cols {self.col0}..{self.col0 + self.cols - 1})")


@dataclass
class FabricStats:
    """What one run cost. Arrays are per PE ``(rows, cols)`` or per link (see the module doc).

    Attributes:
        cycles: total cycles of the ops run so far (one after another).
        seconds: ``cycles / clock_hz``.
        flops: FLOPs computed (a multiply-add counts 2).
        links: ``{"east"|"west"|"south"|"north": wavelets per link}``.
        peak_sram: the most bytes each PE held at any time.
        busy_cycles: cycles each PE spent computing.
        utilisation: ``busy_cycles / cycles`` per PE, in [0, 1].
        io_in, io_out: wavelets that entered / left through the fabric's edge.
        log: one :class:`OpRecord` per op.
    """

    cycles: int
    seconds: float
    flops: float
    links: dict
    peak_sram: np.ndarray
    busy_cycles: np.ndarray
    utilisation: np.ndarray
    io_in: int
    io_out: int
    log: list = field(default_factory=list)

    @property
    def wavelets(self) -> int:
        """Wavelets that crossed a link between two PEs (hops counted once per link)."""
        return int(sum(int(a.sum()) for a in self.links.values()))

    @property
    def busiest_link(self) -> tuple[str, int, int, int]:
        """``(direction, row, col, wavelets)`` of the most-used link."""
        best = ("east", 0, 0, 0)
        for d, a in self.links.items():
            if a.size and int(a.max()) > best[3]:
                r, c = np.unravel_index(int(a.argmax()), a.shape)
                best = (d, int(r), int(c), int(a.max()))
        return best

    def link_load_per_pe(self) -> np.ndarray:
        """Wavelets each PE's router sent to its neighbours, ``(rows, cols)`` (for heatmaps)."""
        e, w, s, n = (self.links[d] for d in DIRECTIONS)
        rows, cols = self.peak_sram.shape
        out = np.zeros((rows, cols), dtype=np.int64)
        out[:, :-1] += e
        out[:, 1:] += w
        out[:-1, :] += s
        out[1:, :] += n
        return out

    def summary(self) -> dict:
        """Headline numbers as a plain dict."""
        d, r, c, n = self.busiest_link
        return {"cycles": self.cycles, "time (us)": self.seconds * 1e6, "FLOPs": self.flops,
                "wavelets between PEs": self.wavelets, "wavelets in": self.io_in,
                "wavelets out": self.io_out, "busiest link": f"{d} of PE ({r}, {c}): {n}",
                "peak SRAM of a PE (bytes)": int(self.peak_sram.max()),
                "mean utilisation": float(self.utilisation.mean())}


class Fabric:
    """A ``rows x cols`` grid of PEs with SRAM, routers and statistics.

    Args:
        rows, cols: grid size (or pass ``wafer=`` instead).
        sram_per_pe: bytes of SRAM per PE (48 KB = 49,152 bytes by default, as on WSE-2).
        wafer: a :class:`~wse_demo.wafer.WaferSpec` or its name; supplies grid, SRAM per PE and clock.
        trace: keep each kernel's schedule in :attr:`trace` (for the animation of chapter 9).

    Raises:
        FabricError: non-positive sizes, or a grid too large to simulate functionally.
    """

    MAX_PES = 4_000_000  # a functional simulation of a full wafer's values would not fit in memory

    def __init__(self, rows: int | None = None, cols: int | None = None, sram_per_pe: int | None = None,
                 wafer: WaferSpec | str | None = None, trace: bool = False):
        if wafer is not None:
            spec = get_wafer(wafer)
            rows = spec.rows if rows is None else rows
            cols = spec.cols if cols is None else cols
            sram_per_pe = spec.sram_per_pe if sram_per_pe is None else sram_per_pe
            self.clock_hz = spec.clock_hz
            self.fmac_per_cycle = spec.flops_per_cycle // 2
        else:
            self.clock_hz = assumptions.CLOCK_HZ
            self.fmac_per_cycle = assumptions.FMAC_PER_CYCLE
        cols = rows if cols is None else cols
        sram_per_pe = 48 * KB if sram_per_pe is None else sram_per_pe
        for label, v in (("rows", rows), ("cols", cols), ("sram_per_pe", sram_per_pe)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise FabricError(f"{label} must be a positive integer, got {v!r}")
        if rows * cols > self.MAX_PES:
            raise FabricError(f"a {rows} x {cols} fabric has {rows * cols:,} PEs; the functional "
                              f"simulator handles at most {self.MAX_PES:,}. For a full wafer use the "
                              f"performance model in wse_demo.placement.")
        self.rows, self.cols, self.sram_per_pe = int(rows), int(cols), int(sram_per_pe)
        self.tracing = bool(trace)
        self.sram_used = np.zeros((self.rows, self.cols), dtype=np.int64)
        self.allocations: dict[str, tuple[int, int, np.ndarray]] = {}
        self.owner = np.full((self.rows, self.cols), -1, dtype=np.int16)
        self.region_names: list[str] = []
        self.reset_stats()

    # ------------------------------------------------------------------ statistics
    def reset_stats(self) -> None:
        """Zero the clock, link counters, busy cycles and log (allocations stay)."""
        r, c = self.rows, self.cols
        self.links = {"east": np.zeros((r, c - 1), np.int64), "west": np.zeros((r, c - 1), np.int64),
                      "south": np.zeros((r - 1, c), np.int64), "north": np.zeros((r - 1, c), np.int64)}
        self.busy_cycles = np.zeros((r, c), dtype=np.float64)
        self.flops = np.zeros((r, c), dtype=np.float64)
        self.sram_peak = self.sram_used.copy()
        self.io_in = 0
        self.io_out = 0
        self.cycles = 0
        self.log: list[OpRecord] = []
        self.trace: list[dict] = []

    def stats(self) -> FabricStats:
        """A snapshot of the statistics so far (arrays are copies)."""
        cycles = max(self.cycles, 1)
        return FabricStats(
            cycles=int(self.cycles), seconds=self.cycles / self.clock_hz, flops=float(self.flops.sum()),
            links={d: a.copy() for d, a in self.links.items()}, peak_sram=self.sram_peak.copy(),
            busy_cycles=self.busy_cycles.copy(),
            utilisation=np.clip(self.busy_cycles / cycles, 0.0, 1.0), io_in=int(self.io_in),
            io_out=int(self.io_out), log=list(self.log))

    # ------------------------------------------------------------------ geometry
    def check_pe(self, pe) -> tuple[int, int]:
        """``pe`` as ``(row, col)`` ints, or :class:`FabricError` if it is off the grid."""
        try:
            r, c = (int(v) for v in pe)
        except (TypeError, ValueError):
            raise FabricError(f"a PE is given as (row, col), got {pe!r}") from None
        if not (0 <= r < self.rows and 0 <= c < self.cols):
            raise FabricError(f"PE {(r, c)} is off the {self.rows} x {self.cols} grid "
                              f"(rows 0..{self.rows - 1}, cols 0..{self.cols - 1})")
        return r, c

    def region(self, row0: int, col0: int, rows: int, cols: int, name: str = "") -> Region:
        """The rectangle of ``rows x cols`` PEs at ``(row0, col0)``; named regions are recorded in
        :attr:`owner` (which PE belongs to which region, for the wafer map)."""
        if rows <= 0 or cols <= 0:
            raise FabricError(f"a region needs at least one row and one column, got {rows} x {cols}")
        self.check_pe((row0, col0))
        self.check_pe((row0 + rows - 1, col0 + cols - 1))
        if name:
            self.region_names.append(name)
            self.owner[row0:row0 + rows, col0:col0 + cols] = len(self.region_names) - 1
        return Region(self, int(row0), int(col0), int(rows), int(cols), name)

    def whole(self) -> Region:
        """The whole fabric as one region."""
        return Region(self, 0, 0, self.rows, self.cols, "fabric")

    @staticmethod
    def hops(src, dst) -> int:
        """Hops between two PEs on XY routes: ``|row1 - row2| + |col1 - col2|``."""
        return abs(int(src[0]) - int(dst[0])) + abs(int(src[1]) - int(dst[1]))

    def route(self, src, dst) -> list[tuple[int, int]]:
        """The PEs a wavelet visits from ``src`` to ``dst``, both included: along the row first
        (east or west), then along the column (south or north). ``len(route) - 1`` hops."""
        (r1, c1), (r2, c2) = self.check_pe(src), self.check_pe(dst)
        step_c = 1 if c2 >= c1 else -1
        step_r = 1 if r2 >= r1 else -1
        path = [(r1, c) for c in range(c1, c2 + step_c, step_c)]
        path += [(r, c2) for r in range(r1 + step_r, r2 + step_r, step_r)]
        return path

    # ------------------------------------------------------------------ SRAM
    def allocate(self, name: str, nbytes, row0: int = 0, col0: int = 0) -> None:
        """Reserve ``nbytes`` on PEs under ``name``.

        ``nbytes`` is a number (for the single PE at ``(row0, col0)``) or an integer array whose
        shape is a rectangle of PEs with its corner at ``(row0, col0)``.

        Raises:
            SramError: some PE would hold more than :attr:`sram_per_pe` bytes; the message names the
                first such PE, the bytes it would need, what it already holds and what it has.
            FabricError: the name is taken or the rectangle leaves the grid.
        """
        if name in self.allocations:
            raise FabricError(f"SRAM allocation {name!r} exists already; free it first")
        arr = np.asarray(nbytes, dtype=np.int64)
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        if arr.ndim != 2:
            raise FabricError(f"nbytes must be a number or a 2-D array of bytes per PE, got shape {arr.shape}")
        if (arr < 0).any():
            raise FabricError(f"nbytes must be >= 0, got a minimum of {int(arr.min())}")
        h, w = arr.shape
        if h == 0 or w == 0:
            return
        self.check_pe((row0, col0))
        self.check_pe((row0 + h - 1, col0 + w - 1))
        block = self.sram_used[row0:row0 + h, col0:col0 + w]
        after = block + arr
        if (after > self.sram_per_pe).any():
            i, j = np.unravel_index(int(np.argmax(after)), after.shape)
            r, c = row0 + int(i), col0 + int(j)
            raise SramError(
                f"PE ({r}, {c}) would need {int(after[i, j]):,} bytes of SRAM ({int(arr[i, j]):,} "
                f"for {name!r} plus {int(block[i, j]):,} already held), but each PE has "
                f"{self.sram_per_pe:,} bytes. Spread the data over more PEs.")
        block += arr
        np.maximum(self.sram_peak, self.sram_used, out=self.sram_peak)
        self.allocations[name] = (int(row0), int(col0), arr)

    def free(self, name: str) -> None:
        """Release the bytes reserved under ``name``."""
        if name not in self.allocations:
            raise FabricError(f"no SRAM allocation called {name!r}")
        r0, c0, arr = self.allocations.pop(name)
        self.sram_used[r0:r0 + arr.shape[0], c0:c0 + arr.shape[1]] -= arr

    # ------------------------------------------------------------------ links
    def add_routes(self, src, dst, wavelets) -> np.ndarray:
        """Send ``wavelets[t]`` from ``src[t]`` to ``dst[t]`` for every t, on XY routes, and add them
        to the link counters. Vectorised: difference arrays, one ``np.add.at`` per direction.

        Args:
            src, dst: ``(n, 2)`` integer arrays of ``(row, col)``.
            wavelets: ``(n,)`` wavelets of each transfer (or one number for all).
        Returns:
            ``(n,)`` cycles each transfer takes alone: ``hops + wavelets - 1`` (0 if nothing moves).
        """
        src = np.atleast_2d(np.asarray(src, dtype=np.int64))
        dst = np.atleast_2d(np.asarray(dst, dtype=np.int64))
        n = np.broadcast_to(np.asarray(wavelets, dtype=np.int64), (len(src),)).copy()
        if src.shape != dst.shape or src.shape[1:] != (2,):
            raise FabricError(f"src and dst must both be (n, 2) arrays of (row, col), got "
                              f"{src.shape} and {dst.shape}")
        if len(src) == 0:
            return np.zeros(0, dtype=np.int64)
        for a in (src, dst):
            if (a[:, 0] < 0).any() or (a[:, 0] >= self.rows).any() or (a[:, 1] < 0).any() \
                    or (a[:, 1] >= self.cols).any():
                raise FabricError(f"a route leaves the {self.rows} x {self.cols} grid")
        r1, c1, r2, c2 = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
        R, C = self.rows, self.cols
        # horizontal leg along row r1; a run from column a to column b (a < b) covers links a..b-1
        for direction, mask in (("east", c2 > c1), ("west", c2 < c1)):
            if mask.any():
                lo, hi = np.minimum(c1, c2)[mask], np.maximum(c1, c2)[mask]
                diff = np.zeros((R, C), dtype=np.int64)
                np.add.at(diff, (r1[mask], lo), n[mask])
                np.add.at(diff, (r1[mask], hi), -n[mask])
                self.links[direction] += np.cumsum(diff, axis=1)[:, :C - 1]
        # vertical leg along column c2
        for direction, mask in (("south", r2 > r1), ("north", r2 < r1)):
            if mask.any():
                lo, hi = np.minimum(r1, r2)[mask], np.maximum(r1, r2)[mask]
                diff = np.zeros((R, C), dtype=np.int64)
                np.add.at(diff, (lo, c2[mask]), n[mask])
                np.add.at(diff, (hi, c2[mask]), -n[mask])
                self.links[direction] += np.cumsum(diff, axis=0)[:R - 1, :]
        hops = np.abs(r1 - r2) + np.abs(c1 - c2)
        return np.where((n > 0) & (hops > 0), hops * assumptions.HOP_CYCLES + n - 1, 0)

    def send(self, src, dst, wavelets: int = 1, name: str = "send") -> int:
        """Send ``wavelets`` from one PE to another as an op of its own; returns its cycles
        (``hops + wavelets - 1``: the first wavelet takes one cycle per hop, the rest follow one
        cycle apart) and advances the clock by them."""
        src, dst = self.check_pe(src), self.check_pe(dst)
        if isinstance(wavelets, bool) or not isinstance(wavelets, (int, np.integer)) or wavelets < 1:
            raise FabricError(f"wavelets must be a positive integer, got {wavelets!r}")
        cycles = int(self.add_routes([src], [dst], [wavelets])[0])
        self.finish_op(name, "send", cycles, 0.0, wavelets * self.hops(src, dst))
        return cycles

    # ------------------------------------------------------------------ compute and the clock
    def add_compute(self, row0: int, col0: int, busy_cycles, flops) -> None:
        """Add busy cycles and FLOPs (arrays of a rectangle's shape, or numbers for one PE)."""
        b = np.atleast_2d(np.asarray(busy_cycles, dtype=np.float64))
        f = np.atleast_2d(np.asarray(flops, dtype=np.float64))
        h, w = b.shape
        self.busy_cycles[row0:row0 + h, col0:col0 + w] += b
        self.flops[row0:row0 + f.shape[0], col0:col0 + f.shape[1]] += f

    def add_compute_at(self, pes: np.ndarray, busy_cycles, flops) -> None:
        """Add busy cycles and FLOPs at a list of PEs ``(n, 2)`` (repeats allowed)."""
        pes = np.atleast_2d(np.asarray(pes, dtype=np.int64))
        np.add.at(self.busy_cycles, (pes[:, 0], pes[:, 1]), np.broadcast_to(busy_cycles, (len(pes),)))
        np.add.at(self.flops, (pes[:, 0], pes[:, 1]), np.broadcast_to(flops, (len(pes),)))

    def finish_op(self, name: str, kind: str, cycles: int, flops: float, wavelets: int) -> None:
        """Log an op and advance the clock by its cycles (ops run one after another)."""
        self.cycles += int(cycles)
        self.log.append(OpRecord(name, kind, int(cycles), float(flops), int(wavelets)))

    def __repr__(self) -> str:
        return (f"Fabric({self.rows} x {self.cols} PEs, {self.sram_per_pe:,} bytes SRAM each, "
                f"{len(self.allocations)} allocations, {self.cycles:,} cycles so far)")
