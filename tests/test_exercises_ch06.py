"""Exercise checks of chapter 6 (training): each accepts the reference answer and a differently
written right one, rejects the unanswered stub, and rejects the plausible wrong answers, each with
the hint meant for it."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptlib import GPT, GPTConfig
from gptlib.exercises import ExerciseError, ch06
from gptlib.schedule import Schedule


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)


# ---------------------------------------------------------------------------- 6.1 cross-entropy
def cross_entropy(logits, targets):
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    log_p = shifted - shifted.exp().sum(-1, keepdim=True).log()
    return -log_p[torch.arange(len(targets)), targets].mean()


def cross_entropy_gather(logits, targets):  # written differently: gather and an explicit loop-free mean
    top = logits.amax(dim=1, keepdim=True)
    log_norm = (logits - top).exp().sum(dim=1).log() + top.squeeze(1)
    return (log_norm - logits.gather(1, targets[:, None]).squeeze(1)).sum() / len(targets)


def _log_p(l, dim=-1):  # written out: the checks rule out torch's log_softmax while they run
    shifted = l - l.amax(dim, keepdim=True)
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _clip_with_torch(grads, max_norm):  # clip_grad_norm_ on copies: right, but ruled out
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], norm


CE_WRONG = {
    "sum, not mean": (lambda l, t: -_log_p(l)[torch.arange(len(t)), t].sum(), "sum over positions"),
    "raw logit": (lambda l, t: -l[torch.arange(len(t)), t].mean(), "raw logit"),
    "overflows": (lambda l, t: -(l.exp() / l.exp().sum(-1, keepdim=True)).log()[torch.arange(len(t)), t].mean(),
                  "overflows"),
    "wrong sign": (lambda l, t: _log_p(l)[torch.arange(len(t)), t].mean(), "sign is flipped"),
    "bits": (lambda l, t: -_log_p(l)[torch.arange(len(t)), t].mean() / math.log(2), "bits"),
    "softmax over positions": (lambda l, t: -_log_p(l, 0)[torch.arange(len(t)), t].mean(),
                               "dim 0"),
    "every token": (lambda l, t: -_log_p(l).mean(), "only of each row's target"),
    "logits[:, targets]": (lambda l, t: -_log_p(l)[:, t].mean(), "an \\(N, N\\) block"),
    "global maximum": (lambda l, t: -((l - l.max()) - (l - l.max()).exp().sum(-1, keepdim=True).log())
                       [torch.arange(len(t)), t].mean(), "each ROW's own maximum"),
    "in place": (lambda l, t: -(l.sub_(l.max(-1, keepdim=True).values) - l.exp().sum(-1, keepdim=True).log())
                 [torch.arange(len(t)), t].mean(), "in place"),
    "returns per-position losses": (lambda l, t: -_log_p(l)[torch.arange(len(t)), t], "one number"),
    # the functions the question rules out, each caught while the answer runs
    "F.cross_entropy": (lambda l, t: F.cross_entropy(l, t), "calls F.cross_entropy"),
    "log_softmax and gather": (lambda l, t: -torch.log_softmax(l, dim=-1).gather(
        -1, t[:, None]).mean(), "calls torch.log_softmax"),
    "Tensor.log_softmax": (lambda l, t: -l.log_softmax(-1)[torch.arange(len(t)), t].mean(),
                           "calls Tensor.log_softmax"),
    "logsumexp": (lambda l, t: (torch.logsumexp(l, -1) - l[torch.arange(len(t)), t]).mean(),
                  "calls torch.logsumexp"),
    "nll_loss": (lambda l, t: F.nll_loss(F.log_softmax(l, -1), t), "rules out"),
    # shifted by the row maximum, but then the log of a probability: -inf when it underflows
    "log of the shifted softmax": (lambda l, t: -torch.softmax(
        l - l.amax(-1, keepdim=True), -1).log()[torch.arange(len(t)), t].mean(),
        "log of a probability"),
    "log of softmax": (lambda l, t: -torch.softmax(l, -1).log()[torch.arange(len(t)), t].mean(),
                       "log\\(0\\) is -inf"),
}


def test_cross_entropy_right_answers():
    ch06.check_cross_entropy(cross_entropy)
    ch06.check_cross_entropy(cross_entropy_gather)
    with raises("not answered yet"):
        ch06.check_cross_entropy(...)


@pytest.mark.parametrize("name", list(CE_WRONG))
def test_cross_entropy_wrong_answers(name):
    wrong, hint = CE_WRONG[name]
    with raises(hint):
        ch06.check_cross_entropy(wrong)


# ---------------------------------------------------------------------------- 6.2 AdamW
def adamw_step(p, grad, m, v, step, lr, betas, eps, weight_decay, mistake=""):
    b1, b2 = betas
    decay = {"no lr in decay": weight_decay, "no decay": 0.0}.get(mistake, lr * weight_decay)
    if mistake == "L2":
        grad = grad + weight_decay * p
        decay = 0.0
    old = p
    if mistake != "decay after":
        p = p * (1 - decay)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * (grad ** 2 if mistake != "scalar v" else (grad ** 2).mean())
    t = {"step + 1": step + 1, "step - 1": step - 1}.get(mistake, step)
    if mistake == "no bias correction":
        m_hat, v_hat = m, v
    else:
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    denominator = (v_hat + eps).sqrt() if mistake == "eps inside" else v_hat.sqrt() + eps
    p = p - lr * m_hat / denominator
    if mistake == "decay after":
        p = p * (1 - decay)
    if mistake == "in place":
        old.mul_(1 - decay)
    return p, m, v


def adamw_step_torch_style(p, grad, m, v, step, lr, betas, eps, weight_decay):  # written differently
    beta1, beta2 = betas
    m = torch.lerp(m, grad, 1 - beta1)
    v = v * beta2 + grad * grad * (1 - beta2)
    step_size = lr / (1 - beta1 ** step)
    denom = v.sqrt() / math.sqrt(1 - beta2 ** step) + eps
    return p * (1 - lr * weight_decay) - step_size * m / denom, m, v


ADAM_WRONG = {
    "no bias correction": "bias correction",
    "L2": "DECOUPLES",
    "no decay": "no weight decay",
    "decay after": "NEW p",
    "no lr in decay": "scaled by the learning rate",
    "eps inside": "outside the square root",
    "step + 1": "step \\+ 1",
    "step - 1": "not finite",
    "scalar v": "per ELEMENT",
    "in place": "in place",
}


def test_adamw_right_answers():
    ch06.check_adamw_step(adamw_step)
    ch06.check_adamw_step(adamw_step_torch_style)
    with raises("not answered yet"):
        ch06.check_adamw_step(...)


@pytest.mark.parametrize("mistake", list(ADAM_WRONG))
def test_adamw_wrong_answers(mistake):
    with raises(ADAM_WRONG[mistake]):
        ch06.check_adamw_step(lambda *args: adamw_step(*args, mistake=mistake))


# ---------------------------------------------------------------------------- 6.3 schedule
def learning_rates(steps, peak, warmup, total, final=0.1):
    n = steps.double()
    warm = peak * (n + 1) / max(warmup, 1)  # chosen only where n < W, so W > 0 there
    done = (n - warmup) / max(total - warmup, 1)  # chosen only where W <= n < S
    rate = torch.where(n < warmup, warm, peak * (1 - (1 - final) * done))
    return torch.where(n >= total, final * peak, rate)


def learning_rates_clamped(steps, peak_lr, warmup_steps, total_steps, final_fraction=0.1):
    """Another right answer: the decay's share clamped to [0, 1], float32 steps, and no
    division by zero at all."""
    n = steps.float()
    warm = peak_lr * (n + 1) / warmup_steps if warmup_steps else torch.full_like(n, peak_lr)
    if total_steps > warmup_steps:
        done = ((n - warmup_steps) / (total_steps - warmup_steps)).clamp(0, 1)
    else:
        done = (n >= total_steps).float()
    return torch.where(n < warmup_steps, warm, peak_lr * (1 - (1 - final_fraction) * done))


def _unless(condition, rate, s, p, w, t, f):
    """The right rates, except ``rate`` where ``condition`` holds (both tensors over s)."""
    return torch.where(condition, rate, learning_rates(s, p, w, t, f))


def _wrong_decay(shape):
    """The right warm-up and tail, ``shape(n, p, w, t, f)`` between W and S."""
    def answer(s, p, w, t, f=0.1):
        n = s.double()
        return _unless((n >= w) & (n < t), shape(n, p, w, t, f), s, p, w, t, f)
    return answer


def _nan_at_w_equals_s(s, p, w, t, f=0.1):
    n = s.double()
    share = ((n - w) / (t - w)).clamp(0, 1)  # 0 / 0 = nan at n = W = S
    return torch.where(n < w, p * (n + 1) / max(w, 1), p * (1 - (1 - f) * share))


def _scalar_rate(step, p, w, t, f):
    if step < w:
        return p * (step + 1) / w
    return f * p if step >= t else p * (1 - (1 - f) * (step - w) / (t - w))


def _float32_no_tail(s, p, w, t, f=0.1):
    """A first-timer's: clamp the decay's share, guard S - W, but no rule for the steps from S
    on; in float32, where the peak comes out a hair above 0.003."""
    n = s.float()
    share = ((n - w) / max(t - w, 1)).clamp(0, 1)
    return torch.where(n < w, p * (n + 1) / max(w, 1), p * (1 - (1 - f) * share))


def _mapped(s, p, w, t, f=0.1):
    return torch.tensor(list(map(lambda x: _scalar_rate(x, p, w, t, f), s.flatten().tolist()))
                        ).view(s.shape)


def _vectorized(s, p, w, t, f=0.1):
    return torch.from_numpy(np.vectorize(_scalar_rate)(s.numpy(), p, w, t, f))


def _applied(s, p, w, t, f=0.1):
    return s.double().apply_(lambda x: _scalar_rate(x, p, w, t, f))


def _recursive(s, p, w, t, f=0.1):
    flat = s.reshape(-1)
    if flat.numel() <= 1:
        return learning_rates(flat, p, w, t, f).view(s.shape)
    return torch.cat([learning_rates(flat[:1], p, w, t, f), _recursive(flat[1:], p, w, t, f)]
                     ).view(s.shape)


def _schedule_by_default(s, p, w, t, f=0.1, _make=Schedule):
    return torch.tensor([_make(p, w, t, "linear", f)(0)] * s.numel(), dtype=torch.float64
                        ).view(s.shape)


def _looping(s, p, w, t, f=0.1):
    return torch.stack([learning_rates(x, p, w, t, f) for x in s.reshape(-1)]).view(s.shape)


def _in_place(s, p, w, t, f=0.1):
    rates = learning_rates(s, p, w, t, f)
    s.add_(1)
    return rates


def _only_1d(s, p, w, t, f=0.1):
    return learning_rates(s.reshape(-1), p, w, t, f)[:s.shape[-1]]


SCHEDULE_WRONG = {
    "warm-up from 0": (lambda s, p, w, t, f=0.1: _unless(s < w, p * s / max(w, 1), s, p, w, t, f),
                       "starts at 0"),
    "decay to 0": (lambda s, p, w, t, f=0.1: learning_rates(s, p, w, t, 0.0), "ends at 0"),
    "cosine": (_wrong_decay(lambda n, p, w, t, f: p * (f + (1 - f) * (1 + torch.cos(
        math.pi * (n - w) / (t - w))) / 2)), "cosine shape"),
    "<= warmup": (lambda s, p, w, t, f=0.1: _unless(s <= w, p * (s + 1) / max(w, 1), s, p, w, t, f),
                  "never exceed the peak"),
    "decay from step 0": (_wrong_decay(lambda n, p, w, t, f: p * (1 - (1 - f) * n / t)),
                          "measured from step 0"),
    "integer division": (lambda s, p, w, t, f=0.1: _unless(s < w, p * (s + 1) // max(w, 1), s, p, w,
                                                           t, f), "integer division"),
    "integer rates": (lambda s, p, w, t, f=0.1: (learning_rates(s, p, w, t, f) * 1e6).long(),
                      "returned integers"),
    "zero after S": (lambda s, p, w, t, f=0.1: _unless(s >= t, torch.zeros(s.shape), s, p, w, t, f),
                     "stays at final_fraction"),
    "divides by W in Python": (lambda s, p, w, t, f=0.1: _unless(s < w, (s + 1) * (p / w), s, p, w, t, f),
                               "raised ZeroDivisionError"),
    "nan at W = S": (_nan_at_w_equals_s, "carries it into the answer"),
    "float32, no tail at W = S": (_float32_no_tail, "W = S there is no decay phase"),
    "half precision": (lambda s, p, w, t, f=0.1: learning_rates(s, p, w, t, f).half(), "half precision"),
    "map over the steps": (_mapped, "runs Python code once per step"),
    "np.vectorize": (_vectorized, "runs Python code once per step"),
    "Tensor.apply_": (_applied, "runs Python code once per step"),
    "recursion": (_recursive, "recursion runs Python code once per step"),
    "gptlib through a default argument": (_schedule_by_default, "calls gptlib's"),
    "S - W - 1": (_wrong_decay(lambda n, p, w, t, f: p * (1 - (1 - f) * (n - w) / max(t - w - 1, 1))),
                  "expected"),
    "only 111M": (lambda s, p, w, t, f=0.1: learning_rates(s, 6e-4, 1526, 9037, 0.1), "expected"),
    "keeps falling after S": (lambda s, p, w, t, f=0.1: _unless(
        s >= t, p * (1 - (1 - f) * (s - w) / max(t - w, 1)), s, p, w, t, f), "keeps falling"),
    "a list": (lambda s, p, w, t, f=0.1: learning_rates(s, p, w, t, f).tolist(), "return a tensor"),
    "a Python loop": (_looping, "runs a Python loop"),
    "changes steps": (_in_place, "changed the `steps` tensor"),
    "flattens to one row": (_only_1d, "returned shape"),
    "gptlib's Schedule": (lambda s, p, w, t, f=0.1: torch.tensor(Schedule(p, w, t, "linear", f)(0)),
                          "without gptlib.schedule"),
}


def test_learning_rates_right_answers():
    ch06.check_learning_rates(learning_rates)
    ch06.check_learning_rates(learning_rates_clamped)
    with raises("not answered yet"):
        ch06.check_learning_rates(...)


@pytest.mark.parametrize("name", list(SCHEDULE_WRONG))
def test_learning_rates_wrong_answers(name):
    wrong, hint = SCHEDULE_WRONG[name]
    with raises(hint):
        ch06.check_learning_rates(wrong)


def test_learning_rates_check_uses_the_111m_run_of_20_tokens_per_parameter():
    assert ch06._111M_TOTAL == 9037 and ch06._111M_WARMUP == 1526
    assert ch06._111M_TOTAL * 120 * 2048 == pytest.approx(20 * 111_050_496, rel=1e-4)
    assert GPTConfig.cerebras("111M").param_count() == 111_050_496


# ---------------------------------------------------------------------------- 6.4 clipping
def _norm(gs):
    return torch.sqrt(sum((g ** 2).sum() for g in gs))


def clip_gradients(grads, max_norm):
    norm = _norm(grads)
    factor = min(1.0, max_norm / float(norm)) if float(norm) > 0 else 1.0
    return [g * factor for g in grads], norm


def clip_gradients_flat(grads, max_norm):  # written differently: one flat vector, torch ops only
    flat = torch.cat([g.reshape(-1) for g in grads])
    norm = flat.norm()
    factor = torch.clamp(max_norm / (norm + 1e-12), max=1.0)
    return [g * factor for g in grads], norm


CLIP_WRONG = {
    "per tensor": (lambda gs, c: ([g * min(1.0, c / float(g.norm())) if float(g.norm()) else g for g in gs],
                                  _norm(gs)), "own norm"),
    "scales up too": (lambda gs, c: ([g * c / max(float(_norm(gs)), 1e-300) for g in gs], _norm(gs)),
                      "only ever scales DOWN"),
    "norm after clipping": (lambda gs, c: (clip_gradients(gs, c)[0], torch.tensor(min(c, float(_norm(gs))))),
                            "measured before clipping"),
    "sum of norms": (lambda gs, c: (clip_gradients(gs, c)[0], sum(g.norm() for g in gs)),
                     "added up the norms"),
    "hard-coded 1.0": (lambda gs, c: clip_gradients(gs, 1.0), "use the argument"),
    "in place": (lambda gs, c: ([g.mul_(min(1.0, c / float(_norm(gs)))) if float(_norm(gs)) else g
                                 for g in gs], _norm(gs)), "in place"),
    "divides by a zero norm": (lambda gs, c: ([g * min(1.0, c / float(_norm(gs))) for g in gs], _norm(gs)),
                               "ZeroDivisionError"),
    "mean of squares": (lambda gs, c: clip_gradients(gs, c)[:1] + (torch.sqrt(sum((g ** 2).mean() for g in gs)),),
                        "ALL gradients together"),
    "torch's clip_grad_norm_ on copies": (_clip_with_torch, "calls torch.nn.utils.clip_grad_norm_"),
    "swapped return": (lambda gs, c: clip_gradients(gs, c)[::-1], "swapped"),
    "flat tensors back": (lambda gs, c: ([g.flatten() for g in clip_gradients(gs, c)[0]], _norm(gs)),
                          "view a flat result back"),
    "float32": (lambda gs, c: ([g.float() for g in clip_gradients(gs, c)[0]], _norm(gs)),
                "in their own dtype"),
    "the inputs handed back": (lambda gs, c: (gs if float(_norm(gs)) <= c else clip_gradients(gs, c)[0],
                                              _norm(gs)), "the very tensor you were given"),
    "torch's epsilon": (lambda gs, c: ([g * min(1.0, c / (float(_norm(gs)) + 1e-6)) for g in gs], _norm(gs)),
                        "must come back exactly as they were"),
}


def test_clip_right_answers():
    ch06.check_clip_gradients(clip_gradients)
    ch06.check_clip_gradients(clip_gradients_flat)
    with raises("not answered yet"):
        ch06.check_clip_gradients(...)


@pytest.mark.parametrize("name", list(CLIP_WRONG))
def test_clip_wrong_answers(name):
    wrong, hint = CLIP_WRONG[name]
    with raises(hint):
        ch06.check_clip_gradients(wrong)


# ---------------------------------------------------------------------------- 6.5 accumulation
def accumulate_gradients(model, x, y, sizes, mistake=""):
    model.zero_grad(set_to_none=True) if mistake != "stale" else None
    total = int((y != -1).sum())
    loss_sum, start = 0.0, 0
    for size in sizes:
        xs, ys = x[start:start + size], y[start:start + size]
        start += size
        counted = int((ys != -1).sum())
        if counted == 0 and mistake != "nan":
            continue
        weight = {"equal": 1 / len(sizes), "none": 1.0, "sequences": size / len(x)}.get(
            mistake, counted / total)
        _, loss = model(xs, ys)
        (weight * loss).backward()
        loss_sum += weight * float(loss.detach())
    if mistake == "mean of means":
        return loss_sum / len(sizes)
    if mistake == "in place":
        y[y == -1] = 0
    return loss_sum


def accumulate_by_sums(model, x, y, sizes):  # written differently: summed losses over a fixed count
    for p in model.parameters():
        p.grad = None
    n_counted = (y != -1).sum()
    total = torch.zeros(())
    for xs, ys in zip(x.split(sizes), y.split(sizes)):
        if (ys != -1).any():
            logits, _ = model(xs, ys)
            part = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ys.reshape(-1),
                                   ignore_index=-1, reduction="sum") / n_counted
            part.backward()
            total = total + part.detach()
    return total


def whole_batch(model, x, y, sizes):
    model.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    return loss


ACCUMULATION_WRONG = {
    "equal": "weighted every micro-batch equally",
    "none": "SUM of the",
    "sequences": "share of the SEQUENCES",
    "stale": "clear them first",
    "nan": "NaN",
    "mean of means": "returned loss",
    "in place": "in place",
}


def test_accumulation_right_answers():
    ch06.check_accumulate_gradients(accumulate_gradients)
    ch06.check_accumulate_gradients(accumulate_by_sums)
    with raises("not answered yet"):
        ch06.check_accumulate_gradients(...)


@pytest.mark.parametrize("mistake", list(ACCUMULATION_WRONG))
def test_accumulation_wrong_answers(mistake):
    with raises(ACCUMULATION_WRONG[mistake]):
        ch06.check_accumulate_gradients(lambda *a: accumulate_gradients(*a, mistake=mistake))


def test_accumulation_refuses_the_whole_batch_at_once():
    with raises("one micro-batch at a time"):
        ch06.check_accumulate_gradients(whole_batch)


def test_accumulation_answer_works_on_a_gptlib_model():
    """The reference answer gives a GPT the gradient of the whole batch, as the chapter says."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=13, context_length=8, n_layer=1, n_head=2, d_model=16)
    model, twin = GPT(config), GPT(config)
    twin.load_state_dict(model.state_dict())
    x = torch.randint(0, 13, (6, 8))
    y = torch.randint(0, 13, (6, 8))
    y[0, :5] = -1
    y[1] = -1
    loss = accumulate_gradients(model, x, y, [2, 1, 3])
    _, full = twin(x, y)
    full.backward()
    assert loss == pytest.approx(float(full.detach()), rel=1e-5)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


def test_a_crashing_answer_becomes_an_exercise_error():
    def broken(logits, targets):
        raise IndexError("boom")
    with raises("IndexError: boom"):
        ch06.check_cross_entropy(broken)
    with raises("should be a function"):
        ch06.check_learning_rates(0.1)


def test_banned_functions_are_put_back_after_a_check():
    """The tripwires of 6.1 and 6.4 live only while the answer runs, also when it fails."""
    originals = (F.cross_entropy, torch.log_softmax, torch.logsumexp, torch.Tensor.log_softmax,
                 torch.nn.utils.clip_grad_norm_)
    with raises("rules out"):
        ch06.check_cross_entropy(CE_WRONG["F.cross_entropy"][0])
    with raises("rules out"):
        ch06.check_clip_gradients(_clip_with_torch)
    assert (F.cross_entropy, torch.log_softmax, torch.logsumexp, torch.Tensor.log_softmax,
            torch.nn.utils.clip_grad_norm_) == originals
    assert "log_softmax" not in vars(torch.Tensor)
    logits = torch.randn(3, 4)
    torch.testing.assert_close(torch.log_softmax(logits, -1), logits.log_softmax(-1))
