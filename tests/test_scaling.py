"""Scaling-law tools: compute-optimal sizing, run FLOPs, and the power-law fit."""
import math

import numpy as np
import pytest

from gptlib import CEREBRAS_GPT, GPTConfig
from gptlib.scaling import PAPER_LAW, PowerLaw, cerebras_points, compute_optimal, fit_power_law


def test_paper_law_in_both_forms():
    f = np.logspace(18, 23, 11)
    np.testing.assert_allclose(PAPER_LAW(f), (f / 5.984e22) ** -0.0737 + 0.5066, rtol=1e-12)
    assert PAPER_LAW(5.984e22) == pytest.approx(1.5066)


def test_paper_law_is_close_to_the_seven_published_losses():
    compute, loss = cerebras_points()
    assert len(compute) == 7
    assert np.abs(PAPER_LAW(compute) - loss).max() < 0.03


def test_fit_recovers_known_parameters():
    truth = PowerLaw(a=50.0, b=-0.08, c=0.6)
    compute = np.logspace(17, 23, 9)
    fit = fit_power_law(compute, truth(compute))
    assert fit.a == pytest.approx(50.0, rel=1e-3)
    assert fit.b == pytest.approx(-0.08, rel=1e-3)
    assert fit.c == pytest.approx(0.6, abs=1e-4)


def test_fit_to_the_published_runs_reproduces_the_papers_law():
    """An independent fit to Table 1's compute and Pile losses lands on the paper's fitted law."""
    compute, loss = cerebras_points()
    fit = fit_power_law(compute, loss)
    assert fit.b == pytest.approx(-0.0737, abs=0.003)
    assert fit.c == pytest.approx(0.5066, abs=0.03)
    assert np.abs(fit(compute) - PAPER_LAW(compute)).max() < 0.01


def test_fit_with_fixed_irreducible_loss_is_a_straight_line_in_log_log():
    compute = np.array([1e18, 1e19, 1e20])
    loss = 3.0 * compute ** -0.05
    fit = fit_power_law(compute, loss, irreducible=0.0)
    assert fit.b == pytest.approx(-0.05) and fit.a == pytest.approx(3.0)


def test_compute_for_loss_inverts_the_law():
    assert PAPER_LAW(PAPER_LAW.compute_for_loss(2.0)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="irreducible"):
        PAPER_LAW.compute_for_loss(0.4)


def test_compute_optimal_sizing_is_twenty_tokens_per_parameter():
    size = compute_optimal(params=111e6)
    assert size["tokens"] == pytest.approx(2.22e9)
    assert size["compute"] == pytest.approx(6 * 111e6 * 2.22e9)
    back = compute_optimal(compute=size["compute"])
    assert back["params"] == pytest.approx(111e6) and back["tokens"] == pytest.approx(2.22e9)
    # the published runs were sized this way: tokens = 20 x parameters (to the table's rounding)
    for name, row in CEREBRAS_GPT.items():
        n = GPTConfig.cerebras(name).param_count()
        assert row.tokens / n == pytest.approx(20, rel=0.03), name


def test_training_flops_match_6nd_and_exceed_it_with_attention():
    config = GPTConfig.cerebras("111M")
    tokens = 2.22e9
    six_nd = config.training_flops(tokens)
    assert six_nd == 6 * config.param_count(include_embeddings=False) * tokens
    full = config.training_flops(tokens, "full")
    assert full > six_nd
    # the paper's 2.6e18 "algorithmic FLOPs" count attention and logits: closer to "full" than to 6ND
    assert abs(math.log(full / 2.6e18)) < abs(math.log(six_nd / 2.6e18))


@pytest.mark.parametrize("call, message", [
    (lambda: compute_optimal(), "exactly one"),
    (lambda: compute_optimal(compute=1e20, params=1e8), "exactly one"),
    (lambda: compute_optimal(compute=-1), r"compute must be a finite number > 0 \(FLOPs\), got -1"),
    (lambda: fit_power_law([1, 2], [3, 2]), "at least 3"),
    (lambda: fit_power_law([1, 2, 3], [3, 2]), "same length"),
    (lambda: fit_power_law([1, -2, 3], [3, 2, 1]), "positive"),
    (lambda: PAPER_LAW(0), "positive"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_law_prints_in_the_books_notation():
    assert str(PowerLaw(a=2.0, b=-0.1, c=0.5)) == "L(f) = 2 * f^(-0.1000) + 0.5000"
