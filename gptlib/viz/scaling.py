"""Figures of chapter 8 (scaling laws and muP).

* :func:`flops_comparison_figure`: training compute of each model by several counts (6ND, the
  fuller count), each divided by a reference count (the paper's), so that 1 is agreement.
* :func:`tokens_per_parameter_figure`: training tokens against parameters, with the line of
  20 tokens per parameter that every compute-optimal Cerebras-GPT run sits on.
* :func:`scaling_law_figure`: a sweep's final losses against compute (every seed, and their
  mean) with its fitted power law, and beside it the *shape* of that law against the paper's
  (reducible loss against compute, both relative to their smallest run, so the slopes, the
  exponents, can be compared), with the slopes of refits (one seed, one run left out) as a fan.
* :func:`isoflop_figure`: an IsoFLOP profile, the loss of models of several sizes trained with
  the same compute, against their tokens per parameter, every seed and the mean.
* :func:`coordinate_check_figure`: activation size against width per layer, standard
  parametrization beside muP, with a slider over the training steps.
* :func:`lr_transfer_figure`: final loss against learning rate, one line per width (the mean
  over seeds, each seed a faint dot), standard parametrization beside muP; the best rate of each
  width is starred.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from . import inputs
from .style import PALETTE, legend_row


# ----------------------------------------------------------------------------------------------
# compute and tokens
# ----------------------------------------------------------------------------------------------
def flops_comparison_figure(names: Sequence[str], counts: Mapping[str, Sequence[float]],
                            reference: Sequence[float],
                            reference_label: str = "the paper's figure",
                            title: str = "Training compute: 6ND leaves out attention and the logits"
                            ) -> go.Figure:
    """Grouped bars of training FLOPs per model, one bar per way of counting, each divided by
    the reference count of that model, with a dashed line at 1 (the reference itself).

    Counts that differ by at most a few times over several decades of compute are hard to tell
    apart on a log axis; as ratios they sit side by side on a linear one. The hover gives the
    FLOPs themselves too.

    Args:
        names: ``(M,)`` model names (x axis).
        counts: label -> ``(M,)`` FLOPs, e.g. ``{"6ND": ..., "full count": ...}``.
        reference: ``(M,)`` FLOPs every count is divided by (e.g. the paper's figures).
        reference_label: what the reference is, for the line's label and the y axis.
    """
    names = list(names)
    if not counts:
        raise ValueError("counts is empty: give at least one label -> FLOPs per model")
    reference = inputs.series("reference", reference, length=len(names), per="model", positive=True)
    fig = go.Figure()
    highest = 1.0
    for i, (label, values) in enumerate(counts.items()):
        values = inputs.series(f"counts[{label!r}]", values, length=len(names), per="model",
                               positive=True)
        highest = max(highest, float((values / reference).max()))
        fig.add_bar(x=names, y=values / reference, name=label, customdata=values,
                    marker_color=PALETTE[i % len(PALETTE)],
                    hovertemplate="%{x}: %{y:.2f} x the reference (%{customdata:.3g} FLOPs)"
                                  "<extra>" + label + "</extra>")
    fig.add_hline(y=1.0, line_dash="dash", line_color="#444",
                  annotation_text=f"1 = {reference_label}", annotation_position="top left")
    fig.update_layout(title=title, template="plotly_white", barmode="group", height=400,
                      xaxis_title="model", yaxis_title=f"count / {reference_label}",
                      yaxis_range=[0, 1.12 * highest], legend=legend_row(-0.2))
    return fig


def tokens_per_parameter_figure(names: Sequence[str], params: Sequence[float], tokens: Sequence[float],
                                ratio: float = 20.0, others: Mapping[str, tuple[float, float]] | None = None,
                                title: str = "Every Cerebras-GPT model saw 20 tokens per parameter"
                                ) -> go.Figure:
    """Training tokens against parameters (log-log), with the line ``tokens = ratio x params``.

    Args:
        names, params, tokens: ``(M,)`` each, the runs to mark.
        others: optional label -> ``(params, tokens)`` of other models to show for contrast.
    """
    params = inputs.series("params", params, positive=True)
    tokens = inputs.series("tokens", tokens, positive=True)
    if not len(names) == len(params) == len(tokens):
        raise ValueError(f"names, params and tokens must have the same length, got "
                         f"{len(names)}, {len(params)}, {len(tokens)}")
    checks.number("ratio", ratio, low=0, low_open=True)
    extra = dict(others or {})
    all_params = np.concatenate([params, [p for p, _ in extra.values()]]) if extra else params
    line = np.geomspace(all_params.min() / 2, all_params.max() * 2, 50)
    fig = go.Figure()
    fig.add_scatter(x=line, y=ratio * line, mode="lines", name=f"{ratio:g} tokens per parameter",
                    line=dict(color="#777777", dash="dash"))
    fig.add_scatter(x=params, y=tokens, mode="markers+text", text=list(names), textposition="top left",
                    name="Cerebras-GPT", marker=dict(color=PALETTE[0], size=10))
    for i, (label, (p, t)) in enumerate(extra.items()):
        fig.add_scatter(x=[p], y=[t], mode="markers+text", text=[label], textposition="bottom center",
                        name=label, marker=dict(color=PALETTE[(i + 1) % len(PALETTE)], size=10,
                                                symbol="diamond"))
    fig.update_layout(title=title, template="plotly_white", height=420, xaxis_type="log",
                      yaxis_type="log", xaxis_title="parameters N", yaxis_title="training tokens D_tok",
                      legend=legend_row(-0.22))
    return fig


# ----------------------------------------------------------------------------------------------
# the scaling law
# ----------------------------------------------------------------------------------------------
def _baseline_lines(fig: go.Figure, baselines: Mapping[str, float] | None, **subplot) -> None:
    """Draw each ``{label: loss}`` of ``baselines`` as a dotted horizontal line, labelled at its
    right end (``subplot``: ``row=, col=`` of a panel)."""
    if baselines is None:
        return
    checks.instance("baselines", baselines, Mapping, what="a dict of {label: loss}")
    for label, value in baselines.items():
        checks.number(f"baselines[{label!r}]", value, hint="a loss in the figure's units")
        fig.add_hline(y=float(value), line=dict(color="#888888", dash="dot", width=1.5),
                      annotation_text=f"{label}: {float(value):.2f}",
                      annotation_position="bottom right", annotation_font_color="#555555",
                      **subplot)


def scaling_law_figure(compute: Sequence[float], loss: Sequence[float], fit, paper_law,
                       paper_compute: Sequence[float], paper_loss: Sequence[float],
                       labels: Sequence[str] | None = None, seed_losses=None,
                       other_fits: Sequence = (), baselines: Mapping[str, float] | None = None,
                       title: str = "Our sweep's power law beside the paper's: the same shape, a slope ours cannot pin down"
                       ) -> go.Figure:
    """Left: the sweep's final losses against compute, and its fitted law ``fit(f)``. Right: the
    reducible loss ``L - c`` of both families against compute, each relative to its smallest run,
    on log-log axes, where ``a f^b`` is a straight line of slope ``b``.

    Args:
        compute, loss: ``(n,)`` the sweep's training FLOPs and final validation losses (with
            several seeds: the mean over seeds).
        fit, paper_law: objects with ``a``, ``b``, ``c`` attributes, callable on FLOPs (e.g.
            :class:`gptlib.scaling.PowerLaw`).
        paper_compute, paper_loss: ``(m,)`` the paper's runs (FLOPs, Pile test loss).
        labels: ``(n,)`` names of the sweep's runs (e.g. their widths), shown on hover.
        seed_losses: optional ``(n, S)`` the loss of every seed, drawn as faint dots (left).
        other_fits: optional refits (e.g. one per seed, or with one run left out): each is
            drawn on the right as a thin line of its own slope from (1, 1), so the fan shows how
            far the exponent moves.
        baselines: optional ``{label: loss}`` drawn as dotted horizontal lines on the left
            (e.g. the losses of count-based models, :mod:`gptlib.baselines`).
    """
    compute = inputs.series("compute", compute, positive=True)
    paper_compute = inputs.series("paper_compute", paper_compute, positive=True)
    loss, paper_loss = np.asarray(loss, dtype=float), np.asarray(paper_loss, dtype=float)
    if loss.shape != compute.shape or paper_loss.shape != paper_compute.shape:
        raise ValueError("compute and loss (and paper_compute and paper_loss) must have equal lengths")
    other_fits = list(other_fits)
    for name, law in [("fit", fit), ("paper_law", paper_law)] + [
            (f"other_fits[{i}]", f) for i, f in enumerate(other_fits)]:
        if not all(hasattr(law, k) for k in ("a", "b", "c")) or not callable(law):
            raise TypeError(f"{name} must be a callable power law with a, b and c (gptlib.scaling.PowerLaw)")
    if seed_losses is not None:
        seed_losses = np.asarray(seed_losses, dtype=float)
        if seed_losses.ndim != 2 or seed_losses.shape[0] != len(compute):
            raise ValueError(f"seed_losses must be (n runs, seeds) with n = {len(compute)}, got shape "
                             f"{seed_losses.shape}")
    labels = [str(x) for x in labels] if labels is not None else [f"run {i + 1}" for i in range(len(compute))]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "our sweep: loss against compute", "shape: reducible loss, relative to the smallest run"))
    grid = np.geomspace(compute.min() / 1.5, compute.max() * 1.5, 100)
    if seed_losses is not None:
        xs = np.repeat(compute, seed_losses.shape[1])
        fig.add_scatter(x=xs, y=seed_losses.ravel(), mode="markers", name="each seed",
                        marker=dict(color=PALETTE[5], size=6, opacity=0.7), row=1, col=1,
                        hovertemplate="%{x:.3g} FLOPs, loss %{y:.3f}<extra>one seed</extra>")
    mean_name = "our runs (mean over seeds)" if seed_losses is not None else \
        "our runs (Shakespeare, characters)"
    fig.add_scatter(x=compute, y=loss, mode="markers", name=mean_name,
                    text=labels, marker=dict(color=PALETTE[0], size=10), row=1, col=1,
                    hovertemplate="%{text}: %{x:.3g} FLOPs, loss %{y:.3f}<extra></extra>")
    fig.add_scatter(x=grid, y=fit(grid), mode="lines", line=dict(color=PALETTE[0]),
                    name=f"our fit: {fit.a:.3g} f^{fit.b:.3f} + {fit.c:.2f}", legendgroup="ours",
                    row=1, col=1)
    _baseline_lines(fig, baselines, row=1, col=1)
    span_ours = np.geomspace(1.0, compute.max() / compute.min() * 1.2, 60)
    for i, other in enumerate(other_fits):
        fig.add_scatter(x=span_ours, y=span_ours ** other.b, mode="lines",
                        line=dict(color=PALETTE[5], width=1), legendgroup="refits",
                        name="our refits (one seed, or one run left out)", showlegend=i == 0,
                        row=1, col=2, hovertemplate=f"refit: slope b = {other.b:.3f}<extra></extra>")
    # the shape: (L - c) / (L(f_min) - c) against f / f_min, for both families
    for (xs, ys, law, colour, who) in ((compute, loss, fit, PALETTE[0], "ours"),
                                       (paper_compute, paper_loss, paper_law, PALETTE[3], "paper")):
        f_min = xs.min()
        reference = law(f_min) - law.c
        span = np.geomspace(1.0, xs.max() / f_min * 1.2, 60)
        # our law is in the legend already (left panel); the paper's is named here
        fig.add_scatter(x=span, y=(law(f_min * span) - law.c) / reference, mode="lines",
                        line=dict(color=colour, dash="solid" if who == "ours" else "dash"),
                        name=f"{who}: slope b = {law.b:.4f}", showlegend=who == "paper",
                        legendgroup=who, row=1, col=2)
        fig.add_scatter(x=xs / f_min, y=(ys - law.c) / reference, mode="markers",
                        marker=dict(color=colour, size=9, symbol="circle" if who == "ours" else "diamond"),
                        name="Cerebras-GPT runs (the Pile)" if who == "paper" else "our runs, rescaled",
                        showlegend=who == "paper", row=1, col=2)
    fig.update_xaxes(type="log", title_text="training compute f (FLOPs)", row=1, col=1)
    fig.update_yaxes(title_text="validation loss (nats/character)", row=1, col=1)
    fig.update_xaxes(type="log", title_text="f / f of the smallest run", row=1, col=2)
    fig.update_yaxes(type="log", title_text="(L - c) / (L - c) of the smallest run", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", height=480,
                      legend=legend_row(-0.25))
    return fig


def isoflop_figure(tokens_per_parameter: Sequence[float], losses, budget: float,
                   labels: Sequence[str] | None = None, reference_ratio: float = 20.0,
                   baselines: Mapping[str, float] | None = None,
                   title: str = "One compute budget, several model sizes: where is the loss lowest?"
                   ) -> go.Figure:
    """An IsoFLOP profile: the final loss of models of several sizes, all trained with the same
    compute ``budget``, against their tokens per parameter (log axis). Every seed is a faint dot,
    the mean over seeds a line; the lowest mean is starred and ``reference_ratio`` (Chinchilla's
    20) is marked.

    Args:
        tokens_per_parameter: ``(n,)`` D_tok / N of each size (the small models have the most).
        losses: ``(n, S)`` the final loss of each size for each of S seeds.
        budget: the FLOPs every run spent (shown in the legend).
        labels: ``(n,)`` names of the sizes (e.g. ``"d_model 8"``), written beside each mean.
        baselines: optional ``{label: loss}`` drawn as dotted horizontal lines (e.g. the losses
            of count-based models, :mod:`gptlib.baselines`).
    """
    ratio = inputs.series("tokens_per_parameter", tokens_per_parameter, positive=True)
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 2 or losses.shape[0] != len(ratio) or losses.shape[1] == 0:
        raise ValueError(f"losses must be (n sizes, seeds) with n = {len(ratio)}, got shape "
                         f"{losses.shape}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses must be finite (a diverged run has no place on the profile)")
    checks.number("budget", budget, low=0, low_open=True, hint="FLOPs")
    checks.number("reference_ratio", reference_ratio, low=0, low_open=True)
    labels = [str(x) for x in labels] if labels is not None else [f"size {i + 1}" for i in range(len(ratio))]
    order = np.argsort(ratio)
    ratio, losses, labels = ratio[order], losses[order], [labels[i] for i in order]
    mean = losses.mean(axis=1)
    fig = go.Figure()
    fig.add_scatter(x=np.repeat(ratio, losses.shape[1]), y=losses.ravel(), mode="markers",
                    name="each seed", marker=dict(color=PALETTE[5], size=7, opacity=0.7),
                    text=[lab for lab in labels for _ in range(losses.shape[1])],
                    hovertemplate="%{text}: %{x:.3g} characters/parameter, loss %{y:.3f}"
                                  "<extra>one seed</extra>")
    fig.add_scatter(x=ratio, y=mean, mode="lines+markers+text", name=f"mean over {losses.shape[1]} seeds",
                    text=labels, textposition="top center", line=dict(color=PALETTE[0]),
                    marker=dict(size=9),
                    hovertemplate="%{text}: %{x:.3g} characters/parameter, mean loss %{y:.3f}"
                                  "<extra></extra>")
    best = int(np.argmin(mean))
    fig.add_scatter(x=[ratio[best]], y=[mean[best]], mode="markers", name="lowest mean",
                    marker=dict(symbol="star", size=18, color=PALETTE[0],
                                line=dict(color="black", width=1)), hoverinfo="skip")
    fig.add_vline(x=reference_ratio, line=dict(color="#777777", dash="dash"))
    fig.add_annotation(x=math.log10(reference_ratio), y=1.0, yref="paper", showarrow=False,
                       text=f"{reference_ratio:g} per parameter (Chinchilla's ratio)", xanchor="left",
                       yanchor="top")
    _baseline_lines(fig, baselines)
    fig.update_layout(title=title, template="plotly_white", height=440, xaxis_type="log",
                      xaxis_title=f"characters per parameter D_tok / N (budget {budget:.3g} FLOPs; "
                                  f"larger models to the left)",
                      yaxis_title="validation loss (nats/character)",
                      legend=legend_row(-0.22))
    return fig


# ----------------------------------------------------------------------------------------------
# muP
# ----------------------------------------------------------------------------------------------
def coordinate_check_figure(standard: Sequence[Mapping], mup: Sequence[Mapping],
                            title: str = "Coordinate check: activations grow with width (standard), "
                                         "stay flat (muP)",
                            value: str = "size", y_title: str = "mean |activation|") -> go.Figure:
    """One number per layer (``value`` of each record) against width, standard parametrization
    (left) and muP (right), both on the same log-log axes, with a slider over the training step
    (0 = initialisation where the records have it).

    Args:
        standard, mup: records ``{"width", "step", "layer", value}``, e.g. as returned by
            :func:`gptlib.mup_experiments.coordinate_check` (``value="size"``, the mean |activation|), or
            records of how far each layer's output moved from its initial value.
        value: the key of the number to plot; every one must be positive (the axes are log).
        y_title: the y axis' title, saying what ``value`` measures.
    """
    panels = [list(standard), list(mup)]
    for name, records in zip(("standard", "mup"), panels):
        if not records:
            raise ValueError(f"{name} has no records; pass the output of gptlib.mup_experiments.coordinate_check")
        for r in records:
            missing = {"width", "step", "layer", value} - set(r)
            if missing:
                raise ValueError(f"{name} records lack {sorted(missing)}")
            if not (isinstance(r[value], (int, float)) and math.isfinite(r[value]) and r[value] > 0):
                raise ValueError(f"{name}: every {value!r} must be a positive finite number for the "
                                 f"log axis, got {r[value]!r} (width {r['width']}, step {r['step']}, "
                                 f"{r['layer']}); leave out steps where it is 0")
    steps = sorted({r["step"] for r in panels[0]} & {r["step"] for r in panels[1]})
    if not steps:
        raise ValueError("the two sets of records share no training step")
    layers = list(dict.fromkeys(r["layer"] for r in panels[0]))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=False, horizontal_spacing=0.08,
                        subplot_titles=("standard parametrization", "muP"))
    per_step = []  # how many traces each step added (they were added step by step)
    for step in steps:
        before = len(fig.data)
        for col, records in enumerate(panels, start=1):
            for i, layer in enumerate(layers):
                points = sorted((r["width"], r[value]) for r in records
                                if r["step"] == step and r["layer"] == layer)
                if not points:
                    continue
                xs, ys = zip(*points)
                fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=layer, legendgroup=layer,
                                showlegend=col == 1, visible=step == steps[-1],
                                line=dict(color=PALETTE[i % len(PALETTE)]), row=1, col=col,
                                hovertemplate=layer + ": width %{x}, %{y:.3g}<extra></extra>")
        per_step.append(len(fig.data) - before)
    n_traces = len(fig.data)
    offsets = np.concatenate([[0], np.cumsum(per_step)]).astype(int)
    slider_steps = []
    for s, step in enumerate(steps):
        visible = [False] * n_traces
        for j in range(offsets[s], offsets[s + 1]):
            visible[j] = True
        label = "0 (init)" if step == 0 else str(step)
        slider_steps.append(dict(method="update", label=label, args=[{"visible": visible}]))
    fig.update_layout(sliders=[dict(active=len(steps) - 1, steps=slider_steps, x=0.05, len=0.9, y=-0.18,
                                    currentvalue=dict(prefix="Adam updates: "))])
    widths = sorted({r["width"] for records in panels for r in records})
    fig.update_xaxes(type="log", title_text="width d_model", tickvals=widths,
                     ticktext=[str(w) for w in widths])
    # One fixed log range for both panels and every step, so the panels compare by eye and the
    # slider does not rescale them; each panel shows its own tick labels.
    every = [r[value] for records in panels for r in records]
    low, high = math.log10(min(every)), math.log10(max(every))
    pad = 0.05 * max(high - low, 1.0)
    fig.update_yaxes(type="log", range=[low - pad, high + pad], showticklabels=True)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_layout(title=title, template="plotly_white", height=460, legend=dict(y=0.5))
    return fig


def lr_transfer_figure(standard: Sequence[Mapping], mup: Sequence[Mapping],
                       title: str = "Best learning rate per width: it drifts (standard), "
                                    "stays put (muP)") -> go.Figure:
    """Final validation loss against peak learning rate, one line per width, standard
    parametrization (left) and muP (right). With several seeds per (width, rate) the line is
    their mean and each seed is a faint dot. Each width's best rate (lowest mean, as
    :func:`gptlib.mup_experiments.best_learning_rates` picks it) is starred; a rate at which any seed
    diverged (NaN) is left out of the line.

    Args:
        standard, mup: records ``{"width", "lr", "val_loss"}`` (and ``"seed"``) from
            :func:`gptlib.mup_experiments.lr_transfer`.
    """
    from ..mup_experiments import mean_losses

    panels = [list(standard), list(mup)]
    for name, records in zip(("standard", "mup"), panels):
        if not records:
            raise ValueError(f"{name} has no records; pass the output of gptlib.mup_experiments.lr_transfer")
        missing = {"width", "lr", "val_loss"} - set(records[0])
        if missing:
            raise ValueError(f"{name} records lack {sorted(missing)}")
    widths = sorted({r["width"] for records in panels for r in records})
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("standard parametrization", "muP"))
    for col, records in enumerate(panels, start=1):
        means = mean_losses(records)  # {(width, lr): mean loss over seeds, NaN if any diverged}
        several = any(sum(1 for r in records if (r["width"], r["lr"]) == key) > 1 for key in means)
        for i, width in enumerate(widths):
            points = sorted((lr, loss) for (w, lr), loss in means.items() if w == width)
            if not points:
                continue
            colour = PALETTE[i % len(PALETTE)]
            if several:
                seeds = [(r["lr"], r["val_loss"]) for r in records
                         if r["width"] == width and math.isfinite(r["val_loss"])]
                fig.add_scatter(x=[lr for lr, _ in seeds], y=[v for _, v in seeds], mode="markers",
                                legendgroup=str(width), showlegend=False, row=1, col=col,
                                marker=dict(color=colour, size=6, opacity=0.45),
                                hovertemplate=f"width {width}, one seed: lr %{{x:.3g}}, "
                                              f"loss %{{y:.3f}}<extra></extra>")
            xs = [lr for lr, _ in points]
            ys = [loss if math.isfinite(loss) else None for _, loss in points]
            fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=f"width {width}", legendgroup=str(width),
                            showlegend=col == 1, line=dict(color=colour), row=1, col=col,
                            hovertemplate=f"width {width}: lr %{{x:.3g}}, loss %{{y:.3f}}<extra></extra>")
            finite = [(lr, loss) for lr, loss in points if math.isfinite(loss)]
            if finite:
                best_lr, best_loss = min(finite, key=lambda p: p[1])
                fig.add_scatter(x=[best_lr], y=[best_loss], mode="markers", legendgroup=str(width),
                                showlegend=False, marker=dict(symbol="star", size=16, color=colour,
                                                              line=dict(color="black", width=1)),
                                row=1, col=col, hoverinfo="skip")
    rates = sorted({r["lr"] for records in panels for r in records})
    fig.update_xaxes(type="log", title_text="peak learning rate (muP: η_base)", tickvals=rates,
                     ticktext=[f"{lr:g}" for lr in rates])
    fig.update_yaxes(title_text="validation loss (nats/character)", row=1, col=1)
    fig.update_layout(title=title, template="plotly_white", height=440,
                      legend=legend_row(-0.25))
    return fig
