"""Exercise checks of chapter 8 (scaling and muP): each accepts right answers written in different
ways, and rejects the unanswered stub and the wrong answers readers really write, each with the
hint meant for it."""
import copy
import math

import numpy as np
import pytest
import torch

from gptlib import GPTConfig
from gptlib.exercises import ExerciseError, ch08
from gptlib.optim import parameter_groups

E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


# ---------------------------------------------------------------------------- 8.1
def training_flops(n_layer, d_model, tokens):
    return 6 * (n_layer * (12 * d_model ** 2 + 13 * d_model) + 2 * d_model) * tokens


def training_flops_by_layer(n_layer, d_model, tokens):
    """Written out layer by layer, as a reader counting shapes would."""
    C = d_model
    layer_norm = 2 * C
    attention = (C * 3 * C + 3 * C) + (C * C + C)
    ffn = (C * 4 * C + 4 * C) + (4 * C * C + C)
    n = n_layer * (2 * layer_norm + attention + ffn) + layer_norm
    return 2 * n * tokens + 4 * n * tokens


TRAINING_FLOPS_WRONG = {
    "forward only": (lambda L, C, D: training_flops(L, C, D) / 3, "forward pass only"),
    "2ND backward": (lambda L, C, D: training_flops(L, C, D) / 2, "FLOPs per parameter"),
    "matrices only": (lambda L, C, D: 6 * 12 * L * C * C * D, "weight matrices only"),
    "no final LayerNorm": (lambda L, C, D: 6 * L * (12 * C * C + 13 * C) * D,
                           "same at every depth: the mistake is outside the blocks"),
    "no biases": (lambda L, C, D: 6 * (L * (12 * C * C + 4 * C) + 2 * C) * D,
                  "inside every block.*a vector"),
    "one LayerNorm per block": (lambda L, C, D: 6 * (L * (12 * C * C + 11 * C) + 2 * C) * D,
                                "inside every block.*a vector"),
    "LayerNorm without shift": (lambda L, C, D: 6 * (L * (12 * C * C + 11 * C) + C) * D,
                                "a vector"),
    "FFN twice as wide": (lambda L, C, D: 6 * (L * (20 * C * C + 17 * C) + 2 * C) * D,
                          "order C\\^2"),
    "embeddings counted": (lambda L, C, D: training_flops(L, C, D) + 6 * (50257 + 2048) * C * D,
                           "embedding tables"),
    "untied head counted": (lambda L, C, D: training_flops(L, C, D) + 6 * 50257 * C * D,
                            "embedding tables"),
    "value copied from the 111M row": (lambda L, C, D: 9.4e17, "off by"),
    "GPTConfig's own count": (lambda L, C, D: GPTConfig(vocab_size=2, context_length=2, n_layer=L,
                                                        n_head=1, d_model=C).training_flops(D, "6ND"),
                              "no GPTConfig"),
}


# ---------------------------------------------------------------------------- 8.2
def chinchilla_optimum(flops):
    n = (ALPHA * A / (BETA * B) * (flops / 6) ** BETA) ** (1 / (ALPHA + BETA))
    return n, flops / (6 * n)


def chinchilla_optimum_numeric(flops):
    """A numerical minimisation (ternary search on log N), without the derivative."""
    def loss(log_n):
        n = math.exp(log_n)
        return E + A / n ** ALPHA + B / (flops / (6 * n)) ** BETA
    lo, hi = 0.0, math.log(flops)
    for _ in range(200):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    n = math.exp((lo + hi) / 2)
    return n, flops / (6 * n)


def chinchilla_optimum_numpy(flops):
    """The closed form through numpy and logarithms, E left out (it does not move the minimum)."""
    a, b = ALPHA, BETA
    log_n = (np.log(a * A / (b * B)) + b * np.log(flops / 6)) / (a + b)
    n = np.exp(log_n)
    return float(n), float(flops / 6 / n)


def _swapped(flops):
    """alpha in place of beta in the power of the budget (the constant left as it is)."""
    n = (ALPHA * A / (BETA * B) * (flops / 6) ** ALPHA) ** (1 / (ALPHA + BETA))
    return n, flops / (6 * n)


def _no_six(flops):
    n = (ALPHA * A / (BETA * B) * flops ** BETA) ** (1 / (ALPHA + BETA))
    return n, flops / (6 * n)


def _grid(flops):
    grid = np.logspace(3, 14, 400)
    losses = E + A / grid ** ALPHA + B / (flops / (6 * grid)) ** BETA
    n = float(grid[np.argmin(losses)])
    return n, flops / (6 * n)


CHINCHILLA_WRONG = {
    "the 20 rule": (lambda f: (math.sqrt(f / 120), 20 * math.sqrt(f / 120)), "rounded rule"),
    "order swapped": (lambda f: chinchilla_optimum(f)[::-1], r"\(tokens, params\)"),
    "exponents swapped": (_swapped, "grows faster"),
    "exponents and constants swapped": (lambda f: (f / 6 / chinchilla_optimum(f)[0],
                                                   chinchilla_optimum(f)[0]),
                                        r"\(tokens, params\)"),
    "forgot the 6 in N": (_no_six, "constant factor"),
    "tokens = flops / N": (lambda f: (chinchilla_optimum(f)[0], f / chinchilla_optimum(f)[0]),
                           "spend 6 N D"),
    "coarse grid search": (_grid, "refined"),
    "only the exponent": (lambda f: ((f / 6) ** (BETA / (ALPHA + BETA)),
                                     (f / 6) / (f / 6) ** (BETA / (ALPHA + BETA))),
                          "constant factor"),
    "a single number": (lambda f: chinchilla_optimum(f)[0], "two numbers"),
}


# ---------------------------------------------------------------------------- 8.3
def compute_for_loss(loss):
    if loss <= 0.5066:
        raise ValueError("below the irreducible loss")
    return 5.984e22 * (loss - 0.5066) ** (1 / -0.0737)


def compute_for_loss_logs(loss):
    """Through logarithms, with numpy."""
    if not loss > 0.5066:
        raise ValueError(f"the law never reaches {loss}")
    return float(5.984e22 * np.exp(np.log(loss - 0.5066) / -0.0737))


def _no_guard(loss):
    return 5.984e22 * (loss - 0.5066) ** (1 / -0.0737)


COMPUTE_FOR_LOSS_WRONG = {
    "no irreducible term": (lambda L: 5.984e22 * L ** (1 / -0.0737), "irreducible"),
    "the law's own exponent": (lambda L: 5.984e22 * (L - 0.5066) ** -0.0737, "own exponent"),
    "log bases mixed": (lambda L: 5.984e22 * 10 ** (math.log(L - 0.5066) / -0.0737),
                        "logarithm bases"),
    "log10 then exp": (lambda L: 5.984e22 * math.exp(math.log10(L - 0.5066) / -0.0737),
                       "logarithm bases"),
    "divided by F0": (lambda L: (L - 0.5066) ** (1 / -0.0737) / 5.984e22, "divided by 5.984e22"),
    "irreducible added": (lambda L: 5.984e22 * (L + 0.5066) ** (1 / -0.0737), "law at your f"),
    "copied the 13B budget": (lambda L: 2.3e22, "same compute for every loss"),
    "no ValueError": (_no_guard, "raise ValueError"),
    "returns nan below c": (lambda L: _no_guard(L) if L > 0.5066 else float("nan"),
                            "raise ValueError"),
}


# ---------------------------------------------------------------------------- 8.4
def isoflop_optimum(budget, params, losses):
    x = np.log(np.asarray(params, dtype=float))
    a, b, _ = np.polyfit(x, np.asarray(losses, dtype=float), 2)
    if a <= 0:
        raise ValueError("no minimum")
    n = math.exp(-b / (2 * a))
    return n, budget / (6 * n) / n


def isoflop_optimum_log10(budget, params, losses):
    """In base 10 throughout, by normal equations: the same minimum."""
    x = np.log10(np.array(params, dtype=float))
    design = np.vander(x, 3)
    a, b, c = np.linalg.solve(design.T @ design, design.T @ np.array(losses, dtype=float))
    if not a > 0:
        raise ValueError("the parabola has no minimum")
    n = 10 ** (-b / (2 * a))
    d = budget / (6 * n)
    return n, d / n


def _argmin(budget, params, losses):
    n = params[int(np.argmin(losses))]
    return n, budget / (6 * n) / n


def _linear_n(budget, params, losses):
    a, b, _ = np.polyfit(np.asarray(params, dtype=float), np.asarray(losses), 2)
    n = -b / (2 * a)
    return n, budget / (6 * n) / n


def _sorts_in_place(budget, params, losses):
    order = sorted(range(len(params)), key=lambda i: params[i])
    losses[:] = [losses[i] for i in order]
    params.sort()
    return isoflop_optimum(budget, params, losses)


def _sorts_params_only(budget, params, losses):
    return isoflop_optimum(budget, sorted(params), losses)


def _no_guard_iso(budget, params, losses):
    x = np.log(np.asarray(params, dtype=float))
    a, b, _ = np.polyfit(x, np.asarray(losses, dtype=float), 2)
    n = math.exp(-b / (2 * a))
    return n, budget / (6 * n) / n


def _exp_of_log10(budget, params, losses):
    x = np.log10(np.asarray(params, dtype=float))
    a, b, _ = np.polyfit(x, np.asarray(losses, dtype=float), 2)
    n = math.exp(-b / (2 * a))
    return n, budget / (6 * n) / n


ISOFLOP_WRONG = {
    "argmin of the grid": (_argmin, "one of the sizes given"),
    "parabola in N": (_linear_n, "in ln N"),
    "log10 fit, exp back": (_exp_of_log10, "logarithm bases"),
    "vertex at -b/a": (lambda f, p, l: (lambda n: (n, f / (6 * n) / n))(
        math.exp(-np.polyfit(np.log(p), l, 2)[1] / np.polyfit(np.log(p), l, 2)[0])), "-b / a"),
    "returns ln N": (lambda f, p, l: (math.log(isoflop_optimum(f, p, l)[0]),
                                     isoflop_optimum(f, p, l)[1]), "a logarithm"),
    "forgot the 6": (lambda f, p, l: (isoflop_optimum(f, p, l)[0],
                                      6 * isoflop_optimum(f, p, l)[1]), "6 times too many"),
    "parameters per token": (lambda f, p, l: (isoflop_optimum(f, p, l)[0],
                                              1 / isoflop_optimum(f, p, l)[1]),
                             "parameters per token"),
    "tokens, not tokens per parameter": (
        lambda f, p, l: (isoflop_optimum(f, p, l)[0], f / (6 * isoflop_optimum(f, p, l)[0])),
        "tokens per parameter is"),
    "sorts the caller's lists": (_sorts_in_place, "changed the lists"),
    "sorts params but not losses": (_sorts_params_only, "with its own size"),
    "no ValueError for a maximum": (_no_guard_iso, "raise ValueError"),
}


# ---------------------------------------------------------------------------- 8.5
def mup_learning_rates(model, eta_base):
    config = model.config
    m_d = config.d_model / config.mup_base_width if config.mup else 1.0
    return {name: eta_base / m_d if name.startswith("transformer.h.") and p.dim() == 2
            else eta_base for name, p in model.named_parameters()}


def mup_learning_rates_by_module(model, eta_base):
    """By module type: nn.Linear weights in the blocks are the hidden matrices."""
    config = model.config
    scale = config.mup_base_width / config.d_model if config.mup else 1.0
    rates = {name: eta_base for name, _ in model.named_parameters()}
    for block_name, module in model.transformer.h.named_modules():
        if isinstance(module, torch.nn.Linear):
            rates[f"transformer.h.{block_name}.weight"] = torch.tensor(eta_base * scale)
    return rates


def _by_shape(model, eta):
    """A rule by shape a reviewer found passing: 2-D with no side below d_model."""
    c = model.config
    m_d = c.d_model / c.mup_base_width if c.mup else 1.0
    return {n: eta / m_d if p.dim() == 2 and min(p.shape) >= c.d_model else eta
            for n, p in model.named_parameters()}


def _by_multiples(model, eta):
    c = model.config
    m_d = c.d_model / c.mup_base_width if c.mup else 1.0
    return {n: eta / m_d if p.dim() == 2 and all(s % c.d_model == 0 for s in p.shape) else eta
            for n, p in model.named_parameters()}


def _everything_scaled(model, eta):
    m = model.config.d_model / model.config.mup_base_width if model.config.mup else 1.0
    return {n: eta / m for n, _ in model.named_parameters()}


def _every_matrix(model, eta):
    m = model.config.d_model / model.config.mup_base_width if model.config.mup else 1.0
    return {n: eta / m if p.dim() == 2 else eta for n, p in model.named_parameters()}


def _hidden_and_vectors(model, eta):
    m = model.config.d_model / model.config.mup_base_width if model.config.mup else 1.0
    return {n: eta / m if n.startswith("transformer.h.") else eta
            for n, p in model.named_parameters()}


def _rule(factor):
    def answer(model, eta):
        c = model.config
        m = c.d_model / c.mup_base_width if c.mup else 1.0
        return {n: eta * factor(m, c) if n.startswith("transformer.h.") and p.dim() == 2 else eta
                for n, p in model.named_parameters()}
    return answer


def _ignores_mup_flag(model, eta):
    m = model.config.d_model / model.config.mup_base_width
    return {n: eta / m if n.startswith("transformer.h.") and p.dim() == 2 else eta
            for n, p in model.named_parameters()}


def _no_output_projections(model, eta):
    rates = mup_learning_rates(model, eta)
    return {n: (eta if "c_proj" in n else r) for n, r in rates.items()}


def _changes_model(model, eta):
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.0)
            p.add_(1e-3)
    return mup_learning_rates(model, eta)


def _copies_parameter_groups(model, eta):
    """The line of the chapter's cell, copied: the library sorts the parameters."""
    from gptlib.optim import parameter_groups
    return {n: eta * g["lr_scale"] for g in parameter_groups(model) for n in g["names"]}


def _copies_via_module(model, eta):
    import gptlib.optim
    return {n: eta * g["lr_scale"] for g in gptlib.optim.parameter_groups(model)
            for n in g["names"]}


def _copies_parameter_kind(model, eta):
    from gptlib import optim
    c = model.config
    m = c.d_model / c.mup_base_width if c.mup else 1.0
    return {n: eta / m if optim.parameter_kind(n, p) == "hidden_matrices" else eta
            for n, p in model.named_parameters()}


def _reads_optimizer_groups(model, eta):
    from gptlib.optim import configure_optimizer
    optimizer = configure_optimizer(model, eta)
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["lr"] for g in optimizer.param_groups for p in g["params"]}


def _copies_imported_name(model, eta):
    """Uses a name imported once at the top, as the chapter's set-up cell does."""
    return {n: eta * g["lr_scale"] for g in parameter_groups(model) for n in g["names"]}


MUP_WRONG = {
    "copies the chapter's parameter_groups line": (_copies_parameter_groups,
                                                    "called parameter_groups"),
    "calls gptlib.optim.parameter_groups": (_copies_via_module, "called parameter_groups"),
    "calls gptlib.optim.parameter_kind": (_copies_parameter_kind, "called parameter_kind"),
    "reads configure_optimizer's groups": (_reads_optimizer_groups,
                                           "called configure_optimizer"),
    "uses a parameter_groups imported at the top": (_copies_imported_name,
                                                    "called parameter_groups"),
    "every parameter scaled": (_everything_scaled, "embedding tables"),
    "every 2-D weight, embeddings too": (_every_matrix, "embedding tables"),
    "biases and norms in the blocks too": (_hidden_and_vectors, "biases or LayerNorm"),
    "m_d inverted": (_rule(lambda m, c: m), "m_d times faster"),
    "sqrt(m_d)": (_rule(lambda m, c: 1 / math.sqrt(m)), "square root"),
    "d_base fixed at 256": (_rule(lambda m, c: 256 / c.d_model), "own base width"),
    "mup flag ignored": (_ignores_mup_flag, "no parameter is rescaled without muP"),
    "output projections forgotten": (_no_output_projections, "c_proj.weight keeps eta_base"),
    "changes the model": (_changes_model, "changed the model"),
    "a missing entry": (lambda m, e: dict(list(mup_learning_rates(m, e).items())[1:]),
                        "one entry per name"),
    "a list, not a dict": (lambda m, e: list(mup_learning_rates(m, e).values()), "return a dict"),
    "by shape: 2-D, no side below the width": (_by_shape, "embedding tables"),
    "by shape: both sides multiples of the width": (_by_multiples, "embedding tables"),
}


CASES = {
    ch08.check_training_flops: ([training_flops, training_flops_by_layer], TRAINING_FLOPS_WRONG),
    ch08.check_chinchilla_optimum: ([chinchilla_optimum, chinchilla_optimum_numeric,
                                     chinchilla_optimum_numpy], CHINCHILLA_WRONG),
    ch08.check_compute_for_loss: ([compute_for_loss, compute_for_loss_logs], COMPUTE_FOR_LOSS_WRONG),
    ch08.check_isoflop_optimum: ([isoflop_optimum, isoflop_optimum_log10], ISOFLOP_WRONG),
    ch08.check_mup_learning_rates: ([mup_learning_rates, mup_learning_rates_by_module], MUP_WRONG),
}

RIGHT = [(check, answer) for check, (answers, _) in CASES.items() for answer in answers]
WRONG = [(check, name, wrong, hint) for check, (_, wrongs) in CASES.items()
         for name, (wrong, hint) in wrongs.items()]


@pytest.mark.parametrize("check,answer", RIGHT, ids=[f"{c.__name__}-{a.__name__}" for c, a in RIGHT])
def test_right_answers_are_confirmed(check, answer, capsys):
    check(answer)
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_stub_is_not_answered_yet(check):
    with pytest.raises(ExerciseError, match="not answered yet"):
        check(...)


@pytest.mark.parametrize("check,name,wrong,hint", WRONG, ids=[f"{c.__name__}-{n}" for c, n, _, _ in WRONG])
def test_plausible_wrong_answer_gets_its_hint(check, name, wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        check(wrong)


def test_every_check_has_enough_wrong_answers():
    for check, (_, wrongs) in CASES.items():
        assert len(wrongs) >= 6, check.__name__


def test_a_crashing_answer_says_with_what_input():
    def crashes(n_layer, d_model, tokens):
        raise KeyError("d_ffn")
    with pytest.raises(ExerciseError, match=r"training_flops\(1, 8, 1.0\)` raised KeyError"):
        ch08.check_training_flops(crashes)


def test_hints_do_not_print_the_formula_they_check():
    """A hint names the mistake; it must not hand over the expression being asked for."""
    for check, (_, wrongs) in CASES.items():
        for name, (wrong, _) in wrongs.items():
            with pytest.raises(ExerciseError) as info:
                check(wrong)
            message = str(info.value)
            assert "** (1 / -0.0737)" not in message and "(1 / (alpha + beta))" not in message
            assert "-b / (2a)" not in message and "-b / (2 * a)" not in message, name


def test_isoflop_reference_has_its_minimum_between_the_sizes():
    """The exact-parabola case really puts the minimum off the grid, so argmin answers fail."""
    budget, params, losses, _ = ch08._isoflop_cases()[-1]
    n, _ = ch08._isoflop_reference(budget, params, losses)
    assert n == pytest.approx(2.7e6, rel=1e-9) and all(abs(n - p) > 1e5 for p in params)


def test_mup_check_models_are_left_as_they_were():
    """The check's own reference reads the model without changing it (compare to a copy)."""
    from gptlib import GPT, GPTConfig
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, context_length=16, n_layer=1, n_head=4, d_model=64,
                          mup=True, mup_base_width=32))
    before = copy.deepcopy(model.state_dict())
    rates = ch08._mup_reference(model, 1e-2)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert rates["transformer.h.0.attn.c_attn.weight"] == pytest.approx(5e-3)
    assert rates["transformer.wte.weight"] == 1e-2


def test_mup_check_puts_the_library_back():
    """The check disables the library's sorting only while the answer runs, also when it fails."""
    import gptlib.optim
    originals = (gptlib.optim.parameter_groups, gptlib.optim.parameter_kind,
                 gptlib.optim.configure_optimizer)
    with pytest.raises(ExerciseError):
        ch08.check_mup_learning_rates(_copies_imported_name)
    assert parameter_groups is originals[0]
    assert (gptlib.optim.parameter_groups, gptlib.optim.parameter_kind,
            gptlib.optim.configure_optimizer) == originals
    ch08.check_mup_learning_rates(mup_learning_rates)  # and a right answer still passes


def numel(shape):  # the reader's own helper, named like Tensor.numel
    return math.prod(shape)


def test_training_flops_counts_what_runs():
    """A helper of one's own called `numel` is fine; torch imported inside the answer under
    another name is refused."""
    ch08.check_training_flops(lambda L, C, D: training_flops(L, C, D) + 0 * numel((C, C)))

    def imported_inside(L, C, D):
        import torch.nn as q
        return 6 * D * sum(p.nelement() for p in q.Linear(C, C, device="meta").parameters()) * 0 \
            + training_flops(L, C, D)

    with pytest.raises(ExerciseError, match="no model built"):
        ch08.check_training_flops(imported_inside)


def test_a_rule_by_shape_fails_where_the_context_is_as_long_as_the_width():
    """'No side equals the vocabulary or the context' passes on models whose tables are small,
    not on one whose context equals its width (as in Cerebras-GPT 1.3B, 2048 and 2048)."""
    def not_a_table_side(model, eta):
        c = model.config
        m_d = c.d_model / c.mup_base_width if c.mup else 1.0
        tables = {c.vocab_size, c.context_length}
        return {n: eta / m_d if p.dim() == 2 and not tables & set(p.shape) else eta
                for n, p in model.named_parameters()}

    with pytest.raises(ExerciseError):
        ch08.check_mup_learning_rates(not_a_table_side)
