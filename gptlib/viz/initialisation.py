"""Why GPT scales its residual output projections by 1/sqrt(2L) at initialisation (chapter 5)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from . import inputs
from .style import PALETTE, heading, legend_below, margins


LOG_AXIS = "the axis is logarithmic"


def residual_variance_figure(per_block: Mapping[str, Sequence[float]], depths: Sequence[int],
                             final: Mapping[str, Sequence[float]],
                             embedding_variance: float | None = None,
                             title: str = "Scaling the output projections by 1/√(2L) keeps what "
                                          "the blocks add independent of depth") -> go.Figure:
    """Two panels comparing initialisation schemes by the variance the blocks ADD to the residual
    stream, Var(h_l) - Var(h_0), on logarithmic axes.

    Args:
        per_block: ``{scheme: (L,) added variances}`` of one deep model, after block 1, ..., L.
        depths: ``(n,)`` numbers of layers L of the models in the right panel.
        final: ``{scheme: (n,) added variances}`` after the last block of a model of each depth.
            The same scheme labels as ``per_block``.
        embedding_variance: if given, Var(h_0), the variance of the embeddings alone, drawn in
            both panels as a dashed line for scale.
        title: what to notice.
    Returns:
        A figure with one line per scheme in each panel.
    """
    if not per_block or list(per_block) != list(final):
        raise ValueError("per_block and final must be non-empty and use the same scheme labels")
    depths = np.asarray(depths, dtype=float)
    if depths.ndim != 1 or depths.size == 0 or (depths < 1).any():
        raise ValueError(f"depths must be a non-empty 1-D list of layer counts >= 1, got {depths}")
    checks.number("embedding_variance", embedding_variance, low=0, low_open=True, none_ok=True)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "inside one model: added after each block", "after the last block, models of depth L"))
    for i, label in enumerate(per_block):
        v = inputs.series(f"per_block[{label!r}]", per_block[label], positive=True, why=LOG_AXIS)
        f = inputs.series(f"final[{label!r}]", final[label], length=depths.size, per="depth",
                          positive=True, why=LOG_AXIS)
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=np.arange(1, v.size + 1), y=v, name=label, mode="lines",
                                 legendgroup=label, line=dict(color=colour, width=3)), row=1, col=1)
        fig.add_trace(go.Scatter(x=depths, y=f, name=label, mode="lines+markers", legendgroup=label,
                                 showlegend=False, line=dict(color=colour, width=3)), row=1, col=2)
    if embedding_variance is not None:
        for col in (1, 2):
            fig.add_hline(y=embedding_variance, line=dict(dash="dash", color="#555555", width=1.5),
                          row=1, col=col)
        fig.add_annotation(x=0.01, xref="x domain", y=np.log10(embedding_variance), yref="y",
                           yanchor="bottom", xanchor="left", showarrow=False,
                           text="the embeddings' own variance")
    fig.update_xaxes(title_text="block", row=1, col=1)
    fig.update_xaxes(title_text="number of layers L", row=1, col=2)
    fig.update_yaxes(title_text="variance added by the blocks (log scale)", type="log",
                     exponentformat="power", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    fig.update_layout(title=heading(title), height=430, margin=margins(70, 90, 50),
                      legend=legend_below(-0.22))
    return fig
