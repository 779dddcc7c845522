"""Figures of chapters 6 and 8: they draw the numbers they are given, where a reader looks for them,
and refuse input that would draw a misleading picture."""
import math

import numpy as np
import pytest
import torch

from gptlib import mup
from gptlib.schedule import Schedule
from gptlib.scaling import PAPER_LAW, PowerLaw, cerebras_points
from gptlib.viz.scaling import (coordinate_check_figure, flops_comparison_figure, lr_transfer_figure,
                                scaling_law_figure, tokens_per_parameter_figure)
from gptlib.viz.training import LiveLossCurve, loss_curve_figure, schedule_figure


# ---------------------------------------------------------------------------- chapter 6
def test_schedule_figure_draws_each_schedule_at_its_values():
    linear = Schedule(1e-3, 10, 100, "linear")
    cosine = Schedule(1e-3, 10, 100, "cosine")
    fig = schedule_figure({"linear": linear, "cosine": cosine})
    assert [t.name for t in fig.data] == ["linear", "cosine"]
    for trace, schedule in zip(fig.data, (linear, cosine)):
        assert list(trace.x)[0] == 0 and list(trace.x)[-1] == 99
        assert all(math.isclose(y, schedule(int(x))) for x, y in zip(trace.x, trace.y))
    assert fig.layout.shapes[0].x0 == 10  # the end of the warm-up is marked
    assert fig.layout.xaxis.title.text == "optimizer step"


def test_schedule_figure_in_tokens_subsamples_long_schedules():
    schedule = Schedule(6e-4, 1526, 9033, "linear")
    fig = schedule_figure({"111M": schedule}, tokens_per_step=245_760, points=100)
    xs = list(fig.data[0].x)
    assert len(xs) <= 102 and xs[-1] == 9032 * 245_760
    assert fig.layout.xaxis.title.text == "tokens seen"
    assert fig.layout.shapes[0].x0 == 1526 * 245_760


def test_schedule_figure_refuses_bad_input():
    with pytest.raises(ValueError, match="empty"):
        schedule_figure({})
    with pytest.raises(ValueError, match="total_steps"):
        schedule_figure({"f": lambda s: 1.0})
    with pytest.raises(TypeError, match="callable"):
        schedule_figure({"x": 3}, total_steps=10)
    with pytest.raises(ValueError, match="tokens_per_step"):
        schedule_figure({"s": Schedule(1.0, 1, 10)}, tokens_per_step=0)


def test_loss_curve_figure_and_uniform_baseline():
    fig = loss_curve_figure([10, 20, 30], [4.0, 3.0, 2.5], [30], [2.6], vocab_size=78)
    assert list(fig.data[0].y) == [4.0, 3.0, 2.5] and list(fig.data[1].y) == [2.6]
    assert math.isclose(fig.layout.shapes[0].y0, math.log(78))
    assert fig.layout.yaxis.title.text == "cross-entropy (nats/token)"
    per_character = loss_curve_figure([1], [1.0], unit="character")
    assert per_character.layout.yaxis.title.text == "cross-entropy (nats/character)"
    with pytest.raises(ValueError, match="one y per x"):
        loss_curve_figure([1, 2], [1.0])
    with pytest.raises(ValueError, match="vocab_size"):
        loss_curve_figure([1], [1.0], vocab_size=1)


def test_live_loss_curve_follows_trainer_events(monkeypatch):
    shown = []
    monkeypatch.setattr(LiveLossCurve, "_render", lambda self, fig: shown.append(
        ("display" if not shown else "update", fig)))
    live = LiveLossCurve(vocab_size=65, redraw_every=2)
    live({"event": "step", "step": 10, "loss": 4.1, "lr": 1e-3})
    assert shown == []  # not yet due
    live({"event": "step", "step": 20, "loss": 3.9, "lr": 1e-3})
    assert [kind for kind, _ in shown] == ["display"]
    live({"event": "eval", "step": 20, "val_loss": 3.95})  # a validation loss redraws at once
    live({"event": "end", "step": 20, "val_loss": 3.95})   # the end only redraws: no duplicate point
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert live.train_steps == [10, 20] and live.train_losses == [4.1, 3.9]
    assert live.val_steps == [20] and live.val_losses == [3.95]
    final = live.figure()
    assert list(final.data[0].y) == [4.1, 3.9] and list(final.data[1].y) == [3.95]
    with pytest.raises(ValueError, match="redraw_every"):
        LiveLossCurve(redraw_every=0)
    with pytest.raises(TypeError, match="event dict"):
        live(3.0)


# ---------------------------------------------------------------------------- chapter 8
def test_flops_comparison_figure_is_log_scaled_bars():
    fig = flops_comparison_figure(["a", "b"], {"6ND": [1e18, 1e19], "paper": [2e18, 2e19]})
    assert [t.type for t in fig.data] == ["bar", "bar"] and fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="2 models"):
        flops_comparison_figure(["a", "b"], {"6ND": [1e18]})
    with pytest.raises(ValueError, match="positive"):
        flops_comparison_figure(["a"], {"6ND": [0.0]})


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
