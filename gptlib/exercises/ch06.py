"""Checks for the exercises of chapter 6 (training).

Each check computes its reference independently (with torch's own ops or numpy), never from a
stored number, and tells a plausible wrong answer apart from the right one with a hint.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._core import ExerciseError, close, confirm, fail, require_answer


def _require_callable(exercise: str, name: str, value) -> None:
    require_answer(exercise, **{name: value})
    if not callable(value):
        fail(exercise, f"`{name}` should be a function, got {type(value).__name__}.")


def _call(exercise: str, name: str, function, *args, **kwargs):
    """Call the reader's function, turning a crash into a message that says with what input."""
    try:
        return function(*args, **kwargs)
    except ExerciseError:
        raise
    except Exception as error:  # the reader's code failed: say on what, keep the cause
        shapes = ", ".join(f"{tuple(a.shape)}" if isinstance(a, torch.Tensor) else repr(a)
                           for a in args)
        fail(exercise, f"`{name}({shapes})` raised {type(error).__name__}: {error}")


# ----------------------------------------------------------------------------------------------
# Exercise 6.1: next-token cross-entropy by hand
# ----------------------------------------------------------------------------------------------
def check_cross_entropy(cross_entropy) -> None:
    """``cross_entropy(logits, targets)``: ``(N, V)`` float logits and ``(N,)`` int64 targets ->
    the mean over the N rows of ``-log softmax(logits)[target]``, a 0-d tensor, without calling
    ``F.cross_entropy``. Compared with ``F.cross_entropy`` on random inputs, including logits
    large enough that ``exp`` alone would overflow in float32."""
    ex = "6.1"
    _require_callable(ex, "cross_entropy", cross_entropy)
    generator = torch.Generator().manual_seed(61)
    cases = [(torch.randn(8, 5, generator=generator), torch.randint(5, (8,), generator=generator)),
             (3 * torch.randn(64, 65, generator=generator), torch.randint(65, (64,), generator=generator)),
             (torch.randn(1, 3, generator=generator), torch.tensor([2]))]
    for logits, targets in cases:
        got = _call(ex, "cross_entropy", cross_entropy, logits.clone(), targets.clone())
        expected = F.cross_entropy(logits, targets)
        if not isinstance(got, (torch.Tensor, float, np.floating)):
            fail(ex, f"return one number (a 0-d tensor), got {type(got).__name__}.")
        got_t = torch.as_tensor(got, dtype=torch.float64)
        if got_t.numel() != 1:
            fail(ex, f"return one number, the mean over the N positions; got shape "
                     f"{tuple(got_t.shape)}. Hint: finish with .mean().")
        value = float(got_t)
        n = len(targets)
        if n > 1 and math.isclose(value, float(expected) * n, rel_tol=1e-4):
            fail(ex, "you return the sum over positions; the loss is the mean (divide by N).")
        if math.isclose(value, -float(expected), rel_tol=1e-4):
            fail(ex, "the sign is flipped: the loss is MINUS the log-probability of the target.")
        picked = logits[torch.arange(n), targets].mean()
        if n > 1 and math.isclose(value, -float(picked), rel_tol=1e-4):
            fail(ex, "you took the raw logit of the target; normalise first with log_softmax "
                     "(logits minus logsumexp over the vocabulary).")
        close(ex, "cross_entropy(logits, targets)", value, float(expected), atol=1e-5, rtol=1e-4,
              hint="Take log_softmax over the vocabulary (the last dimension), pick each row's "
                   "target column, negate, and average.")
    big = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 500.0, 0.0]])
    got = _call(ex, "cross_entropy", cross_entropy, big.clone(), torch.tensor([1, 1]))
    if not torch.isfinite(torch.as_tensor(got)).all():
        fail(ex, "with logits of size 1000 your loss is not finite: exp(1000) overflows. Subtract "
                 "each row's maximum before exponentiating (or use torch.logsumexp).")
    close(ex, "cross_entropy(big logits)", torch.as_tensor(got, dtype=torch.float64),
          F.cross_entropy(big.double(), torch.tensor([1, 1])), atol=1e-4, rtol=1e-5,
          hint="Subtract each row's maximum before exponentiating.")
    confirm(ex, "your cross-entropy equals F.cross_entropy, and stays finite for huge logits")


# ----------------------------------------------------------------------------------------------
# Exercise 6.2: one AdamW update by hand
# ----------------------------------------------------------------------------------------------
def _torch_adamw_step(p, grad, m, v, step, lr, betas, eps, weight_decay):
    """The reference: one step of torch.optim.AdamW from the given moment estimates."""
    param = torch.nn.Parameter(p.detach().clone().double())
    optimizer = torch.optim.AdamW([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                  foreach=False)
    if step > 1:  # resume from moments accumulated over step - 1 earlier updates
        optimizer.state[param] = {"step": torch.tensor(float(step - 1)),
                                  "exp_avg": m.detach().clone().double(),
                                  "exp_avg_sq": v.detach().clone().double()}
    param.grad = grad.detach().clone().double()
    optimizer.step()
    state = optimizer.state[param]
    return param.detach(), state["exp_avg"], state["exp_avg_sq"]


def check_adamw_step(adamw_step) -> None:
    """``adamw_step(p, grad, m, v, step, lr, betas, eps, weight_decay) -> (p, m, v)``: update
    number ``step`` (1-based) from the previous moments ``m``, ``v`` (all tensors of one shape).
    Compared with ``torch.optim.AdamW``."""
    ex = "6.2"
    _require_callable(ex, "adamw_step", adamw_step)
    generator = torch.Generator().manual_seed(62)
    for step in (1, 2, 10, 500):
        shape = (3, 4)
        p = torch.randn(shape, generator=generator, dtype=torch.float64)
        grad = torch.randn(shape, generator=generator, dtype=torch.float64)
        if step == 1:
            m, v = torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64)
        else:
            m = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
            v = 0.01 * torch.rand(shape, generator=generator, dtype=torch.float64)
        lr, betas, eps, wd = 6e-4, (0.9, 0.95), 1e-8, 0.1
        result = _call(ex, "adamw_step", adamw_step, p.clone(), grad.clone(), m.clone(), v.clone(),
                       step, lr, betas, eps, wd)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            fail(ex, "return three tensors: the new parameter, the new m and the new v.")
        new_p, new_m, new_v = (torch.as_tensor(t, dtype=torch.float64) for t in result)
        ref_p, ref_m, ref_v = _torch_adamw_step(p, grad, m, v, step, lr, betas, eps, wd)
        l2_m = betas[0] * m + (1 - betas[0]) * (grad + wd * p)
        if torch.allclose(new_m, l2_m, atol=1e-12, rtol=1e-9):
            fail(ex, "you added weight_decay * p to the gradient (L2 regularisation, as in Adam). "
                 "AdamW DECOUPLES the decay: m and v see the plain gradient, and p is shrunk by "
                 "lr * weight_decay * p on its own.")
        close(ex, "m", new_m, ref_m, atol=1e-12, rtol=1e-9,
              hint="m is the running mean of gradients: m = beta1 * m + (1 - beta1) * grad.")
        close(ex, "v", new_v, ref_v, atol=1e-12, rtol=1e-9,
              hint="v is the running mean of SQUARED gradients: v = beta2 * v + (1 - beta2) * grad**2.")
        # the two classic mistakes, recognised by name
        b1, b2 = betas
        no_correction = p * (1 - lr * wd) - lr * ref_m / (ref_v.sqrt() + eps)
        if step < 100 and torch.allclose(new_p, no_correction, atol=1e-12, rtol=1e-9):
            fail(ex, "the update lacks the bias correction: divide m by (1 - beta1**step) and v by "
                     "(1 - beta2**step) before using them.")
        m_hat, v_hat = ref_m / (1 - b1 ** step), ref_v / (1 - b2 ** step)
        l2 = p - lr * m_hat / (v_hat.sqrt() + eps)
        if torch.allclose(new_p, l2, atol=1e-12, rtol=1e-9):
            fail(ex, "no weight decay was applied: AdamW also shrinks p by lr * weight_decay * p, "
                     "separately from the Adam step.")
        close(ex, "p", new_p, ref_p, atol=1e-12, rtol=1e-9,
              hint="p <- p - lr * weight_decay * p (decoupled decay, on the OLD p), then "
                   "p <- p - lr * m_hat / (sqrt(v_hat) + eps).")
    confirm(ex, "your AdamW update equals torch.optim.AdamW at steps 1, 2, 10 and 500")


# ----------------------------------------------------------------------------------------------
# Exercise 6.3: the warm-up and linear decay schedule
# ----------------------------------------------------------------------------------------------
def _reference_lr(step: int, peak_lr: float, warmup_steps: int, total_steps: int,
                  final_fraction: float) -> float:
    """Piecewise-linear interpolation through the schedule's corners (numpy), clamped after S."""
    corners_x = [-1, warmup_steps - 1, warmup_steps, total_steps]
    corners_y = [0.0, peak_lr, peak_lr, final_fraction * peak_lr]
    if warmup_steps == 0:
        corners_x, corners_y = [0, total_steps], [peak_lr, final_fraction * peak_lr]
    return float(np.interp(step, corners_x, corners_y))


def check_learning_rate(learning_rate) -> None:
    """``learning_rate(step, peak_lr, warmup_steps, total_steps, final_fraction=0.1)``: linear
    warm-up ``peak * (step + 1) / W`` for ``step < W``, then linear decay to ``final_fraction *
    peak`` at ``step = S``, constant after. Checked at every step of small schedules and at the
    corners of Cerebras-GPT 111M's (W = 1526, S = 9033)."""
    ex = "6.3"
    _require_callable(ex, "learning_rate", learning_rate)
    for peak, warmup, total, f in ((1.0, 10, 50, 0.1), (6e-4, 1526, 9033, 0.1), (3e-3, 5, 5, 0.1),
                                   (2e-3, 20, 100, 0.0)):
        steps = range(total + 5) if total < 200 else (0, 1, 762, 1525, 1526, 1527, 5000, 9032,
                                                      9033, 9100)
        for step in steps:
            got = _call(ex, "learning_rate", learning_rate, step, peak, warmup, total, f)
            expected = _reference_lr(step, peak, warmup, total, f)
            try:
                got = float(got)
            except (TypeError, ValueError):
                fail(ex, f"learning_rate should return a number, got {type(got).__name__}.")
            if not math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12):
                if step < warmup and math.isclose(got, peak * step / warmup, rel_tol=1e-6, abs_tol=1e-15):
                    hint = ("your warm-up starts at 0: use (step + 1) / W so the first update "
                            "already moves the weights and the peak is reached at step W - 1.")
                elif step >= total and math.isclose(got, 0.0, abs_tol=1e-15) and f > 0:
                    hint = "after the last step the rate stays at final_fraction * peak, not 0."
                elif step >= warmup and math.isclose(
                        got, peak * (1 - (step - warmup) / max(total - warmup, 1)), rel_tol=1e-6):
                    hint = "your decay ends at 0; Cerebras-GPT decays to final_fraction (10%) of the peak."
                else:
                    hint = ("warm-up: peak * (step + 1) / W; decay: peak * (1 - (1 - f) * p) with "
                            "p = (step - W) / (S - W); after S: f * peak.")
                fail(ex, f"at step {step} of a schedule (peak {peak:g}, W {warmup}, S {total}, "
                         f"f {f:g}) you give {got:.6g}, expected {expected:.6g}. {hint}")
    confirm(ex, "your schedule matches at every step checked, Cerebras-GPT 111M's included")


# ----------------------------------------------------------------------------------------------
# Exercise 6.4: gradient clipping by the global norm
# ----------------------------------------------------------------------------------------------
def check_clip_gradients(clip_gradients) -> None:
    """``clip_gradients(grads, max_norm) -> (clipped, total_norm)``: ``grads`` a list of tensors;
    the global L2 norm over all of them, and the list scaled by ``min(1, max_norm / total_norm)``.
    Compared with ``torch.nn.utils.clip_grad_norm_``."""
    ex = "6.4"
    _require_callable(ex, "clip_gradients", clip_gradients)
    generator = torch.Generator().manual_seed(64)
    for scale in (5.0, 0.1):  # one case that must be clipped, one that must not
        shapes = [(4, 3), (3,), (2, 2, 2)]
        grads = [scale * torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]
        result = _call(ex, "clip_gradients", clip_gradients, [g.clone() for g in grads], 1.0)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(ex, "return two things: the list of clipped gradients and the total norm.")
        clipped, total_norm = result
        params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        expected_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        close(ex, "total_norm", torch.as_tensor(total_norm, dtype=torch.float64), expected_norm,
              atol=1e-9, rtol=1e-7, hint="The norm is over ALL gradients together: "
              "sqrt(sum over tensors of (g ** 2).sum()), measured before clipping.")
        if not isinstance(clipped, (list, tuple)) or len(clipped) != len(grads):
            fail(ex, f"return a list of {len(grads)} clipped gradients, one per input tensor.")
        clipped = [torch.as_tensor(c, dtype=torch.float64) for c in clipped]
        per_tensor = [g * min(1.0, 1.0 / float(g.norm())) for g in grads]
        if scale > 1 and all(torch.allclose(c, t, atol=1e-9) for c, t in zip(clipped, per_tensor)):
            fail(ex, "you clipped each tensor by its own norm; scale all of them by ONE factor, "
                     "max_norm / (global norm), so the update keeps its direction.")
        if scale < 1 and not all(torch.allclose(c, g, atol=1e-12) for c, g in zip(clipped, grads)):
            fail(ex, "the gradients were changed although their norm is below max_norm: the "
                     "factor is min(1, max_norm / norm), clipping only ever scales DOWN.")
        for i, (c, p) in enumerate(zip(clipped, params)):
            close(ex, f"clipped[{i}]", c, p.grad, atol=1e-9, rtol=1e-6,
                  hint="Multiply every gradient by min(1, max_norm / total_norm).")
    confirm(ex, "your clipping equals torch.nn.utils.clip_grad_norm_, above and below the threshold")
