"""Checks for the exercises of chapter 8 (scaling laws and muP).

Every reference is computed here, from the check's own inputs, independently of the reader and of
the library's formulas: parameter counts from models built on PyTorch's ``meta`` device, the
minimum of Hoffmann et al.'s fitted loss by a golden-section search, the paper's law inverted by
bisection, IsoFLOP parabolas by ``numpy.linalg.lstsq``, and muP's learning rates from the rule
applied to each parameter's shape (cross-checked against :func:`gptlib.optim.parameter_groups`,
which the answer itself may not call: the check disables it while the answer runs).

The hints name what a wrong answer got wrong (found by recognising the common mistakes, or by
how the error changes between inputs) without printing the expected value's formula.
"""
from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import torch

from ._core import call_answer, confirm, fail, number, refusing_packages, require_callable
from .ch03 import forbid

# The scaling law fitted in Dey et al. (2023): L(f) = (f / F0) ** EXPONENT + OFFSET, f in FLOPs.
_PAPER_F0, _PAPER_EXPONENT, _PAPER_OFFSET = 5.984e22, -0.0737, 0.5066
# Hoffmann et al. (2022), approach 3: L(N, D) = E + A / N**ALPHA + B / D**BETA (as published).
_E, _A, _B, _ALPHA, _BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def _meta_gpt(**config):
    """A gptlib GPT built on the meta device: shapes only, no memory, no initialisation."""
    from ..config import GPTConfig
    from ..model import GPT
    with torch.device("meta"):
        return GPT(GPTConfig(**config))


def _non_embedding_params_meta(n_layer: int, d_model: int) -> int:
    """Count the parameters of a real GPT built on the meta device, minus both embedding tables
    (the tied head is the token table)."""
    model = _meta_gpt(vocab_size=50257, context_length=2048, n_layer=n_layer, n_head=1,
                      d_model=d_model)
    total = sum(p.numel() for p in model.parameters())
    return total - model.transformer.wte.weight.numel() - model.transformer.wpe.weight.numel()


def _golden_min(function, lo: float, hi: float, iterations: int = 200) -> float:
    """The minimiser of a unimodal ``function`` on [lo, hi] by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = function(x1), function(x2)
    for _ in range(iterations):
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = function(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = function(x2)
    return (lo + hi) / 2


# ----------------------------------------------------------------------------------------------
# Exercise 8.1: the 6ND estimate from the shapes
# ----------------------------------------------------------------------------------------------
def check_training_flops(training_flops) -> None:
    """``training_flops(n_layer, d_model, tokens)``: 6 N D, with N the non-embedding parameters of
    a Cerebras-GPT-shaped model (d_ffn = 4 d_model, biases, two LayerNorms per block and a final
    one) counted exactly. Compared with the parameters of models built on the meta device, at
    several depths and widths, so a missing term shows by how the error grows with L and C."""
    ex = "8.1"
    require_callable(ex, "training_flops", training_flops)
    forbid(ex, "training_flops", training_flops, libraries=("gptlib", "torch"),
           names=("param_count", "flops_per_token", "numel", "parameters"),
           rule="work N out from the shapes, by arithmetic (no GPTConfig, no model built).")
    training_flops = refusing_packages(ex, "training_flops", training_flops, ("gptlib", "torch"),
                                       "work N out from the shapes, by arithmetic (no GPTConfig, "
                                       "no model built).")
    cases = ((1, 8, 1.0), (3, 8, 7.0), (2, 64, 1e6), (3, 96, 12345.0), (10, 768, 2.22e9),
             (40, 5120, 2.57e11))
    errors = {}  # (L, C) -> your N minus the true N
    for n_layer, d_model, tokens in cases:
        answer = call_answer(ex, "training_flops", training_flops, n_layer, d_model, tokens)
        got = number(ex, "training_flops(...)", answer)
        n = _non_embedding_params_meta(n_layer, d_model)
        if math.isclose(got, 6.0 * n * tokens, rel_tol=1e-9):
            continue
        if math.isclose(got, 2.0 * n * tokens, rel_tol=1e-6):
            fail(ex, "that is 2 N D, the forward pass only. The backward pass costs about twice "
                     "the forward (gradients for activations AND for weights).")
        if math.isclose(got, n * tokens, rel_tol=1e-6) or \
                math.isclose(got, 3.0 * n * tokens, rel_tol=1e-6):
            fail(ex, "your parameter count looks right but the FLOPs per parameter per token are "
                     "not: count 2 FLOPs per multiply-add, forward and backward.")
        extra = got / (6.0 * tokens) - n
        C, V, T = d_model, 50257, 2048
        if any(math.isclose(extra, k * C, rel_tol=1e-6) for k in (V + T, V, T, 2 * V + T)):
            fail(ex, "you counted embedding tables (or an output head); the question asks for the "
                     "non-embedding N, and the head is tied to the token table.")
        if math.isclose(got, 6.0 * 12 * n_layer * d_model ** 2 * tokens, rel_tol=1e-9):
            fail(ex, f"for L={n_layer}, C={d_model} you counted the weight matrices only; the "
                     f"biases and the LayerNorms' gains and shifts are parameters too.")
        errors[(n_layer, d_model)] = extra
    if errors:
        (l1, c1), e1 = next(iter(errors.items()))
        hints = []
        if (1, 8) in errors and (3, 8) in errors:  # same width, three times the depth
            e_1, e_3 = errors[(1, 8)], errors[(3, 8)]
            if math.isclose(e_3, 3 * e_1, rel_tol=1e-6):
                hints.append("it grows in proportion to the number of layers: the mistake is "
                             "inside every block")
            elif math.isclose(e_3, e_1, rel_tol=1e-6):
                hints.append("it is the same at every depth: the mistake is outside the blocks")
        per_block = abs(e1) / l1
        if per_block < 20 * c1:
            hints.append("it is a few times C, small next to C^2: a vector (a bias, or a "
                         "LayerNorm's gain or shift) is missing or counted twice")
        elif per_block >= c1 * c1:
            hints.append("it is of order C^2: a weight matrix has the wrong shape (the "
                         "feed-forward is 4C wide) or is missing")
        fail(ex, f"for L={l1}, C={c1} your N is off by {e1:+,.0f} parameters (you count "
                 f"{e1 + _non_embedding_params_meta(l1, c1):,.0f})"
                 + (": " + "; ".join(hints) if hints else "") + ".")
    confirm(ex, "your 6ND matches the parameters of real models, from 1 layer to "
                "Cerebras-GPT 13B")


# ----------------------------------------------------------------------------------------------
# Exercise 8.2: the compute-optimal size by Hoffmann et al.'s fitted loss
# ----------------------------------------------------------------------------------------------
def _chinchilla_loss(n: float, d: float) -> float:
    return _E + _A / n ** _ALPHA + _B / d ** _BETA


def _chinchilla_reference(flops: float) -> float:
    """N minimising L(N, flops / (6 N)), by golden-section search on ln N (no closed form used)."""
    def on_budget(log_n: float) -> float:
        n = math.exp(log_n)
        return _chinchilla_loss(n, flops / (6.0 * n))
    return math.exp(_golden_min(on_budget, math.log(1.0), math.log(flops), iterations=300))


def check_chinchilla_optimum(chinchilla_optimum) -> None:
    """``chinchilla_optimum(flops) -> (params, tokens)``: the N and D that minimise
    ``1.69 + 406.4 / N**0.34 + 410.7 / D**0.28`` with ``6 N D = flops``. The reference minimises
    the loss along the budget numerically; budgets span 1e18 to 1e25 FLOPs."""
    ex = "8.2"
    require_callable(ex, "chinchilla_optimum", chinchilla_optimum)
    budgets = (1e18, 2.6e18, 2.3e22, 5.76e23, 1e25)
    found = []
    for flops in budgets:
        result = call_answer(ex, "chinchilla_optimum", chinchilla_optimum, flops)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(ex, "return two numbers: (params, tokens).")
        params, tokens = (number(ex, name, v) for name, v in zip(("params", "tokens"), result))
        if params <= 0 or tokens <= 0:
            fail(ex, f"for {flops:.3g} FLOPs you give params = {params:.4g}, tokens = {tokens:.4g}: "
                     f"both must be positive.")
        n_ref = _chinchilla_reference(flops)
        d_ref = flops / (6.0 * n_ref)
        if math.isclose(params, d_ref, rel_tol=1e-3) and math.isclose(tokens, n_ref, rel_tol=1e-3):
            fail(ex, "you returned (tokens, params): the order is (params, tokens).")
        if math.isclose(params, math.sqrt(flops / 120.0), rel_tol=1e-6):
            fail(ex, "that is the rounded rule of 20 tokens per parameter. The exercise asks for "
                     "the minimum of the fitted L(N, D) itself: put D = flops / (6 N) into it and "
                     "minimise over N.")
        if not math.isclose(6.0 * params * tokens, flops, rel_tol=1e-6):
            fail(ex, f"for {flops:.3g} FLOPs your params and tokens spend 6 N D = "
                     f"{6.0 * params * tokens:.4g} FLOPs: the pair must use exactly the budget.")
        found.append((flops, params, n_ref))
    ratios = [params / n_ref for _, params, n_ref in found]
    if all(math.isclose(r, 1.0, rel_tol=1e-4) for r in ratios):
        confirm(ex, "your model sizes minimise Hoffmann et al.'s fitted loss at every budget, "
                    "from 1e18 to 1e25 FLOPs")
        return
    growth = math.log(found[-1][1] / found[0][1]) / math.log(budgets[-1] / budgets[0])
    true_growth = math.log(found[-1][2] / found[0][2]) / math.log(budgets[-1] / budgets[0])
    if all(math.isclose(r, ratios[0], rel_tol=1e-4) for r in ratios):
        fail(ex, f"your N is {ratios[0]:.4g} times the optimum at every budget: its growth with "
                 f"the budget is right, a constant factor is not (check how D follows from the "
                 f"budget and N, and the constants of the derivative).")
    if abs(growth - true_growth) > 0.01:
        direction = "faster" if growth > true_growth else "more slowly"
        fail(ex, f"your N grows {direction} with the budget than the optimum does (you give "
                 f"N ~ f^{growth:.3f} between 1e18 and 1e25 FLOPs): check which exponent goes "
                 f"where when you set the derivative along the budget to zero.")
    worst = max(found, key=lambda x: abs(x[1] / x[2] - 1))
    fail(ex, f"at {worst[0]:.3g} FLOPs your N = {worst[1]:.6g} is within "
             f"{abs(worst[1] / worst[2] - 1):.2%} of the minimum but not at it: a numerical "
             f"search must be refined until N is right to better than 0.01%.")


# ----------------------------------------------------------------------------------------------
# Exercise 8.3: how much compute for a target loss, by the paper's law
# ----------------------------------------------------------------------------------------------
def check_compute_for_loss(compute_for_loss) -> None:
    """``compute_for_loss(loss)``: the FLOPs f with ``(f / 5.984e22) ** -0.0737 + 0.5066 ==
    loss``, and ``ValueError`` for a loss at or below 0.5066, which the law never reaches. The
    reference inverts the law by bisection on log f."""
    ex = "8.3"
    require_callable(ex, "compute_for_loss", compute_for_loss)

    def law(f: float) -> float:
        return (f / _PAPER_F0) ** _PAPER_EXPONENT + _PAPER_OFFSET

    answers = {}
    for loss in (2.608, 2.0, 1.572, 1.4, 0.9):
        answer = call_answer(ex, "compute_for_loss", compute_for_loss, loss)
        if isinstance(answer, complex):
            fail(ex, f"compute_for_loss({loss}) is a complex number: a power of a negative "
                     f"number. Subtract the irreducible loss, do not add it.")
        answers[loss] = number(ex, f"compute_for_loss({loss})", answer)
    if len(set(answers.values())) == 1:
        fail(ex, "your function gives the same compute for every loss: it must compute from "
                 "`loss`, not return a number read off an earlier output.")
    for loss, got in answers.items():
        lo, hi = 1e5, 1e40  # the law decreases in f: bisect on log f
        for _ in range(300):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if law(mid) > loss else (lo, mid)
        expected = math.sqrt(lo * hi)
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        if math.isclose(got, _PAPER_F0 * loss ** (1 / _PAPER_EXPONENT), rel_tol=1e-6):
            fail(ex, "you forgot the irreducible loss 0.5066: only the part above it follows the "
                     "power law.")
        mixed = (_PAPER_F0 * 10 ** (math.log(loss - _PAPER_OFFSET) / _PAPER_EXPONENT),
                 _PAPER_F0 * math.exp(math.log10(loss - _PAPER_OFFSET) / _PAPER_EXPONENT))
        if any(math.isclose(got, m, rel_tol=1e-6) for m in mixed):
            fail(ex, "you mixed logarithm bases: undo a logarithm with the power of the same base "
                     "(math.log with math.exp, math.log10 with 10 **).")
        if got > 0 and math.isclose(got * _PAPER_F0 ** 2, expected, rel_tol=1e-6):
            fail(ex, "you divided by 5.984e22 where undoing f / 5.984e22 needs a multiplication.")
        if got > 0 and math.isclose(got, _PAPER_F0 * (loss - _PAPER_OFFSET) ** _PAPER_EXPONENT,
                                    rel_tol=1e-6):
            fail(ex, "you raised (loss - 0.5066) to the law's own exponent; undoing a power "
                     "needs another one.")
        if math.isclose(got, expected, rel_tol=5e-3):
            fail(ex, f"for loss {loss} you give {got:.6g} FLOPs, {abs(got / expected - 1):.2%} "
                     f"from the law's inverse, {expected:.6g}: the steps are right, the constants "
                     f"rounded (a = 47.72 as the text prints it?). Work from 5.984e22 and -0.0737 "
                     f"as the law writes them.")
        reached = f"{law(got):.4f}" if got > 0 else "undefined"
        fail(ex, f"for loss {loss} you give {got:.6g} FLOPs, and the law at your f is {reached}, "
                 f"not {loss}: undo the law's steps one by one, in reverse order.")
    for loss in (_PAPER_OFFSET, 0.4):
        try:
            answer = compute_for_loss(loss)
        except ValueError:
            continue
        except Exception as error:
            fail(ex, f"compute_for_loss({loss}) raised {type(error).__name__}; raise ValueError "
                     f"(with a message) for a loss the law never reaches.")
        fail(ex, f"compute_for_loss({loss}) returned {answer!r}: no compute reaches a loss at or "
                 f"below the irreducible 0.5066, so raise ValueError.")
    confirm(ex, "your inverse of the paper's law is right, from the 111M loss down to 0.9, and "
                "refuses losses it never reaches")


# ----------------------------------------------------------------------------------------------
# Exercise 8.4: the optimum of an IsoFLOP profile (Chinchilla's approach 2)
# ----------------------------------------------------------------------------------------------
def _isoflop_cases() -> list[tuple[float, list[float], list[float], str]]:
    """Profiles (budget, params, losses, what): Hoffmann-like losses along a budget (not exact
    parabolas, so the least squares matter), sizes unsorted and unevenly spaced, and one exact
    parabola whose minimum falls between the sizes."""
    cases = []
    for flops, sizes in ((1e10, [4000, 30000, 9000, 60000, 15000]),
                         (6e18, [4e8, 7.5e7, 1.5e8, 2.5e8, 1.1e9, 6e8, 5e7]),
                         (3e21, [5e9, 2e9, 1.2e10])):
        losses = [_chinchilla_loss(n, flops / (6.0 * n)) for n in sizes]
        cases.append((flops, [float(n) for n in sizes], losses, "a Hoffmann-like profile"))
    sizes = [1e6, 4e6, 2e6, 8e6]
    vertex = math.log(2.7e6)
    cases.append((1e13, sizes, [2.0 + 0.05 * (math.log(n) - vertex) ** 2 for n in sizes],
                  "an exact parabola"))
    return cases


def _isoflop_reference(budget: float, params: list[float], losses: list[float]) -> tuple[float, float]:
    x = np.log(np.asarray(params, dtype=float))
    design = np.stack([x ** 2, x, np.ones_like(x)], axis=1)
    (a, b, _), *_ = np.linalg.lstsq(design, np.asarray(losses, dtype=float), rcond=None)
    n = math.exp(-b / (2 * a))
    return n, budget / (6.0 * n) / n


def check_isoflop_optimum(isoflop_optimum) -> None:
    """``isoflop_optimum(budget, params, losses) -> (n_opt, tokens_per_parameter)``: the minimum
    of the least-squares parabola of loss against ln N, and D / N there with D = budget / (6 N);
    ``ValueError`` when the parabola has no minimum. Inputs are unsorted lists; they must not be
    changed."""
    ex = "8.4"
    require_callable(ex, "isoflop_optimum", isoflop_optimum)
    for budget, params, losses, what in _isoflop_cases():
        given_params, given_losses = list(params), list(losses)
        try:
            result = isoflop_optimum(budget, given_params, given_losses)
        except ValueError as error:
            fail(ex, f"for {what} ({len(params)} sizes, whose parabola has a minimum) your "
                     f"function raised ValueError ({error}): is each loss still paired with "
                     f"its own size, and is the parabola fitted in ln N?")
        except Exception:
            result = call_answer(ex, "isoflop_optimum", isoflop_optimum, budget,
                                 list(params), list(losses))
        if given_params != params or given_losses != losses:
            fail(ex, "your function changed the lists it was given (sorted them in place?): "
                     "work on copies, the caller's data must stay as it was.")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(ex, "return two numbers: (n_opt, tokens_per_parameter).")
        n_opt, ratio = (number(ex, name, v) for name, v in
                        zip(("n_opt", "tokens_per_parameter"), result))
        n_ref, ratio_ref = _isoflop_reference(budget, params, losses)
        if math.isclose(n_opt, n_ref, rel_tol=1e-6) and math.isclose(ratio, ratio_ref, rel_tol=1e-6):
            continue
        if any(math.isclose(n_opt, p, rel_tol=1e-9) for p in params):
            fail(ex, f"for {what} your n_opt is one of the sizes given, {n_opt:.6g}: the "
                     f"parabola's minimum lies between the sizes, not on the best one.")
        if math.isclose(n_opt, math.log(n_ref), rel_tol=1e-6) or \
                math.isclose(n_opt, math.log10(n_ref), rel_tol=1e-6):
            fail(ex, "your n_opt is a logarithm: return the number of parameters itself.")
        if math.isclose(n_opt, math.exp(math.log10(n_ref)), rel_tol=1e-6) or \
                math.isclose(n_opt, 10 ** math.log(n_ref), rel_tol=1e-6):
            fail(ex, "you mixed logarithm bases: the minimum found in one base must be undone "
                     "with the power of the same base.")
        if math.isclose(n_opt, n_ref, rel_tol=1e-6):
            if math.isclose(ratio, 6.0 * ratio_ref, rel_tol=1e-6):
                fail(ex, "n_opt is right but your tokens per parameter are 6 times too many: "
                         "how many FLOPs does training cost per parameter and token?")
            if math.isclose(ratio, 1.0 / ratio_ref, rel_tol=1e-6):
                fail(ex, "n_opt is right but you gave parameters per token: the question asks "
                         "for tokens per parameter, D / N.")
            fail(ex, f"n_opt is right; tokens per parameter is {ratio:.6g}, expected "
                     f"{ratio_ref:.6g}: D_tok is what the budget leaves for N parameters.")
        x = np.log(np.asarray(params))
        a, b, _ = np.polyfit(x, np.asarray(losses), 2)
        if math.isclose(n_opt, math.exp(-b / a), rel_tol=1e-6):
            fail(ex, "the vertex of a x^2 + b x + c is not at -b / a: set the derivative to zero.")
        fail(ex, f"for {what} ({len(params)} sizes) your n_opt = {n_opt:.6g}, expected "
                 f"{n_ref:.6g}. Fit the parabola in ln N (not in N), by least squares over all "
                 f"the points, with each loss kept with its own size.")
    concave = [3.0 - 0.05 * (math.log(n) - 15.0) ** 2 for n in (1e6, 3e6, 1e7, 3e7)]
    try:
        answer = isoflop_optimum(1e15, [1e6, 3e6, 1e7, 3e7], concave)
    except ValueError:
        pass
    except Exception as error:
        fail(ex, f"for a profile that curves downwards your function raised "
                 f"{type(error).__name__}; raise ValueError: the parabola has no minimum.")
    else:
        fail(ex, f"for a profile that curves downwards (the fitted parabola's (ln N)^2 coefficient is negative) you "
                 f"returned {answer!r}: that vertex is a maximum; raise ValueError instead.")
    confirm(ex, "your parabola finds the minimum of every IsoFLOP profile, between the sizes "
                "you were given")


# ----------------------------------------------------------------------------------------------
# Exercise 8.5: muP's learning rate for every parameter
# ----------------------------------------------------------------------------------------------
def _mup_reference(model, eta_base: float) -> dict[str, float]:
    """The rule, from the shapes: a weight whose both dimensions grow with the width (the 2-D
    weights inside the blocks) trains at eta_base / m_d; everything else at eta_base."""
    config = model.config
    m_d = config.d_model / config.mup_base_width if config.mup else 1.0
    rates = {}
    for name, p in model.named_parameters():
        in_block = name.startswith("transformer.h.")
        rates[name] = eta_base / m_d if (in_block and p.dim() == 2) else eta_base
    return rates


_LIBRARY_SORTERS = ("parameter_groups", "parameter_kind", "configure_optimizer")


@contextlib.contextmanager
def _without_library_groups(ex: str, answer):
    """While the answer runs, the library's own sorting of parameters refuses to work: in
    :mod:`gptlib.optim` and :mod:`gptlib`, and wherever the answer's own globals (the notebook's
    namespace) hold one of those functions, e.g. after ``from gptlib.optim import
    parameter_groups``. Everything is put back afterwards, also when the answer fails."""
    import gptlib
    from .. import optim
    originals = {name: getattr(optim, name) for name in _LIBRARY_SORTERS}

    def refusing(name):
        def refuse(*args, **kwargs):
            fail(ex, f"your function called {name}, which sorts the parameters for you: the "
                     f"exercise is to decide from each parameter's name and shape yourself.")
        return refuse

    replaced = []  # (namespace dict or module, attribute, original)
    for name, original in originals.items():
        for module in (optim, gptlib):
            if getattr(module, name, None) is original:
                replaced.append((module, name, original))
                setattr(module, name, refusing(name))
    answer_globals = getattr(answer, "__globals__", None)
    if isinstance(answer_globals, dict):
        for key, value in list(answer_globals.items()):
            for name, original in originals.items():
                if value is original:
                    replaced.append((answer_globals, key, value))
                    answer_globals[key] = refusing(name)
    try:
        yield
    finally:
        for where, key, value in reversed(replaced):
            if isinstance(where, dict):
                where[key] = value
            else:
                setattr(where, key, value)


def check_mup_learning_rates(mup_learning_rates) -> None:
    """``mup_learning_rates(model, eta_base) -> {name: rate}`` for every parameter of a gptlib GPT
    (tied head): hidden matrices ``eta_base / m_d`` with ``m_d = d_model / mup_base_width`` under
    muP, everything else ``eta_base``; a standard-parametrization model trains everything at
    ``eta_base``. Tried on models of several widths, base widths and depths; the model must not
    be changed."""
    ex = "8.5"
    require_callable(ex, "mup_learning_rates", mup_learning_rates)
    from ..config import GPTConfig
    from ..model import GPT
    from ..optim import parameter_groups
    # (d_model, base width, layers, muP, eta_base, vocabulary, context): the last muP case has
    # embedding tables whose rows (300 and 128) are at least the width, as a real model's are, so
    # a rule by shape ("2-D and no side below d_model") is told apart from a rule by role
    cases = ((64, 32, 2, True, 6e-3, 30, 16), (128, 256, 1, True, 2e-3, 30, 16),
             (96, 24, 3, True, 0.05, 30, 16), (48, 48, 1, True, 0.01, 30, 16),
             (64, 32, 2, False, 3e-3, 30, 16), (64, 32, 1, True, 6e-3, 300, 128),
             (64, 32, 1, True, 6e-3, 300, 64))  # a context as long as the width (as in 1.3B)
    for d_model, base, n_layer, mup, eta, vocab, context in cases:
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=vocab, context_length=context, n_layer=n_layer,
                              n_head=d_model // 16, d_model=d_model, mup=mup, mup_base_width=base))
        before = copy.deepcopy(model.state_dict())
        expected = _mup_reference(model, eta)
        for group in parameter_groups(model):  # the library agrees with the rule
            for name in group["names"]:
                assert math.isclose(expected[name], eta * group["lr_scale"]), name
        what = (f"d_model {d_model}, base width {base}, {n_layer} layer(s)" if mup
                else f"a standard-parametrization model (mup=False, d_model {d_model})")
        with _without_library_groups(ex, mup_learning_rates):
            got = call_answer(ex, "mup_learning_rates", mup_learning_rates, model, eta)
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        if changed:
            fail(ex, f"your function changed the model's parameters ({changed[0]} ...): it "
                     f"should only read them.")
        if not isinstance(got, dict):
            fail(ex, f"return a dict {{parameter name: learning rate}}, got {type(got).__name__}.")
        names = list(expected)
        missing, extra = [n for n in names if n not in got], [n for n in got if n not in expected]
        if missing or extra:
            fail(ex, f"the dict should have one entry per name of model.named_parameters() "
                     f"({len(names)} here); missing {missing[:2]}, unexpected {extra[:2]}.")
        rates = {name: number(ex, f"rate of {name}", got[name]) for name in names}
        wrong = [n for n in names if not math.isclose(rates[n], expected[n], rel_tol=1e-6)]
        if not wrong:
            continue
        m_d = d_model / base
        slowed = [n for n in wrong if rates[n] < expected[n]]
        hidden = [n for n in names if expected[n] != eta]
        if not mup:
            fail(ex, f"for {what}: no parameter is rescaled without muP; every rate is eta_base.")
        if any(n.startswith(("transformer.wte.", "transformer.wpe.")) for n in slowed):
            fail(ex, f"for {what}: you slowed down the embedding tables. One of their dimensions "
                     f"is the vocabulary or the context, which does not grow with the width: they "
                     f"are not hidden matrices.")
        if slowed and all(rates[n] < expected[n] for n in wrong) and \
                any(model.get_parameter(n).dim() == 1 for n in slowed):
            fail(ex, f"for {what}: you slowed down biases or LayerNorm parameters; only the "
                     f"hidden matrices get eta_base / m_d.")
        sample = hidden[0] if hidden else wrong[0]
        if hidden and all(math.isclose(rates[n], eta * m_d, rel_tol=1e-6) for n in hidden):
            fail(ex, f"for {what}: your hidden matrices train m_d times faster; a wider model "
                     f"must take smaller steps on them, not larger.")
        if hidden and all(math.isclose(rates[n], eta / math.sqrt(m_d), rel_tol=1e-6) for n in hidden):
            fail(ex, f"for {what}: you divided by sqrt(m_d). The update argument of this section "
                     f"grows in proportion to the width, not its square root.")
        if hidden and all(math.isclose(rates[n], eta * 256 / d_model, rel_tol=1e-6) for n in hidden):
            fail(ex, f"for {what}: you used d_base = 256; m_d uses this model's own base width, "
                     f"model.config.mup_base_width.")
        if any(expected[n] != eta and math.isclose(rates[n], eta, rel_tol=1e-6) for n in wrong):
            left = next(n for n in wrong
                        if expected[n] != eta and math.isclose(rates[n], eta, rel_tol=1e-6))
            fail(ex, f"for {what}: {left} keeps eta_base, but it is a hidden matrix too (both "
                     f"of its dimensions grow with the width).")
        fail(ex, f"for {what}: the rate of {wrong[0]} is {rates[wrong[0]]:.6g}; check it against "
                 f"the rule for its kind of parameter (hidden matrix or not), e.g. {sample}.")
    confirm(ex, "your learning rates follow muP for every parameter, at several widths, base "
                "widths and depths, and for a standard model")
