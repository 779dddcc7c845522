"""The training figures of chapter 6 (gptlib.viz.training)."""
import math

import pytest

from gptlib.schedule import Schedule
from gptlib.train import History
from gptlib.viz.training import LiveLossCurve, loss_curve_figure, schedule_figure


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
    steps = list(fig.data[0].customdata)  # the hover names the step of every token count
    assert [x // 245_760 for x in xs] == steps and "step" in fig.data[0].hovertemplate


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


def test_live_loss_curve_continues_a_run_from_its_history(monkeypatch):
    monkeypatch.setattr(LiveLossCurve, "_render", lambda self, fig: None)
    history = History(step=[10, 20], loss=[4.0, 3.5], val_step=[20], val_loss=[3.6])
    live = LiveLossCurve(vocab_size=65, history=history)
    live({"event": "step", "step": 30, "loss": 3.2})
    live({"event": "eval", "step": 30, "val_loss": 3.3})
    live({"event": "eval", "step": 30, "val_loss": 3.25})  # a final evaluation of the same step
    assert live.train_steps == [10, 20, 30] and live.train_losses == [4.0, 3.5, 3.2]
    assert live.val_steps == [20, 30] and live.val_losses == [3.6, 3.25]
    assert history.step == [10, 20] and history.val_loss == [3.6]  # copied, not shared
    with pytest.raises(TypeError, match="History"):
        LiveLossCurve(history=[1, 2])
    with pytest.raises(ValueError, match="one y per x"):
        LiveLossCurve(history=History(step=[1, 2], loss=[1.0]))
