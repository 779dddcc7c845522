"""Figures of chapter 2: the one-hot product, position embeddings, similarity, and parameter share.

* :func:`one_hot_product_figure`: the three matrices of ``one_hot(ids) @ W = W[ids]`` side by side.
* :func:`position_embeddings_figure`: a (position x dimension) heatmap per table, a dropdown picks
  the table (e.g. sinusoidal or learned).
* :func:`sinusoid_curves_figure`: a few columns of a sinusoidal table as curves over position.
* :func:`similarity_heatmap_figure`: a (n x n) similarity matrix per state, a dropdown picks it.
* :func:`embedding_share_figure`: how much of each model is its embedding tables, as bars.

Every function takes plain arrays or tensors and returns a ``plotly.graph_objects.Figure`` whose
controls work without a kernel (the static book).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import inputs
from .style import PALETTE, margins, titles_by_state, trace_menu

DIVERGING = "RdBu"  # ColorBrewer red-blue: readable under the common colour-vision deficiencies


def one_hot_product_figure(ids: Sequence[int], weight, title: str | None = None) -> go.Figure:
    """``one_hot(ids) @ W`` next to ``W`` and the result, to show that the product picks rows.

    Args:
        ids: ``(T,)`` token ids, each in ``[0, V)``.
        weight: ``(V, C)`` embedding table W.
    Returns:
        Three heatmaps: the ``(T, V)`` one-hot matrix, ``W`` ``(V, C)`` with the chosen rows
        outlined, and the ``(T, C)`` result.
    """
    W = inputs.matrix("weight", weight)
    ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    V, C = W.shape
    if not ids or any(not 0 <= i < V for i in ids):
        raise ValueError(f"ids must be a non-empty list of token ids in [0, {V}), got {ids}")
    one_hot = np.zeros((len(ids), V))
    one_hot[np.arange(len(ids)), ids] = 1.0
    result = one_hot @ W
    limit = float(np.abs(W).max())
    fig = make_subplots(rows=1, cols=3, column_widths=[V, C, C], horizontal_spacing=0.09,
                        subplot_titles=(f"one-hot X<br>(T × V = {len(ids)} × {V})",
                                        f"table W<br>(V × C = {V} × {C})",
                                        f"X @ W = W[ids]<br>(T × C = {len(ids)} × {C})"))
    positions = [f"t={t} (id {i})" for t, i in enumerate(ids)]
    fig.add_trace(go.Heatmap(z=one_hot, x=list(range(V)), y=positions, colorscale=[[0, "white"], [1, PALETTE[0]]],
                             showscale=False, xgap=1, ygap=1,
                             hovertemplate="%{y}<br>column %{x}: %{z:.0f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=W, y=list(range(V)), x=list(range(C)), colorscale=DIVERGING,
                             zmin=-limit, zmax=limit, xgap=1, ygap=1,
                             colorbar=dict(title="value", len=0.8),
                             hovertemplate="row %{y}, dim %{x}: %{z:.2f}<extra></extra>"), 1, 2)
    fig.add_trace(go.Heatmap(z=result, y=[f"t={t}" for t in range(len(ids))], x=list(range(C)),
                             colorscale=DIVERGING,
                             zmin=-limit, zmax=limit, showscale=False, xgap=1, ygap=1,
                             hovertemplate="%{y}, dim %{x}: %{z:.2f}<extra></extra>"), 1, 3)
    for i in sorted(set(ids)):  # outline the rows of W that the ids select
        fig.add_shape(type="rect", x0=-0.5, x1=C - 0.5, y0=i - 0.5, y1=i + 0.5,
                      line=dict(color=PALETTE[1], width=3), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="token id (column)", row=1, col=1)
    fig.update_xaxes(title_text="embedding dimension", row=1, col=2)
    fig.update_xaxes(title_text="embedding dimension", row=1, col=3)
    fig.update_yaxes(title_text="position t", row=1, col=1)
    fig.update_yaxes(title_text="token id (row)", row=1, col=2)
    fig.update_yaxes(title_text="position t", row=1, col=3)  # the rows of the one-hot matrix
    fig.update_layout(
        title=title or "Multiplying by a one-hot matrix just copies the rows of W that the ids name",
        height=400, plot_bgcolor="white", margin=margins(90, 110, 60))
    return fig


def position_embeddings_figure(tables: Mapping[str, object], titles: Mapping[str, str] | None = None,
                               title: str | None = None) -> go.Figure:
    """Position-embedding tables as (position x dimension) heatmaps; a dropdown picks the table.

    Args:
        tables: ``{name: (T, C) table}``; all are drawn on one symmetric colour scale per table.
        titles: optional title per table name (what to notice in that table).
    """
    if not tables:
        raise ValueError("tables is empty: give {name: (T, C) table}")
    fig = go.Figure()
    names = list(tables)
    for k, name in enumerate(names):
        P = inputs.matrix(f"tables[{name!r}]", tables[name])
        limit = float(np.abs(P).max()) or 1.0
        fig.add_trace(go.Heatmap(z=P, colorscale=DIVERGING, zmin=-limit, zmax=limit, visible=(k == 0),
                                 name=name, colorbar=dict(title="value"),
                                 hovertemplate="position %{y}, dimension %{x}: %{z:.3f}<extra></extra>"))
    title_of = titles_by_state(titles, title or "Each row is the vector added to the token at that position")

    fig.update_layout(title=title_of(names[0]), height=480, plot_bgcolor="white",
                      margin=margins(70, 100, 60),
                      xaxis=dict(title="embedding dimension (index 0 ... C-1)"),
                      yaxis=dict(title="position t (tokens from the start)", autorange="reversed"))
    if len(names) > 1:
        fig.update_layout(updatemenus=trace_menu(names, title_of))
    return fig


def sinusoid_curves_figure(table, dims: Sequence[int], title: str | None = None,
                           curve: tuple[object, object] | None = None) -> go.Figure:
    """Chosen columns of a ``(T, C)`` position table over position: a marker at each whole
    position (the table's rows), joined by a continuous curve.

    Args:
        table: ``(T, C)`` position embeddings (e.g. sinusoidal), row t for position t.
        dims: the column indices to draw (at most 8, one colour each).
        curve: optional ``(positions, values)``: ``(n,)`` positions on a fine grid and the
            ``(n, C)`` table evaluated there (a sinusoid is defined between whole positions
            too), drawn as the line through the markers. Without it the markers are joined by
            straight segments.
    """
    P = inputs.matrix("table", table)
    dims = [int(d) for d in dims]
    if not dims or len(dims) > len(PALETTE) or any(not 0 <= d < P.shape[1] for d in dims):
        raise ValueError(f"dims must be 1 to {len(PALETTE)} column indices in [0, {P.shape[1]}), got {dims}")
    if curve is not None:
        t_fine = np.asarray(curve[0].detach().cpu() if hasattr(curve[0], "detach") else curve[0],
                            dtype=np.float64)
        fine = inputs.matrix("curve values", curve[1])
        if t_fine.ndim != 1 or fine.shape != (len(t_fine), P.shape[1]):
            raise ValueError(f"curve must be (positions (n,), values (n, {P.shape[1]})), got "
                             f"{t_fine.shape} and {fine.shape}")
    fig = go.Figure()
    for k, d in enumerate(dims):
        colour = PALETTE[k]
        if curve is not None:
            fig.add_trace(go.Scatter(x=t_fine, y=fine[:, d], mode="lines", name=f"dimension {d}",
                                     legendgroup=str(d), line=dict(color=colour, width=2),
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=np.arange(P.shape[0]), y=P[:, d], name=f"dimension {d}", legendgroup=str(d),
            mode="markers" if curve is not None else "lines+markers", showlegend=curve is None,
            marker=dict(color=colour, size=5), line=dict(color=colour, width=2),
            hovertemplate=f"dimension {d}<br>position %{{x}}: %{{y:.3f}}<extra></extra>"))
    fig.update_layout(
        title=title or "Low dimensions oscillate fast, high dimensions slowly: together they spell the position",
        xaxis=dict(title="position t (tokens from the start)", gridcolor="#e5e5e5"),
        yaxis=dict(title="value of the embedding (unitless)", gridcolor="#e5e5e5", range=[-1.1, 1.1]),
        height=380, plot_bgcolor="white", margin=margins(70, 60, 60))
    return fig


def similarity_heatmap_figure(states: Mapping[str, tuple[Sequence[str], object]],
                              titles: Mapping[str, str] | None = None, title: str | None = None,
                              axis_title: str = "token", value_title: str = "cosine similarity",
                              zrange: tuple[float, float] = (-1.0, 1.0),
                              every_label: bool = False) -> go.Figure:
    """Square similarity matrices with their labels; a dropdown picks one.

    Args:
        states: ``{name: (labels, (n, n) matrix)}`` with ``len(labels) == n``.
        titles: optional title per state (what to notice).
        axis_title: what the rows and columns are (both axes).
        value_title: what the colour measures (colour-bar title).
        zrange: the colour scale's limits (the same for every state).
        every_label: write every label on both axes (for up to about 70 short labels), instead of
            letting plotly thin them out.
    """
    if not states:
        raise ValueError("states is empty: give {name: (labels, matrix)}")
    fig = go.Figure()
    names = list(states)
    for k, name in enumerate(names):
        labels, matrix = states[name]
        S = inputs.matrix(f"states[{name!r}] matrix", matrix)
        labels = [str(l) for l in labels]
        if S.shape[0] != S.shape[1] or S.shape[0] != len(labels):
            raise ValueError(f"state {name!r}: the matrix must be square with one label per row, got "
                             f"shape {S.shape} and {len(labels)} labels")
        fig.add_trace(go.Heatmap(z=S, x=labels, y=labels, colorscale=DIVERGING, zmin=zrange[0],
                                 zmax=zrange[1], visible=(k == 0), name=name,
                                 colorbar=dict(title=value_title),
                                 hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>"))
    title_of = titles_by_state(titles, title or "Similar vectors share a colour block")

    fig.update_layout(title=title_of(names[0]), height=720, plot_bgcolor="white",
                      margin=margins(80, 110, 70),
                      xaxis=dict(title=axis_title, tickangle=0, type="category"),
                      yaxis=dict(title=axis_title, autorange="reversed", type="category"))
    if every_label:
        fig.update_xaxes(dtick=1, tickfont=dict(family="monospace", size=10))
        fig.update_yaxes(dtick=1, tickfont=dict(family="monospace", size=10))
    if len(names) > 1:
        fig.update_layout(updatemenus=trace_menu(names, title_of))
    return fig


def embedding_share_figure(names: Sequence[str], embedding_params: Sequence[int],
                           total_params: Sequence[int], title: str | None = None) -> go.Figure:
    """Bars: the percentage of each model's parameters held by its embedding tables.

    Args:
        names: model names, e.g. ``"111M"`` ... ``"13B"``.
        embedding_params: parameters in the token and position tables of each model.
        total_params: all parameters of each model (tied output head counted once).
    """
    names = [str(n) for n in names]
    emb = np.asarray(embedding_params, dtype=np.float64)
    total = np.asarray(total_params, dtype=np.float64)
    if not names or not (len(names) == len(emb) == len(total)):
        raise ValueError(f"names, embedding_params and total_params must be non-empty and of equal "
                         f"length, got {len(names)}, {len(emb)}, {len(total)}")
    if (total <= 0).any() or (emb < 0).any() or (emb > total).any():
        raise ValueError("need 0 <= embedding_params <= total_params and total_params > 0 for every model")
    share = 100.0 * emb / total
    fig = go.Figure(go.Bar(
        x=names, y=share, marker_color=PALETTE[0], text=[f"{s:.1f}%" for s in share],
        textposition="outside", customdata=np.stack([emb / 1e6, total / 1e6], axis=1),
        hovertemplate=("%{x}: %{y:.1f}% of parameters<br>embeddings %{customdata[0]:.1f} M"
                       " of %{customdata[1]:,.0f} M<extra></extra>")))
    fig.update_layout(
        title=title or "Embeddings are a third of the smallest model but a few percent of the largest",
        xaxis=dict(title="Cerebras-GPT model (parameters)"),
        yaxis=dict(title="embedding tables (% of all parameters)", range=[0, max(share) * 1.18],
                   gridcolor="#e5e5e5"),
        height=420, plot_bgcolor="white", margin=margins(70, 60, 60))
    return fig
