"""Where a model's parameters go, and how much memory each Cerebras-GPT size needs (chapters 4-5)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .. import checks
from . import inputs
from .style import PALETTE, heading, legend_below, margins


def _per_model(names: Sequence[str], series: Mapping[str, Sequence[float]],
               what: str) -> dict[str, np.ndarray]:
    """``{label: (len(names),) values >= 0}``, one value per model, checked."""
    if not names:
        raise ValueError("give at least one model name")
    if not series:
        raise ValueError(f"{what} must hold at least one series")
    return {label: inputs.series(f"{what}[{label!r}]", values, length=len(names), per="model",
                                 nonnegative=True) for label, values in series.items()}


def parameter_breakdown_figure(names: Sequence[str], parts: Mapping[str, Sequence[float]],
                               title: str = "Where the parameters of each model are") -> go.Figure:
    """Stacked bars, one per model: the share of its parameters in each part (embeddings, attention,
    feed-forward, LayerNorm ...). Hovering shows the count.

    Args:
        names: model names, e.g. ``["111M", ..., "13B"]``.
        parts: ``{part: (len(names),) parameter counts}``; the parts of one model add up to its total.
        title: what to notice.
    """
    parts = _per_model(names, parts, "parts")
    total = sum(parts.values())
    if (total <= 0).any():
        raise ValueError("every model needs a positive total parameter count")
    fig = go.Figure()
    for i, (label, counts) in enumerate(parts.items()):
        fig.add_trace(go.Bar(x=list(names), y=100 * counts / total, name=label,
                             marker_color=PALETTE[i % len(PALETTE)], customdata=counts / 1e6,
                             hovertemplate=f"{label}<br>%{{x}}: %{{customdata:,.1f}}M parameters "
                                           f"(%{{y:.1f}}%)<extra></extra>"))
    fig.update_layout(barmode="stack", height=430, margin=margins(60, 70, 50),
                      title=heading(title),
                      xaxis=dict(title=dict(text="Cerebras-GPT model")),
                      yaxis=dict(title=dict(text="share of parameters (%)"), range=[0, 100]),
                      legend=legend_below(-0.2))
    return fig


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick values 1, 3, 10, 30, ... (times powers of ten) covering ``[low, high]``, both > 0, so a
    log axis shows no ambiguous minor labels."""
    ticks = []
    for exponent in range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1):
        for mantissa in (1, 3):
            value = float(f"{mantissa}e{exponent}")  # 0.3 exactly, not 3 * 0.1
            if low / 3.5 <= value <= high * 3.5:
                ticks.append(value)
    return ticks


def memory_figure(names: Sequence[str], memory_bytes: Mapping[str, Sequence[float]],
                  capacities: Mapping[str, float] | None = None,
                  title: str = "Memory each model needs") -> go.Figure:
    """Grouped bars (log scale, GB = 1e9 bytes): memory each model needs under a few accountings,
    with horizontal lines for memory capacities to compare against.

    Args:
        names: model names.
        memory_bytes: ``{accounting: (len(names),) bytes}``, e.g. bf16 weights, fp32 weights,
            fp32 training state with AdamW.
        capacities: ``{label: bytes}`` drawn as dashed horizontal lines.
        title: what to notice.
    The y axis is labelled at 1, 3, 10, 30, ... GB only (no minor labels that read as other
    decades).
    """
    memory = _per_model(names, memory_bytes, "memory_bytes")
    fig = go.Figure()
    shown = [v / 1e9 for values in memory.values() for v in values if v > 0]
    shown += [value / 1e9 for value in (capacities or {}).values()
              if isinstance(value, (int, float)) and value > 0]
    for i, (label, values) in enumerate(memory.items()):
        fig.add_trace(go.Bar(x=list(names), y=values / 1e9, name=label, marker_color=PALETTE[i % len(PALETTE)],
                             hovertemplate=f"{label}<br>%{{x}}: %{{y:,.1f}} GB<extra></extra>"))
    for j, (label, value) in enumerate((capacities or {}).items()):
        checks.number(f"capacity {label!r}", value, low=0, low_open=True, hint="bytes")
        fig.add_hline(y=value / 1e9, line=dict(color="#333333", dash="dash", width=1.5))
        # on a log axis an annotation's y is the log10 of the value (a shape's is the value itself)
        fig.add_annotation(x=0, xref="paper", xanchor="left", y=np.log10(value / 1e9), yanchor="bottom",
                           text=f"{label}: {value / 1e9:,.0f} GB", showarrow=False)
    fig.update_layout(barmode="group", height=460, margin=margins(60, 70, 50),
                      title=heading(title),
                      xaxis=dict(title=dict(text="Cerebras-GPT model")),
                      yaxis=dict(title=dict(text="memory (GB, log scale)"), type="log"),
                      legend=legend_below(-0.2))
    if shown:
        ticks = _log_ticks(min(shown), max(shown))
        fig.update_yaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    return fig
