"""Pictures of attention (chapter 3): the weights of every layer and head over a prompt, a per-head
overview, and why the scores are divided by sqrt(d_k) (the spread of the scores, the softmax's
saturation and the two factors of the gradient that reaches the query).

The explorer figure stays interactive in the static book with no kernel: a dropdown picks the layer,
another the head, and a slider the softmax temperature. All L x H heads of the prompt sit in one
heatmap, a grid of T x T tiles; the dropdowns only move the visible window over the grid, and the
slider swaps in the weights re-tempered at another temperature, so the three controls combine freely.
Weights are stored as whole percents in ``uint8`` (one byte a cell), which keeps a page small.

In a live kernel, :func:`attention_widget` wraps the same :func:`attention_figure` in ipywidgets and
adds a BertViz-style view: pick a token and see the prompt shaded by how much that token attends to
each earlier one.
"""
from __future__ import annotations

import base64
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .. import checks
from .style import PALETTE, SEQUENTIAL, heading, legend_below, margins, visible

DEFAULT_TEMPERATURES = (0.25, 0.5, 1.0, 2.0, 4.0)
MASK_COLOUR = "#DDDDDD"


# ----------------------------------------------------------------------------------------------
# Checking and preparing the inputs
# ----------------------------------------------------------------------------------------------
def as_weights(weights, name: str = "weights") -> np.ndarray:
    """Attention weights as a float64 array ``(L, H, T, T)``, after checking they are weights.

    Accepts a tensor or array of shape ``(L, H, T, T)`` (every layer and head, as returned by
    ``GPT.attention_maps(idx)[:, 0]``), ``(H, T, T)`` (one layer) or ``(T, T)`` (one head).

    Raises:
        ValueError: wrong number of dimensions, non-square maps, negative or non-finite entries,
            rows that do not sum to 1, or weight above the diagonal (a query looking at a later key).
    """
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().double().numpy()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim not in (2, 3, 4):
        raise ValueError(f"{name} must have shape (L, H, T, T), (H, T, T) or (T, T), got {w.shape}")
    while w.ndim < 4:
        w = w[None]
    T = w.shape[-1]
    if w.shape[-2] != T or T == 0:
        raise ValueError(f"{name} must be square in its last two dimensions (queries x keys), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{name} must be finite and >= 0: attention weights (after the softmax), "
                         f"not scores")
    if not np.allclose(w.sum(-1), 1.0, atol=1e-3):
        worst = float(np.abs(w.sum(-1) - 1).max())
        raise ValueError(f"each row of {name} must sum to 1 (a softmax over keys); the worst row is off "
                         f"by {worst:.3g}. Pass weights, not scores")
    if np.triu(w, k=1).max() > 1e-6:
        raise ValueError(f"{name} put weight above the diagonal: a query attends to a later key. Causal "
                         f"attention maps are lower-triangular")
    return w


def display_tokens(tokens: Sequence[str]) -> list[str]:
    """Printable labels for tokens: newline as ⏎, space as ␣, tab as ⇥
    (:func:`gptlib.viz.style.visible`; other text unchanged, an empty token ∅)."""
    if isinstance(tokens, str):
        tokens = list(tokens)
    labels = []
    for t in tokens:
        checks.instance("tokens", t, str, what="strings (one per position)")
        labels.append(visible(t) or "∅")
    return labels


def retemper(weights, temperature: float) -> np.ndarray:
    """Attention weights recomputed at another softmax temperature: ``(..., T_k) -> (..., T_k)``.

    If ``w = softmax(s)`` then ``softmax(s / tau)`` is ``w ** (1 / tau)`` renormalised over each row,
    because each row's normaliser cancels. So the scores are not needed. Masked keys (weight 0)
    stay at 0. ``tau < 1`` sharpens towards the largest score, ``tau > 1`` flattens towards uniform.
    Computed in the log domain in float64.
    """
    checks.number("temperature", temperature, low=0, low_open=True)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().double().numpy()
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    top = logw.max(axis=-1, keepdims=True)
    out = np.exp((logw - top) / temperature)
    return out / out.sum(axis=-1, keepdims=True)


def head_statistics(weights) -> dict[str, np.ndarray]:
    """Per-head summaries of ``(L, H, T, T)`` weights, each ``(L, H)``, averaged over queries 1..T-1
    (query 0 can only look at itself):

    ``entropy`` (bits; 0 = all weight on one key), ``uniform_entropy`` (bits a head spreading its
    weight evenly would have), ``previous``, ``self`` and ``first`` (mean weight on the key just
    before the query, on the query itself, and on position 0).
    """
    w = as_weights(weights)
    T = w.shape[-1]
    if T < 2:
        raise ValueError("head statistics need at least 2 tokens")
    rows = w[..., 1:, :]  # (L, H, T-1, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(rows > 0, rows * np.log2(rows), 0.0)
    q = np.arange(1, T)
    return {
        "entropy": -plogp.sum(-1).mean(-1),
        "uniform_entropy": np.full(w.shape[:2], np.log2(q + 1).mean()),
        "previous": w[..., q, q - 1].mean(-1),
        "self": w[..., q, q].mean(-1),
        "first": w[..., 1:, 0].mean(-1),
    }


def typed_array(z: np.ndarray) -> dict:
    """A 2-D uint8 array in plotly.js's base64 typed-array form (1 byte a cell in the page)."""
    z = np.ascontiguousarray(z, dtype=np.uint8)
    return {"dtype": "u1", "bdata": base64.b64encode(z.tobytes()).decode("ascii"),
            "shape": f"{z.shape[0]}, {z.shape[1]}"}


def tile_grid(w: np.ndarray) -> np.ndarray:
    """``(L, H, T, T)`` -> ``(L*T, H*T)``: layer l, head h is the tile at rows l*T.., columns h*T..."""
    L, H, T, _ = w.shape
    return w.transpose(0, 2, 1, 3).reshape(L * T, H * T)


def as_percent(w: np.ndarray) -> np.ndarray:
    """Weights in [0, 1] as whole percents, uint8."""
    return np.rint(np.clip(w, 0, 1) * 100).astype(np.uint8)


def mask_path(x0: int, y0: int, T: int) -> str:
    """SVG path of the masked (upper) triangle of one T x T tile whose cell (0, 0) is at (x0, y0)."""
    pts = [(x0 + T - 0.5, y0 - 0.5), (x0 + 0.5, y0 - 0.5)]
    for i in range(T - 1):
        pts += [(x0 + i + 0.5, y0 + i + 0.5), (x0 + i + 1.5, y0 + i + 0.5)]
    return "M " + " L ".join(f"{x:g},{y:g}" for x, y in pts) + " Z"


# ----------------------------------------------------------------------------------------------
# The explorer: layer, head and temperature
# ----------------------------------------------------------------------------------------------
def attention_figure(weights, tokens: Sequence[str], temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
                     layer: int = 0, head: int = 0, controls: bool = True,
                     title: str | None = None) -> go.Figure:
    """Heatmap of attention weights over a prompt: row = query token, column = key token.

    Args:
        weights: ``(L, H, T, T)`` attention weights (``GPT.attention_maps(idx)[:, 0]``), or
            ``(H, T, T)`` / ``(T, T)``; each row sums to 1 and nothing lies above the diagonal.
        tokens: the ``T`` token strings of the prompt (a ``str`` counts as one token per character).
        temperatures: the softmax temperatures the slider offers (1.0 = the model as trained).
        layer, head: the layer and head shown first.
        controls: ``True`` puts every layer and head in the figure with a layer dropdown, a head
            dropdown (each with an "all" entry for the overview grid) and a temperature slider;
            ``False`` draws only ``layer``, ``head`` at ``temperatures[0]`` (what the live widget uses).
    Returns:
        A plotly figure; masked cells (keys after the query) are grey, weights are whole percents.
    """
    w = as_weights(weights)
    L, H, T, _ = w.shape
    labels = display_tokens(tokens)
    if len(labels) != T:
        raise ValueError(f"got {len(labels)} tokens for attention maps over {T} positions")
    for name, value, n in (("layer", layer, L), ("head", head, H)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
            raise ValueError(f"{name} must be an integer in [0, {n}), got {value!r}")
    temperatures = [float(t) for t in temperatures]
    if not temperatures:
        raise ValueError("give at least one temperature")
    for t in temperatures:
        retemper(np.ones(1), t)  # validates
    if not controls:
        w, layer_ids, head_ids, temperatures = w[layer:layer + 1, head:head + 1], [layer], [head], temperatures[:1]
    else:
        layer_ids, head_ids = list(range(L)), list(range(H))
    nL, nH = len(layer_ids), len(head_ids)

    grids = [as_percent(tile_grid(retemper(w, t))) for t in temperatures]
    start = temperatures.index(1.0) if 1.0 in temperatures else 0
    # category names must be unique over the whole grid, and they are what the hover shows:
    # a row of the grid is one layer's query, a column one head's key; the tick text shows
    # just the token
    y_names = [f"layer {l} · query #{i} '{labels[i]}'" for l in layer_ids for i in range(T)]
    x_names = [f"head {h} · key #{j} '{labels[j]}'" for h in head_ids for j in range(T)]
    fig = go.Figure(go.Heatmap(
        z=grids[start], x=x_names, y=y_names, zmin=0, zmax=100, colorscale=SEQUENTIAL,
        colorbar=dict(title=dict(text="weight (%)"), ticksuffix="%"),
        hovertemplate="%{y} → %{x}<br>weight: %{z}%<extra></extra>"))
    shapes = [dict(type="path", path=mask_path(h * T, l * T, T), fillcolor=MASK_COLOUR,
                   line=dict(width=0), layer="above") for l in range(nL) for h in range(nH)]
    shapes += [dict(type="line", x0=h * T - 0.5, x1=h * T - 0.5, y0=-0.5, y1=nL * T - 0.5,
                    line=dict(color="white", width=3)) for h in range(1, nH)]
    shapes += [dict(type="line", y0=l * T - 0.5, y1=l * T - 0.5, x0=-0.5, x1=nH * T - 0.5,
                    line=dict(color="white", width=3)) for l in range(1, nL)]

    def x_range(h):  # h None = all heads
        return [-0.5, nH * T - 0.5] if h is None else [h * T - 0.5, (h + 1) * T - 0.5]

    def y_range(l):  # reversed: query 0 at the top
        return [nL * T - 0.5, -0.5] if l is None else [(l + 1) * T - 0.5, l * T - 0.5]

    key_title = "key: the token being looked at"
    query_title = "query: the token doing the looking"

    def x_axis(h):  # h None = all heads: one tick per tile, naming its head
        if h is None:
            return {"xaxis.range": x_range(None), "xaxis.tickvals": [x_names[i * T + T // 2]
                                                                     for i in range(nH)],
                    "xaxis.ticktext": [f"head {head_ids[i]}" for i in range(nH)],
                    "xaxis.title.text": "key (one tile per head; pick a head to read the tokens)"}
        return {"xaxis.range": x_range(h), "xaxis.tickvals": x_names,
                "xaxis.ticktext": labels * nH, "xaxis.title.text": key_title}

    def y_axis(l):  # l None = all layers: one tick per tile, naming its layer
        if l is None:
            return {"yaxis.range": y_range(None), "yaxis.tickvals": [y_names[i * T + T // 2]
                                                                     for i in range(nL)],
                    "yaxis.ticktext": [f"layer {layer_ids[i]}" for i in range(nL)],
                    "yaxis.title.text": "query (one tile per layer)"}
        return {"yaxis.range": y_range(l), "yaxis.tickvals": y_names,
                "yaxis.ticktext": labels * nL, "yaxis.title.text": query_title}

    li, hi = (layer, head) if controls else (0, 0)
    row_text = "Each row is one token's attention over itself and the tokens before it"
    fig.update_layout(
        title=heading(title or (f"{row_text}<br>(layer {layer}, head {head})" if not controls
                                else row_text), y=0.98, yanchor="top"),
        height=800 if controls else 620,
        margin=margins(70, 110 if controls else 60, 150 if controls else 60, right=30),
        shapes=shapes, plot_bgcolor="white",
        xaxis=dict(title=dict(text=key_title), tickmode="array",
                   tickvals=x_names, ticktext=labels * nH, tickangle=0, range=x_range(hi),
                   tickfont=dict(size=10),
                   showgrid=False, side="bottom", constrain="domain"),
        yaxis=dict(title=dict(text=query_title), tickmode="array",
                   tickvals=y_names, ticktext=labels * nL, range=y_range(li), showgrid=False,
                   tickfont=dict(size=10),
                   scaleanchor="x", constrain="domain"),
    )
    if controls:
        menu = dict(type="dropdown", direction="down", showactive=True, y=1.02, yanchor="bottom",
                    bgcolor="white")
        fig.update_layout(updatemenus=[
            dict(menu, x=0.0, xanchor="left", active=layer,
                 buttons=[dict(label=f"layer {l}", method="relayout", args=[y_axis(l)])
                          for l in range(L)]
                 + [dict(label="all layers", method="relayout", args=[y_axis(None)])]),
            dict(menu, x=0.2, xanchor="left", active=head,
                 buttons=[dict(label=f"head {h}", method="relayout", args=[x_axis(h)])
                          for h in range(H)]
                 + [dict(label="all heads", method="relayout", args=[x_axis(None)])]),
        ], sliders=[dict(
            active=start, x=0.0, len=1.0, y=-0.12, yanchor="top", pad=dict(t=40),
            currentvalue=dict(prefix="softmax temperature τ = ", suffix="  (1 = as trained)"),
            steps=[dict(label=f"{t:g}", method="restyle", args=[{"z": [typed_array(g)]}, [0]])
                   for t, g in zip(temperatures, grids)])])
    return fig


# ----------------------------------------------------------------------------------------------
# The overview: one cell per head
# ----------------------------------------------------------------------------------------------
def head_overview_figure(weights, title: str | None = None) -> go.Figure:
    """Layer-by-head grid of each head's mean attention entropy, to find heads worth a look.

    Args:
        weights: ``(L, H, T, T)`` attention weights over one prompt.
    Returns:
        A heatmap, rows = layers, columns = heads, colour and text = entropy in bits (low = focused on
        few tokens). Hovering a cell adds the mean weight on the previous token, the token itself and
        the first token, the three most common simple patterns.
    """
    w = as_weights(weights)
    L, H = w.shape[:2]
    s = head_statistics(w)
    custom = np.stack([np.round(s["uniform_entropy"], 2), np.round(100 * s["previous"], 1),
                       np.round(100 * s["self"], 1), np.round(100 * s["first"], 1)], -1)
    lowest = np.unravel_index(int(s["entropy"].argmin()), s["entropy"].shape)
    even = float(s["uniform_entropy"].max())
    fig = go.Figure(go.Heatmap(
        z=np.round(s["entropy"], 2), x=[f"head {h}" for h in range(H)], y=[f"layer {l}" for l in range(L)],
        colorscale=SEQUENTIAL, zmin=0, zmax=even,
        text=np.round(s["entropy"], 2), texttemplate="%{text:.2f}", customdata=custom,
        colorbar=dict(title=dict(text="entropy (bits)")),
        hovertemplate="%{y}, %{x}<br>entropy %{z} bits (spread evenly: %{customdata[0]} bits)"
                      "<br>on the previous token: %{customdata[1]}%<br>on itself: %{customdata[2]}%"
                      "<br>on the first token: %{customdata[3]}%<extra></extra>"))
    default_title = (f"Mean attention entropy per head, in bits (0 = one key, {even:.2f} = spread "
                     f"evenly):<br>the lower, the more focused; lowest here: layer {lowest[0]}, "
                     f"head {lowest[1]}")
    fig.update_layout(
        title=heading(title or default_title),
        height=140 + 70 * L, margin=margins(70, 80, 40, right=30),
        xaxis=dict(title=dict(text="head"), side="bottom"),
        yaxis=dict(title=dict(text="layer"), autorange="reversed"))
    return fig


# ----------------------------------------------------------------------------------------------
# Why sqrt(d_k)
# ----------------------------------------------------------------------------------------------
def attention_scaling_figure(d_k: Sequence[int], variance: dict, max_weight: dict,
                             score_gradient: dict, query_gradient: dict,
                             median_query_gradient: dict) -> go.Figure:
    """Four panels against the key width d_k (log axis), for unscaled and scaled scores: the
    variance of the scores, the largest softmax weight in a row, the size of the softmax's
    Jacobian dp/ds, and the size of the gradient that reaches the query, dp/dq = (dp/ds)(ds/dq),
    as a mean over the queries (solid) and for the median query (dashed).

    Args:
        d_k: the widths measured, ``(N,)``.
        variance, max_weight, score_gradient, query_gradient, median_query_gradient: each
            ``{"q·k": (N,), "q·k / √d_k": (N,)}`` (any labels; the same labels in all five), as
            measured in chapter 3.
    """
    d_k = np.asarray(d_k, dtype=float)
    if d_k.ndim != 1 or d_k.size == 0 or not np.all(d_k > 0):
        raise ValueError(f"d_k must be a non-empty list of positive widths, got {d_k.tolist()}")
    named = (("variance", variance), ("max_weight", max_weight),
             ("score_gradient", score_gradient), ("query_gradient", query_gradient),
             ("median_query_gradient", median_query_gradient))
    for name, series in named:
        if not isinstance(series, dict) or not series:
            raise ValueError(f"{name} must be a non-empty dict of label -> values")
        for label, values in series.items():
            if np.shape(values) != d_k.shape:
                raise ValueError(f"{name}[{label!r}] has shape {np.shape(values)}, expected "
                                 f"{d_k.shape}")
            if not np.all(np.isfinite(np.asarray(values, dtype=float))):
                raise ValueError(f"{name}[{label!r}] contains NaN or infinite values")
    if any(list(series) != list(variance) for _, series in named):
        raise ValueError("variance, max_weight, score_gradient, query_gradient and "
                         "median_query_gradient must use the same labels")
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.12, vertical_spacing=0.2,
                        subplot_titles=("variance of the scores s",
                                        "largest weight in a row (1 = one-hot)",
                                        "through the softmax: ‖∂p/∂s‖",
                                        "reaching the query: ‖∂p/∂q‖"))
    panels = (((1, 1), variance, "variance", True), ((1, 2), max_weight, "max weight", False),
              ((2, 1), score_gradient, "Frobenius norm", False),
              ((2, 2), query_gradient, "Frobenius norm", True))
    for (row, col), series, ytitle, logy in panels:
        for i, (label, values) in enumerate(series.items()):
            colour = PALETTE[i % len(PALETTE)]
            first = row == 1 and col == 1
            fig.add_trace(go.Scatter(
                x=d_k, y=np.asarray(values, dtype=float), mode="lines+markers",
                name=f"{label} (in the last panel: mean over queries)", legendgroup=label,
                showlegend=first, line=dict(color=colour, width=2.5)), row=row, col=col)
            if (row, col) == (2, 2):
                fig.add_trace(go.Scatter(
                    x=d_k, y=np.asarray(median_query_gradient[label], dtype=float),
                    mode="lines+markers", name=f"{label}: median query", legendgroup=label,
                    line=dict(color=colour, width=2, dash="dash"), marker=dict(symbol="x")),
                    row=row, col=col)
        fig.update_xaxes(type="log", title_text="key width d_k", tickmode="array",
                         tickvals=d_k.tolist(), ticktext=[f"{w:g}" for w in d_k],
                         row=row, col=col)
        fig.update_yaxes(type="log" if logy else "linear", title_text=ytitle, row=row, col=col)
    fig.update_layout(
        title=heading("At initialisation, divided by √d_k nothing changes with the width; "
                      "undivided, wide heads' rows saturate<br>and the gradient reaching the "
                      "query is large for a few and near zero for most"),
        height=680, margin=margins(60, 110, 50), legend=legend_below(-0.14))
    return fig


# ----------------------------------------------------------------------------------------------
# The live widget (needs a kernel)
# ----------------------------------------------------------------------------------------------
def attends_to_html(row: np.ndarray, labels: Sequence[str], query: int) -> str:
    """HTML of the prompt with each token shaded by the weight ``row[j]`` the query gives it;
    the query is outlined and later tokens are greyed out."""
    parts = []
    for j, lab in enumerate(labels):
        text = lab.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if j > query:
            style = "color:#AAAAAA"
        else:
            style = f"background: rgba(0,114,178,{row[j]:.3f}); color:{'white' if row[j] > 0.5 else 'black'}"
        if j == query:
            style += "; outline: 2px solid #D55E00"
        parts.append(f"<span title='{100 * row[j]:.1f}%' style='font-family:monospace; font-size:15px; "
                     f"padding:1px; {style}'>{text}</span>")
    return "<div style='line-height:2'>" + "".join(parts) + "</div>"


def attention_widget(weights, tokens: Sequence[str]):
    """ipywidgets explorer (live kernel only): layer, head, a continuous temperature slider and a
    query token; shows :func:`attention_figure` for that head and the prompt shaded by what the
    chosen token attends to. ``weights``: ``(L, H, T, T)``. Returns an ``ipywidgets.VBox``."""
    import ipywidgets as widgets
    from IPython.display import display

    w = as_weights(weights)
    L, H, T, _ = w.shape
    labels = display_tokens(tokens)
    if len(labels) != T:
        raise ValueError(f"got {len(labels)} tokens for attention maps over {T} positions")
    layer = widgets.Dropdown(options=[(f"layer {l}", l) for l in range(L)], value=0, description="Layer")
    head = widgets.Dropdown(options=[(f"head {h}", h) for h in range(H)], value=0, description="Head")
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05,
                                         description="Temperature", continuous_update=False)
    query = widgets.Dropdown(options=[(f"#{i} {lab}", i) for i, lab in enumerate(labels)], value=T - 1,
                             description="Token")
    text, out = widgets.HTML(), widgets.Output()

    def redraw(*_):
        rows = retemper(w[layer.value, head.value], temperature.value)
        text.value = ("<b>What the chosen token attends to</b> (darker = more weight):"
                      + attends_to_html(rows[query.value], labels, query.value))
        out.clear_output(wait=True)
        with out:
            display(attention_figure(w, tokens, temperatures=[temperature.value], layer=layer.value,
                                     head=head.value, controls=False))

    for control in (layer, head, temperature, query):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([layer, head, temperature]), query, text, out])
