"""Chapter 4's figures: the GELU comparison and training curves draw the numbers they are given."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptlib.viz import block as block_viz


def test_gelu_figure_plots_both_gelus_and_their_difference():
    x = torch.linspace(-5, 5, 201, dtype=torch.float64)
    exact, tanh = F.gelu(x), F.gelu(x, approximate="tanh")
    fig = block_viz.gelu_figure(x, exact, tanh)
    by_name = {trace.name: trace for trace in fig.data}
    np.testing.assert_allclose(by_name["tanh − exact"].y, (tanh - exact).numpy())
    np.testing.assert_allclose(by_name["ReLU (for scale)"].y, np.maximum(x.numpy(), 0))
    worst = (tanh - exact).abs().max().item()
    assert f"{worst:.1e}" in fig.layout.title.text  # the title states the measured gap
    assert list(fig.layout.xaxis2.range) == [-5.0, 5.0]  # the axis stops where the data stops
    with pytest.raises(ValueError, match="one value per x"):
        block_viz.gelu_figure(x, exact[:-1], tanh)
    with pytest.raises(ValueError, match="NaN"):
        block_viz.gelu_figure(x, exact * float("nan"), tanh)


def test_training_curves_figure_smooths_with_a_running_mean():
    losses = [4.0, 3.0, 2.0, 1.0, 1.0]
    fig = block_viz.training_curves_figure({"run": losses}, title="t", smoothing=2,
                                           reference_lines={"floor": 0.5})
    raw, smooth = fig.data
    np.testing.assert_allclose(raw.y, losses)
    np.testing.assert_allclose(smooth.y, [3.5, 2.5, 1.5, 1.0])
    np.testing.assert_array_equal(smooth.x, [1, 2, 3, 4])  # each mean is drawn at its last step
    assert fig.layout.shapes[0].y0 == 0.5
    assert fig.layout.legend.title.text == "thick: mean of the last 2 steps; faint: each step"
    with pytest.raises(ValueError, match="at least one run"):
        block_viz.training_curves_figure({}, title="t")
    with pytest.raises(ValueError, match="smoothing"):
        block_viz.training_curves_figure({"run": losses}, title="t", smoothing=0)
    with pytest.raises(ValueError, match="reference line"):
        block_viz.training_curves_figure({"run": losses}, title="t", reference_lines={"x": float("inf")})
