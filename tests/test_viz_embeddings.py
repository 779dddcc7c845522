"""gptlib.viz.embeddings: the figures of chapter 2 draw the data they are given, and refuse bad input."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from gptlib.viz import embeddings as ve


def test_one_hot_product_figure_draws_the_product():
    W = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    ids = [2, 0, 2]
    fig = ve.one_hot_product_figure(ids, W)
    one_hot, table, result = (np.asarray(t.z) for t in fig.data)
    np.testing.assert_array_equal(one_hot, np.eye(6)[ids])
    np.testing.assert_allclose(table, W.numpy(), rtol=1e-6)
    np.testing.assert_allclose(result, W.numpy()[ids], rtol=1e-6)
    assert len(fig.layout.shapes) == 2  # rows 0 and 2 outlined, once each
    assert list(result.shape) == [3, 4] and list(fig.data[2].y) == ["t=0", "t=1", "t=2"]
    assert fig.layout.yaxis3.title.text == "position t"  # the result's rows are labelled


def test_one_hot_product_figure_refuses_out_of_range_ids():
    with pytest.raises(ValueError, match=r"ids must be a non-empty list of token ids in \[0, 3\)"):
        ve.one_hot_product_figure([3], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        ve.one_hot_product_figure([0], np.zeros(3))


def test_similarity_heatmap_switches_states_and_titles():
    S1, S2 = np.eye(3), -np.eye(3)
    fig = ve.similarity_heatmap_figure({"a": ("xyz", S1), "b": ("xyz", S2)},
                                       titles={"a": "A title", "b": "B title"}, every_label=True)
    assert isinstance(fig, go.Figure)
    assert [t.visible for t in fig.data] == [True, False]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.args[1]["title"]["text"] for b in buttons] == ["A title", "B title"]
    assert fig.layout.title.text == "A title"
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), S2)
    with pytest.raises(ValueError, match="one label per row"):
        ve.similarity_heatmap_figure({"a": ("xy", S1)})
    with pytest.raises(ValueError, match="NaN"):
        ve.similarity_heatmap_figure({"a": ("xyz", np.full((3, 3), np.nan))})


def test_position_and_curve_figures():
    P = np.sin(np.arange(20)[:, None] * np.array([1.0, 0.1])[None, :])
    fig = ve.position_embeddings_figure({"sin": P, "zeros": np.zeros((20, 2))})
    assert len(fig.data) == 2 and fig.layout.updatemenus[0].buttons[1].label == "zeros"
    fig = ve.sinusoid_curves_figure(P, dims=[0, 1])
    np.testing.assert_allclose(fig.data[1].y, P[:, 1])
    with pytest.raises(ValueError, match="column indices"):
        ve.sinusoid_curves_figure(P, dims=[2])


def test_sinusoid_curves_draw_a_continuous_line_through_the_whole_positions():
    t = np.arange(20)
    fine = np.linspace(0, 19, 191)
    table = lambda pos: np.sin(pos[:, None] * np.array([1.0, 0.1])[None, :])  # noqa: E731
    fig = ve.sinusoid_curves_figure(table(t), dims=[0, 1], curve=(fine, table(fine)))
    lines = [d for d in fig.data if d.mode == "lines"]
    markers = [d for d in fig.data if d.mode == "markers"]
    assert len(lines) == len(markers) == 2
    np.testing.assert_allclose(lines[0].x, fine)
    np.testing.assert_allclose(lines[1].y, np.sin(0.1 * fine))
    np.testing.assert_allclose(markers[0].y, np.sin(t))
    assert [d.showlegend for d in markers] == [False, False]  # one legend entry per dimension
    with pytest.raises(ValueError, match="curve must be"):
        ve.sinusoid_curves_figure(table(t), dims=[0], curve=(fine, table(fine)[:, :1]))


def test_embedding_share_figure_plots_percentages():
    fig = ve.embedding_share_figure(["s", "l"], [30, 10], [100, 1000])
    assert list(fig.data[0].y) == pytest.approx([30.0, 1.0])
    with pytest.raises(ValueError, match="equal length"):
        ve.embedding_share_figure(["s"], [1, 2], [3])
    with pytest.raises(ValueError, match="embedding_params <= total_params"):
        ve.embedding_share_figure(["s"], [5], [3])
