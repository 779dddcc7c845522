"""Figures for chapter 7 (sampling): what temperature, top-k and top-p do to the next-token
distribution, a static explorer of those settings, the KV cache's time per step, and the live
sampling playground.

Every figure takes plain tensors (probabilities or logits of one position, ``(V,)``) and the labels
of the V tokens, so it works for a character model and a BPE model alike.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..sample import next_token_distribution
from .. import checks
from . import inputs
from .style import PALETTE, visible


def token_label(text: str) -> str:
    """A token's text as it should appear on an axis: a space becomes ␣, a newline ⏎, a tab ⇥
    (:func:`gptlib.viz.style.visible`); an empty token ∅."""
    checks.instance("a token label", text, str)
    return visible(text) or "∅"


def entropy_bits(probs: torch.Tensor) -> float:
    """Shannon entropy of a ``(V,)`` distribution in bits: -sum p log2 p (0 log 0 = 0)."""
    p = probs[probs > 0].double()
    # + 0.0 turns the -0.0 of a certain token (-(1 * log2 1)) into 0.0, so it never prints "-0.00"
    return float(-(p * p.log2()).sum()) + 0.0


# ----------------------------------------------------------------------------------------------
# One distribution, and several temperatures side by side
# ----------------------------------------------------------------------------------------------
def next_token_figure(probs: torch.Tensor, labels: Sequence[str], top: int = 30,
                      title: str | None = None) -> go.Figure:
    """Bar chart of one next-token distribution, most likely token first.

    Args:
        probs: ``(V,)`` probabilities.
        labels: the V token strings.
        top: how many of the most likely tokens to draw.
    """
    labels = inputs.token_labels(labels)
    probs = inputs.distribution("probs", probs, len(labels))
    top = inputs.top(top, len(labels))
    p, order = probs.sort(descending=True)
    n_possible = int((probs > 0).sum())
    fig = go.Figure(go.Bar(x=[labels[i] for i in order[:top]], y=p[:top].tolist(),
                           marker_color=PALETTE[0],
                           hovertemplate="token %{x}<br>probability %{y:.3f}<extra></extra>"))
    fig.update_layout(
        title=title or f"{n_possible} token(s) can be drawn; entropy {entropy_bits(probs):.2f} bits",
        xaxis_title=f"next token (the {top} most likely)", yaxis_title="probability",
        yaxis_range=[0, 1], height=340, margin=dict(t=60, b=50), bargap=0.15)
    return fig


def temperature_figure(logits: torch.Tensor, labels: Sequence[str],
                       temperatures: Sequence[float] = (0.5, 1.0, 2.0), top: int = 20) -> go.Figure:
    """The same logits at several temperatures, as grouped bars over the most likely tokens
    (ordered by the temperature-1 distribution, which every temperature preserves).

    Args:
        logits: ``(V,)`` one position's logits.
        temperatures: each > 0.
    """
    labels = inputs.token_labels(labels)
    logits = inputs.logits(logits, len(labels))
    top = inputs.top(top, len(labels))
    if not temperatures:
        raise ValueError("give at least one temperature")
    for i, t in enumerate(temperatures):
        checks.number(f"temperatures[{i}]", t, low=0, low_open=True)
    order = logits.argsort(descending=True)[:top]
    fig = go.Figure()
    for i, t in enumerate(temperatures):
        probs = next_token_distribution(logits[None], temperature=float(t))[0]
        fig.add_trace(go.Bar(
            x=[labels[j] for j in order], y=probs[order].tolist(),
            name=f"τ = {t:g}  ({entropy_bits(probs):.2f} bits)",
            marker_color=PALETTE[i % len(PALETTE)],
            hovertemplate=f"temperature {t:g}<br>token %{{x}}<br>probability %{{y:.3f}}<extra></extra>"))
    fig.update_layout(
        title="Temperature τ < 1 sharpens the distribution, τ > 1 flattens it;<br>"
              "the order of the tokens never changes",
        barmode="group", xaxis_title=f"next token (the {top} most likely at temperature 1)",
        yaxis_title="probability", legend_title="temperature (entropy)", height=380,
        margin=dict(t=80, b=50))
    return fig


# ----------------------------------------------------------------------------------------------
# Which tokens survive top-k and top-p, in a confident and an uncertain context
# ----------------------------------------------------------------------------------------------
def kept_tokens_figure(contexts: dict[str, torch.Tensor], filters: dict[str, Callable],
                       top: int = 40, log_y: bool = False,
                       reference: float | None = None) -> go.Figure:
    """Sorted probabilities of a few contexts (rows), each filter's kept tokens coloured (columns).

    Args:
        contexts: name -> ``(V,)`` probabilities, e.g. a confident and an uncertain position.
        filters: name -> a function ``(V,) probs -> (V,) bool`` mask of the tokens it keeps.
        top: how many ranks to draw.
        log_y: a logarithmic probability axis, so that bars of 1e-3 show beside one of 0.9.
        reference: a probability to mark with a dashed line in every panel (e.g. 0.01), or None.
    """
    if not contexts or not filters:
        raise ValueError("give at least one context and one filter")
    checks.number("reference", reference, low=0, high=1, low_open=True, high_open=True,
                  none_ok=True, hint="a probability")
    names_c, names_f = list(contexts), list(filters)
    fig = make_subplots(rows=len(names_c), cols=len(names_f), shared_xaxes=True, shared_yaxes=True,
                        vertical_spacing=0.14, horizontal_spacing=0.04,
                        subplot_titles=[f"{c}:<br>{f}" for c in names_c for f in names_f])
    smallest = 1.0
    for r, cname in enumerate(names_c, 1):
        probs = inputs.distribution(f"contexts[{cname!r}]", contexts[cname])
        n = min(inputs.top(top, probs.numel()), probs.numel())
        p, order = probs.sort(descending=True)
        shown = p[:n]
        if bool((shown > 0).any()):
            smallest = min(smallest, float(shown[shown > 0].min()))
        for c, fname in enumerate(names_f, 1):
            keep = filters[fname](probs)
            if not isinstance(keep, torch.Tensor) or keep.shape != probs.shape or keep.dtype != torch.bool:
                raise ValueError(f"filter {fname!r} must return a (V,) bool mask, got "
                                 f"{getattr(keep, 'shape', type(keep).__name__)}")
            kept = keep[order][:n]
            ranks = list(range(1, n + 1))
            fig.add_trace(go.Bar(
                x=ranks, y=shown.tolist(), marker_color=[PALETTE[0] if k else "#BBBBBB" for k in kept],
                showlegend=False,
                hovertemplate="rank %{x}<br>probability %{y:.2g}<extra></extra>"), row=r, col=c)
            mass = float(probs[keep].sum())
            count = int(keep.sum())
            fig.add_annotation(text=f"keeps {count} token{'' if count == 1 else 's'}, "
                                    f"{100 * mass:.1f}% of the mass",
                               xref="x domain", yref="y domain", x=0.98, y=0.97, showarrow=False,
                               row=r, col=c, font=dict(size=11), bgcolor="rgba(255,255,255,0.8)")
            if reference is not None:
                fig.add_hline(y=reference, line_dash="dash", line_color="#444444", line_width=1,
                              row=r, col=c)
    fig.update_xaxes(title_text="rank of the token (1 = most likely)", row=len(names_c))
    if log_y:
        low = math.floor(math.log10(min(smallest, reference or 1.0)))
        fig.update_yaxes(type="log", range=[low, 0.05], dtick=1, exponentformat="power")
    fig.update_yaxes(title_text="probability" + (" (log scale)" if log_y else ""), col=1)
    # the legend for the colours: one invisible trace each, so the key sits outside the title
    for colour, label in ((PALETTE[0], "kept by the filter"), ("#BBBBBB", "dropped")):
        fig.add_trace(go.Bar(x=[None], y=[None], marker_color=colour, name=label,
                             showlegend=True, hoverinfo="skip"), row=1, col=1)
    if reference is not None:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"probability {reference:g}",
                                 line=dict(dash="dash", color="#444444", width=1),
                                 showlegend=True, hoverinfo="skip"), row=1, col=1)
    fig.update_layout(
        title="Top-k keeps a fixed number of tokens;<br>top-p keeps as many as the mass needs",
        title_y=0.98, title_yanchor="top",
        height=280 * len(names_c) + 160, margin=dict(t=160, b=60),
        legend=dict(orientation="h", x=0, xanchor="left", y=1.09, yanchor="bottom"))
    return fig


# ----------------------------------------------------------------------------------------------
# The static explorer: a dropdown for the filter, a slider for the temperature
# ----------------------------------------------------------------------------------------------
def settings_label(top_k: int | None = None, top_p: float | None = None) -> str:
    """How a filter setting is named in the explorer: "no filter", "top-k 5", "top-p 0.9"."""
    parts = ([f"top-k {top_k}"] if top_k is not None else []) + \
            ([f"top-p {top_p:g}"] if top_p is not None else [])
    return " + ".join(parts) or "no filter"


def distribution_grid(logits: torch.Tensor, temperatures: Sequence[float],
                      filters: Sequence[tuple[int | None, float | None]]) -> torch.Tensor:
    """The next-token distribution under every (filter, temperature) pair:
    ``(len(filters), len(temperatures), V)``, from :func:`gptlib.sample.next_token_distribution`.

    Args:
        logits: ``(V,)`` one position's logits.
        temperatures: each >= 0 (0 is greedy).
        filters: ``(top_k, top_p)`` pairs, ``None`` for "off".
    """
    logits = inputs.logits(logits)
    if not temperatures or not filters:
        raise ValueError("give at least one temperature and one filter")
    return torch.stack([
        torch.stack([next_token_distribution(logits.detach().float()[None], t, k, p)[0]
                     for t in temperatures]) for k, p in filters])


def sampling_settings_figure(logits: torch.Tensor, labels: Sequence[str],
                             temperatures: Sequence[float] = (0.0, 0.5, 0.8, 1.0, 1.5, 2.0),
                             filters: Sequence[tuple[int | None, float | None]] = (
                                 (None, None), (5, None), (20, None), (None, 0.5), (None, 0.9)),
                             top: int = 30, prompt: str | None = None,
                             start: tuple[int, int] | None = None) -> go.Figure:
    """The next-token distribution of one prompt under a grid of sampling settings, switched by a
    dropdown (the filter) and a slider (the temperature): the static book's sampling playground.

    Every (filter, temperature) distribution is precomputed (one bar trace each, the tokens in the
    temperature-1 order). Each filter has its own temperature slider; the dropdown shows that one
    and hides the others, so the two controls never disagree. The y axis is the same for every
    setting that leaves two or more tokens, so heights compare; a setting that leaves one certain
    token (greedy) switches the axis to run up to 1.

    Args:
        logits: ``(V,)`` the model's logits for the position after ``prompt``.
        labels: the V token strings.
        temperatures: slider values (0 = greedy).
        filters: dropdown entries, ``(top_k, top_p)`` with ``None`` for "off".
        top: how many of the most likely tokens (at temperature 1) to draw.
        start: ``(filter index, temperature index)`` shown first (default: no filter, temperature 1
            if present).
    """
    labels = inputs.token_labels(labels)
    logits = inputs.logits(logits, len(labels))
    top = inputs.top(top, len(labels))
    grid = distribution_grid(logits, temperatures, filters)  # (F, T, V)
    n_f, n_t = grid.shape[:2]
    if start is None:
        start = (0, list(temperatures).index(1.0) if 1.0 in temperatures else 0)
    f0, t0 = start
    if not (0 <= f0 < n_f and 0 <= t0 < n_t):
        raise ValueError(f"start must index the grid ({n_f} filters x {n_t} temperatures), got {start}")
    order = logits.argsort(descending=True)[:top]
    x = [labels[j] for j in order]

    def subtitle(f: int, t: int) -> str:
        probs = grid[f, t]
        shown = float(probs[order].sum())
        n = int((probs > 0).sum())
        return (f"<b>{settings_label(*filters[f])}, temperature τ = {temperatures[t]:g}</b>: "
                f"{n} token{'' if n == 1 else 's'} can be drawn, top token "
                f"{float(probs.max()):.2f},<br>entropy {entropy_bits(probs):.2f} bits, "
                f"{shown:.0%} of the mass on the {top} tokens shown")

    # One y scale for the states that leave two or more tokens, so heights compare across
    # settings; a state with a single certain token (greedy) gets the axis up to 1 instead.
    spread = [float(grid[f, t].max()) for f in range(n_f) for t in range(n_t)
              if int((grid[f, t] > 0).sum()) > 1]
    y_max = min(1.0, 1.1 * max(spread)) if spread else 1.0

    def y_range(f: int, t: int) -> list[float]:
        return [0, 1.05] if int((grid[f, t] > 0).sum()) == 1 else [0, y_max]

    heading = "Each setting reshapes the same logits"
    if prompt is not None:
        heading += f"<br><sup>prompt ends: {token_label(prompt[-40:])!s}</sup>"
    fig = go.Figure()
    for f in range(n_f):
        for t in range(n_t):
            fig.add_trace(go.Bar(
                x=x, y=grid[f, t, order].tolist(), visible=(f, t) == (f0, t0),
                marker_color=PALETTE[f % len(PALETTE)], name=settings_label(*filters[f]),
                hovertemplate="token %{x}<br>probability %{y:.3f}<extra></extra>"))

    def visible(f: int, t: int) -> list[bool]:
        return [(i, j) == (f, t) for i in range(n_f) for j in range(n_t)]

    sliders = []
    for f in range(n_f):
        sliders.append(dict(
            active=t0, visible=f == f0, currentvalue=dict(prefix="temperature τ: "),
            pad=dict(t=40),
            steps=[dict(label=f"{temperatures[t]:g}", method="update",
                        args=[{"visible": visible(f, t)},
                              {"annotations[0].text": subtitle(f, t),
                               "yaxis.range": y_range(f, t)}]) for t in range(n_t)]))
    buttons = []
    for f in range(n_f):
        relayout = {f"sliders[{g}].visible": g == f for g in range(n_f)}
        relayout.update({f"sliders[{f}].active": t0, "annotations[0].text": subtitle(f, t0),
                         "yaxis.range": y_range(f, t0)})
        buttons.append(dict(label=settings_label(*filters[f]), method="update",
                            args=[{"visible": visible(f, t0)}, relayout]))
    fig.update_layout(
        title=dict(text=heading, x=0, xref="paper", xanchor="left", y=0.97, yanchor="top"),
        height=500, margin=dict(t=150, b=60),
        xaxis_title=f"next token (the {top} most likely at temperature 1)",
        yaxis_title="probability", yaxis_range=y_range(f0, t0), bargap=0.15, showlegend=False,
        sliders=sliders,
        updatemenus=[dict(buttons=buttons, active=f0, x=1.0, xanchor="right", y=1.3,
                          yanchor="bottom", direction="down", showactive=True)],
        annotations=[dict(text=subtitle(f0, t0), xref="paper", yref="paper", x=0, y=1.02,
                          xanchor="left", yanchor="bottom", showarrow=False, align="left"),
                     dict(text="filter:", xref="paper", yref="paper", x=0.82, y=1.3,
                          xanchor="right", yanchor="bottom", showarrow=False,
                          yshift=4)])
    return fig


# ----------------------------------------------------------------------------------------------
# The KV cache: time per generated token
# ----------------------------------------------------------------------------------------------
def step_time_figure(seconds_without: Sequence[float], seconds_with: Sequence[float],
                     prompt_length: int = 1,
                     time_label: str = "time of the step (ms)") -> go.Figure:
    """Time of each generation step without and with the KV cache.

    Args:
        seconds_without, seconds_with: time of step i (i = 0, 1, ...), in seconds; step i feeds
            ``prompt_length + i`` tokens without the cache and, after the first step (which feeds
            the prompt), 1 token with it.
        prompt_length: tokens in the prompt (so the x axis is the sequence length).
        time_label: the y axis title, which says which clock measured the steps (wall time,
            processor time) and the unit, milliseconds.
    """
    for name, s in (("seconds_without", seconds_without), ("seconds_with", seconds_with)):
        if len(s) == 0 or any(not math.isfinite(v) or v < 0 for v in s):
            raise ValueError(f"{name} must be a non-empty sequence of times >= 0 in seconds")
    fig = go.Figure()
    for name, s, colour in (("without the cache (the whole sequence every step)", seconds_without,
                             PALETTE[3]),
                            ("with the KV cache (after the prompt, one new token a step)", seconds_with, PALETTE[0])):
        fig.add_trace(go.Scatter(
            x=[prompt_length + i for i in range(len(s))], y=[1000 * v for v in s], mode="markers",
            marker=dict(size=4, color=colour), name=f"{name}: steps add up to {1000 * sum(s):,.0f} ms",
            hovertemplate="sequence length %{x}<br>%{y:.2f} ms<extra></extra>"))
    fig.update_layout(
        title="Without a cache each step costs more as the text grows;<br>"
              "with it, each step costs about the same",
        xaxis_title="tokens in the sequence at this step", yaxis_title=time_label,
        yaxis_rangemode="tozero", height=400, legend=dict(x=0.01, y=0.99), margin=dict(t=80, b=50))
    return fig


# ----------------------------------------------------------------------------------------------
# What the settings do to the text
# ----------------------------------------------------------------------------------------------
def sample_quality_figure(settings: Sequence[str], real_word_fraction: Sequence[float],
                          distinct_word_fraction: Sequence[float],
                          real_word_range: Sequence[tuple[float, float]] | None = None,
                          distinct_word_range: Sequence[tuple[float, float]] | None = None,
                          groups: int | None = None) -> go.Figure:
    """Two measures of samples drawn under several settings, side by side.

    Args:
        settings: a label per setting, e.g. ``"greedy"``, ``"T = 0.8"``.
        real_word_fraction: per setting, the fraction (0..1) of sampled words found in the corpus
            (correctness), e.g. the mean over several groups of samples.
        distinct_word_fraction: per setting, distinct words / words (variety; loops score low).
        real_word_range, distinct_word_range: optional ``(low, high)`` per setting (e.g. the
            lowest and highest group), drawn as thin lines through the bars.
        groups: how many groups of samples the bars summarise, for the subtitle.
    """
    n = len(settings)
    for name, values in (("real_word_fraction", real_word_fraction),
                         ("distinct_word_fraction", distinct_word_fraction)):
        if len(values) != n or any(not 0 <= v <= 1 for v in values):
            raise ValueError(f"{name} must hold one fraction in [0, 1] per setting ({n} settings)")

    # the mean of equal group values can land a rounding step outside them (the mean of eight
    # 0.7s is not 0.7 exactly), so the bar's value may pass its range by that much
    rounding = 1e-9

    def error_bars(name, centre, spread):
        if spread is None:
            return None
        if len(spread) != n or any(len(r) != 2 or not 0 <= r[0] <= r[1] <= 1
                                   or not r[0] - rounding <= c <= r[1] + rounding
                                   for r, c in zip(spread, centre)):
            raise ValueError(f"{name} must hold one (low, high) pair per setting ({n} settings), "
                             f"with 0 <= low <= the bar's value <= high <= 1")
        return dict(type="data", symmetric=False, color="#444444", thickness=1.2, width=4,
                    array=[100 * max(0.0, r[1] - c) for r, c in zip(spread, centre)],
                    arrayminus=[100 * max(0.0, c - r[0]) for r, c in zip(spread, centre)])

    real_bars = error_bars("real_word_range", real_word_fraction, real_word_range)
    distinct_bars = error_bars("distinct_word_range", distinct_word_fraction, distinct_word_range)
    title = "Hotter sampling invents more words; greedy decoding repeats itself"
    if groups and (real_bars or distinct_bars):
        title += (f"<br><sup>each bar: the mean of {groups} groups of samples; the thin lines "
                  f"run from the lowest group to the highest</sup>")
    # a label "τ 0.8, top-p 0.9" is set on two lines, so nine settings fit side by side
    x = [label.replace(", ", "<br>") for label in settings]
    fig = go.Figure([
        go.Bar(x=x, y=[100 * v for v in real_word_fraction], marker_color=PALETTE[0],
               name="words that exist in Shakespeare (%)", error_y=real_bars,
               hovertemplate="%{x}<br>%{y:.0f}% real words<extra></extra>"),
        go.Bar(x=x, y=[100 * v for v in distinct_word_fraction], marker_color=PALETTE[1],
               name="distinct words / all words (%)", error_y=distinct_bars,
               hovertemplate="%{x}<br>%{y:.0f}% distinct<extra></extra>"),
    ])
    fig.update_layout(
        title=title, barmode="group", xaxis_title="sampling setting",
        yaxis_title="percent of the sampled words",
        yaxis_range=[0, 105], height=420, legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        title_y=0.97, title_yanchor="top", margin=dict(t=90, b=60))
    return fig


# ----------------------------------------------------------------------------------------------
# The live playground (needs a running kernel)
# ----------------------------------------------------------------------------------------------
def sampling_playground(generate_text: Callable[..., str], logits_for: Callable[[str], torch.Tensor],
                        labels: Sequence[str], prompt: str = "ROMEO:\n", top: int = 30):
    """An ipywidgets sampling playground: prompt, temperature, top-k, top-p, length and seed.

    It shows the next-token distribution after the prompt under the chosen settings (the same
    figure as :func:`next_token_figure`) and a sample of the chosen length.

    Args:
        generate_text: ``f(prompt, max_new_tokens=, temperature=, top_k=, top_p=, seed=) -> str``,
            the continuation (for example ``gptlib.book_model(...).generate_text``).
        logits_for: ``f(prompt) -> (V,)`` logits of the position after the prompt.
        labels: the V token strings.
    Returns:
        an ``ipywidgets.VBox`` (display it as a cell's last expression).
    """
    import ipywidgets as widgets

    labels = list(labels)
    style = dict(description_width="110px")
    controls = dict(
        prompt=widgets.Textarea(value=prompt, description="prompt", style=style,
                                layout=widgets.Layout(width="95%", height="60px")),
        temperature=widgets.FloatSlider(value=0.8, min=0.0, max=2.0, step=0.05,
                                        description="temperature", style=style),
        top_k=widgets.IntSlider(value=0, min=0, max=len(labels), description="top-k (0 = off)",
                                style=style),
        top_p=widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05,
                                  description="top-p (1 = off)", style=style),
        length=widgets.IntSlider(value=200, min=10, max=500, step=10, description="new tokens",
                                 style=style),
        seed=widgets.IntSlider(value=0, min=0, max=99, description="seed", style=style),
    )
    for w in controls.values():
        w.continuous_update = False  # sample when a slider is released, not at every pixel

    def show(prompt, temperature, top_k, top_p, length, seed):
        k = top_k or None
        p = None if top_p >= 1 else top_p
        try:
            logits = logits_for(prompt)
            probs = next_token_distribution(logits.float()[None], temperature, k, p)[0]
            next_token_figure(probs, labels, top=top,
                              title=f"After this prompt: {int((probs > 0).sum())} token(s) can be "
                                    f"drawn, entropy {entropy_bits(probs):.2f} bits").show()
            text = generate_text(prompt, max_new_tokens=length, temperature=temperature,
                                 top_k=k, top_p=p, seed=seed)
            print(text)
        except ValueError as err:  # e.g. a character the tokenizer does not know
            print(f"cannot sample: {err}")

    out = widgets.interactive_output(show, controls)
    ui = widgets.VBox([controls["prompt"],
                       widgets.HBox([controls["temperature"], controls["top_k"], controls["top_p"]]),
                       widgets.HBox([controls["length"], controls["seed"]]), out])
    return ui


__all__ = ["distribution_grid", "entropy_bits", "kept_tokens_figure",
           "next_token_figure", "sample_quality_figure", "sampling_playground", "sampling_settings_figure", "settings_label",
           "step_time_figure", "temperature_figure", "token_label"]
