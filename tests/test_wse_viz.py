"""The figures of chapters 9 and 10 show what the simulator computed, and stay light."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gptlib import GPT, GPTConfig
from wse_demo import kernels, viz
from wse_demo import placement as P
from wse_demo.fabric import Fabric


def has_title_and_axes(fig: go.Figure) -> bool:
    return bool(fig.layout.title.text) and bool(fig.layout.xaxis.title.text) and bool(
        fig.layout.yaxis.title.text)


@pytest.fixture(scope="module")
def traced():
    f = Fabric(3, 4, trace=True)
    kernels.matmul(f, torch.randn(2, 7), torch.randn(7, 9))
    return f


def test_animation_frames_follow_the_schedule(traced):
    s = traced.trace[0]["schedule"]
    fig = viz.matmul_animation(s)
    assert has_title_and_axes(fig)
    assert len(fig.frames) == s.done + 1 and fig.frames[-1].name == str(s.done)
    # at the cycle PE (0, 0) has its whole slice of token 0, it multiplies token 0
    t = int(s.arrive[0, 0])
    state, token, east, south = viz.matmul_states(s, t)
    assert viz.STATE_NAMES[state[0, 0]] == "multiplying" and token[0, 0] == 0
    # after the last cycle nothing moves
    state, token, east, south = viz.matmul_states(s, s.done + 1)
    assert (state == 0).all() and not east.any() and not south.any()
    # links are only ever active where the run counted wavelets
    for t in range(s.done + 1):
        _, _, east, south = viz.matmul_states(s, t)
        assert not (east & (traced.links["east"] == 0)).any()
        assert not (south & (traced.links["south"] == 0)).any()


def test_animation_of_a_single_row_or_column():
    for rows, cols in ((1, 3), (3, 1)):
        f = Fabric(rows, cols, trace=True)
        kernels.matmul(f, torch.randn(2, 5), torch.randn(5, 4))
        s = f.trace[0]["schedule"]
        state, token, east, south = viz.matmul_states(s, int(s.arrive[0, 0]))
        assert state.shape == (rows, cols) and east.shape == (rows, cols - 1)
        assert south.shape == (rows - 1, cols)
        assert len(viz.matmul_animation(s).frames) == s.done + 1


def test_fabric_heatmaps_and_cycle_breakdown(traced):
    fig = viz.fabric_heatmaps(traced.stats())
    assert has_title_and_axes(fig) and len(fig.layout.updatemenus[0].buttons) == 3
    bars = viz.cycles_by_op(traced.log)
    assert sum(bars.data[0].x) == traced.cycles


def test_gpt_fabric_map_labels_every_strip():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=8, n_layer=1, n_head=2, d_model=16)).eval()
    f = Fabric(16, 16)
    placed = kernels.GPTOnFabric(f, model)
    placed(torch.randint(0, 50, (1, 8)))
    fig = viz.gpt_fabric_map(placed, f.stats())
    names = set(np.asarray(fig.data[0].customdata).ravel())
    assert {"embedding", "h.0.attn.c_attn", "h.0.attn.heads", "lm_head"} <= names
    assert has_title_and_axes(fig)
    # the scaled views' colour bar sits in the lower right, the legend from the top right down
    # (the browser test checks on the page that the two never overlap)
    bar, legend = fig.data[0].colorbar, fig.layout.legend
    assert (bar.y, bar.yanchor, legend.y, legend.yanchor) == (0, "bottom", 1, "top")
    assert bar.len <= 0.5


def test_wafer_maps_are_aggregated_and_small():
    p = P.layer_pipelined("1.3B", "WSE-2")
    layer, fill, rows, cols = viz.tiled_maps(p, 100)
    assert layer.shape[0] <= 100 and layer.shape[1] <= 100 and fill.dtype == np.uint8
    assert (layer == p.pe_map()[np.ix_(rows, cols)]).all()
    fig = viz.wafer_explorer("WSE-2")
    assert len(fig.layout.sliders[0].steps) == 7 and len(fig.data) == 14
    assert len(fig.to_json()) < 1_000_000  # keeps the static page light


def test_layer_picker_outlines_the_chosen_region():
    fig = viz.layer_picker("111M", "WSE-2", block="h.0")
    layer_menu, part_menu = fig.layout.updatemenus
    assert [b.label for b in layer_menu.buttons][:2] == ["layer embedding", "layer h.0"]
    assert [b.label for b in part_menu.buttons][:3] == ["all of h.0", "h.0 head 0", "h.0 head 1"]
    p = P.layer_pipelined("111M", "WSE-2")
    shapes = layer_menu.buttons[3].args[0]["shapes"]  # h.2
    area = sum((s["x1"] - s["x0"]) * (s["y1"] - s["y0"]) for s in shapes)
    assert area == p.region("h.2").pes
    assert "h.2" in layer_menu.buttons[3].args[0]["annotations"][0]["text"]


def test_wafer_table_marks_derived_and_assumed_values():
    cells = viz.wafer_table().data[0].cells.values
    quantities, wse1, wse2, wse3 = (list(c) for c in cells)
    grid = quantities.index("PE grid (SDK: width x height)")
    assert "(assumed)" in wse1[grid] and "(" not in wse2[grid]
    assert wse2[grid].startswith("757 x 996")
    peak = quantities.index("peak FP16 of the grid")
    assert "(derived)" in wse2[peak] and "(assumed)" in wse1[peak] and "(assumed)" in wse3[peak]
    assert "(derived)" in wse3[quantities.index("SRAM per PE")]
    assert wse2[quantities.index("cores")] == "850,000"


def test_grid_scaling_marks_grids_whose_tiles_do_not_fit():
    fig = viz.grid_scaling(K=128, N=128, sizes=(1, 2, 4), tokens=8)
    assert list(fig.data[0].x) == [2, 4]  # 128 x 128 float32 is 64 KB: over one PE's 48 KB
    assert "1x1" in fig.layout.annotations[0].text and list(fig.data[-1].x) == [1]
    per_token = list(fig.data[1].y)
    assert per_token[0] > per_token[1]  # more PEs, less time per token


def test_chapter_10_figures_build():
    for fig in (viz.fit_frontier(), viz.mode_comparison(), viz.streaming_timeline("1.3B"),
                viz.scale_out_figure()):
        assert has_title_and_axes(fig)
    table = viz.table_figure([{"a": 1.2345, "b": "x"}], "t", {"a": "{:.2f}"})
    assert list(table.data[0].cells.values[0]) == ["1.23"]


def test_explorers_build_and_refuse_unknown_modes():
    for mode in ("layer pipelined", "weight streaming"):
        assert has_title_and_axes(viz.explorer_figure("256M", mode, "WSE-3", "h.1"))
    assert "head 3" in viz.explorer_figure("256M", "layer pipelined", "WSE-2", "h.1", "head 3"
                                           ).layout.annotations[0].text
    with pytest.raises(ValueError, match="mode must be"):
        viz.explorer_figure("256M", "tensor parallel", "WSE-2", "h.1")
    pytest.importorskip("ipywidgets")
    assert viz.placement_explorer().children and viz.matmul_explorer().children


def test_the_fit_frontier_names_the_largest_model_under_each_policy():
    fig = viz.fit_frontier()
    assert viz.largest_fitting("WSE-2", "save all") == "590M"
    assert viz.largest_fitting("WSE-2", "recompute") == "1.3B"
    assert "up to 590M saving" in fig.layout.title.text.replace("<br>", " ")
    assert "up to 1.3B recomputing" in fig.layout.title.text.replace("<br>", " ")
    assert len([t for t in fig.data if t.type == "bar"]) == 3


def test_the_weight_streaming_dataflow_walks_one_step():
    fig = viz.weight_streaming_dataflow(3)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["fwd 1", "fwd 2", "fwd 3", "bwd 3", "bwd 2", "bwd 1",
                                        "update"]

    def texts(step):
        return " ".join(a["text"] for a in step.args[0]["annotations"])

    # forward: weights stream in, nothing streams out; backward: gradients stream out too
    assert "weights of<br>layer 2 in" in texts(steps[1]) and "gradients" not in texts(steps[1])
    assert "gradients of<br>layer 2 out" in texts(steps[4])
    # the kept layer inputs grow in forward and are consumed in backward
    assert texts(steps[2]).count("x") > texts(steps[0]).count("x")
    assert "x2" in texts(steps[3]) and "x2" not in texts(steps[4])
    assert "AdamW" in texts(steps[-1]) and "weights of" not in texts(steps[-1])
    assert has_title_and_axes(fig)
    with pytest.raises(ValueError, match="n_layers must be"):
        viz.weight_streaming_dataflow(0)


def test_the_pipeline_schedule_figure_shows_who_holds_what():
    fig = viz.pipeline_schedule(4, 6)
    assert has_title_and_axes(fig)
    text = np.asarray(fig.data[0].text)
    assert text.shape[0] == 4 and text[0, 0] == "F0" and text[3, 4] == "B0"
    notes = [a.text for a in fig.layout.annotations]
    assert notes == [f"holds at most <b>{n}</b>" for n in (4, 3, 2, 1)]
    with pytest.raises(ValueError, match="sequences must be"):
        viz.pipeline_schedule(4, 2)


def test_the_mode_comparison_plots_no_throughput_for_a_layout_that_does_not_fit():
    fig = viz.mode_comparison()
    wse2 = [t for t in fig.data if t.visible][0]  # layer pipelined on WSE-2
    fits = [P.layer_pipelined(m, "WSE-2").fits for m in wse2.x]
    assert [y is not None for y in wse2.y] == fits
    assert "fits up to 1.3B" in fig.layout.title.text.replace("<br>", " ")


def test_the_scale_out_figure_shows_every_system_count():
    fig = viz.scale_out_figure()
    thirteen = next(t for t in fig.data if t.name == "13B")
    assert list(thirteen.x) == list(range(1, 129))
    symbols = dict(zip(thirteen.x, thirteen.marker.symbol))
    assert symbols[17] == "x-thin" and symbols[18] == "circle"  # exercise 10.4's gap shows
    assert "micro-batch" in fig.layout.title.text.replace("<br>", " ")
    assert max(next(t for t in fig.data if t.name == "111M").x) == 120  # one system a sequence
