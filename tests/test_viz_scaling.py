"""The scaling and muP figures of chapter 8 (gptlib.viz.scaling)."""
import math

import numpy as np
import pytest
import torch

from gptlib import mup_experiments as mup
from gptlib.checks import ArgumentError
from gptlib.schedule import Schedule
from gptlib.scaling import PAPER_LAW, PowerLaw, cerebras_points
from gptlib.viz.scaling import (coordinate_check_figure, flops_comparison_figure, isoflop_figure,
                                lr_transfer_figure, scaling_law_figure, tokens_per_parameter_figure)


def test_flops_comparison_figure_shows_each_count_over_the_reference():
    fig = flops_comparison_figure(["a", "b"], {"6ND": [1e18, 1e19], "full": [3e18, 1.5e19]},
                                  reference=[2e18, 2e19])
    assert [t.type for t in fig.data] == ["bar", "bar"] and fig.layout.yaxis.type != "log"
    assert np.allclose(fig.data[0].y, [0.5, 0.5]) and np.allclose(fig.data[1].y, [1.5, 0.75])
    assert np.allclose(fig.data[1].customdata, [3e18, 1.5e19])  # the FLOPs, for the hover
    assert [shape.y0 for shape in fig.layout.shapes] == [1.0]  # the reference line
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] > 1.5  # room above 1
    with pytest.raises(ValueError, match=r"one value per model \(2\)"):
        flops_comparison_figure(["a", "b"], {"6ND": [1e18]}, reference=[1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        flops_comparison_figure(["a"], {"6ND": [0.0]}, reference=[1.0])
    with pytest.raises(ValueError, match="reference must hold positive"):
        flops_comparison_figure(["a"], {"6ND": [1.0]}, reference=[0.0])


def test_tokens_per_parameter_line_is_the_ratio():
    fig = tokens_per_parameter_figure(["111M"], [1.11e8], [2.22e9], ratio=20,
                                      others={"GPT-3": (175e9, 300e9)})
    line = fig.data[0]
    assert np.allclose(np.asarray(line.y) / np.asarray(line.x), 20.0)
    assert line.x[-1] > 175e9  # the line spans the extra point too
    with pytest.raises(ValueError, match="same length"):
        tokens_per_parameter_figure(["a", "b"], [1.0], [2.0])


def test_scaling_law_figure_right_panel_has_the_exponents_as_slopes():
    law = PowerLaw(a=30.0, b=-0.1, c=1.0)
    compute = np.array([1e10, 1e11, 1e12])
    fig = scaling_law_figure(compute, law(compute), law, PAPER_LAW, *cerebras_points())
    for trace, b in ((fig.data[2], law.b), (fig.data[4], PAPER_LAW.b)):  # the two shape lines
        x, y = np.log(np.asarray(trace.x)), np.log(np.asarray(trace.y))
        assert math.isclose(y[0], 0.0, abs_tol=1e-12)  # both start at (1, 1)
        assert np.allclose(np.diff(y) / np.diff(x), b)
    # points that lie on the law sit on its line
    ours = fig.data[3]
    assert np.allclose(np.asarray(ours.y), (compute / compute[0]) ** law.b)
    with pytest.raises(ValueError, match="equal lengths"):
        scaling_law_figure(compute, [1.0, 2.0], law, PAPER_LAW, *cerebras_points())
    with pytest.raises(TypeError, match="power law"):
        scaling_law_figure(compute, law(compute), lambda c: c, PAPER_LAW, *cerebras_points())


def test_coordinate_check_figure_slider_shows_one_step_at_a_time():
    tokens = torch.randint(0, 20, (2000,), generator=torch.Generator().manual_seed(0))
    kwargs = dict(widths=(32, 64), steps=2, n_layer=1, d_head=16, context_length=8, batch_size=2,
                  tokens=tokens, vocab_size=20, base_width=32)
    standard = mup.coordinate_check(mup=False, **kwargs)
    mu = mup.coordinate_check(mup=True, **kwargs)
    fig = coordinate_check_figure(standard, mu)
    layers = 3  # embedding, block 1, logits
    assert len(fig.data) == 3 * 2 * layers  # 3 steps (init, 1, 2) x 2 panels x layers
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["0 (init)", "1", "2"]
    for i, s in enumerate(slider.steps):
        visible = s.args[0]["visible"]
        assert sum(visible) == 2 * layers
        assert all(visible[i * 2 * layers:(i + 1) * 2 * layers])
    assert [bool(t.visible) for t in fig.data] == list(slider.steps[-1].args[0]["visible"])
    first = fig.data[0]
    expected = sorted((r["width"], r["size"]) for r in standard if r["step"] == 0 and r["layer"] == first.name)
    assert list(first.y) == [s for _, s in expected]
    with pytest.raises(ValueError, match="no records"):
        coordinate_check_figure([], mu)


def test_coordinate_check_figure_both_panels_are_log_with_their_own_ticks():
    """Both y axes are log (plotly ignores `matches` between a log and a linear axis, which
    once drew the muP panel on a linear scale), share one fixed range and show tick labels."""
    records = [{"width": w, "step": 1, "layer": "block 1", "change": 0.01 * w} for w in (64, 128)]
    flat = [{"width": w, "step": 1, "layer": "block 1", "change": 0.5} for w in (64, 128)]
    fig = coordinate_check_figure(records, flat, value="change", y_title="mean |h - h0|")
    axes = [fig.layout.yaxis, fig.layout.yaxis2]
    assert [a.type for a in axes] == ["log", "log"]
    assert all(a.showticklabels for a in axes)
    assert tuple(axes[0].range) == tuple(axes[1].range)
    low, high = axes[0].range
    assert low < math.log10(0.5) < high and low < math.log10(1.28) < high
    assert fig.layout.yaxis.title.text == "mean |h - h0|"
    assert list(fig.data[0].y) == [0.64, 1.28] and list(fig.data[1].y) == [0.5, 0.5]
    zero = records + [{"width": 256, "step": 1, "layer": "block 1", "change": 0.0}]
    with pytest.raises(ValueError, match="positive finite number for the log axis"):
        coordinate_check_figure(zero, flat, value="change")
    with pytest.raises(ValueError, match="lack"):
        coordinate_check_figure(records, flat)  # no "size" in these records


def test_lr_transfer_figure_stars_the_best_rate_and_skips_diverged_runs():
    records = [{"width": 32, "lr": lr, "val_loss": loss} for lr, loss in
               ((1e-3, 3.0), (1e-2, 2.5), (1e-1, float("nan")))]
    records += [{"width": 64, "lr": lr, "val_loss": loss} for lr, loss in ((1e-3, 2.8), (1e-2, 2.9))]
    fig = lr_transfer_figure(records, records)
    line32, star32 = fig.data[0], fig.data[1]
    assert list(line32.y) == [3.0, 2.5, None]
    assert list(star32.x) == [1e-2] and list(star32.y) == [2.5]
    star64 = fig.data[3]
    assert list(star64.x) == [1e-3]
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="lack"):
        lr_transfer_figure([{"width": 1}], records)


def test_scaling_law_figure_draws_every_seed_and_a_fan_of_refits():
    law = PowerLaw(a=30.0, b=-0.1, c=1.0)
    compute = np.array([1e10, 1e11, 1e12])
    seeds = np.stack([law(compute) - 0.01, law(compute) + 0.01], axis=1)  # (3 runs, 2 seeds)
    refits = [PowerLaw(20.0, -0.05, 0.0), PowerLaw(40.0, -0.2, 1.5)]
    fig = scaling_law_figure(compute, seeds.mean(axis=1), law, PAPER_LAW, *cerebras_points(),
                             seed_losses=seeds, other_fits=refits)
    dots = next(t for t in fig.data if t.name == "each seed")
    assert list(dots.y) == list(seeds.ravel()) and list(dots.x) == list(np.repeat(compute, 2))
    fan = [t for t in fig.data if t.legendgroup == "refits"]
    assert len(fan) == 2
    for trace, refit in zip(fan, refits):  # each a line of its own slope from (1, 1)
        x, y = np.log(np.asarray(trace.x)), np.log(np.asarray(trace.y))
        assert math.isclose(y[0], 0.0, abs_tol=1e-12)
        assert np.allclose(np.diff(y) / np.diff(x), refit.b)
    with pytest.raises(ValueError, match="seed_losses"):
        scaling_law_figure(compute, law(compute), law, PAPER_LAW, *cerebras_points(),
                           seed_losses=np.ones((2, 3)))
    with pytest.raises(TypeError, match="other_fits"):
        scaling_law_figure(compute, law(compute), law, PAPER_LAW, *cerebras_points(),
                           other_fits=[lambda f: f])


def test_isoflop_figure_sorts_by_ratio_and_stars_the_lowest_mean():
    ratio = [200.0, 5.0, 50.0]
    losses = np.array([[2.6, 2.5], [3.1, 3.2], [2.7, 2.6]])  # (sizes, seeds)
    fig = isoflop_figure(ratio, losses, 1e10, labels=["small", "large", "middle"])
    dots, mean, star = fig.data
    assert list(mean.x) == [5.0, 50.0, 200.0]
    assert np.allclose(list(mean.y), [3.15, 2.65, 2.55])
    assert list(mean.text) == ["large", "middle", "small"]
    assert len(dots.y) == 6 and list(star.x) == [200.0] and math.isclose(star.y[0], 2.55)
    assert fig.layout.xaxis.type == "log"
    assert any(shape.x0 == 20.0 for shape in fig.layout.shapes)  # Chinchilla's 20
    with pytest.raises(ValueError, match="losses must be"):
        isoflop_figure(ratio, losses[:2], 1e10)
    with pytest.raises(ValueError, match="finite"):
        isoflop_figure(ratio, np.array([[2.6, float("nan")], [3.1, 3.2], [2.7, 2.6]]), 1e10)
    with pytest.raises(ValueError, match="positive"):
        isoflop_figure([0.0, 5.0, 50.0], losses, 1e10)


def test_lr_transfer_figure_averages_seeds_and_skips_rates_where_one_diverged():
    records = [{"width": 32, "lr": lr, "seed": s, "val_loss": loss} for lr, s, loss in
               ((1e-3, 0, 3.0), (1e-3, 1, 2.8), (1e-2, 0, 2.4), (1e-2, 1, 2.6),
                (1e-1, 0, 2.0), (1e-1, 1, float("nan")))]
    fig = lr_transfer_figure(records, records)
    dots, line, star = fig.data[0], fig.data[1], fig.data[2]
    assert line.name == "width 32" and np.allclose(line.y[:2], [2.9, 2.5]) and line.y[2] is None
    assert sorted(dots.y) == [2.0, 2.4, 2.6, 2.8, 3.0]  # every finite seed, as a dot
    assert list(star.x) == [1e-2]  # 1e-1 is out: one of its seeds diverged


def test_both_loss_figures_draw_baselines_as_labelled_horizontal_lines():
    """The count-based floors of chapter 8 sit on the loss axis, each with its value."""
    law = PowerLaw(a=30.0, b=-0.1, c=1.0)
    compute = np.array([1e10, 1e11, 1e12])
    baselines = {"unigram table": 3.30, "bigram table": 2.49}
    sweep = scaling_law_figure(compute, law(compute), law, PAPER_LAW, *cerebras_points(),
                               baselines=baselines)
    profile = isoflop_figure([200.0, 5.0], np.array([[2.6, 2.5], [3.1, 3.2]]), 1e10,
                             baselines=baselines)
    for fig in (sweep, profile):
        lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
        assert sorted(s.y0 for s in lines) == [2.49, 3.30]
        assert all(s.y0 == s.y1 for s in lines)
        texts = {a.text for a in fig.layout.annotations}
        assert {"unigram table: 3.30", "bigram table: 2.49"} <= texts
    assert all(s.yref == "y" for s in sweep.layout.shapes if s.line.dash == "dot")  # left panel
    with pytest.raises(ArgumentError, match=r"baselines\['bigram table'\]"):
        isoflop_figure([200.0, 5.0], np.ones((2, 2)), 1e10, baselines={"bigram table": "2.49"})


def test_scaling_law_figure_names_each_law_once_in_the_legend():
    law = PowerLaw(a=30.0, b=-0.1, c=1.0)
    compute = np.array([1e10, 1e11, 1e12])
    fig = scaling_law_figure(compute, law(compute), law, PAPER_LAW, *cerebras_points())
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert sum(name.startswith("our fit") for name in shown) == 1
    assert not any(name.startswith("ours:") for name in shown)
    assert sum(name.startswith("paper: slope") for name in shown) == 1
