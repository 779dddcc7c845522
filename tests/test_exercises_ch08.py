"""Exercise checks of chapter 8 (scaling and muP): each accepts a right answer, and rejects the
unanswered stub and the plausible wrong answers with ExerciseError."""
import math

import pytest
import torch

from gptlib.exercises import ExerciseError, ch08


# ---------------------------------------------------------------------------- right answers
def training_flops(n_layer, d_model, tokens):
    return 6 * (n_layer * (12 * d_model ** 2 + 13 * d_model) + 2 * d_model) * tokens


def compute_optimal(flops):
    n = math.sqrt(flops / 120)
    return n, 20 * n


def compute_for_loss(loss):
    return 5.984e22 * (loss - 0.5066) ** (1 / -0.0737)


def mup_settings(d_model):
    m = d_model / 256
    return {"hidden_lr": 6e-3 / m, "hidden_init_std": 0.08 / math.sqrt(m),
            "output_logit_multiplier": 1 / m, "attention_scale": 1 / 64}


CASES = {
    ch08.check_training_flops: (training_flops, {
        "forward only": lambda L, C, D: training_flops(L, C, D) / 3,
        "matrices only": lambda L, C, D: 6 * 12 * L * C * C * D,
        "no final LayerNorm": lambda L, C, D: 6 * L * (12 * C * C + 13 * C) * D,
    }),
    ch08.check_compute_optimal: (compute_optimal, {
        "tokens = params": lambda C: (math.sqrt(C / 6), math.sqrt(C / 6)),
        "C = 20 N^2": lambda C: (math.sqrt(C / 20), 20 * math.sqrt(C / 20)),
    }),
    ch08.check_compute_for_loss: (compute_for_loss, {
        "no irreducible term": lambda L: 5.984e22 * L ** (1 / -0.0737),
        "wrong power": lambda L: 5.984e22 * (L - 0.5066) ** -0.0737,
    }),
    ch08.check_mup_settings: (mup_settings, {
        "1/sqrt(d_head)": lambda d: {**mup_settings(d), "attention_scale": 1 / 8},
        "init / m_d": lambda d: {**mup_settings(d), "hidden_init_std": 0.08 / (d / 256)},
        "lr not scaled": lambda d: {**mup_settings(d), "hidden_lr": 6e-3},
        "missing key": lambda d: {k: v for k, v in mup_settings(d).items() if k != "attention_scale"},
    }),
}

PAIRS = [(check, name, wrong) for check, (_, wrongs) in CASES.items() for name, wrong in wrongs.items()]


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_right_answer_is_confirmed(check, capsys):
    check(CASES[check][0])
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_stub_is_not_answered_yet(check):
    with pytest.raises(ExerciseError, match="not answered yet"):
        check(...)


@pytest.mark.parametrize("check,name,wrong", PAIRS, ids=[f"{c.__name__}-{n}" for c, n, _ in PAIRS])
def test_plausible_wrong_answer_is_rejected(check, name, wrong):
    with pytest.raises(ExerciseError):
        check(wrong)


def test_messages_name_the_mistake():
    """The hints recognise the classic mistakes by name, not only 'wrong value'."""
    with pytest.raises(ExerciseError, match="irreducible"):
        ch08.check_compute_for_loss(CASES[ch08.check_compute_for_loss][1]["no irreducible term"])
    with pytest.raises(ExerciseError, match="forward pass only"):
        ch08.check_training_flops(CASES[ch08.check_training_flops][1]["forward only"])
