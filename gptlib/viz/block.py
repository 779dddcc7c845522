"""Pictures of the transformer block (chapter 4): exact vs tanh GELU, and where LayerNorm goes."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from . import inputs
from .style import PALETTE, heading, legend_below, margins


def gelu_figure(x, exact, tanh) -> go.Figure:
    """Two panels over ``x``: the exact GELU and GPT-2's tanh approximation (with ReLU for scale),
    and their difference ``tanh - exact``.

    Args:
        x: ``(N,)`` inputs; exact, tanh: ``(N,)`` the two GELUs at ``x``.
    """
    x = inputs.series("x", x)
    exact = inputs.series("exact", exact, length=x.size)
    tanh = inputs.series("tanh", tanh, length=x.size)
    diff = tanh - exact
    worst = int(np.abs(diff).argmax())
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "GELU(x) = x Φ(x), and its tanh approximation", "difference: tanh form − exact"))
    fig.add_trace(go.Scatter(x=x, y=np.maximum(x, 0), name="ReLU (for scale)", mode="lines",
                             line=dict(color="#999999", dash="dot")), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=exact, name="exact (erf): Cerebras-GPT, HF \"gelu\"", mode="lines",
                             line=dict(color=PALETTE[0], width=3)), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=tanh, name="tanh approximation: GPT-2, HF \"gelu_new\"", mode="lines",
                             line=dict(color=PALETTE[1], width=2, dash="dash")), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=diff, name="tanh − exact", mode="lines", showlegend=False,
                             line=dict(color=PALETTE[3], width=2)), row=1, col=2)
    fig.add_annotation(x=x[worst], y=diff[worst], row=1, col=2, text=f"largest gap {abs(diff[worst]):.1e}<br>at x = {x[worst]:.2f}",
                       showarrow=True, arrowhead=2, ax=-70 if x[worst] > 0 else 70, ay=-30)
    fig.update_xaxes(title_text="x (pre-activation)", range=[float(x.min()), float(x.max())])
    fig.update_yaxes(title_text="activation", row=1, col=1)
    fig.update_yaxes(title_text="difference", exponentformat="e", row=1, col=2)
    fig.update_layout(title=heading(f"The two GELUs look identical; they differ by at most "
                                   f"{abs(diff[worst]):.1e}"),
                      height=420, margin=margins(60, 90, 50), legend=legend_below(-0.25))
    return fig


def training_curves_figure(curves: Mapping[str, Sequence[float]], title: str, smoothing: int = 10,
                           reference_lines: Mapping[str, float] | None = None) -> go.Figure:
    """Training loss against step for a few runs, each smoothed by a running mean of ``smoothing``
    steps (the raw losses are drawn faintly behind; the legend's title says so).

    Args:
        curves: ``{label: (steps,) losses}`` in nats/token.
        title: what to notice.
        reference_lines: ``{label: loss}`` drawn as dashed horizontal lines (yardsticks).
    """
    if not curves:
        raise ValueError("curves must hold at least one run")
    checks.integer("smoothing", smoothing, low=1)
    fig = go.Figure()
    for i, (label, losses) in enumerate(curves.items()):
        y = inputs.series(f"curves[{label!r}]", losses)
        colour = PALETTE[i % len(PALETTE)]
        k = min(smoothing, y.size)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        steps = np.arange(y.size)
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", line=dict(color=colour, width=1),
                                 opacity=0.25, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=steps[k - 1:], y=smooth, mode="lines", name=label,
                                 line=dict(color=colour, width=3)))
    for label, value in (reference_lines or {}).items():
        checks.number(f"reference line {label!r}", value)
        fig.add_hline(y=value, line=dict(color="#333333", dash="dash", width=1.5),
                      annotation_text=label, annotation_position="bottom left")
    fig.update_layout(title=heading(title), height=500, margin=margins(60, 70, 140),
                      xaxis=dict(title=dict(text="training step")),
                      yaxis=dict(title=dict(text="training loss (nats/token)")),
                      # below the plot: inside it, it would hide part of some curve
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.22,
                                  yanchor="top",
                                  title=dict(text=f"thick: mean of the last {smoothing} steps; "
                                                  f"faint: each step", side="top")))
    return fig
