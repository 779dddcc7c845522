"""Why GPT scales its residual output projections by 1/sqrt(2L) at initialisation (chapter 5)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import PALETTE


def residual_variance_figure(per_block: Mapping[str, Sequence[float]], depths: Sequence[int],
                             final: Mapping[str, Sequence[float]]) -> go.Figure:
    """Two panels comparing initialisation schemes by the variance of the residual stream.

    Args:
        per_block: ``{scheme: (L + 1,) variances}`` of one deep model: after the embeddings (block 0)
            and after each block.
        depths: ``(N,)`` numbers of layers L of the models in the right panel.
        final: ``{scheme: (N,) variances}`` of the residual stream after the last block, per depth.
            The same scheme labels as ``per_block``.
    """
    if not per_block or list(per_block) != list(final):
        raise ValueError("per_block and final must be non-empty and use the same scheme labels")
    depths = np.asarray(depths, dtype=float)
    if depths.ndim != 1 or depths.size == 0 or (depths < 1).any():
        raise ValueError(f"depths must be a non-empty 1-D list of layer counts >= 1, got {depths}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "inside one model: variance after each block", "after the last block, for models of depth L"))
    for i, label in enumerate(per_block):
        v = np.asarray(per_block[label], dtype=float)
        f = np.asarray(final[label], dtype=float)
        if v.ndim != 1 or f.shape != depths.shape or not (np.isfinite(v).all() and np.isfinite(f).all()):
            raise ValueError(f"series {label!r}: per_block must be 1-D and final must have one value per depth")
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=np.arange(v.size), y=v, name=label, mode="lines", legendgroup=label,
                                 line=dict(color=colour, width=3)), row=1, col=1)
        fig.add_trace(go.Scatter(x=depths, y=f, name=label, mode="lines+markers", legendgroup=label,
                                 showlegend=False, line=dict(color=colour, width=3)), row=1, col=2)
    fig.update_xaxes(title_text="block (0 = the embeddings)", row=1, col=1)
    fig.update_xaxes(title_text="number of layers L", row=1, col=2)
    fig.update_yaxes(title_text="variance of the residual stream", rangemode="tozero")
    fig.update_layout(title=dict(text="Scaling the output projections by 1/√(2L) makes the residual "
                                      "stream's size independent of depth", font=dict(size=15)),
                      height=420, margin=dict(l=60, r=20, t=90, b=50),
                      legend=dict(orientation="h", y=-0.22, x=0.5, xanchor="center"))
    return fig
