"""Figures of chapter 1: text cut into coloured tokens, BPE merges, and compression.

* :func:`token_pieces` turns a text into ``(bytes, id)`` pairs under any of the book's tokenizers
  (a tiktoken ``Encoding`` or a :class:`gptlib.tokenizer.CharTokenizer`).
* :func:`token_chips_figure` draws one or more texts as rows of coloured "chips" (the token's text
  above, its id below), with a dropdown or a slider over precomputed states, so the figure stays
  interactive in the static book. :func:`tokenizer_comparison_figure` (one text, several
  tokenizers, a dropdown over texts) and :func:`merge_steps_figure` (one text under the first k
  merges, a slider over k) are built on it.
* :func:`token_view_widget` is the live version: an ipywidgets text box that redraws the same
  figure for whatever the reader types (needs a running kernel).
* :func:`merge_counts_figure` and :func:`compression_figure` plot what the BPE trainer learned.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from ..tokenizer import CharTokenizer
from .style import PALETTE, VISIBLE, margins, titles_by_state, visible

Piece = tuple[bytes, "int | None"]

CELL_PX = 10  # width of one character cell of a chip, in pixels
LINE_PX = 46  # height of one line of chips (text and id), in pixels
CHIP_COLOURS = PALETTE[:7]  # the Okabe-Ito colours without black; chips are drawn translucent
UNKNOWN_COLOUR = "#999999"


# ----------------------------------------------------------------------------------------------
# Tokens as (bytes, id) pairs
# ----------------------------------------------------------------------------------------------
def token_pieces(text: str, tokenizer) -> list[Piece]:
    """Cut ``text`` into tokens and return each token's bytes and id.

    Args:
        text: any string.
        tokenizer: a tiktoken ``Encoding`` (GPT-2, or one from :func:`gptlib.tokenizer.train_bpe`;
            special tokens such as ``<|endoftext|>`` are kept as one token) or a
            :class:`~gptlib.tokenizer.CharTokenizer` (a character outside its alphabet gets id
            ``None`` instead of an error, so a figure can show it greyed out).
    Returns:
        A list of ``(token_bytes, token_id)``, one per token, whose bytes joined together are
        ``text.encode("utf-8")``.
    """
    checks.instance("text", text, str)
    if isinstance(tokenizer, CharTokenizer):
        return [(c.encode("utf-8"), tokenizer.stoi.get(c)) for c in text]
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode_tokens_bytes"):
        ids = tokenizer.encode(text, allowed_special="all")
        return list(zip(tokenizer.decode_tokens_bytes(ids), ids))
    raise TypeError(f"tokenizer must be a tiktoken Encoding or a gptlib CharTokenizer, "
                    f"got {type(tokenizer).__name__}")


def display_text(token: bytes) -> str:
    """How a token's bytes are printed on a chip: whitespace made visible (space as ␣, newline as
    ⏎, see :func:`gptlib.viz.style.visible`), and bytes that are not complete UTF-8 characters
    on their own written as ``\\xNN``."""
    checks.instance("token", token, (bytes, bytearray), what="bytes")
    text = bytes(token).decode("utf-8", errors="backslashreplace")
    return visible(text)


def _translucent(hex_colour: str, alpha: float = 0.35) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ----------------------------------------------------------------------------------------------
# The chip figure
# ----------------------------------------------------------------------------------------------
def _layout_rows(rows: Mapping[str, Sequence[Piece]], wrap: int, vocab_sizes: Mapping[str, int]):
    """Place chips on a grid of character cells. Returns shapes, annotations, hover points and
    the number of lines used (a heading line per row, then the chips, wrapped at ``wrap``)."""
    shapes, annotations = [], []
    hover = {"x": [], "y": [], "customdata": []}
    line = 0
    for name, pieces in rows.items():
        n_bytes = sum(len(b) for b, _ in pieces)
        heading = f"<b>{name}</b>: {len(pieces)} tokens"
        if name in vocab_sizes:
            heading += f" (vocabulary V = {vocab_sizes[name]:,})"
        unknown = sum(token_id is None for _, token_id in pieces)
        if unknown:  # a rate would count failures as tokens: say what failed instead
            heading += f", {unknown} character{'s' if unknown > 1 else ''} it cannot encode (grey)"
        elif pieces:
            heading += f", {n_bytes / len(pieces):.2f} bytes per token"
        annotations.append(dict(x=0, y=-line, xref="x", yref="y", text=heading, showarrow=False,
                                xanchor="left", yanchor="middle", font=dict(size=13)))
        line += 1
        x = 0
        for k, (token, token_id) in enumerate(pieces):
            label = display_text(token)
            id_label = "?" if token_id is None else str(token_id)
            width = max(len(label), len(id_label)) + 1
            if x > 0 and x + width > wrap:
                x, line = 0, line + 1
            colour = (UNKNOWN_COLOUR if token_id is None
                      else CHIP_COLOURS[k % len(CHIP_COLOURS)])
            y = -line
            shapes.append(dict(type="rect", xref="x", yref="y", x0=x + 0.1, x1=x + width - 0.1,
                               y0=y - 0.42, y1=y + 0.42, line=dict(width=0),
                               fillcolor=_translucent(colour)))
            centre = x + width / 2
            annotations.append(dict(x=centre, y=y + 0.16, xref="x", yref="y", text=label,
                                    showarrow=False, font=dict(family="monospace", size=13)))
            annotations.append(dict(x=centre, y=y - 0.22, xref="x", yref="y", text=id_label,
                                    showarrow=False, font=dict(family="monospace", size=9,
                                                               color="#333333")))
            hover["x"].append(centre)
            hover["y"].append(y)
            hover["customdata"].append([name, label, id_label, " ".join(f"{b:02x}" for b in token)])
            x += width
        line += 1
    return shapes, annotations, hover, line


def token_chips_figure(states: Mapping[str, Mapping[str, Sequence[Piece]]], title: str,
                       control: str = "dropdown", control_label: str = "",
                       vocab_sizes: Mapping[str, int] | None = None, wrap: int = 60,
                       state_titles: Mapping[str, str] | None = None) -> go.Figure:
    """Tokens drawn as coloured chips, one labelled row per tokenizer, switchable between states.

    Each chip shows a token's text (whitespace made visible, see :func:`display_text`) over its
    id; hovering shows its bytes in hex. Neighbouring tokens get different colours; a character a
    :class:`~gptlib.tokenizer.CharTokenizer` does not know is grey with id ``?``. Each row's
    heading gives its number of tokens and its bytes per token, or, for a row with characters
    it cannot encode, how many (a rate would count those failures as tokens).

    Args:
        states: ``{state label: {row name: [(token_bytes, id), ...]}}``, e.g. one state per
            sample sentence, or one per number of merges. Every state is precomputed, so the
            figure needs no kernel.
        title: the figure's title (say what to notice); ``state_titles`` may override it per state.
        control: ``"dropdown"`` or ``"slider"`` to switch states (ignored for a single state).
        control_label: text shown before the slider's current value (a dropdown shows the
            state's label itself).
        vocab_sizes: ``{row name: V}`` printed in each row's heading.
        wrap: line width in character cells (10 px each); the default 60 fits the book's column.
    Returns:
        A plotly Figure, showing the first state.
    """
    if not states:
        raise ValueError("states is empty: give at least one {state label: {row name: pieces}}")
    checks.one_of("control", control, ("dropdown", "slider"))
    checks.integer("wrap", wrap, low=8, hint="character cells of 10 px")
    vocab_sizes = dict(vocab_sizes or {})
    laid_out = {}
    for label, rows in states.items():
        if not rows:
            raise ValueError(f"state {label!r} has no rows: give {{row name: pieces}}")
        laid_out[label] = _layout_rows(rows, wrap, vocab_sizes)
    n_lines = max(lines for *_, lines in laid_out.values())

    fig = go.Figure()
    hovertemplate = ("%{customdata[0]}<br>token %{customdata[1]}<br>id %{customdata[2]}"
                     "<br>UTF-8 bytes %{customdata[3]}<extra></extra>")
    for k, (label, (_, _, hover, _)) in enumerate(laid_out.items()):
        fig.add_trace(go.Scatter(x=hover["x"], y=hover["y"], customdata=hover["customdata"],
                                 mode="markers", name=str(label), visible=(k == 0),
                                 marker=dict(size=18, color="rgba(0,0,0,0)"),
                                 hovertemplate=hovertemplate, showlegend=False))

    title_of = titles_by_state(state_titles, title)

    first = next(iter(laid_out))
    shapes, annotations, _, _ = laid_out[first]
    height = 90 + LINE_PX * n_lines + (70 if len(states) > 1 else 0)
    fig.update_layout(
        title=title_of(first), shapes=shapes, annotations=annotations,
        width=CELL_PX * wrap + 60, height=height, plot_bgcolor="white",
        margin=margins(20, 60, 70 if (len(states) > 1 and control == "slider") else 20),
        xaxis=dict(range=[-0.5, wrap + 0.5], visible=False, fixedrange=True),
        yaxis=dict(range=[-n_lines + 0.4, 0.6], visible=False, fixedrange=True),
        hoverlabel=dict(font=dict(family="monospace")))
    if len(states) > 1:
        steps = []
        for k, (label, (shp, ann, _, _)) in enumerate(laid_out.items()):
            shown = [j == k for j in range(len(laid_out))]
            steps.append(dict(label=str(label), method="update",
                              args=[{"visible": shown},
                                    {"shapes": shp, "annotations": ann, "title": title_of(label)}]))
        if control == "dropdown":
            fig.update_layout(
                margin=margins(20, 110, 20),
                updatemenus=[dict(type="dropdown", buttons=steps, direction="down", active=0,
                                  x=0.01, xanchor="left", y=1.0, yanchor="bottom",
                                  pad=dict(t=4, b=4))],
            )
        else:
            fig.update_layout(sliders=[dict(
                active=0, steps=steps, x=0.02, len=0.96, y=0, yanchor="top", pad=dict(t=10),
                currentvalue=dict(prefix=control_label, font=dict(size=13)))])
    return fig


def tokenizer_comparison_figure(texts: Sequence[str], tokenizers: Mapping[str, object],
                                title: str | None = None, wrap: int = 60) -> go.Figure:
    """The same text under several tokenizers, one row each; a dropdown picks the text.

    Args:
        texts: the sample texts (each becomes one dropdown entry).
        tokenizers: ``{name: tokenizer}``, each accepted by :func:`token_pieces`.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings (one dropdown entry each)")
    if not tokenizers:
        raise ValueError("tokenizers is empty: give {name: tokenizer}")
    states = {}
    for text in texts:
        label = text if len(text) <= 40 else text[:37] + "..."
        states[label.replace("\n", VISIBLE["\n"])] = {name: token_pieces(text, tok)
                                                       for name, tok in tokenizers.items()}
    sizes = {name: tok.n_vocab for name, tok in tokenizers.items() if hasattr(tok, "n_vocab")}
    title = title or "Bigger vocabularies cut the same text into fewer, longer tokens"
    return token_chips_figure(states, title, control="dropdown", vocab_sizes=sizes, wrap=wrap)


def merge_steps_figure(text: str, encodings: Mapping[int, object], title: str | None = None,
                       wrap: int = 60) -> go.Figure:
    """One text under BPE with the first k merges, a slider over k.

    Args:
        text: the sentence to segment.
        encodings: ``{k: tokenizer}``, the tokenizer that knows only the first ``k`` merges.
    """
    if not encodings:
        raise ValueError("encodings is empty: give {number of merges: tokenizer}")
    states = {}
    for k, enc in encodings.items():
        states[k] = {f"after {k} merges": token_pieces(text, enc)}
    title = title or "Each merge glues a frequent pair: common words become single tokens first"
    return token_chips_figure(states, title, control="slider", control_label="merges learned: ",
                              wrap=wrap)


def token_view_widget(tokenizers: Mapping[str, object], value: str = "To be, or not to be",
                      wrap: int = 60):
    """Live version of :func:`tokenizer_comparison_figure`: a text box; typing redraws the chips.

    Needs a running Jupyter kernel (callbacks do not run in the static book).

    Returns:
        An ``ipywidgets.VBox`` holding the text box and the figure's output area.
    """
    import ipywidgets as widgets

    if not tokenizers:
        raise ValueError("tokenizers is empty: give {name: tokenizer}")
    box = widgets.Text(value=value, description="Text:", continuous_update=True,
                       layout=widgets.Layout(width="95%"))
    out = widgets.Output()
    sizes = {name: tok.n_vocab for name, tok in tokenizers.items() if hasattr(tok, "n_vocab")}

    def redraw(change=None):
        rows = {name: token_pieces(box.value, tok) for name, tok in tokenizers.items()}
        fig = token_chips_figure({"typed": rows}, "Your text, token by token", vocab_sizes=sizes,
                                 wrap=wrap)
        out.clear_output(wait=True)
        with out:
            fig.show()

    box.observe(redraw, names="value")
    redraw()
    return widgets.VBox([box, out])


# ----------------------------------------------------------------------------------------------
# What the trainer learned
# ----------------------------------------------------------------------------------------------
def merge_counts_figure(merges: Sequence[tuple[bytes, bytes, int]], title: str | None = None,
                        label_at: Sequence[int] = (1, 2, 3, 5, 10, 30, 100, 300, 1000)) -> go.Figure:
    """How often each learned pair occurred when it was merged, in merge order (log-log).

    Args:
        merges: ``(left, right, count)`` triples as yielded by :func:`gptlib.tokenizer.bpe_merges`.
        label_at: merge numbers (1-based) whose new token is written next to its point.
    """
    if not merges:
        raise ValueError("merges is empty: give the (left, right, count) triples of bpe_merges")
    ranks = list(range(1, len(merges) + 1))
    counts = [c for _, _, c in merges]
    labels = [f"{display_text(l)} + {display_text(r)} → {display_text(l + r)}" for l, r, _ in merges]
    fig = go.Figure(go.Scatter(
        x=ranks, y=counts, mode="lines+markers", marker=dict(size=4, color=PALETTE[0]),
        line=dict(color=PALETTE[0]), customdata=labels, name="merges",
        hovertemplate="merge %{x}: %{customdata}<br>%{y:,} occurrences<extra></extra>"))
    for rank in label_at:
        if 1 <= rank <= len(merges):
            left, right, count = merges[rank - 1]
            # annotations on log axes take log10 coordinates
            right_half = rank > len(merges) ** 0.5  # past the middle of the log axis
            fig.add_annotation(x=math.log10(rank), y=math.log10(count),
                               text=f"{rank}: {display_text(left + right)}", showarrow=True,
                               arrowhead=0, ax=-18 if right_half else 18,
                               ay=22 if right_half else -22,
                               xanchor="right" if right_half else "left",
                               font=dict(family="monospace", size=11, color=PALETTE[3]))
    fig.update_layout(
        title=title or "The first merges are the commonest pairs; later ones each occur far less",
        xaxis=dict(title="merge number (order learned, log scale)", type="log", dtick=1),
        yaxis=dict(title="occurrences of the pair when merged (count, log scale)", type="log",
                   dtick=1),
        height=420, plot_bgcolor="white", margin=margins(70, 60, 60))
    fig.update_xaxes(gridcolor="#e5e5e5")
    fig.update_yaxes(gridcolor="#e5e5e5")
    return fig


def compression_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                       d_model: int = 768, title: str | None = None) -> go.Figure:
    """The vocabulary-size trade-off: compression gained (left) against embedding size paid (right).

    Args:
        curves: ``{name: (vocab_sizes, bytes_per_token)}``; a name with one point is drawn as a
            marker, more points as a line.
        d_model: width C used for the embedding table's size V x C on the right.
    """
    if not curves:
        raise ValueError("curves is empty: give {name: (vocab_sizes, bytes_per_token)}")
    checks.integer("d_model", d_model, low=1)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16, subplot_titles=(
        "gain: text per token", f"cost: V × C table at C = {d_model}"))
    all_sizes = sorted({int(v) for sizes, _ in curves.values() for v in sizes})
    for k, (name, (sizes, bpt)) in enumerate(curves.items()):
        if len(sizes) != len(bpt) or not len(sizes):
            raise ValueError(f"curve {name!r}: vocab_sizes and bytes_per_token must be non-empty "
                             f"and of equal length, got {len(sizes)} and {len(bpt)}")
        colour = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=list(sizes), y=list(bpt), name=name, mode="lines+markers" if len(sizes) > 1 else "markers",
            marker=dict(size=7 if len(sizes) > 1 else 12, color=colour,
                        symbol="circle" if len(sizes) > 1 else "diamond"),
            line=dict(color=colour),
            hovertemplate=f"{name}<br>V = %{{x:,}}<br>%{{y:.2f}} bytes/token<extra></extra>"),
            row=1, col=1)
    fig.add_trace(go.Scatter(
        x=all_sizes, y=[v * d_model / 1e6 for v in all_sizes], mode="lines+markers",
        name=f"V × {d_model} parameters", line=dict(color=PALETTE[7], dash="dot"),
        marker=dict(size=5, color=PALETTE[7]),
        hovertemplate="V = %{x:,}<br>%{y:.2f} M parameters<extra></extra>"), row=1, col=2)
    fig.update_xaxes(type="log", dtick=1, title="vocabulary size V (token ids, log scale)",
                     gridcolor="#e5e5e5")
    fig.update_yaxes(title="bytes of text per token (bytes/token)", row=1, col=1, gridcolor="#e5e5e5")
    fig.update_yaxes(title="token-table parameters (millions, log scale)", type="log", dtick=1,
                     row=1, col=2, gridcolor="#e5e5e5")
    fig.update_layout(
        title=title or "Compression grows about like log V; the table grows like V",
        height=430, plot_bgcolor="white", margin=margins(70, 90, 60),
        legend=dict(orientation="h", x=0, y=-0.2))
    return fig
