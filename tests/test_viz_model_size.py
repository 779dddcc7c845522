"""Chapters 4-5's size figures: shares add to 100%, memory is drawn in GB, bad series are refused."""
import numpy as np
import pytest

from gptlib.viz import model_size


def test_parameter_breakdown_shares_add_to_100_percent():
    parts = {"embeddings": [30.0, 10.0], "blocks": [70.0, 990.0]}
    fig = model_size.parameter_breakdown_figure(["small", "large"], parts, title="what to see")
    total = np.sum([trace.y for trace in fig.data], axis=0)
    np.testing.assert_allclose(total, [100.0, 100.0])
    np.testing.assert_allclose(fig.data[0].y, [30.0, 1.0])
    np.testing.assert_allclose(fig.data[0].customdata, [30e-6, 10e-6])  # counts in millions
    assert fig.layout.barmode == "stack" and fig.layout.title.text == "what to see"
    with pytest.raises(ValueError, match="one value per model"):
        model_size.parameter_breakdown_figure(["a", "b"], {"x": [1.0]})
    with pytest.raises(ValueError, match="positive total"):
        model_size.parameter_breakdown_figure(["a"], {"x": [0.0]})


def test_memory_figure_converts_bytes_to_gigabytes():
    fig = model_size.memory_figure(["a", "b"], {"weights": [2e9, 4e9]}, capacities={"SRAM": 40e9})
    np.testing.assert_allclose(fig.data[0].y, [2.0, 4.0])
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.shapes[0].y0 == 40.0
    assert fig.layout.annotations[0].y == pytest.approx(np.log10(40.0))  # log axis: annotations in log10
    with pytest.raises(ValueError, match=">= 0"):
        model_size.memory_figure(["a"], {"weights": [-1.0]})
    with pytest.raises(ValueError, match="capacity"):
        model_size.memory_figure(["a"], {"weights": [1.0]}, capacities={"SRAM": 0})
    with pytest.raises(ValueError, match="at least one model"):
        model_size.memory_figure([], {"weights": []})


def test_memory_figure_labels_the_log_axis_at_1_3_10_only():
    fig = model_size.memory_figure(["a", "b"], {"weights": [0.2e9, 52e9]}, capacities={"SRAM": 40e9})
    ticks = list(fig.layout.yaxis.tickvals)
    assert ticks == [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
    assert list(fig.layout.yaxis.ticktext) == ["0.1", "0.3", "1", "3", "10", "30", "100"]
