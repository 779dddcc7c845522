"""Exercise checks of chapter 6 (training): each accepts a right answer, and rejects the
unanswered stub and the plausible wrong answers with ExerciseError."""
import math

import pytest
import torch

from gptlib.exercises import ExerciseError, ch06


# ---------------------------------------------------------------------------- right answers
def cross_entropy(logits, targets):
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    log_p = shifted - shifted.exp().sum(-1, keepdim=True).log()
    return -log_p[torch.arange(len(targets)), targets].mean()


def adamw_step(p, grad, m, v, step, lr, betas, eps, weight_decay):
    b1, b2 = betas
    p = p * (1 - lr * weight_decay)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    return p - lr * (m / (1 - b1 ** step)) / ((v / (1 - b2 ** step)).sqrt() + eps), m, v


def learning_rate(step, peak, warmup, total, final=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return final * peak
    return peak * (1 - (1 - final) * (step - warmup) / (total - warmup))


def clip_gradients(grads, max_norm):
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    return [g * min(1.0, max_norm / float(norm)) for g in grads], norm


CASES = {
    ch06.check_cross_entropy: (cross_entropy, {
        "sum, not mean": lambda l, t: -torch.log_softmax(l, -1)[torch.arange(len(t)), t].sum(),
        "raw logit": lambda l, t: -l[torch.arange(len(t)), t].mean(),
        "overflows": lambda l, t: -(l.exp() / l.exp().sum(-1, keepdim=True)).log()[torch.arange(len(t)), t].mean(),
        "wrong sign": lambda l, t: torch.log_softmax(l, -1)[torch.arange(len(t)), t].mean(),
    }),
    ch06.check_adamw_step: (adamw_step, {
        "no bias correction": lambda p, g, m, v, s, lr, b, e, wd: (
            p * (1 - lr * wd) - lr * (b[0] * m + (1 - b[0]) * g) / ((b[1] * v + (1 - b[1]) * g * g).sqrt() + e),
            b[0] * m + (1 - b[0]) * g, b[1] * v + (1 - b[1]) * g * g),
        "L2 instead of decoupled": lambda p, g, m, v, s, lr, b, e, wd: adamw_step(p, g + wd * p, m, v, s, lr, b, e, 0.0),
        "no decay": lambda p, g, m, v, s, lr, b, e, wd: adamw_step(p, g, m, v, s, lr, b, e, 0.0),
    }),
    ch06.check_learning_rate: (learning_rate, {
        "warm-up from 0": lambda s, p, w, t, f=0.1: p * s / w if s < w else learning_rate(s, p, w, t, f),
        "decay to 0": lambda s, p, w, t, f=0.1: learning_rate(s, p, w, t, 0.0),
        "cosine": lambda s, p, w, t, f=0.1: learning_rate(s, p, w, t, f) if s < w or s >= t else
        p * (f + (1 - f) * (1 + math.cos(math.pi * (s - w) / (t - w))) / 2),
    }),
    ch06.check_clip_gradients: (clip_gradients, {
        "per tensor": lambda gs, c: ([g * min(1.0, c / float(g.norm())) for g in gs],
                                     torch.sqrt(sum((g ** 2).sum() for g in gs))),
        "scales up too": lambda gs, c: ([g * c / float(torch.sqrt(sum((h ** 2).sum() for h in gs))) for g in gs],
                                        torch.sqrt(sum((g ** 2).sum() for g in gs))),
        "norm after clipping": lambda gs, c: (clip_gradients(gs, c)[0], torch.tensor(min(
            c, float(torch.sqrt(sum((g ** 2).sum() for g in gs)))))),
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
    wrongs = CASES[ch06.check_adamw_step][1]
    with pytest.raises(ExerciseError, match="bias correction"):
        ch06.check_adamw_step(wrongs["no bias correction"])
    with pytest.raises(ExerciseError, match="DECOUPLES"):
        ch06.check_adamw_step(wrongs["L2 instead of decoupled"])
    with pytest.raises(ExerciseError, match="own norm"):
        ch06.check_clip_gradients(CASES[ch06.check_clip_gradients][1]["per tensor"])


def test_a_crashing_answer_becomes_an_exercise_error():
    def broken(logits, targets):
        raise IndexError("boom")
    with pytest.raises(ExerciseError, match="IndexError: boom"):
        ch06.check_cross_entropy(broken)
    with pytest.raises(ExerciseError, match="should be a function"):
        ch06.check_learning_rate(0.1)
