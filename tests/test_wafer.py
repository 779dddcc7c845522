"""The wafer presets carry the published numbers, and bad names get a helpful error."""
import pytest

from wse_demo.wafer import KB, WAFERS, WaferError, WaferSpec, get_wafer


def test_presets_match_the_reference_table():
    expected = {  # cores, SRAM, memory bandwidth, fabric bandwidth, transistors, process
        "WSE-1": (400_000, 18e9, 9e15, 100e15, 1.2e12, 16),
        "WSE-2": (850_000, 40e9, 20e15, 220e15, 2.6e12, 7),
        "WSE-3": (900_000, 44e9, 21e15, 214e15, 4e12, 5),
    }
    for name, row in expected.items():
        w = WAFERS[name]
        assert (w.cores, w.sram_bytes, w.memory_bandwidth, w.fabric_bandwidth, w.transistors,
                w.process_nm) == row
        assert w.area_mm2 == 46_225
        assert w.citation  # every preset says where its numbers come from
    # the SDK writes a fabric as width x height (--fabric-dims=757,996): 996 rows of 757 PEs
    assert WAFERS["WSE-2"].fabric_dims == (757, 996) and WAFERS["WSE-3"].fabric_dims == (762, 1172)
    assert WAFERS["WSE-2"].grid == (996, 757) and WAFERS["WSE-2"].rows == 996
    assert WAFERS["WSE-2"].sram_per_pe == 48 * 1024
    # memcpy needs 7 more columns and 2 more rows than a program: 750 x 994 PEs at most on WSE-2
    assert WAFERS["WSE-2"].memcpy_rectangle == (994, 750)


def test_wse2_peak_agrees_with_andromeda():
    """8 FLOP/cycle x 1.1 GHz x 850,000 cores is about 7.5 PFLOP/s, Andromeda's 120 / 16."""
    w = get_wafer("WSE-2")
    assert w.peak_flops_all_cores == pytest.approx(120e15 / 16, rel=0.01)
    assert w.peak_flops < w.peak_flops_all_cores  # the SDK grid has fewer PEs than the wafer's cores
    assert w.n_pe == 757 * 996
    # the 8 FLOP per cycle is derived from Andromeda, so this agreement is by construction
    assert 120e15 / 16 / w.cores / w.clock_hz == pytest.approx(w.flops_per_cycle, rel=0.01)


def test_values_not_in_the_table_are_marked_derived_or_assumed():
    w1, w2, w3 = (get_wafer(n) for n in ("WSE-1", "WSE-2", "WSE-3"))
    assert w1.kind("grid") == "assumed" and w1.kind("sram_per_pe") == "derived"
    assert w1.kind("clock_hz") == "assumed" and w1.kind("peak_flops") == "assumed"
    assert w1.n_pe == pytest.approx(400_000, rel=0.001)
    assert w1.sram_per_pe * w1.cores == pytest.approx(18e9, rel=1e-6)
    assert w3.kind("sram_per_pe") == "derived" and w3.kind("peak_flops") == "assumed"
    assert w2.kind("sram_per_pe") == "published" and w2.kind("grid") == "published"
    assert w2.kind("flops_per_cycle") == "derived" and w2.kind("peak_flops") == "derived"
    assert WaferSpec.custom(2, 2).kind("grid") == "assumed"


def test_names_are_forgiving_and_unknown_names_suggest_the_closest():
    assert get_wafer("wse-2") is WAFERS["WSE-2"]
    assert get_wafer("WSE3") is WAFERS["WSE-3"]
    assert get_wafer("CS-2") is WAFERS["WSE-2"]
    assert get_wafer(WAFERS["WSE-1"]) is WAFERS["WSE-1"]
    with pytest.raises(WaferError, match=r"unknown wafer 'WSX-2'.*Did you mean 'WSE-2'"):
        get_wafer("WSX-2")
    with pytest.raises(WaferError, match="string"):
        get_wafer(2)


def test_custom_grids():
    w = WaferSpec.custom(8, 16)
    assert (w.n_pe, w.sram_per_pe, w.grid_sram_bytes) == (128, 48 * KB, 128 * 48 * KB)
    assert w.peak_flops == 128 * 8 * 1.1e9
    assert w.diameter_hops == 8 + 16 - 2
    corner = get_wafer("WSE-2").with_grid(4, 4)
    assert corner.grid == (4, 4) and "WSE-2" in corner.name
    for bad in (dict(rows=0, cols=4), dict(rows=4, cols=2.5), dict(rows=4, cols=4, sram_per_pe=-1)):
        with pytest.raises(WaferError, match="positive integer"):
            WaferSpec.custom(**bad)


def test_the_assumptions_table_has_two_parts_and_every_row_says_its_kind():
    from wse_demo import assumptions

    fabric, training = assumptions.table("fabric"), assumptions.table("training")
    assert [a.name for a in fabric + training] == [a.name for a in assumptions.table()]
    assert {a.kind for a in assumptions.table()} <= {"fact", "derived", "assumed"}
    assert "ACTIVATION_POLICY" in {a.name for a in training}
    text = assumptions.markdown("fabric")
    lines = text.splitlines()
    assert lines[1] == "|---|---|---|---|" and len(lines) == 2 + len(fabric)
    assert all(line.count("|") == 5 for line in lines)  # no stray pipe breaks a row
    with pytest.raises(ValueError, match="part must be one of"):
        assumptions.table("chapter 9")
