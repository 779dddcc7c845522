"""The fabric enforces SRAM per PE, routes wavelets on XY paths and counts every hop."""
import numpy as np
import pytest

from wse_demo import assumptions
from wse_demo.fabric import Fabric, FabricError, SramError


def test_sram_limit_is_enforced_and_names_the_pe_and_the_bytes():
    f = Fabric(4, 4, sram_per_pe=1000)
    f.allocate("a", np.full((2, 2), 600), row0=1, col0=1)
    with pytest.raises(SramError, match=r"PE \(2, 1\) would need 1,100 bytes .*500 for 'b' plus 600"):
        f.allocate("b", np.array([[100, 0], [500, 0]]), row0=1, col0=1)
    assert f.sram_used.sum() == 2400  # the failed allocation left nothing behind
    f.allocate("c", 400, row0=1, col0=1)  # exactly full is fine
    assert f.sram_used[1, 1] == 1000
    f.free("a")
    assert f.sram_used[1, 1] == 400 and f.sram_peak[1, 1] == 1000  # the peak is remembered
    with pytest.raises(FabricError, match="no SRAM allocation"):
        f.free("a")
    with pytest.raises(FabricError, match="exists already"):
        f.allocate("c", 1, row0=0, col0=0)


def test_default_sram_is_48_kb():
    f = Fabric(2, 2)
    f.allocate("fits", 48 * 1024)
    with pytest.raises(SramError, match="49,152"):
        f.allocate("one more byte", 1)


def test_hop_count_and_links_of_a_known_route():
    f = Fabric(6, 8)
    route = f.route((0, 0), (3, 5))
    assert route[:6] == [(0, c) for c in range(6)] and route[5:] == [(r, 5) for r in range(4)]
    assert len(route) - 1 == f.hops((0, 0), (3, 5)) == 8
    cycles = f.send((0, 0), (3, 5), wavelets=10)
    assert cycles == 8 * assumptions.HOP_CYCLES + 10 - 1  # first wavelet 8 cycles, then one per cycle
    assert f.cycles == cycles
    expected_east = np.zeros((6, 7), int)
    expected_east[0, 0:5] = 10
    expected_south = np.zeros((5, 8), int)
    expected_south[0:3, 5] = 10
    assert (f.links["east"] == expected_east).all() and (f.links["south"] == expected_south).all()
    assert f.links["west"].sum() == 0 and f.links["north"].sum() == 0
    assert f.stats().wavelets == 80  # 10 wavelets x 8 hops


def test_west_and_north_routes():
    f = Fabric(5, 5)
    f.send((4, 4), (1, 2), 3)
    assert f.links["west"][4, 2:4].tolist() == [3, 3] and f.links["west"].sum() == 6
    assert f.links["north"][1:4, 2].tolist() == [3, 3, 3] and f.links["north"].sum() == 9


def naive_link_loads(rows, cols, routes):
    """An independent reference: walk every route hop by hop."""
    links = {"east": np.zeros((rows, cols - 1), int), "west": np.zeros((rows, cols - 1), int),
             "south": np.zeros((rows - 1, cols), int), "north": np.zeros((rows - 1, cols), int)}
    f = Fabric(rows, cols)
    for src, dst, n in routes:
        path = f.route(src, dst)
        for (r1, c1), (r2, c2) in zip(path, path[1:]):
            if c2 == c1 + 1:
                links["east"][r1, c1] += n
            elif c2 == c1 - 1:
                links["west"][r1, c2] += n
            elif r2 == r1 + 1:
                links["south"][r1, c1] += n
            else:
                links["north"][r2, c1] += n
    return links


def test_vectorised_routes_equal_a_hop_by_hop_walk():
    rng = np.random.default_rng(0)
    rows, cols = 7, 9
    src = np.stack([rng.integers(0, rows, 200), rng.integers(0, cols, 200)], 1)
    dst = np.stack([rng.integers(0, rows, 200), rng.integers(0, cols, 200)], 1)
    n = rng.integers(1, 20, 200)
    f = Fabric(rows, cols)
    single = f.add_routes(src, dst, n)
    reference = naive_link_loads(rows, cols, zip(map(tuple, src), map(tuple, dst), n))
    for d in reference:
        assert (f.links[d] == reference[d]).all(), d
    hops = np.abs(src - dst).sum(1)
    assert (single == np.where(hops > 0, hops + n - 1, 0)).all()


def test_bad_input_is_refused_clearly():
    with pytest.raises(FabricError, match="rows must be a positive integer"):
        Fabric(0, 4)
    with pytest.raises(FabricError, match="at most"):
        Fabric(3000, 3000)
    f = Fabric(3, 3)
    with pytest.raises(FabricError, match=r"off the 3 x 3 grid"):
        f.route((0, 0), (3, 0))
    with pytest.raises(FabricError, match="positive integer"):
        f.send((0, 0), (1, 1), 0)
    with pytest.raises(FabricError, match=">= 0"):
        f.allocate("neg", -5)
    with pytest.raises(FabricError, match="at least one row"):
        f.region(0, 0, 0, 2)


def test_fabric_from_a_wafer_preset():
    f = Fabric(8, 8, wafer="WSE-3")
    assert f.sram_per_pe == 48_888 and f.fmac_per_cycle == 4
    whole = Fabric(wafer="WSE-2")  # the full grid is small enough to hold its counters
    assert (whole.rows, whole.cols, whole.sram_per_pe) == (996, 757, 49_152)
