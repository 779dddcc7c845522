"""Figures for chapters 9 and 10, one function per visual, each returning a plotly ``Figure``.

Static interactivity (for the rendered book) uses plotly's own ``frames``, ``sliders`` and
``updatemenus``; the ipywidgets explorers at the end wrap the same functions for the live notebook.
Big maps are aggregated to about 100 x 100 tiles (the PE at each tile's centre) and stored as small
integers, so a page stays light. Colours: the Okabe-Ito palette of :mod:`gptlib.viz`.
"""
from __future__ import annotations

import textwrap

import numpy as np
import plotly.graph_objects as go
import torch

from gptlib.config import CEREBRAS_GPT
from gptlib.viz import PALETTE, SEQUENTIAL

from . import placement as placement_model
from .fabric import Fabric, FabricStats
from .wafer import WAFERS, get_wafer

CATEGORICAL = PALETTE[:7]  # the eighth Okabe-Ito colour is black, kept for text
UNUSED = "#DDDDDD"
OVERFLOW = PALETTE[3]  # vermillion
FITS = PALETTE[0]  # blue


TITLE_WIDTH = 78  # characters per title line: a book page is about 700 pixels wide


def _wrap(text: str, width: int = TITLE_WIDTH) -> str:
    """Break a long title or note into lines (plotly's ``<br>``) so it fits the page."""
    return "<br>".join(textwrap.wrap(text, width))


def _layout(fig: go.Figure, title: str, controls_above: bool = False, title_lines: int = 0,
            **kwargs) -> go.Figure:
    """Title (wrapped) at the top, then room for buttons or a legend above the plot if
    ``controls_above``; ``title_lines`` reserves room for longer titles a slider may switch to."""
    text = _wrap(title)
    lines = max(text.count("<br>") + 1, title_lines)
    margin = dict(l=60, r=20, t=0, b=50)
    margin.update(kwargs.pop("margin", {}))
    margin["t"] = max(margin["t"], 20 + 22 * lines + (46 if controls_above else 0))
    fig.update_layout(title=dict(text=text, x=0.01, xanchor="left", y=1, yref="container",
                                 yanchor="top", pad=dict(t=12)),
                      template="plotly_white", margin=margin, **kwargs)
    return fig


def _buttons_above(buttons: list, x: float = 0.0, **kwargs) -> dict:
    """An updatemenu sitting just above the plot area (below the title)."""
    return dict(buttons=buttons, x=x, y=1.0, xanchor="left", yanchor="bottom", pad=dict(b=6), **kwargs)


def table_figure(rows: list[dict], title: str, formats: dict | None = None) -> go.Figure:
    """A plotly table of ``rows`` (a list of dicts with the same keys); ``formats`` maps a column
    to a format string such as ``"{:.2f}"``."""
    if not rows:
        raise ValueError("table_figure needs at least one row")
    formats = formats or {}
    keys = list(rows[0])
    cells = [[formats.get(k, "{}").format(r[k]) if not isinstance(r[k], str) else r[k] for r in rows]
             for k in keys]
    fig = go.Figure(go.Table(header=dict(values=[f"<b>{k}</b>" for k in keys], align="left",
                                         fill_color="#EEEEEE"),
                             cells=dict(values=cells, align="left")))
    return _layout(fig, title, height=90 + 26 * len(rows), margin=dict(l=10, r=10, b=10))


def wafer_table(wafers=("WSE-1", "WSE-2", "WSE-3")) -> go.Figure:
    """The wafers side by side, one row per quantity; values not in the published table are
    marked "(derived)" (computed from published ones) or "(assumed)" (our choice)."""
    specs = [get_wafer(w) for w in wafers]

    def mark(w, key, text):
        kind = w.kind(key)
        return text if kind == "published" else f"{text} ({kind})"

    quantities = [
        ("cores", lambda w: f"{w.cores:,}"),
        ("on-chip SRAM", lambda w: f"{w.sram_bytes / 1e9:.0f} GB"),
        ("memory bandwidth", lambda w: f"{w.memory_bandwidth / 1e15:.0f} PB/s"),
        ("fabric bandwidth", lambda w: f"{w.fabric_bandwidth / 1e15:.0f} Pb/s"),
        ("transistors", lambda w: f"{w.transistors / 1e12:.1f} T"),
        ("process", lambda w: f"{w.process_nm} nm"),
        ("area", lambda w: f"{w.area_mm2:,.0f} mm²"),
        ("PE grid (SDK: width x height)",
         lambda w: mark(w, "grid", f"{w.fabric_dims[0]} x {w.fabric_dims[1]} = {w.n_pe:,}")),
        ("SRAM per PE", lambda w: mark(w, "sram_per_pe", f"{w.sram_per_pe:,} bytes")),
        ("peak FP16 of the grid", lambda w: mark(w, "peak_flops",
                                                 f"{w.peak_flops / 1e15:.2f} PFLOP/s")),
    ]
    rows = [{"": q, **{w.name: f(w) for w in specs}} for q, f in quantities]
    return table_figure(rows, "The three Wafer-Scale Engines")


# ----------------------------------------------------------------------------------------------
# Chapter 9: the fabric
# ----------------------------------------------------------------------------------------------
def fabric_heatmaps(stats: FabricStats, title: str = "Where the work and the traffic were",
                    titles: tuple[str, str, str] | None = None) -> go.Figure:
    """Per-PE heatmaps of one run: utilisation, peak SRAM and router traffic, switched with buttons.
    ``titles`` gives each view its own title (the first is shown first); default: ``title`` for
    all three."""
    titles = titles or (title, title, title)
    views = [("utilisation (busy cycles / all cycles)", stats.utilisation, "Utilisation"),
             ("peak SRAM (bytes)", stats.peak_sram.astype(float), "Peak SRAM"),
             ("wavelets sent to neighbours", stats.link_load_per_pe().astype(float), "Router traffic")]
    label, z, _ = views[0]
    title = titles[0]
    fig = go.Figure(go.Heatmap(z=z, colorscale=SEQUENTIAL, colorbar=dict(title=label), xgap=1, ygap=1,
                               hovertemplate="PE (%{y}, %{x})<br>%{z}<extra></extra>"))
    buttons = [dict(label=name, method="update",
                    args=[{"z": [v], "colorbar.title.text": lab}, {"title.text": _wrap(t)}])
               for (lab, v, name), t in zip(views, titles)]
    fig.update_layout(updatemenus=[_buttons_above(buttons, direction="right", type="buttons")])
    small = max(z.shape) <= 16
    fig.update_xaxes(title="column (PE)", constrain="domain", dtick=1 if small else None,
                     showgrid=False)
    fig.update_yaxes(title="row (PE)", autorange="reversed", scaleanchor="x", constrain="domain",
                     dtick=1 if small else None, showgrid=False)
    lines = max(_wrap(t).count("<br>") + 1 for t in titles)
    return _layout(fig, title, controls_above=True, title_lines=lines, height=520)


def _link_segments(active: np.ndarray, direction: str, row0: int = 0, col0: int = 0):
    """x, y of line segments (separated by None) for the active links of one direction."""
    xs, ys = [], []
    for r, c in zip(*np.nonzero(active)):  # a short bar across the boundary the link crosses
        if direction == "east":
            xs += [col0 + c + 0.35, col0 + c + 0.65, None]
            ys += [row0 + r, row0 + r, None]
        else:
            xs += [col0 + c, col0 + c, None]
            ys += [row0 + r + 0.35, row0 + r + 0.65, None]
    return xs, ys


STATE_NAMES = ["idle", "activations arriving", "multiplying", "sending its partial sum south"]
STATE_COLOURS = [UNUSED, PALETTE[5], PALETTE[1], PALETTE[4]]
EAST_LINK, SOUTH_LINK = PALETTE[0], PALETTE[3]  # darker partners of "arriving" and "adding"


def matmul_states(schedule, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What each PE and link of a weight-stationary multiply does at cycle ``t``.

    Returns ``(state, token, east_active, south_active)``: ``state`` ``(R, Q)`` in 0..3 (see
    :data:`STATE_NAMES`; a PE doing two things shows one: multiplying wins over sending, sending
    over arriving; a top-row PE sends its own partial sum, the others add what arrives from above
    and send that on), ``token`` the token it
    works on (-1 idle), ``east_active`` ``(R, Q - 1)`` and ``south_active`` ``(R - 1, Q)`` bool.
    """
    s = schedule
    R, Q = s.arrive.shape
    m = np.arange(s.tokens)[:, None, None] * s.interval  # (M, 1, 1) start of each token
    j = np.arange(Q)[None, None, :]
    k = s.k[None, :, None]
    n = s.n[None, None, :]
    arriving = (t >= m + j + 1) & (t <= m + j + k)
    multiplying = (t >= m + s.arrive) & (t < m + s.arrive + s.compute)
    adding = (t >= m + s.send) & (t < m + s.send + n)
    state = np.zeros((R, Q), dtype=np.int8)
    token = np.full((R, Q), -1, dtype=np.int64)
    for code, mask in ((1, arriving), (3, adding), (2, multiplying)):
        hit = mask.any(axis=0)
        state[hit] = code
        token[hit] = mask.argmax(axis=0)[hit]
    east = ((t >= m + j[..., :-1] + 2) & (t <= m + j[..., :-1] + k + 1)).any(axis=0) if Q > 1 else \
        np.zeros((R, 0), bool)
    south = ((t >= m[..., :] + s.send[:-1] + 1) & (t <= m + s.send[:-1] + n)).any(axis=0) if R > 1 \
        else np.zeros((0, Q), bool)
    return state, token, east, south


def matmul_animation(schedule, max_frames: int = 60,
                     title: str = "Activations flow east, partial sums flow south") -> go.Figure:
    """An animation (play button and slider) of a weight-stationary multiply's schedule (from
    ``fabric.trace``): colour = what each PE does, label = which token (row of X) it works on,
    blue bars = activation wavelets crossing a link east, vermillion bars = partial sums crossing a
    link south."""
    R, Q = schedule.arrive.shape
    last = schedule.done
    times = np.unique(np.linspace(0, last, min(max_frames, last + 1)).round().astype(int))
    colorscale = []
    for i, colour in enumerate(STATE_COLOURS):
        colorscale += [[i / 4, colour], [(i + 1) / 4, colour]]

    def traces(t):
        state, token, east, south = matmul_states(schedule, int(t))
        text = np.where(token >= 0, np.char.add("x", token.astype(str)), "")
        ex, ey = _link_segments(east, "east")
        sx, sy = _link_segments(south, "south")
        return [go.Heatmap(z=state, zmin=-0.5, zmax=3.5, colorscale=colorscale, text=text,
                           texttemplate="%{text}", showscale=False, xgap=2, ygap=2,
                           customdata=np.array(STATE_NAMES, dtype=object)[state],
                           hovertemplate="PE (%{y}, %{x}): %{customdata} %{text}<extra></extra>"),
                go.Scatter(x=ex, y=ey, mode="lines", line=dict(color=EAST_LINK, width=7),
                           showlegend=False, hoverinfo="skip"),
                go.Scatter(x=sx, y=sy, mode="lines", line=dict(color=SOUTH_LINK, width=7),
                           showlegend=False, hoverinfo="skip")]

    # open on the first cycle at which some PE multiplies, so the still picture already shows work
    start = int(np.searchsorted(times, int(schedule.arrive.min())))
    fig = go.Figure(data=traces(times[start]),
                    frames=[go.Frame(data=traces(t), name=str(t)) for t in times])
    # legend entries (empty traces carry the colours, so they show whatever the frame)
    for name, colour in zip(STATE_NAMES, STATE_COLOURS):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"PE {name}",
                                 marker=dict(color=colour, size=12, symbol="square",
                                             line=dict(color="#999999", width=1))))
    for name, colour in (("activations moving east", EAST_LINK), ("partial sums moving south", SOUTH_LINK)):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"link: {name}",
                                 line=dict(color=colour, width=7)))
    steps = [dict(method="animate", label=str(t),
                  args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))]) for t in times]
    fig.update_layout(
        sliders=[dict(steps=steps, active=start, currentvalue=dict(prefix="cycle "), x=0.14, len=0.86,
                      y=-0.12, yanchor="top")],
        updatemenus=[dict(type="buttons", x=0.0, y=-0.14, xanchor="left", yanchor="top",
                          buttons=[dict(label="Play", method="animate",
                                        args=[None, dict(frame=dict(duration=250, redraw=True),
                                                         transition=dict(duration=0),
                                                         fromcurrent=True, mode="immediate")])])],
        legend=dict(x=1.02, y=1, xanchor="left", yanchor="top"))
    fig.update_xaxes(title="column (PE)", range=[-0.5, Q - 0.5], dtick=1, constrain="domain")
    fig.update_yaxes(title="row (PE)", range=[R - 0.5, -0.5], dtick=1, scaleanchor="x",
                     constrain="domain")
    return _layout(fig, title, height=max(440, 60 * R + 260), margin=dict(r=230, b=140))


def cycles_by_op(log, title: str = "Where the cycles go") -> go.Figure:
    """Cycles per kind of op (matmul, move, attention, ...) of a run's log, largest first."""
    totals: dict[str, int] = {}
    for rec in log:
        totals[rec.kind] = totals.get(rec.kind, 0) + rec.cycles
    kinds = sorted(totals, key=totals.get)
    fig = go.Figure(go.Bar(x=[totals[k] for k in kinds], y=kinds, orientation="h",
                           marker_color=[PALETTE[i % 7] for i in range(len(kinds))],
                           hovertemplate="%{y}: %{x:,} cycles<extra></extra>"))
    fig.update_xaxes(title="cycles (summed over the ops of that kind)")
    fig.update_yaxes(title="kind of op")
    return _layout(fig, title, height=80 + 40 * len(kinds))


def grid_scaling(K: int = 256, N: int = 256, sizes=(1, 2, 4, 8, 16, 32, 64, 128), tokens: int = 512,
                 seed: int = 0) -> go.Figure:
    """Runs ``X @ W`` (``W (K, N)``) on square grids of each size in ``sizes`` and plots, per grid,
    the cycles for one token (latency) and the cycles per token of a stream of ``tokens`` tokens
    (throughput), next to the ideal ``K N / (4 g^2)`` of perfect compute on a ``g x g`` grid.
    Grids whose PEs cannot hold their tile are marked as not fitting."""
    from . import kernels
    from .fabric import SramError

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(K, N, generator=g)
    fit, latency, per_token, failed = [], [], [], []
    for n in sizes:
        cycles = []
        try:
            for m in (1, tokens):
                f = Fabric(n, n)
                kernels.matmul(f, torch.randn(m, K, generator=g), w)
                cycles.append(next(r.cycles for r in f.log if r.kind == "matmul"))
        except SramError:
            failed.append(n)
            continue
        fit.append(n)
        latency.append(cycles[0])
        per_token.append(cycles[1] / tokens)
    ideal = [K * N / (4 * g * g) for g in fit]
    fig = go.Figure([
        go.Scatter(x=fit, y=latency, mode="lines+markers", name="one token: cycles until its result",
                   line=dict(color=PALETTE[3])),
        go.Scatter(x=fit, y=per_token, mode="lines+markers",
                   name=f"stream of {tokens} tokens: cycles per token", line=dict(color=PALETTE[0])),
        go.Scatter(x=fit, y=ideal, mode="lines", name="ideal compute K N / (4 g²)",
                   line=dict(color=PALETTE[2], dash="dot"))])
    if failed:
        top = max(latency) if latency else 1.0
        fig.add_trace(go.Scatter(x=failed, y=[top] * len(failed), mode="markers+text",
                                 marker=dict(symbol="x", size=12, color="grey"),
                                 text=[f"{n}x{n}" for n in failed], textposition="bottom center",
                                 name="grid too small: a tile is over 48 KB"))
        fig.add_annotation(text=", ".join(f"{n}x{n}" for n in failed) + ": tile over 48 KB, cannot run",
                           x=0, y=1.0, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                           showarrow=False)
    fig.update_xaxes(type="log", title="grid side g (a g x g fabric of PEs, log scale)",
                     dtick=np.log10(2))
    fig.update_yaxes(type="log", title="cycles (log scale)")
    return _layout(fig, f"A ({K} x {N}) weight: more PEs cut the time per token until the links "
                        f"set the pace; the first token waits longer as hops grow",
                   legend=dict(orientation="h", y=-0.25), height=520)


def _discrete_colorscale(n: int) -> list:
    """A colorscale for integer z in [-1, n - 1]: -1 grey, then the palette repeating."""
    colours = [UNUSED] + [CATEGORICAL[i % len(CATEGORICAL)] for i in range(n)]
    scale = []
    for i, colour in enumerate(colours):
        scale += [[i / len(colours), colour], [(i + 1) / len(colours), colour]]
    return scale


STRIP_KINDS = ["embedding", "attn.c_attn", "attn.heads", "attn.c_proj", "mlp.c_fc", "mlp.c_proj",
               "lm_head"]
"""The kinds of strip :class:`wse_demo.kernels.GPTOnFabric` lays out, in the order data meets them
(a block's five repeat for every layer)."""


def _strip_kind(name: str) -> str:
    """``"h.3.mlp.c_fc"`` -> ``"mlp.c_fc"``; ``"embedding"`` and ``"lm_head"`` stay."""
    parts = name.split(".")
    return ".".join(parts[2:]) if parts[0] == "h" and len(parts) > 2 else name


def gpt_fabric_map(placed, stats: FabricStats | None = None,
                   title: str = "Each weight matrix has its own strip of PEs") -> go.Figure:
    """The tiny GPT on its fabric (:class:`wse_demo.kernels.GPTOnFabric`): PEs coloured by the kind
    of strip they belong to (a legend names the kinds; hover names the strip), the PEs of the
    attention heads marked, and buttons for the peak SRAM, utilisation and router traffic of a run
    (``stats``)."""
    f = placed.fabric
    owner = f.owner.astype(int)
    names = np.array(f.region_names + ["unused"], dtype=object)
    kinds = np.array([STRIP_KINDS.index(_strip_kind(n)) for n in f.region_names] + [-1])
    kind_map = kinds[owner]  # owner -1 picks the trailing -1 (unused)
    n_kinds = len(STRIP_KINDS)
    # the views with a scale show it in the lower right, under the legend, not on top of it
    fig = go.Figure(go.Heatmap(z=kind_map, zmin=-1.5, zmax=n_kinds - 0.5, xgap=1, ygap=1,
                               colorscale=_discrete_colorscale(n_kinds), showscale=False,
                               colorbar=dict(x=1.02, xanchor="left", y=0, yanchor="bottom",
                                             len=0.45),
                               customdata=names[owner],
                               hovertemplate="PE (%{y}, %{x})<br>%{customdata}<extra></extra>"))
    for i, kind in enumerate(STRIP_KINDS):  # legend entries for the strip view's colours
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=kind,
                                 legendgroup="strips", legendgrouptitle_text="strip (strip view)",
                                 marker=dict(color=CATEGORICAL[i], size=12, symbol="square")))
    heads = np.concatenate(list(placed.head_pes.values()))
    fig.add_trace(go.Scatter(x=heads[:, 1], y=heads[:, 0], mode="markers",
                             name="the PE of one attention head",
                             marker=dict(symbol="x-thin", size=9, color="black",
                                         line=dict(color="black", width=2)),
                             hovertemplate="PE (%{y}, %{x})<br>an attention head<extra></extra>"))
    if stats is not None:
        views = [("strip", kind_map, False),
                 ("peak SRAM (% of 48 KB)", 100 * stats.peak_sram / f.sram_per_pe, True),
                 ("utilisation (% of the pass's cycles busy)", 100 * stats.utilisation, True),
                 ("router traffic (wavelets sent)", stats.link_load_per_pe(), True)]
        buttons = []
        for label, z, scale in views:
            style = {"z": [z], "showscale": scale,
                     "colorscale": [SEQUENTIAL if scale else _discrete_colorscale(n_kinds)],
                     "zmin": [None if scale else -1.5],
                     "zmax": [None if scale else n_kinds - 0.5],
                     "zauto": [scale], "colorbar.title.text": label}
            buttons.append(dict(label=label.split(" (")[0], method="restyle", args=[style, [0]]))
        fig.update_layout(updatemenus=[_buttons_above(buttons, type="buttons", direction="right")])
    fig.update_xaxes(title="column (PE)", constrain="domain")
    fig.update_yaxes(title="row (PE)", autorange="reversed", scaleanchor="x", constrain="domain")
    return _layout(fig, title, controls_above=stats is not None, height=620,
                   legend=dict(x=1.02, y=1, xanchor="left", yanchor="top"),
                   margin=dict(r=200))


# ----------------------------------------------------------------------------------------------
# Chapter 10: whole wafers
# ----------------------------------------------------------------------------------------------
def _tile_centres(n: int, tiles: int) -> np.ndarray:
    stride = max(1, -(-n // tiles))
    return np.arange(stride // 2, n, stride)


def tiled_maps(placement, tiles: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(layer, fill_percent, row_centres, col_centres)``: the placement's maps sampled at the
    centre PE of about ``tiles x tiles`` tiles. ``layer`` is int16 (-1 unused); ``fill_percent``
    (memory needed / SRAM, %) is uint8, capped at 250."""
    rows = _tile_centres(placement.wafer.rows, tiles)
    cols = _tile_centres(placement.wafer.cols, tiles)
    layer = placement.pe_map()[np.ix_(rows, cols)]
    fill = placement.memory_fill_map()[np.ix_(rows, cols)]
    return layer, np.clip(np.round(100 * fill), 0, 250).astype(np.uint8), rows, cols


FILL_COLORSCALE = [[0.0, "#F0F0F0"], [100.5 / 250, FITS], [100.5 / 250, "#F4B183"],
                   [175 / 250, OVERFLOW], [1.0, "#5C1A00"]]
"""0..100 % (of a PE's SRAM) light to blue; above 100 % graded from light orange through
vermillion to dark brown at 250 % and beyond (zmax = 250), so 150 % and 600 % look different."""


def _placement_title(p) -> str:
    policy = f", {p.activations}" if p.training else ", inference"
    head = f"{p.config.n_layer}-layer model, layer pipelined on {p.wafer.name}{policy}: "
    sizes = f"{p.bytes_needed / 1e9:.1f} GB needed, {p.wafer.grid_sram_bytes / 1e9:.1f} GB in the grid"
    if not p.fits:
        return head + f"does NOT fit ({sizes})"
    return head + f"fits ({sizes}); {p.tokens_per_s:,.0f} tokens/s at peak"


def wafer_explorer(wafer="WSE-2", models=None, training: bool = True, tiles: int = 100) -> go.Figure:
    """Static wafer maps of every Cerebras-GPT size, layer pipelined: left coloured by layer
    (consecutive layers are neighbours along a snake path), right the memory each PE must hold
    (blue: fits; vermillion: over its SRAM). A slider picks the model."""
    from plotly.subplots import make_subplots

    w = get_wafer(wafer)
    models = list(models or CEREBRAS_GPT)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("layer of each PE", "memory needed, % of its SRAM"))
    steps = []
    for i, name in enumerate(models):
        p = placement_model.layer_pipelined(name, w, training=training)
        layer, fill, rows, cols = tiled_maps(p, tiles)
        n = len(p.regions)
        visible = i == 0
        fig.add_trace(go.Heatmap(z=layer, x=cols, y=rows, zmin=-1.5, zmax=n - 0.5,
                                 colorscale=_discrete_colorscale(n), showscale=False, visible=visible,
                                 hovertemplate="PE (%{y}, %{x})<br>layer %{z} (0 = embedding, "
                                               "last = output head)<extra></extra>"),
                      row=1, col=1)
        fig.add_trace(go.Heatmap(z=fill, x=cols, y=rows, zmin=0, zmax=250, colorscale=FILL_COLORSCALE,
                                 visible=visible,
                                 colorbar=dict(title="% of SRAM", x=1.02, tickvals=[0, 50, 100, 150,
                                                                                  200, 250],
                                               ticktext=["0", "50", "100", "150", "200",
                                                         "250+"]),
                                 hovertemplate="PE (%{y}, %{x})<br>%{z}% of its SRAM<extra></extra>"),
                      row=1, col=2)
        vis = [False] * (2 * len(models))
        vis[2 * i] = vis[2 * i + 1] = True
        steps.append(dict(label=name, method="update",
                          args=[{"visible": vis}, {"title.text": _wrap(f"{name}: " + _placement_title(p))}]))
    fig.update_layout(sliders=[dict(steps=steps, active=0, currentvalue=dict(prefix="model "),
                                    y=-0.08)])
    for c in (1, 2):
        fig.update_xaxes(title="column (PE)", row=1, col=c)
        fig.update_yaxes(title="row (PE)" if c == 1 else None, autorange="reversed", row=1, col=c)
    first = placement_model.layer_pipelined(models[0], w, training=training)
    return _layout(fig, f"{models[0]}: " + _placement_title(first), title_lines=3, height=560)


def _highlight(p, start: int, count: int) -> list[dict]:
    """Rectangles (plotly shapes, in PE coordinates) outlining snake positions start..start+count-1."""
    return [dict(type="rect", x0=c0 - 0.5, x1=c1 + 0.5, y0=r0 - 0.5, y1=r1 + 0.5,
                 line=dict(color="black", width=3), fillcolor="rgba(0,0,0,0.45)")
            for r0, r1, c0, c1 in placement_model.snake_rectangles(start, count, p.wafer.cols)]


def _pointer(p, start: int, count: int) -> dict:
    """An arrow annotation pointing at the middle of the biggest rectangle of a region, so that a
    region only a row or two high is still easy to find on a wafer map."""
    rects = placement_model.snake_rectangles(start, count, p.wafer.cols)
    r0, r1, c0, c1 = max(rects, key=lambda r: (r[1] - r[0] + 1) * (r[3] - r[2] + 1))
    x, y = (c0 + c1) / 2, (r0 + r1) / 2
    below = y < p.wafer.rows / 2
    return dict(x=x, y=y, xref="x", yref="y", text="here", showarrow=True, arrowhead=2,
                arrowsize=1.5, arrowwidth=3, arrowcolor="black", ax=0, ay=60 if below else -60,
                font=dict(size=13, color="black"), bgcolor="white")


def region_cost_text(p, name: str, component: str | None = None) -> str:
    """One line on a layer's (or one of its components') region: PEs, memory, FLOPs and time."""
    r = p.region(name)
    k = placement_model.training_passes(p.activations) if p.training else 1
    if component is None:
        flops = r.layer.flops_per_token
        return (f"<b>{name}</b>: {r.pes:,} PEs; needs {r.bytes_needed / 1e6:,.0f} MB of "
                f"{r.bytes_available / 1e6:,.0f} MB ({'fits' if r.fits else 'does NOT fit'}); "
                f"{flops / 1e6:,.3g} MFLOP/token forward; {k * flops * p.tokens_per_s / 1e12:,.3g} "
                f"TFLOP/s at the pipeline's rate (busy {100 * r.utilisation:.0f}% of its peak, "
                f"recomputation included)")
    for cname, start, pes, flops, b in r.components:
        if cname == component:
            return (f"<b>{name} {cname}</b>: {pes:,} PEs; {b / 1e6:,.3g} MB; {flops / 1e6:,.3g} "
                    f"MFLOP/token forward")
    raise ValueError(f"{name} has no component {component!r}; it has "
                     f"{[c[0] for c in r.components]}")


def _layer_map(p, tiles: int = 100) -> go.Figure:
    """A placement's wafer map coloured by layer, on PE coordinates."""
    layer, fill, rows, cols = tiled_maps(p, tiles)
    n = len(p.regions)
    fig = go.Figure(go.Heatmap(z=layer, x=cols, y=rows, zmin=-1.5, zmax=n - 0.5,
                               colorscale=_discrete_colorscale(n), showscale=False,
                               hovertemplate="PE (%{y}, %{x})<br>layer %{z} (0 = embedding, last = "
                                             "output head)<extra></extra>"))
    fig.update_xaxes(title="column (PE)", constrain="domain")
    fig.update_yaxes(title="row (PE)", autorange="reversed", scaleanchor="x", constrain="domain")
    return fig


def _highlight_state(p, name: str, component: str | None = None) -> dict:
    """Layout properties that outline a layer's (or one part's) region and print its cost."""
    r = p.region(name)
    if component is None:
        start, count = r.start, r.pes
    else:
        c = next(c for c in r.components if c[0] == component)
        start, count = c[1], c[2]
    shapes = _highlight(p, start, count)
    note = dict(text=_wrap(region_cost_text(p, name, component), 95), x=0, y=-0.14, xref="paper",
                yref="paper", showarrow=False, xanchor="left", yanchor="top", align="left")
    return {"shapes": shapes, "annotations": [note, _pointer(p, start, count)]}


def layer_picker(model="111M", wafer="WSE-2", block: str = "h.0", training: bool = True,
                 tiles: int = 100) -> go.Figure:
    """One placement with two dropdowns: pick a layer, or one part (head, FFN) of ``block``, to
    outline its region and print its cost. The static-book version of "click a layer"."""
    p = placement_model.layer_pipelined(model, wafer, training=training)
    fig = _layer_map(p, tiles)
    layer_buttons = [dict(label=f"layer {r.name}", method="relayout", args=[_highlight_state(p, r.name)])
                     for r in p.regions]
    part_buttons = [dict(label=f"all of {block}", method="relayout", args=[_highlight_state(p, block)])]
    part_buttons += [dict(label=f"{block} {c[0]}", method="relayout",
                          args=[_highlight_state(p, block, c[0])]) for c in p.region(block).components]
    first = 1 if len(p.regions) > 1 else 0
    fig.update_layout(**_highlight_state(p, p.regions[first].name),
                      updatemenus=[_buttons_above(layer_buttons, active=first),
                                   _buttons_above(part_buttons, x=0.32, active=0)])
    name = model if isinstance(model, str) else "model"
    return _layout(fig, f"{name} on {p.wafer.name}: pick a layer, or a part of {block}, to outline "
                        f"its region and read its cost", controls_above=True, height=660,
                   margin=dict(b=150))


def largest_fitting(wafer="WSE-2", activations: str | None = None, training: bool = True,
                    models=None) -> str | None:
    """The largest Cerebras-GPT model whose layer-pipelined placement fits ``wafer`` (None: none)."""
    fitting = [m for m in (models or CEREBRAS_GPT)
               if placement_model.layer_pipelined(m, wafer, training=training,
                                                  activations=activations).fits]
    return fitting[-1] if fitting else None


def fit_frontier(models=None, wafers=("WSE-1", "WSE-2", "WSE-3"), wafer: str = "WSE-2") -> go.Figure:
    """Bytes needed for layer-pipelined training of each size, under both activation policies, and
    for inference, placed on ``wafer``, against each wafer's grid SRAM. The title names the largest
    model that fits ``wafer`` under each policy (computed, so it follows the model)."""
    models = list(models or CEREBRAS_GPT)
    series = [("training, saving every activation", "save all", True, PALETTE[0]),
              ("training, recomputing from layer inputs", "recompute", True, PALETTE[5]),
              ("inference (FP16 weights, K and V)", None, False, PALETTE[2])]
    fig = go.Figure()
    for label, policy, training, colour in series:
        needs = [placement_model.layer_pipelined(m, wafer, training=training,
                                                 activations=policy).bytes_needed / 1e9
                 for m in models]
        fig.add_trace(go.Bar(x=models, y=needs, name=label, marker_color=colour,
                             hovertemplate="%{x}: %{y:,.1f} GB<extra>" + label + "</extra>"))
    line_colours = [PALETTE[3], PALETTE[7], PALETTE[4]]  # none of the bars' colours
    for i, wname in enumerate(wafers):  # lines as traces: shapes on a log axis take log10 values
        w = get_wafer(wname)
        note = ", assumed grid" if w.kind("grid") == "assumed" else ""
        fig.add_trace(go.Scatter(x=models, y=[w.grid_sram_bytes / 1e9] * len(models), mode="lines",
                                 name=f"{w.name} grid SRAM ({w.grid_sram_bytes / 1e9:.1f} GB{note})",
                                 line=dict(color=line_colours[i % 3],
                                           dash=("dot", "dash", "dashdot")[i % 3])))
    fig.update_yaxes(type="log", title="memory needed on the wafer (GB, log scale)")
    fig.update_xaxes(title="Cerebras-GPT model")
    w = get_wafer(wafer)
    save_all = largest_fitting(w, "save all", models=models) or "no model"
    recompute = largest_fitting(w, "recompute", models=models) or "no model"
    return _layout(fig, f"Layer-pipelined training fits one {w.name} up to {save_all} saving every "
                        f"activation, up to {recompute} recomputing them", barmode="group",
                   legend=dict(orientation="h", y=-0.22), height=540)


def mode_comparison(models=None, wafers=("WSE-1", "WSE-2", "WSE-3")) -> go.Figure:
    """Training throughput (tokens/s, one system, at peak) per model under the default activation
    policy: layer pipelined only where it fits (a layout that does not fit has no throughput), and
    weight streaming at the paper's batch size; a dropdown picks the wafer, and the title (one per
    wafer) says up to which size layer pipelined fits and how the two compare where both run."""
    models = list(models or CEREBRAS_GPT)
    fig = go.Figure()
    buttons = []
    titles = []
    for i, wname in enumerate(wafers):
        lp = [placement_model.layer_pipelined(m, wname) for m in models]
        ws = [placement_model.weight_streaming(m, wname) for m in models]
        vis = i == 1 if len(wafers) > 1 else True
        fits = [m for m, p in zip(models, lp) if p.fits]
        fig.add_trace(go.Scatter(x=models, y=[p.tokens_per_s if p.fits else None for p in lp],
                                 mode="lines+markers", name="layer pipelined (where it fits)",
                                 visible=vis, line=dict(color=PALETTE[0], width=3),
                                 marker=dict(size=13, symbol="circle")))
        fig.add_trace(go.Scatter(x=models, y=[e.tokens_per_s for e in ws], mode="lines+markers",
                                 name="weight streaming (paper's batch)", visible=vis,
                                 line=dict(color=PALETTE[1], dash="dot", width=3),
                                 marker=dict(size=8, symbol="square")))
        both = [(p.tokens_per_s / e.tokens_per_s) for p, e in zip(lp, ws) if p.fits]
        w = get_wafer(wname)
        if fits:
            title = (f"On one {w.name}, layer-pipelined training fits up to {fits[-1]}, where it "
                     f"runs at {min(both):.2f} to {max(both):.2f} times weight streaming's rate; "
                     f"weight streaming runs every size")
        else:
            title = f"On one {w.name}, no size fits layer pipelined; weight streaming runs every size"
        titles.append(title)
        mask = [False] * (2 * len(wafers))
        mask[2 * i] = mask[2 * i + 1] = True
        buttons.append(dict(label=wname, method="update",
                            args=[{"visible": mask}, {"title.text": _wrap(title)}]))
    active = 1 if len(wafers) > 1 else 0
    fig.update_layout(updatemenus=[_buttons_above(buttons, active=active)],
                      legend=dict(orientation="h", y=-0.22))
    fig.update_yaxes(type="log", title="training tokens/s on one system (log scale, at peak)")
    fig.update_xaxes(title="Cerebras-GPT model")
    lines = max(_wrap(t).count("<br>") + 1 for t in titles)
    return _layout(fig, titles[active], controls_above=True, title_lines=lines, height=520)


def streaming_timeline(model="1.3B", wafer="WSE-2", micro_batches=(1, 2, 4, 8, 16, 32, 64)) -> go.Figure:
    """Weight streaming, one layer at a time: forward compute vs weight I/O per layer (ms), with a
    slider over the micro-batch. Compute grows with the micro-batch; I/O does not."""
    ests = [placement_model.weight_streaming(model, wafer, batch_size=int(b), micro_batch=b)
            for b in micro_batches]
    names = [l.name for l in ests[0].layers]
    fig = go.Figure()
    for i, e in enumerate(ests):
        vis = i == len(ests) // 2
        fig.add_trace(go.Bar(x=names, y=[1e3 * l.compute_fwd for l in e.layers], name="forward compute",
                             marker_color=PALETTE[1], visible=vis))
        fig.add_trace(go.Bar(x=names, y=[1e3 * l.io for l in e.layers], name="weight I/O",
                             marker_color=PALETTE[0], visible=vis))
    steps = []
    for i, (b, e) in enumerate(zip(micro_batches, ests)):
        vis = [False] * (2 * len(ests))
        vis[2 * i] = vis[2 * i + 1] = True
        bound = "compute-bound" if e.compute_bound else "I/O-bound"
        steps.append(dict(label=str(b), method="update", args=[{"visible": vis}, {
            "title.text": _wrap(f"{model} on {e.wafer.name}, micro-batch {b}: {bound} "
                                f"(compute-bound from about {e.compute_bound_micro_batch:.0f} "
                                f"sequences); the whole step, backward included, at "
                                f"{100 * e.utilisation:.0f}% of peak")}]))
    fig.update_layout(sliders=[dict(steps=steps, active=len(ests) // 2,
                                    currentvalue=dict(prefix="micro-batch (sequences) "), y=-0.3)],
                      barmode="group",
                      legend=dict(orientation="h", x=0, y=1.0, xanchor="left", yanchor="bottom"))
    fig.update_yaxes(title="time per layer, forward pass (ms)")
    fig.update_xaxes(title="layer")
    mid = ests[len(ests) // 2]
    return _layout(fig, f"{model} on {mid.wafer.name}, micro-batch {micro_batches[len(ests) // 2]}: "
                        f"{'compute' if mid.compute_bound else 'I/O'}-bound "
                        f"(compute-bound from about {mid.compute_bound_micro_batch:.0f} sequences); "
                        f"the whole step, backward included, at {100 * mid.utilisation:.0f}% of "
                        f"peak", controls_above=True, title_lines=3, height=560,
                   margin=dict(b=150))


def _dataflow_step(step: str, layer: int, n_layers: int) -> dict:
    """Shapes and annotations of :func:`weight_streaming_dataflow` at one step: ``step`` is
    ``"forward"``, ``"backward"`` or ``"update"``; ``layer`` counts from 1."""
    shapes, notes = [], []

    def box(x0, y0, x1, y1, fill, line="black", width=1, dash="solid"):
        shapes.append(dict(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, fillcolor=fill,
                           line=dict(color=line, width=width, dash=dash), layer="below"))

    def text(x, y, t, size=12, colour="black", **kw):
        notes.append(dict(x=x, y=y, text=t, showarrow=False, font=dict(size=size, color=colour),
                          **kw))

    def arrow(x0, x1, y, colour, label):
        notes.append(dict(x=x1, y=y, ax=x0, ay=y, xref="x", yref="y", axref="x", ayref="y",
                          showarrow=True, arrowhead=3, arrowsize=1.3, arrowwidth=3,
                          arrowcolor=colour, text=""))
        text((x0 + x1) / 2, y + 0.45, label, size=11, colour=colour)

    # layer colours avoid the flows' blue and vermillion and the kept activations' green
    layer_colours = [PALETTE[1], PALETTE[4], PALETTE[5], PALETTE[6]]
    colours = [layer_colours[i % len(layer_colours)] for i in range(n_layers)]
    # MemoryX: the weights and optimizer state of every layer
    box(0.0, 0.4, 2.6, 5.6, "#F7F7F7")
    text(1.3, 5.95, "<b>MemoryX</b> (off the wafer)")
    text(1.3, 0.15, "weights + Adam state of every layer", size=10)
    h = 4.6 / n_layers
    for i in range(n_layers):
        y0 = 5.4 - (i + 1) * h + 0.08
        active = i + 1 == layer and step != "update"
        updating = step == "update" or (step == "backward" and i + 1 >= layer)
        box(0.25, y0, 2.35, y0 + h - 0.16, colours[i], width=3 if active else 1)
        label = f"layer {i + 1}" + (" (updated)" if updating and step == "update" else "")
        text(1.3, y0 + (h - 0.16) / 2, label, size=11)
    # the wafer: every PE works on the one layer whose weights are streaming through
    box(5.0, 0.4, 10.0, 5.6, "#FFFFFF", width=2)
    text(7.5, 5.95, "<b>the wafer</b> (one CS-2)")
    if step == "update":
        box(5.2, 1.9, 9.8, 5.4, "#EEEEEE", line="#999999", dash="dot")
        text(7.5, 3.65, "idle: MemoryX applies AdamW<br>to every layer's weights", size=12)
    else:
        box(5.2, 1.9, 9.8, 5.4, colours[layer - 1], width=1)
        what = "forward" if step == "forward" else "recompute, then backward"
        text(7.5, 3.65, f"all PEs: layer {layer}, {what}<br>its weights pass through, "
                        f"then are dropped", size=12)
    # activations that stay on the wafer: each layer's input, kept for backward
    text(7.5, 1.62, "kept on the wafer: each layer's input (activations stay)", size=10)
    kept = 0 if step == "update" else layer  # backward of layer l still reads its input x_{l-1}
    w = 4.6 / n_layers
    for i in range(n_layers):
        x0 = 5.2 + i * w
        on = i < kept
        box(x0 + 0.05, 0.6, x0 + w - 0.05, 1.35, PALETTE[2] if on else "#FFFFFF",
            line=PALETTE[2], dash="solid" if on else "dot")
        text(x0 + w / 2, 0.975, f"x{i}" if on else "", size=11, colour="white")
    # the flows between them
    if step != "update":
        arrow(2.75, 4.85, 4.3, PALETTE[0], f"weights of<br>layer {layer} in")
    if step == "backward":
        arrow(4.85, 2.75, 2.6, PALETTE[3], f"gradients of<br>layer {layer} out")
    return {"shapes": shapes, "annotations": notes}


def weight_streaming_dataflow(n_layers: int = 4) -> go.Figure:
    """A schematic of one weight-streaming training step (one micro-batch) for a model of
    ``n_layers`` layers, one slider step per stage: forward through the layers (each layer's weights
    stream in from MemoryX, its input is kept on the wafer), backward in reverse order (the weights
    stream in again, the layer's activations are recomputed from its kept input, its gradients
    stream out), then MemoryX updates the weights. Weights move; activations stay."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= 8:
        raise ValueError(f"n_layers must be an integer from 1 to 8, got {n_layers!r}")
    stages = ([("forward", i) for i in range(1, n_layers + 1)]
              + [("backward", i) for i in range(n_layers, 0, -1)] + [("update", 0)])
    fig = go.Figure(go.Scatter(x=[0, 10], y=[0, 6.3], mode="markers", marker=dict(opacity=0),
                               hoverinfo="skip", showlegend=False))
    first = _dataflow_step(*stages[0], n_layers)
    steps = [dict(label="update" if kind == "update" else f"{kind[0]}wd {i}", method="relayout",
                  args=[_dataflow_step(kind, i, n_layers)]) for kind, i in stages]
    fig.update_layout(**first, sliders=[dict(steps=steps, active=0, y=-0.02,
                                             currentvalue=dict(prefix="step: "))])
    fig.update_xaxes(visible=False, range=[-0.2, 10.2])
    fig.update_yaxes(visible=False, range=[-0.1, 6.4], scaleanchor="x")
    fig = _layout(fig, "Weight streaming: the weights flow through the wafer and the activations "
                       "stay on it, the reverse of chapter 9's kernel (slide through one step)",
                  height=560, margin=dict(l=10, r=10, b=90))
    # a figure of boxes has no axes; name what the two directions are for readers of the json
    fig.update_xaxes(title="MemoryX (left) and the wafer (right)")
    fig.update_yaxes(title="schematic, not to scale")
    return fig


def scale_out_figure(models=None, wafer="WSE-2", max_systems: int = 128) -> go.Figure:
    """Weight streaming, data parallel: cluster tokens/s against the number of CS-2 systems
    ``n_sys`` (every number from 1 to ``max_systems``, at most one system per sequence of the
    batch) for each model at its published batch size. Markers: circle where each system's
    micro-batch is compute-bound, x where it is not; a star marks the number the paper used."""
    models = list(models or CEREBRAS_GPT)
    fig = go.Figure()
    for i, m in enumerate(models):
        batch = placement_model.published_batch_size(m)
        ns = list(range(1, min(max_systems, batch) + 1))
        ests = placement_model.scale_out(m, ns, wafer)
        colour = CATEGORICAL[i % len(CATEGORICAL)]
        fig.add_trace(go.Scatter(
            x=ns, y=[e.tokens_per_s for e in ests], mode="lines+markers", name=m,
            line=dict(color=colour, width=2),
            marker=dict(symbol=["circle" if e.compute_bound else "x-thin" for e in ests],
                        size=[5 if e.compute_bound else 9 for e in ests], color=colour,
                        line=dict(color=colour, width=2)),
            customdata=[f"{e.micro_batch:.1f}" for e in ests],
            hovertemplate=(f"{m}: %{{x}} systems, %{{y:,.0f}} tokens/s, micro-batch "
                           f"%{{customdata}}<extra></extra>")))
        paper = CEREBRAS_GPT[m].n_cs2
        e = placement_model.weight_streaming(m, wafer, batch, paper)
        fig.add_trace(go.Scatter(x=[paper], y=[e.tokens_per_s], mode="markers", showlegend=False,
                                 name=f"{m}: the paper's {paper} CS-2",
                                 marker=dict(symbol="star", size=16, color=colour,
                                             line=dict(color="black", width=1))))
    for name, symbol, fill in (("systems the paper used", "star", "white"),
                               ("micro-batch compute-bound", "circle", "grey"),
                               ("micro-batch below b* (I/O-bound)", "x-thin", "grey")):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(symbol=symbol, size=12, color=fill,
                                             line=dict(color="black" if symbol == "star"
                                                       else "grey", width=2))))
    fig.update_xaxes(type="log", title="CS-2 systems n_sys (log scale)", dtick=np.log10(2))
    fig.update_yaxes(type="log", title="cluster training tokens/s (log scale, at peak)")
    return _layout(fig, "Data parallelism scales linearly while each system's micro-batch stays "
                        "at or above b* (circles), not its share of the batch; below it (x) more "
                        "systems add little or nothing", height=560,
                   legend=dict(orientation="h", y=-0.2))


def pipeline_schedule(stages: int = 4, sequences: int = 6) -> go.Figure:
    """The one-forward-one-backward (1F1B) schedule of a layer pipeline, time against stage: each
    cell says which sequence a stage works on, forward (F) or backward (B), with forward and
    backward taking one step each (for the picture; backward really costs about twice forward).
    The right-hand column gives the most sequences each stage holds activations for at once:
    ``stages - s`` for stage ``s`` (from 0)."""
    if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= 8:
        raise ValueError(f"stages must be an integer from 1 to 8, got {stages!r}")
    if isinstance(sequences, bool) or not isinstance(sequences, int) or \
            not stages <= sequences <= 16:
        raise ValueError(f"sequences must be an integer from stages ({stages}) to 16, got "
                         f"{sequences!r}")
    grid, held = placement_model.one_forward_one_backward(stages, sequences)
    steps = grid.shape[1]
    code = np.zeros(grid.shape, dtype=np.int8)  # 0 idle, 1 forward, 2 backward
    text = np.full(grid.shape, "", dtype=object)
    for s in range(stages):
        for t in range(steps):
            kind, seq = grid[s, t]
            if kind:
                code[s, t] = 1 if kind == "F" else 2
                text[s, t] = f"{kind}{seq}"
    colours = [UNUSED, PALETTE[0], PALETTE[3]]
    scale = []
    for i, c in enumerate(colours):
        scale += [[i / 3, c], [(i + 1) / 3, c]]
    fig = go.Figure(go.Heatmap(z=code, zmin=-0.5, zmax=2.5, colorscale=scale, showscale=False,
                               text=text, texttemplate="%{text}", xgap=2, ygap=2,
                               x=list(range(1, steps + 1)), y=list(range(stages)),
                               hovertemplate="stage %{y}, step %{x}: %{text}<extra></extra>"))
    for name, colour in (("forward of sequence k (Fk)", PALETTE[0]),
                         ("backward of sequence k (Bk)", PALETTE[3]), ("idle", UNUSED)):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(color=colour, size=12, symbol="square")))
    for s in range(stages):
        fig.add_annotation(x=1.01, y=s, xref="paper", yref="y", xanchor="left", showarrow=False,
                           text=f"holds at most <b>{held[s]}</b>")
    fig.update_xaxes(title="time step", dtick=1)
    fig.update_yaxes(title="pipeline stage s", autorange="reversed", dtick=1)
    return _layout(fig, f"One forward, one backward: stage s holds the activations of at most "
                        f"{stages} - s sequences, because a sequence's backward pass comes back "
                        f"to it only after it has been through every later stage",
                   height=170 + 48 * stages, margin=dict(r=140, b=110),
                   legend=dict(orientation="h", y=-0.35))


# ----------------------------------------------------------------------------------------------
# ipywidgets explorers (live notebook only; the static book shows the figures above)
# ----------------------------------------------------------------------------------------------
def placement_explorer():
    """Pick a model size, an execution mode and a wafer; then a layer and one of its parts, and see
    its region on the wafer map with its cost. Returns an ``ipywidgets.VBox``."""
    import ipywidgets as widgets
    from IPython.display import display

    model = widgets.Dropdown(options=list(CEREBRAS_GPT), value="111M", description="model")
    mode = widgets.ToggleButtons(options=["layer pipelined", "weight streaming"], description="mode")
    wafer = widgets.Dropdown(options=list(WAFERS), value="WSE-2", description="wafer")
    layer = widgets.Dropdown(description="layer")
    part = widgets.Dropdown(description="part")
    out = widgets.Output()

    def refresh_layers(*_):
        names = [l.name for l in placement_model.layer_costs(model.value)]
        layer.options = names
        layer.value = names[1]

    def refresh_parts(*_):
        if layer.value is None:
            return
        comps = [c.name for c in next(l for l in placement_model.layer_costs(model.value)
                                      if l.name == layer.value).components]
        part.options = ["(whole layer)"] + comps
        part.value = "(whole layer)"

    def draw(*_):
        if layer.value is None or part.value is None:
            return
        out.clear_output(wait=True)
        with out:
            display(explorer_figure(model.value, mode.value, wafer.value, layer.value,
                                    None if part.value == "(whole layer)" else part.value))

    model.observe(refresh_layers, "value")
    layer.observe(refresh_parts, "value")
    for w in (model, mode, wafer, layer, part):
        w.observe(draw, "value")
    refresh_layers()
    refresh_parts()
    draw()
    return widgets.VBox([widgets.HBox([model, wafer]), mode, widgets.HBox([layer, part]), out])


def explorer_figure(model: str, mode: str, wafer: str, layer: str, component: str | None = None,
                    tiles: int = 100) -> go.Figure:
    """The figure behind :func:`placement_explorer` (also usable on its own)."""
    if mode == "layer pipelined":
        p = placement_model.layer_pipelined(model, wafer)
        fig = _layer_map(p, tiles)
        fig.update_layout(**_highlight_state(p, layer, component))
        return _layout(fig, f"{model}: " + _placement_title(p), height=640, margin=dict(b=150))
    if mode == "weight streaming":
        e = placement_model.weight_streaming(model, wafer)
        s = next(s for s in e.layers if s.name == layer)
        fig = go.Figure([go.Bar(x=[l.name for l in e.layers], y=[1e3 * l.forward for l in e.layers],
                                marker_color=[PALETTE[3] if l.name == layer else PALETTE[0]
                                              for l in e.layers], name="forward time per layer")])
        fig.update_yaxes(title="forward time per micro-batch (ms)")
        fig.update_xaxes(title="layer (the whole wafer runs one at a time)")
        return _layout(fig, f"{model} on {e.wafer.name}, weight streaming, micro-batch "
                            f"{e.micro_batch:.0f}: {layer} takes {1e3 * s.forward:.2f} ms forward "
                            f"({s.bound}-bound); {e.tokens_per_s:,.0f} tokens/s", height=480)
    raise ValueError(f"mode must be 'layer pipelined' or 'weight streaming', got {mode!r}")


def matmul_explorer():
    """Sliders for the shape of ``X (M, K) @ W (K, N)`` and the grid; runs the fabric multiply,
    checks it against numpy and shows its animation and statistics. Returns an ``ipywidgets.VBox``."""
    import ipywidgets as widgets
    from IPython.display import display

    from . import kernels

    sliders = {name: widgets.IntSlider(value=v, min=lo, max=hi, description=name, continuous_update=False)
               for name, v, lo, hi in (("M", 3, 1, 16), ("K", 10, 1, 64), ("N", 7, 1, 64),
                                       ("rows", 4, 1, 12), ("cols", 4, 1, 12))}
    out = widgets.Output()

    def run(*_):
        v = {k: s.value for k, s in sliders.items()}
        g = torch.Generator().manual_seed(0)
        x = torch.randn(v["M"], v["K"], generator=g)
        w = torch.randn(v["K"], v["N"], generator=g)
        fabric = Fabric(v["rows"], v["cols"], trace=True)
        y = kernels.matmul(fabric, x, w)
        err = float(np.abs(y.numpy() - x.numpy() @ w.numpy()).max())
        out.clear_output(wait=True)
        with out:
            print(f"max |fabric - numpy| = {err:.2e}; cycles {fabric.cycles:,}; "
                  f"wavelets between PEs {fabric.stats().wavelets:,}")
            display(matmul_animation(fabric.trace[0]["schedule"]))

    for s in sliders.values():
        s.observe(run, "value")
    run()
    return widgets.VBox([widgets.HBox(list(sliders.values())[:3]),
                         widgets.HBox(list(sliders.values())[3:]), out])


__all__ = ["table_figure", "fabric_heatmaps", "matmul_states", "matmul_animation", "cycles_by_op",
           "grid_scaling",
           "gpt_fabric_map", "tiled_maps", "wafer_explorer", "layer_picker", "region_cost_text",
           "fit_frontier", "largest_fitting", "mode_comparison", "weight_streaming_dataflow",
           "streaming_timeline", "scale_out_figure", "pipeline_schedule",
           "placement_explorer", "explorer_figure", "matmul_explorer"]
