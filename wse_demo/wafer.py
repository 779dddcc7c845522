"""The Wafer-Scale Engines as numbers: WSE-1, WSE-2 and WSE-3, and small custom grids (chapter 9).

Every value of a preset comes from the book's reference table (Cerebras' published figures; cite
them with the keys in :attr:`WaferSpec.citation`). A value that the table does not give directly is
either *derived* from values it does give (:attr:`WaferSpec.derived` says how) or *assumed*
(:attr:`WaferSpec.assumed` says why), so the chapters can mark each one.

Orientation: the Cerebras SDK gives a fabric as ``width x height`` (``--fabric-dims=757,996`` on
WSE-2: 757 PEs from west to east, 996 from north to south). The simulator indexes PEs as
``(row, col)``, so :attr:`WaferSpec.grid` is ``(rows, cols) = (height, width)`` and
:attr:`WaferSpec.fabric_dims` gives the SDK's order back.

    >>> wse2 = get_wafer("WSE-2")
    >>> wse2.grid, wse2.fabric_dims, wse2.sram_per_pe
    ((996, 757), (757, 996), 49152)
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace

from . import assumptions

KB = 1024  # the SDK's "48 KB" of SRAM per PE is 48 x 1024 bytes


class WaferError(ValueError):
    """A wafer name or grid that makes no wafer; the message says what is allowed."""


@dataclass(frozen=True)
class WaferSpec:
    """One Wafer-Scale Engine (or a small custom grid of PEs).

    Attributes:
        name: ``"WSE-1"``, ``"WSE-2"``, ``"WSE-3"`` or a custom name.
        cores: processing elements (PEs) on the whole wafer, as published.
        sram_bytes: on-chip SRAM of the whole wafer, bytes.
        memory_bandwidth: SRAM bandwidth of the whole wafer, bytes/s.
        fabric_bandwidth: bandwidth of the on-wafer network, bits/s.
        transistors: transistor count.
        process_nm: process node, nm.
        area_mm2: silicon area, mm^2.
        grid: ``(rows, cols)`` of the PE grid (the SDK's fabric on WSE-2/3, whose ``fabric_dims``
            are ``(width, height) = (cols, rows)``).
        sram_per_pe: SRAM of one PE, bytes.
        clock_hz: PE clock, Hz.
        flops_per_cycle: FP16 FLOP one PE can do per cycle (a multiply-add counts 2).
        citation: bibliography key(s) of the published figures.
        derived: ``{field: how it was derived}`` for every value computed from the reference table.
        assumed: ``{field: why}`` for every value neither published nor derived (our choice).
    """

    name: str
    cores: int
    sram_bytes: float
    memory_bandwidth: float
    fabric_bandwidth: float
    transistors: float
    process_nm: int
    area_mm2: float
    grid: tuple[int, int]
    sram_per_pe: int
    clock_hz: float
    flops_per_cycle: int
    citation: str
    derived: dict = field(default_factory=dict, compare=False)
    assumed: dict = field(default_factory=dict, compare=False)

    # ------------------------------------------------------------------ derived quantities
    @property
    def rows(self) -> int:
        return self.grid[0]

    @property
    def cols(self) -> int:
        return self.grid[1]

    @property
    def fabric_dims(self) -> tuple[int, int]:
        """``(width, height)``: the grid as the SDK writes it (``--fabric-dims``), columns first."""
        return self.grid[1], self.grid[0]

    @property
    def memcpy_rectangle(self) -> tuple[int, int]:
        """``(rows, cols)`` of the largest program rectangle that the SDK's ``memcpy``
        infrastructure leaves on this fabric: it needs ``width + 7`` columns and ``height + 2``
        rows of the fabric (Cerebras SDK, Host Runtime and Tensor Streaming), so a program gets at
        most ``(rows - 2) x (cols - 7)`` PEs. Those support PEs lie inside the grid."""
        return self.grid[0] - 2, self.grid[1] - 7

    @property
    def n_pe(self) -> int:
        """PEs in the usable grid, ``rows * cols`` (fewer than :attr:`cores` on WSE-2 and WSE-3)."""
        return self.grid[0] * self.grid[1]

    @property
    def grid_sram_bytes(self) -> int:
        """SRAM of the usable grid: ``n_pe * sram_per_pe`` bytes (derived)."""
        return self.n_pe * self.sram_per_pe

    @property
    def pe_flops(self) -> float:
        """Peak FP16 FLOP/s of one PE: ``flops_per_cycle * clock_hz`` (derived)."""
        return self.flops_per_cycle * self.clock_hz

    @property
    def peak_flops(self) -> float:
        """Peak FP16 FLOP/s of the usable grid, ``n_pe * pe_flops`` (derived).

        The performance model places work on the grid only, so this is the peak it uses. Over all
        :attr:`cores` the same rate gives :attr:`peak_flops_all_cores` (about 7.5 PFLOP/s on WSE-2:
        Andromeda's 120 PFLOP/s over 16 CS-2, by construction, since WSE-2's 8 FLOP per cycle is
        derived from it). Assumed, not derived, where the clock or the lanes are assumed.
        """
        return self.n_pe * self.pe_flops

    @property
    def peak_flops_all_cores(self) -> float:
        """Peak FP16 FLOP/s if every published core computed: ``cores * pe_flops`` (derived)."""
        return self.cores * self.pe_flops

    @property
    def diameter_hops(self) -> int:
        """Hops between opposite corners of the grid: ``rows + cols - 2`` (one cycle each)."""
        return self.grid[0] + self.grid[1] - 2

    def summary(self) -> dict:
        """The spec as a flat dict of plain numbers (for tables in the chapters)."""
        return {
            "name": self.name, "cores": self.cores, "SRAM (GB)": self.sram_bytes / 1e9,
            "memory bandwidth (PB/s)": self.memory_bandwidth / 1e15,
            "fabric bandwidth (Pb/s)": self.fabric_bandwidth / 1e15,
            "transistors (T)": self.transistors / 1e12, "process (nm)": self.process_nm,
            "grid (rows x cols)": f"{self.grid[0]} x {self.grid[1]}",
            "fabric dims (width x height, as the SDK writes them)":
                f"{self.fabric_dims[0]} x {self.fabric_dims[1]}",
            "SRAM per PE (bytes)": self.sram_per_pe,
            f"peak FP16 of the grid (PFLOP/s, {self.kind('peak_flops')})": self.peak_flops / 1e15,
        }

    def kind(self, name: str) -> str:
        """``"published"``, ``"derived"`` or ``"assumed"``: where the value of field ``name`` comes
        from. ``"peak_flops"`` is derived from the clock and the FLOP per cycle, so it is assumed
        when either of them is."""
        if name == "peak_flops":
            parts = [self.kind("clock_hz"), self.kind("flops_per_cycle")]
            return "assumed" if "assumed" in parts else "derived"
        if name in self.assumed or "all" in self.assumed:
            return "assumed"
        if name in self.derived:
            return "derived"
        return "published"

    # ------------------------------------------------------------------ constructors
    @classmethod
    def custom(cls, rows: int, cols: int, sram_per_pe: int = 48 * KB, name: str | None = None,
               clock_hz: float = assumptions.CLOCK_HZ,
               flops_per_cycle: int = assumptions.FLOPS_PER_CYCLE) -> "WaferSpec":
        """A small made-up grid of ``rows x cols`` PEs, each like a WSE-2 PE by default.

        Raises:
            WaferError: a non-positive or non-integer size.
        """
        for label, value in (("rows", rows), ("cols", cols), ("sram_per_pe", sram_per_pe),
                             ("flops_per_cycle", flops_per_cycle)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise WaferError(f"{label} must be a positive integer, got {value!r}")
        if not (isinstance(clock_hz, (int, float)) and math.isfinite(clock_hz) and clock_hz > 0):
            raise WaferError(f"clock_hz must be a positive number, got {clock_hz!r}")
        n = rows * cols
        return cls(
            name=name or f"custom {rows}x{cols}", cores=n, sram_bytes=float(n * sram_per_pe),
            memory_bandwidth=float("nan"), fabric_bandwidth=float("nan"), transistors=float("nan"),
            process_nm=0, area_mm2=float("nan"), grid=(rows, cols), sram_per_pe=sram_per_pe,
            clock_hz=float(clock_hz), flops_per_cycle=flops_per_cycle, citation="",
            assumed={"all": "a made-up grid for experiments, not a Cerebras product"})

    def with_grid(self, rows: int, cols: int) -> "WaferSpec":
        """The same PEs on a different grid (e.g. a corner of a wafer for a quick experiment)."""
        small = WaferSpec.custom(rows, cols, self.sram_per_pe, clock_hz=self.clock_hz,
                                 flops_per_cycle=self.flops_per_cycle)
        return replace(small, name=f"{self.name} ({rows}x{cols} corner)")


def _wse1() -> WaferSpec:
    # The SDK grid of WSE-1 is not published: we assume a grid of about 400,000 PEs shaped like
    # WSE-2's (757 wide, 996 tall): 551 wide x 726 tall = 400,026. Its SRAM per PE is derived.
    cols = round(math.sqrt(400_000 * 757 / 996))
    rows = round(400_000 / cols)
    return WaferSpec(
        name="WSE-1", cores=400_000, sram_bytes=18e9, memory_bandwidth=9e15, fabric_bandwidth=100e15,
        transistors=1.2e12, process_nm=16, area_mm2=46_225, grid=(rows, cols),
        sram_per_pe=int(18e9 // 400_000), clock_hz=assumptions.CLOCK_HZ,
        flops_per_cycle=assumptions.FLOPS_PER_CYCLE, citation="cerebras2021wse2",
        derived={"sram_per_pe": "18 GB / 400,000 cores = 45,000 bytes"},
        assumed={
            "grid": "not published: about 400,000 PEs shaped like WSE-2's grid (551 x 726)",
            "clock_hz": "not published for WSE-1: WSE-2's 1.1 GHz",
            "flops_per_cycle": "not published for WSE-1: WSE-2's 8",
        })


def _wse2() -> WaferSpec:
    return WaferSpec(
        name="WSE-2", cores=850_000, sram_bytes=40e9, memory_bandwidth=20e15, fabric_bandwidth=220e15,
        transistors=2.6e12, process_nm=7, area_mm2=46_225, grid=(996, 757), sram_per_pe=48 * KB,
        clock_hz=assumptions.CLOCK_HZ, flops_per_cycle=assumptions.FLOPS_PER_CYCLE,
        citation="cerebras2021wse2,cerebras2023sdk",
        derived={"flops_per_cycle": "Andromeda's 120 PFLOP/s / 16 CS-2 / 850,000 cores / 1.1 GHz "
                                    "= 8.0 FLOP per cycle, read as 4 FP16 multiply-add lanes"})


def _wse3() -> WaferSpec:
    return WaferSpec(
        name="WSE-3", cores=900_000, sram_bytes=44e9, memory_bandwidth=21e15, fabric_bandwidth=214e15,
        transistors=4e12, process_nm=5, area_mm2=46_225, grid=(1172, 762),
        sram_per_pe=int(44e9 // 900_000), clock_hz=assumptions.CLOCK_HZ,
        flops_per_cycle=assumptions.FLOPS_PER_CYCLE, citation="cerebras2024wse3,cerebras2023sdk",
        derived={"sram_per_pe": "44 GB / 900,000 cores = 48,888 bytes"},
        assumed={
            "clock_hz": "not published for WSE-3: WSE-2's 1.1 GHz",
            "flops_per_cycle": "not published for WSE-3: WSE-2's 8 (Cerebras' own figure of "
                               "about twice WSE-2's performance implies more)",
        })


WAFERS: dict[str, WaferSpec] = {w.name: w for w in (_wse1(), _wse2(), _wse3())}
"""The three published Wafer-Scale Engines, keyed ``"WSE-1"``, ``"WSE-2"``, ``"WSE-3"``."""

ALIASES = {"CS-1": "WSE-1", "CS-2": "WSE-2", "CS-3": "WSE-3"}


def get_wafer(name: str | WaferSpec) -> WaferSpec:
    """The preset called ``name`` (``"WSE-1"``, ``"WSE-2"``, ``"WSE-3"``; case and the dash are
    optional; ``"CS-2"`` names the WSE-2 inside it). A :class:`WaferSpec` is returned unchanged.

    Raises:
        WaferError: unknown name; the message lists the presets and the closest one.
    """
    if isinstance(name, WaferSpec):
        return name
    if not isinstance(name, str):
        raise WaferError(f"a wafer is named by a string such as 'WSE-2', got {type(name).__name__}")
    key = name.strip().upper().replace("_", "-").replace(" ", "-")
    if key.startswith("WSE") and len(key) == 4:  # "WSE2" -> "WSE-2"
        key = "WSE-" + key[3]
    key = ALIASES.get(key, key)
    if key in WAFERS:
        return WAFERS[key]
    choices = list(WAFERS) + list(ALIASES)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.0)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise WaferError(f"unknown wafer {name!r}; the presets are {list(WAFERS)} "
                     f"(or WaferSpec.custom(rows, cols) for a grid of your own).{hint}")
