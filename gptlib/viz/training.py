"""Figures of chapter 6 (training): the learning-rate schedule and the loss curve, static or live.

* :func:`schedule_figure` draws one or more warm-up-then-decay schedules, against optimizer steps
  or against tokens seen.
* :func:`loss_curve_figure` draws training and validation loss against steps, with the loss of a
  uniform guess, ln V, for scale.
* :class:`LiveLossCurve` is the live version for a running kernel: give it to the trainer as its
  callback and the same figure redraws in place as the losses arrive (in an ipywidgets output
  area, so it works in JupyterLab, VS Code and classic Notebook).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import plotly.graph_objects as go

from .. import checks
from . import inputs
from .style import PALETTE, legend_row


# ----------------------------------------------------------------------------------------------
# the schedule
# ----------------------------------------------------------------------------------------------
def schedule_figure(schedules: Mapping[str, Callable[[int], float]], total_steps: int | None = None,
                    tokens_per_step: int | None = None, warmup_steps: int | None = None,
                    title: str = "Learning rate: a linear warm-up, then a decay to 10% of the peak",
                    points: int = 400) -> go.Figure:
    """Learning rate against step (or tokens) for each named schedule.

    Args:
        schedules: name -> a function ``step -> learning rate`` (a :class:`gptlib.schedule.Schedule`
            is one); each must accept integer steps ``0 .. total_steps - 1``.
        total_steps: how many steps to draw (default: each schedule's ``total_steps`` attribute).
        tokens_per_step: if given, the x axis is tokens seen (step x tokens per step) instead of
            steps; the hover text gives the step too.
        warmup_steps: draw a dashed line where the warm-up ends (default: the first schedule's
            ``warmup_steps`` attribute, if it has one).
        points: at most this many points per curve (steps are subsampled evenly, ends kept).
    Returns:
        A figure with one line per schedule.
    """
    if not schedules:
        raise ValueError("schedules is empty: give at least one name -> schedule")
    checks.number("tokens_per_step", tokens_per_step, low=0, low_open=True, none_ok=True)
    fig = go.Figure()
    for i, (name, schedule) in enumerate(schedules.items()):
        if not callable(schedule):
            raise TypeError(f"schedule {name!r} must be callable as schedule(step), got "
                            f"{type(schedule).__name__}")
        n = total_steps if total_steps is not None else getattr(schedule, "total_steps", None)
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"schedule {name!r}: give total_steps (a positive integer); it has no "
                             f"total_steps attribute of its own")
        stride = max(1, n // points)
        steps = sorted(set(range(0, n, stride)) | {n - 1})
        xs = [s * tokens_per_step for s in steps] if tokens_per_step else steps
        hover = ("%{x:.3s} tokens, step %{customdata:,}<br>learning rate %{y:.3e}"
                 if tokens_per_step else "step %{x:,}<br>learning rate %{y:.3e}")
        fig.add_scatter(x=xs, y=[schedule(s) for s in steps], mode="lines", name=name,
                        customdata=steps, hovertemplate=hover + f"<extra>{name}</extra>",
                        line=dict(color=PALETTE[i % len(PALETTE)], width=2.5))
    if warmup_steps is None:
        warmup_steps = getattr(next(iter(schedules.values())), "warmup_steps", None)
    if warmup_steps:
        x = warmup_steps * tokens_per_step if tokens_per_step else warmup_steps
        fig.add_vline(x=x, line=dict(dash="dash", color="#777777"),
                      annotation_text="end of warm-up", annotation_position="bottom right")
    fig.update_layout(title=title, template="plotly_white", height=380,
                      xaxis_title="tokens seen" if tokens_per_step else "optimizer step",
                      yaxis_title="learning rate", yaxis_exponentformat="e",
                      legend=legend_row(-0.22))
    return fig


# ----------------------------------------------------------------------------------------------
# the loss curve
# ----------------------------------------------------------------------------------------------
def loss_curve_figure(train_steps: Sequence[int], train_losses: Sequence[float],
                      val_steps: Sequence[int] = (), val_losses: Sequence[float] = (),
                      vocab_size: int | None = None,
                      title: str = "Training and validation loss fall together: no overfitting yet",
                      unit: str = "token") -> go.Figure:
    """Cross-entropy (nats/token) against optimizer step.

    Args:
        train_steps, train_losses: the training loss of each logged step (one batch each, noisy).
        val_steps, val_losses: the validation loss at each evaluation (averaged over many batches).
        vocab_size: if given, a dashed line at ln V, the loss of a model that guesses uniformly.
        unit: what the model predicts, for the axis label ("token", or "character" for a
            character-level model): the loss is in nats per ``unit``.
    Returns:
        A figure with a training line, validation markers and the optional baseline.
    """
    inputs.paired("training loss", train_steps, train_losses)
    inputs.paired("validation loss", val_steps, val_losses)
    fig = go.Figure()
    fig.add_scatter(x=list(train_steps), y=list(train_losses), mode="lines", name="training (one batch)",
                    line=dict(color=PALETTE[0], width=1.5))
    fig.add_scatter(x=list(val_steps), y=list(val_losses), mode="lines+markers",
                    name="validation (held-out text)", line=dict(color=PALETTE[3], width=2.5),
                    marker=dict(size=7))
    if checks.integer("vocab_size", vocab_size, low=2, none_ok=True) is not None:
        fig.add_hline(y=math.log(vocab_size), line=dict(dash="dash", color="#777777"),
                      annotation_text=f"uniform guess, ln {vocab_size} = {math.log(vocab_size):.2f}",
                      annotation_position="top right")
    fig.update_layout(title=title, template="plotly_white", height=400,
                      xaxis_title="optimizer step", yaxis_title=f"cross-entropy (nats/{unit})",
                      legend=legend_row(-0.22))
    return fig


class LiveLossCurve:
    """A loss curve that redraws in place while a model trains (needs a running kernel).

    Call :meth:`update` (or the object itself, as a trainer callback) with new losses; the figure
    is redrawn at most every ``redraw_every`` calls and always when a validation loss arrives.
    After training, :meth:`figure` returns the final static figure.

    Args:
        vocab_size: draws the uniform-guess line at ln V (optional).
        redraw_every: redraw after this many training-loss updates (redrawing costs time).
        title: the figure's title.
        unit: "token" or "character", for the axis label (see :func:`loss_curve_figure`).
        history: the losses of the run so far, to continue a curve in a new cell: anything with
            lists ``step``, ``loss``, ``val_step`` and ``val_loss`` (a trainer's
            :class:`gptlib.train.History`). They are copied, not shared.
    """

    def __init__(self, vocab_size: int | None = None, redraw_every: int = 10,
                 title: str = "Loss, drawn live as the model trains", unit: str = "token",
                 history=None):
        checks.integer("redraw_every", redraw_every, low=1)
        self.vocab_size, self.redraw_every, self.title = vocab_size, redraw_every, title
        self.unit = unit
        self.train_steps: list[int] = []
        self.train_losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        if history is not None:
            try:
                steps, losses = list(history.step), list(history.loss)
                val_steps, val_losses = list(history.val_step), list(history.val_loss)
            except (AttributeError, TypeError):
                raise TypeError("history must have lists step, loss, val_step and val_loss (a "
                                f"trainer's History), got {type(history).__name__}") from None
            inputs.paired("history's training loss", steps, losses)
            inputs.paired("history's validation loss", val_steps, val_losses)
            self.train_steps, self.train_losses = [int(s) for s in steps], [float(v) for v in losses]
            self.val_steps, self.val_losses = [int(s) for s in val_steps], [float(v) for v in val_losses]
        self._output = None
        self._pending = 0

    def figure(self) -> go.Figure:
        """The curve so far, as a static figure."""
        return loss_curve_figure(self.train_steps, self.train_losses, self.val_steps,
                                 self.val_losses, self.vocab_size, self.title, self.unit)

    def update(self, step: int, train_loss: float | None = None, val_loss: float | None = None) -> None:
        """Add the losses of ``step`` (either may be None) and redraw when due."""
        if train_loss is not None:
            self.train_steps.append(int(step))
            self.train_losses.append(float(train_loss))
            self._pending += 1
        if val_loss is not None:
            if self.val_steps and self.val_steps[-1] == int(step):
                self.val_losses[-1] = float(val_loss)  # a later evaluation of the same step
            else:
                self.val_steps.append(int(step))
                self.val_losses.append(float(val_loss))
        if val_loss is not None or self._pending >= self.redraw_every:
            self.draw()

    def draw(self) -> None:
        """Show the figure (first call) or redraw it in place (later calls).

        The figure lives in an ipywidgets ``Output`` area that is cleared and refilled: plotly
        figures display themselves through their own hook, which ignores IPython's display ids,
        so updating a display handle would stack a new figure under the old one instead."""
        self._pending = 0
        self._render(self.figure())

    def _render(self, fig: go.Figure) -> None:
        import ipywidgets
        from IPython.display import clear_output, display
        if self._output is None:
            self._output = ipywidgets.Output()
            display(self._output)
        with self._output:
            clear_output(wait=True)
            fig.show()

    def __call__(self, event) -> None:
        """Trainer callback (:class:`gptlib.train.Trainer`): a ``{"event": "step", "step", "loss"}``
        adds a training loss, ``{"event": "eval", "step", "val_loss"}`` a validation loss, and
        ``{"event": "end"}`` draws the final state. A dict without ``"event"`` may carry ``step``,
        ``train_loss`` and ``val_loss`` directly."""
        checks.instance("LiveLossCurve's event", event, Mapping, what="an event dict")
        kind = event.get("event")
        if kind == "step":
            self.update(event["step"], train_loss=event["loss"])
        elif kind == "eval":
            self.update(event["step"], val_loss=event["val_loss"])
        elif kind == "end":
            self.draw()
        elif kind is None:
            self.update(event["step"], event.get("train_loss"), event.get("val_loss"))
