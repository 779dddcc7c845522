"""Checks for the exercises of chapter 6 (training).

Each check computes its reference from its own inputs with torch's own ops (``F.cross_entropy``,
``torch.optim.AdamW``, ``clip_grad_norm_``, autograd on the whole batch) or numpy, never from a
stored number or a notebook variable, runs the answer on inputs where the common mistakes show
(rows of very different sizes, boundaries, edge cases) and checks that it leaves its inputs
unchanged. A wrong answer gets a hint that names what it got wrong.
"""
from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._core import (ExerciseError, close, confirm, fail, refusing_packages, require_callable,
                    require_no_python_loop, steps_run)
from .ch03 import forbid


def _call(exercise: str, name: str, function, *args):
    """Call the reader's function, turning a crash into a message that says with what input."""
    try:
        return function(*args)
    except ExerciseError:
        raise
    except Exception as error:  # the reader's code failed: say on what, keep the cause
        def shown(a):
            if isinstance(a, torch.Tensor):
                return f"tensor of shape {tuple(a.shape)}"
            if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor):
                return f"list of {len(a)} tensors"
            if isinstance(a, nn.Module):
                return "model"
            return repr(a)
        fail(exercise, f"`{name}({', '.join(shown(a) for a in args)})` raised "
                       f"{type(error).__name__}: {error}")


def _unchanged(exercise: str, name: str, given, original) -> None:
    """Fail if the reader's function changed an input tensor (or a list of them) in place."""
    pairs = list(zip(given, original)) if isinstance(given, (list, tuple)) else [(given, original)]
    if any(not torch.equal(g, o) for g, o in pairs):
        fail(exercise, f"your function changed its input `{name}` in place (an in-place operation "
                       f"such as -=, mul_ or an indexed assignment). Compute new tensors and leave "
                       f"the inputs as they were: the caller still needs them.")


def _scalar(exercise: str, name: str, value) -> float:
    if not isinstance(value, (torch.Tensor, float, int, np.floating)) or isinstance(value, bool):
        fail(exercise, f"`{name}` should return one number (a 0-d tensor), got {type(value).__name__}.")
    t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value,
                        dtype=torch.float64)
    if t.numel() != 1:
        fail(exercise, f"`{name}` should return one number, the mean over the N positions; got "
                       f"shape {tuple(t.shape)}.")
    return float(t)


@contextlib.contextmanager
def _banned(exercise: str, name: str, answer, banned: dict, rule: str):
    """While the answer runs, each function in ``banned`` (``"label": (owner, attribute)``, the
    owner a module or class) raises an :class:`ExerciseError` naming it, also where the answer's
    own globals hold it under another name (``from torch import logsumexp as lse``). Everything
    is put back afterwards, also when the answer fails."""
    replaced = []  # (owner, attribute, original, was in the owner's own __dict__)
    originals = {}
    for label, (owner, attribute) in banned.items():
        original = getattr(owner, attribute)
        originals[id(original)] = label

        def tripwire(*args, _label=label, **kwargs):
            fail(exercise, f"`{name}` calls {_label}, which the exercise rules out: {rule}")
        own = attribute in vars(owner)
        replaced.append((owner, attribute, original, own))
        setattr(owner, attribute, tripwire)
    scope = getattr(answer, "__globals__", None)
    renamed = []
    if isinstance(scope, dict):
        for key, value in list(scope.items()):
            label = originals.get(id(value))
            if label is not None and not isinstance(value, type(contextlib)):
                def tripwire(*args, _label=label, **kwargs):
                    fail(exercise, f"`{name}` calls {_label}, which the exercise rules out: "
                                   f"{rule}")
                renamed.append((key, value))
                scope[key] = tripwire
    try:
        yield
    finally:
        for owner, attribute, original, own in reversed(replaced):
            if own:
                setattr(owner, attribute, original)
            else:
                delattr(owner, attribute)
        for key, value in renamed:
            scope[key] = value


_CE_BANNED = {"F.cross_entropy": (F, "cross_entropy"), "F.nll_loss": (F, "nll_loss"),
              "F.log_softmax": (F, "log_softmax"), "torch.log_softmax": (torch, "log_softmax"),
              "torch.logsumexp": (torch, "logsumexp"),
              "torch.special.log_softmax": (torch.special, "log_softmax"),
              "torch.special.logsumexp": (torch.special, "logsumexp"),
              "Tensor.log_softmax": (torch.Tensor, "log_softmax"),
              "Tensor.logsumexp": (torch.Tensor, "logsumexp")}
_CE_RULE = ("write the normalisation yourself (the max trick, exp, sum, log), without "
            "F.cross_entropy, log_softmax or logsumexp.")


# ----------------------------------------------------------------------------------------------
# Exercise 6.1: next-token cross-entropy by hand
# ----------------------------------------------------------------------------------------------
def check_cross_entropy(cross_entropy) -> None:
    """``cross_entropy(logits, targets)``: ``(N, V)`` float logits and ``(N,)`` int64 targets ->
    the mean over the N rows of ``-log softmax(logits)[target]``, a 0-d tensor, without
    ``F.cross_entropy``, ``log_softmax`` or ``logsumexp``. Compared with ``F.cross_entropy`` on
    random inputs of several shapes, on rows whose sizes differ by a factor of 10^5, and on logits
    large enough that ``exp`` alone overflows; the inputs must come back unchanged."""
    ex = "6.1"
    require_callable(ex, "cross_entropy", cross_entropy)
    generator = torch.Generator().manual_seed(61)
    scales = torch.tensor([[1e-3], [1.0], [10.0], [100.0]])
    cases = [(torch.randn(8, 5, generator=generator), torch.randint(5, (8,), generator=generator)),
             (3 * torch.randn(64, 65, generator=generator), torch.randint(65, (64,), generator=generator)),
             (torch.randn(1, 3, generator=generator), torch.tensor([2])),
             (scales * torch.randn(4, 7, generator=generator), torch.tensor([6, 0, 3, 1]))]
    for logits, targets in cases:
        given_logits, given_targets = logits.clone(), targets.clone()
        with _banned(ex, "cross_entropy", cross_entropy, _CE_BANNED, _CE_RULE):
            got = _call(ex, "cross_entropy", cross_entropy, given_logits, given_targets)
        _unchanged(ex, "logits", given_logits, logits)
        _unchanged(ex, "targets", given_targets, targets)
        value = _scalar(ex, "cross_entropy", got)
        expected = float(F.cross_entropy(logits.double(), targets))
        if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-5):
            continue
        n = len(targets)
        log_p = torch.log_softmax(logits.double(), dim=-1)
        variants = [
            (-float(log_p[torch.arange(n), targets].sum()),
             "you return the sum over positions; the loss is the mean (divide by N)."),
            (-expected, "the sign is flipped: the loss is MINUS the log-probability of the target."),
            (-float(logits[torch.arange(n), targets].double().mean()),
             "you took the raw logit of the target; normalise first (subtract the log of the sum "
             "of the exponentials of the row)."),
            (expected / math.log(2), "that is the loss in bits (log2); the loss is in nats, the "
                                     "natural log."),
            (-float(torch.log_softmax(logits.double(), dim=0)[torch.arange(n), targets].mean()),
             "you normalised over the positions (dim 0); each row's softmax runs over the "
             "vocabulary, the last dimension."),
            (-float(log_p.mean()), "you averaged the log-probabilities of every token, not only of "
                                   "each row's target: pick one column per row."),
            (-float(log_p[:, targets].mean()), "logits[:, targets] picks every row's target for "
                                               "every row, an (N, N) block; pick one per row: "
                                               "logits[torch.arange(N), targets]."),
        ]
        hint = next((text for v, text in variants if n > 1 and math.isclose(value, v, rel_tol=1e-4)),
                    "take the log-softmax over the vocabulary (the last dimension), pick each "
                    "row's target column, negate, and average.")
        fail(ex, f"on logits of shape {tuple(logits.shape)} you give {value:.6g}, F.cross_entropy "
                 f"gives {expected:.6g}. Hint: {hint}")
    # huge logits: each row alone first (exp overflows), then the rows together (one shift for
    # the whole batch underflows the rows whose logits are far below the batch's maximum)
    rows = [(torch.tensor([[1000.0, 0.0, -1000.0]]), torch.tensor([0])),
            (torch.tensor([[0.0, 500.0, 0.0]]), torch.tensor([1])),
            (torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([2])),
            (torch.tensor([[0.0, 1000.0]]), torch.tensor([0]))]  # target far below the max
    for logits, targets in rows:
        with _banned(ex, "cross_entropy", cross_entropy, _CE_BANNED, _CE_RULE):
            got = _scalar(ex, "cross_entropy", _call(ex, "cross_entropy", cross_entropy,
                                                     logits.clone(), targets.clone()))
        expected = float(F.cross_entropy(logits.double(), targets))
        if not math.isfinite(got) and int(targets) != int(logits.argmax()):
            fail(ex, f"with logits {logits[0].tolist()} and target {int(targets)} your loss is "
                     f"not finite, although the right one is {expected:g}: the target's "
                     f"probability is about e^{-expected:g}, which is 0 in float32, and log(0) "
                     f"is -inf. Do not take the log of a probability: keep the log-probability "
                     f"as (shifted logit) minus (log of the sum of the exponentials).")
        if not math.isfinite(got):
            fail(ex, f"with logits {logits[0].tolist()} your loss is not finite: exp(1000) overflows "
                     f"in float32. Subtracting the same number from every logit of a row does not "
                     f"change its softmax.")
        if not math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-4):
            fail(ex, f"with logits {logits[0].tolist()} and target {int(targets)} you give "
                     f"{got:.6g}, expected {expected:.6g}. Subtract the row's maximum before "
                     f"exponentiating, and add it back after the log.")
    together = torch.cat([logits for logits, _ in rows[:3]])
    targets = torch.cat([t for _, t in rows[:3]])
    with _banned(ex, "cross_entropy", cross_entropy, _CE_BANNED, _CE_RULE):
        got = _scalar(ex, "cross_entropy", _call(ex, "cross_entropy", cross_entropy,
                                                 together.clone(), targets.clone()))
    expected = float(F.cross_entropy(together.double(), targets))
    if not math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-4):
        fail(ex, f"the rows {together.tolist()} give the right loss one at a time, but together "
                 f"you give {got:.6g}, expected {expected:.6g}. You subtract one number for the "
                 f"whole batch (its largest logit): exp(2 - 1000) underflows to 0. Subtract each "
                 f"ROW's own maximum (max over dim -1, keepdim=True).")
    confirm(ex, "your cross-entropy equals F.cross_entropy, for rows of any size, and stays finite "
                "for huge logits")


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
    Compared with ``torch.optim.AdamW`` at steps 1, 2, 10 and 500, on gradients whose rows differ
    in size by a factor of 10^8; the inputs must come back unchanged."""
    ex = "6.2"
    require_callable(ex, "adamw_step", adamw_step)
    generator = torch.Generator().manual_seed(62)
    row_scales = torch.tensor([[1e-4], [1.0], [1e4]], dtype=torch.float64)
    for step in (1, 2, 10, 500):
        shape = (3, 4)
        p = torch.randn(shape, generator=generator, dtype=torch.float64)
        grad = torch.randn(shape, generator=generator, dtype=torch.float64) * row_scales
        if step == 1:
            m, v = torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64)
        else:
            m = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64) * row_scales
            v = 0.01 * torch.rand(shape, generator=generator, dtype=torch.float64) * row_scales ** 2
        lr, betas, eps, wd = 6e-4, (0.9, 0.95), 1e-8, 0.1
        inputs = [p.clone(), grad.clone(), m.clone(), v.clone()]
        result = _call(ex, "adamw_step", adamw_step, *inputs, step, lr, betas, eps, wd)
        for name, given, original in zip(("p", "grad", "m", "v"), inputs, (p, grad, m, v)):
            _unchanged(ex, name, given, original)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            fail(ex, "return three tensors: the new parameter, the new m and the new v.")
        new_p, new_m, new_v = (torch.as_tensor(t, dtype=torch.float64) for t in result)
        if not all(torch.isfinite(t).all() for t in (new_p, new_m, new_v)):
            fail(ex, f"at step {step} your update is not finite (NaN or inf). If you used step - 1 "
                     f"in the bias correction: the first update is step = 1, and 1 - beta**1 is "
                     f"already non-zero.")
        ref_p, ref_m, ref_v = _torch_adamw_step(p, grad, m, v, step, lr, betas, eps, wd)
        b1, b2 = betas
        l2_m = b1 * m + (1 - b1) * (grad + wd * p)
        if torch.allclose(new_m, l2_m, atol=1e-12, rtol=1e-9):
            fail(ex, "you added weight_decay * p to the gradient (L2 regularisation, as in Adam). "
                 "AdamW DECOUPLES the decay: m and v see the plain gradient, and p is shrunk by "
                 "lr * weight_decay * p on its own.")
        close(ex, "m", new_m, ref_m, atol=1e-12, rtol=1e-9,
              hint="m is the running mean of gradients: m = beta1 * m + (1 - beta1) * grad.")
        if torch.allclose(new_v, b2 * v + (1 - b2) * (grad ** 2).mean(), atol=1e-12, rtol=1e-9):
            fail(ex, "your v averages the squared gradient over the whole tensor. Adam keeps one v "
                     "per ELEMENT, so each weight is scaled by its own gradient's size (the rows "
                     "here differ by a factor of 10^8).")
        close(ex, "v", new_v, ref_v, atol=1e-12, rtol=1e-9,
              hint="v is the running mean of SQUARED gradients: v = beta2 * v + (1 - beta2) * grad**2.")
        m_hat, v_hat = ref_m / (1 - b1 ** step), ref_v / (1 - b2 ** step)
        adam = lr * m_hat / (v_hat.sqrt() + eps)
        variants = [
            (p * (1 - lr * wd) - lr * ref_m / (ref_v.sqrt() + eps), step < 100,
             "the update lacks the bias correction: divide m by (1 - beta1**step) and v by "
             "(1 - beta2**step) before using them."),
            (p * (1 - lr * wd) - lr * (ref_m / (1 - b1 ** (step + 1)))
             / ((ref_v / (1 - b2 ** (step + 1))).sqrt() + eps), step < 100,
             "your bias correction uses step + 1; `step` already counts from 1 (beta**step)."),
            (p - adam, True, "no weight decay was applied: AdamW also shrinks p by lr * weight_decay "
                             "* p, separately from the Adam step."),
            ((p - adam) * (1 - lr * wd), True,
             "you decayed the NEW p, after the Adam step; the decay applies to the old p: "
             "p * (1 - lr * weight_decay) - lr * m_hat / (sqrt(v_hat) + eps)."),
            (p * (1 - wd) - adam, True, "the decay must be scaled by the learning rate too: "
                                        "p * (1 - lr * weight_decay)."),
            (p * (1 - lr * wd) - lr * m_hat / (v_hat + eps).sqrt(), True,
             "eps goes outside the square root: sqrt(v_hat) + eps (it matters for weights whose "
             "gradients are tiny, like the first row here)."),
        ]
        for value, applies, text in variants:
            if applies and torch.allclose(new_p, value, atol=1e-13, rtol=1e-10) and not \
                    torch.allclose(value, ref_p, atol=1e-13, rtol=1e-10):
                fail(ex, f"at step {step}: {text}")
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
    if step >= total_steps:
        return final_fraction * peak_lr
    if warmup_steps == 0:
        corners_x, corners_y = [0, total_steps], [peak_lr, final_fraction * peak_lr]
    else:
        corners_x = [-1, warmup_steps - 1, warmup_steps, total_steps]
        corners_y = [0.0, peak_lr, peak_lr, final_fraction * peak_lr]
    return float(np.interp(step, corners_x, corners_y))


# Cerebras-GPT 111M: 20 x 111,050,496 tokens in steps of 120 x 2048 tokens, warm-up 375M tokens
_111M_TOTAL = round(20 * 111_050_496 / (120 * 2048))
_111M_WARMUP = math.ceil(375e6 / (120 * 2048))


def _schedule_hint(step: int, got: float, at_mid: float | None, peak: float, warmup: int,
                   total: int, f: float) -> str:
    """What a wrong rate ``got`` at ``step`` most likely comes from (``at_mid``: the answer's rate
    at step W // 2, which tells integer division apart)."""
    span = max(total - warmup, 1)
    mid = warmup // 2
    if at_mid is not None and math.isclose(at_mid, math.floor(peak * (mid + 1) / warmup),
                                           abs_tol=1e-15) and peak * (mid + 1) / warmup % 1:
        return "you used integer division (//); the rate is a float: use /."
    if step < warmup and math.isclose(got, peak * step / warmup, rel_tol=1e-6, abs_tol=1e-15):
        return ("your warm-up starts at 0: use (step + 1) / W so the first update already moves "
                "the weights and the peak is reached at step W - 1.")
    if warmup == total and step >= total and math.isclose(got, peak, rel_tol=1e-6):
        return ("with W = S there is no decay phase: from step S on (step S included) the rate is "
                "final_fraction * peak, whatever the warm-up's formula gives there.")
    if step == warmup and got > peak * (1 + 1e-6):
        return ("at step W the warm-up is over (step < W, not step <= W): the rate must never "
                "exceed the peak.")
    if step >= total and math.isclose(got, 0.0, abs_tol=1e-15) and f > 0:
        return "after the last step the rate stays at final_fraction * peak, not 0."
    if step > total and math.isclose(got, peak * (1 - (1 - f) * (step - warmup) / span),
                                     rel_tol=1e-6):
        return "after step S your line keeps falling; from S on the rate stays at final_fraction * peak."
    if warmup < step < total and math.isclose(
            got, peak * (f + (1 - f) * (1 + math.cos(math.pi * (step - warmup) / span)) / 2),
            rel_tol=1e-6):
        return ("that is the cosine shape of the cell above; this exercise asks for the linear "
                "decay, a straight line from the peak to final_fraction * peak.")
    if warmup < step < total and math.isclose(got, peak * (1 - (step - warmup) / span),
                                              rel_tol=1e-6):
        return "your decay ends at 0; Cerebras-GPT decays to final_fraction (10%) of the peak."
    if step >= warmup and math.isclose(got, peak * (1 - (1 - f) * step / total), rel_tol=1e-6):
        return ("your decay is measured from step 0; it starts at the end of the warm-up: "
                "p = (step - W) / (S - W).")
    if warmup == 0 and step < total:
        return ("with W = 0 there is no warm-up: the decay starts at the peak at step 0 (check "
                "what your warm-up branch gives when W = 0).")
    return ("warm-up: peak * (step + 1) / W; decay: peak * (1 - (1 - f) * p) with "
            "p = (step - W) / (S - W); after S: f * peak.")


def _rates_of(ex: str, learning_rates, steps: torch.Tensor, peak: float, warmup: int, total: int,
              f: float) -> torch.Tensor:
    """The answer's rates for the int64 tensor ``steps``, checked for type, shape, dtype and
    for leaving ``steps`` as it was; returned as float64."""
    before = steps.clone()
    got = _call(ex, "learning_rates", learning_rates, steps, peak, warmup, total, f)
    where = f"for a tensor of {steps.numel()} steps (peak {peak:g}, W {warmup}, S {total}, f {f:g})"
    if not torch.equal(steps, before):
        fail(ex, f"`learning_rates` changed the `steps` tensor it was given {where}; compute new "
                 f"tensors (steps.double(), steps - W, ...) rather than changing it in place.")
    if not isinstance(got, torch.Tensor):
        fail(ex, f"`learning_rates` should return a tensor (one rate per step), got "
                 f"{type(got).__name__} {where}.")
    if got.shape != steps.shape:
        fail(ex, f"`learning_rates` returned shape {tuple(got.shape)} {where}; expected "
                 f"{tuple(steps.shape)}, one rate per step, in the shape of `steps`.")
    if not got.is_floating_point():
        fail(ex, f"`learning_rates` returned integers ({got.dtype}) {where}; the rates are "
                 f"floats: divide with /, not //, or convert the steps first (steps.double()).")
    if got.dtype in (torch.float16, torch.bfloat16):
        fail(ex, f"`learning_rates` returned {got.dtype} {where}: half precision keeps about 3 "
                 f"significant digits, too few for a rate; compute in float32 or float64.")
    return got.detach().to(torch.float64)


def check_learning_rates(learning_rates) -> None:
    """``learning_rates(steps, peak_lr, warmup_steps, total_steps, final_fraction=0.1)``: the
    linear schedule for an int64 tensor of steps of any shape (a floating tensor of the same shape
    back): warm-up ``peak * (step + 1) / W`` for ``step < W``, then a straight line down to
    ``final_fraction * peak`` at ``step = S``, constant after. In tensor operations, without a
    Python loop and without gptlib.schedule. Checked at every step of small schedules (no
    warm-up, a warm-up as long as the run, decay to 0 included), at the corners of Cerebras-GPT
    111M's (W = 1526, S = 9037), and on a 2-D tensor of steps."""
    ex = "6.3"
    require_callable(ex, "learning_rates", learning_rates)
    forbid(ex, "learning_rates", learning_rates, names=("Schedule",), libraries=("gptlib",),
           rule="write the schedule's formula yourself, without gptlib.schedule.")
    require_no_python_loop(ex, "learning_rates", learning_rates,
                           "The exercise asks for every step at once, in tensor operations: "
                           "torch.where(condition, a, b) picks a or b step by step, and "
                           "torch.clamp keeps a value within bounds.")
    looping_answer = learning_rates
    learning_rates = refusing_packages(ex, "learning_rates", learning_rates, ("gptlib",),
                                       "write the schedule's formula yourself, without "
                                       "gptlib.schedule.")
    W, S = _111M_WARMUP, _111M_TOTAL
    corners = (0, 1, W // 2, W - 1, W, W + 1, (W + S) // 2, S - 1, S, S + 63)
    for peak, warmup, total, f in ((1.0, 10, 50, 0.1), (6e-4, W, S, 0.1), (3e-3, 5, 5, 0.1),
                                   (2e-3, 20, 100, 0.0), (1e-3, 0, 40, 0.1), (0.5, 1, 7, 0.25)):
        steps = torch.arange(total + 5) if total < 200 else torch.tensor(corners)
        got = _rates_of(ex, learning_rates, steps, peak, warmup, total, f)
        for step, rate in zip(steps.tolist(), got.tolist()):
            expected = _reference_lr(step, peak, warmup, total, f)
            if math.isclose(rate, expected, rel_tol=1e-6, abs_tol=1e-12):
                continue
            schedule = f"a schedule (peak {peak:g}, W {warmup}, S {total}, f {f:g})"
            if not math.isfinite(rate):
                fail(ex, f"at step {step} of {schedule} your rate is {rate}. A division by zero "
                         f"(by W when W = 0, by S - W when W = S) gives inf or nan. torch.where "
                         f"drops it where it takes the other choice, but any arithmetic on it "
                         f"(a clamp leaves nan as nan; 0 * inf is nan, so a blend of the two "
                         f"choices is too) carries it into the answer.")
            at_mid = None
            if step < warmup:  # the step that tells the classic warm-up mistakes apart
                at_mid = float(_rates_of(ex, learning_rates, torch.tensor([warmup // 2]), peak,
                                         warmup, total, f)[0])
            hint = _schedule_hint(step, rate, at_mid, peak, warmup, total, f)
            fail(ex, f"at step {step} of {schedule} you give {rate:.6g}, expected "
                     f"{expected:.6g}. {hint[0].upper()}{hint[1:]}")
    grid = torch.arange(60).view(6, 10)
    got = _rates_of(ex, learning_rates, grid, 1.0, 10, 50, 0.1)
    expected = torch.tensor([_reference_lr(s, 1.0, 10, 50, 0.1) for s in range(60)],
                            dtype=torch.float64).view(6, 10)
    if not torch.allclose(got, expected, rtol=1e-6, atol=1e-12):
        fail(ex, "on a (6, 10) tensor of the steps 0 to 59 your rates differ from those you give "
                 "for the same steps in one row: work on the tensor as it is, whatever its shape "
                 "(no flattening into a fixed size, no reductions over an axis).")
    # what runs, not only what is written: Python code that runs once per step (map, np.vectorize,
    # Tensor.apply_, recursion, a loop in a helper held in a dict) makes the count grow with steps
    try:
        few, many = (steps_run(looping_answer, torch.arange(n), 1.0, 10, 50, 0.1)
                     for n in (16, 4096))
    except RecursionError:
        fail(ex, "`learning_rates` recursed too deep for a tensor of 4,096 steps: recursion runs "
                 "Python code once per step. The exercise asks for every step at once, in tensor "
                 "operations such as torch.where and torch.clamp.")
    except Exception as error:  # the answer's own crash on a longer tensor: say so
        fail(ex, f"`learning_rates(tensor of 4,096 steps, 1.0, 10, 50, 0.1)` raised "
                 f"{type(error).__name__}: {error}")
    if many > few + 64:
        fail(ex, f"`learning_rates` runs Python code once per step: {few:,} lines of your code "
                 f"ran for 16 steps and {many:,} for 4,096 (map, np.vectorize, Tensor.apply_, a "
                 f"comprehension or recursion all do this). The exercise asks for every step at "
                 f"once, in tensor operations such as torch.where and torch.clamp.")
    confirm(ex, f"your schedule matches at every step checked, Cerebras-GPT 111M's (W = {W:,}, "
                f"S = {S:,}) included, one tensor of steps at a time")


# ----------------------------------------------------------------------------------------------
# Exercise 6.4: gradient clipping by the global norm
# ----------------------------------------------------------------------------------------------
_CLIP_BANNED = {"torch.nn.utils.clip_grad_norm_": (torch.nn.utils, "clip_grad_norm_"),
                "torch.nn.utils.clip_grad.clip_grad_norm_":
                    (torch.nn.utils.clip_grad, "clip_grad_norm_"),
                "torch.nn.utils.clip_grad_norm": (torch.nn.utils, "clip_grad_norm"),
                "torch.nn.utils.get_total_norm": (torch.nn.utils, "get_total_norm"),
                "torch.nn.utils.clip_grads_with_norm_": (torch.nn.utils, "clip_grads_with_norm_")}
_CLIP_RULE = "compute the global norm and the factor yourself, without torch's clipping."


def check_clip_gradients(clip_gradients) -> None:
    """``clip_gradients(grads, max_norm) -> (clipped, total_norm)``: ``grads`` a list of tensors;
    the global L2 norm over all of them, and the list scaled by ``min(1, max_norm / total_norm)``
    (all-zero gradients come back unchanged). Compared with ``torch.nn.utils.clip_grad_norm_`` for
    several thresholds, tensors whose sizes differ by 10^6, a norm exactly at the threshold and a
    zero gradient; the input tensors must come back unchanged."""
    ex = "6.4"
    require_callable(ex, "clip_gradients", clip_gradients)
    generator = torch.Generator().manual_seed(64)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    cases = []
    for scale, max_norm in ((5.0, 1.0), (0.1, 1.0), (5.0, 0.5), (5.0, 3.0)):
        cases.append(([scale * torch.randn(s, generator=generator, dtype=torch.float64)
                       for s in shapes], max_norm))
    cases.append(([torch.randn(6, generator=generator, dtype=torch.float64) * 1e3,
                   torch.randn(5, generator=generator, dtype=torch.float64) * 1e-3], 2.0))
    cases.append(([torch.tensor([3.0, 0.0], dtype=torch.float64),
                   torch.tensor([[4.0]], dtype=torch.float64)], 5.0))     # norm exactly max_norm
    cases.append(([torch.zeros(3, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)], 1.0))
    for grads, max_norm in cases:
        given = [g.clone() for g in grads]
        zero = all(float(g.abs().max()) == 0 for g in grads)
        with _banned(ex, "clip_gradients", clip_gradients, _CLIP_BANNED, _CLIP_RULE):
            try:
                result = clip_gradients(given, max_norm)
            except ExerciseError:
                raise
            except Exception as error:
                if zero:
                    fail(ex, f"with gradients that are all zero (global norm 0) your function "
                             f"raised {type(error).__name__}: {error}. The question says what "
                             f"to do when the norm is 0: nothing needs shortening, so do not "
                             f"divide by it.")
                result = _call(ex, "clip_gradients", clip_gradients, given, max_norm)
        _unchanged(ex, "grads", given, grads)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(ex, "return two things: the list of clipped gradients and the total norm.")
        clipped, total_norm = result
        if isinstance(clipped, torch.Tensor) and isinstance(total_norm, (list, tuple)):
            fail(ex, "the two things come back swapped: return (clipped, total_norm), the list "
                     "of clipped gradients first.")
        if not isinstance(clipped, (list, tuple)) or len(clipped) != len(grads):
            fail(ex, f"return a list of {len(grads)} clipped gradients, one per input tensor.")
        for i, (c, g, mine) in enumerate(zip(clipped, grads, given)):
            if not isinstance(c, torch.Tensor) or c.shape != g.shape:
                shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
                fail(ex, f"clipped[{i}] is {shape}; it should be a tensor of its gradient's shape "
                         f"{tuple(g.shape)} (view a flat result back, e.g. with .view_as(g)).")
            if c.dtype != g.dtype:
                fail(ex, f"clipped[{i}] is {c.dtype}, the gradient {g.dtype}: scale the "
                         f"gradients in their own dtype (converting them rounds them too).")
            if c is mine or (c.numel() and c.data_ptr() == mine.data_ptr()):
                fail(ex, f"clipped[{i}] is the very tensor you were given; the question asks for "
                         f"new ones (multiply by the factor, even when it is 1, or clone), so "
                         f"that the caller's gradients are never shared with the result.")
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        expected_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        norm_value = torch.as_tensor(total_norm, dtype=torch.float64)
        if norm_value.numel() != 1:
            fail(ex, f"total_norm should be one number, got shape {tuple(norm_value.shape)}.")
        if math.isclose(float(norm_value), sum(float(g.norm()) for g in grads), rel_tol=1e-9) and \
                not math.isclose(float(expected_norm), sum(float(g.norm()) for g in grads)):
            fail(ex, "you added up the norms of the tensors. The global norm treats all gradients "
                     "as ONE vector: the square root of the sum of all squares.")
        if not math.isclose(float(norm_value), float(expected_norm), rel_tol=1e-7, abs_tol=1e-9):
            fail(ex, f"total_norm is {float(norm_value):.6g}, expected {float(expected_norm):.6g}. "
                     f"The norm is over ALL gradients together: sqrt(sum over tensors of "
                     f"(g ** 2).sum()), measured before clipping.")
        clipped = [torch.as_tensor(c, dtype=torch.float64) for c in clipped]
        norm = float(expected_norm)
        per_tensor = [g * min(1.0, max_norm / float(g.norm())) if float(g.norm()) > 0 else g
                      for g in grads]
        if norm > max_norm and all(torch.allclose(c, t, atol=1e-12) for c, t in zip(clipped, per_tensor)):
            fail(ex, "you clipped each tensor by its own norm; scale all of them by ONE factor, "
                     "max_norm / (global norm), so the update keeps its direction.")
        if norm > max_norm and all(torch.allclose(c, g * min(1.0, 1.0 / norm), atol=1e-12)
                                   for c, g in zip(clipped, grads)) and max_norm != 1.0:
            fail(ex, f"you clipped to norm 1.0, but max_norm is {max_norm:g} here: use the "
                     f"argument, not a constant.")
        if norm <= max_norm and not all(torch.allclose(c, g, atol=1e-12) for c, g in zip(clipped, grads)):
            fail(ex, f"the gradients were changed although their norm ({norm:g}) is not above "
                     f"max_norm ({max_norm:g}): the factor is min(1, max_norm / norm), clipping "
                     f"only ever scales DOWN.")
        # at or below the threshold the factor must be 1: a nudge by an epsilon added to the norm
        # (torch's 1e-6) is a change, float rounding (1e-12 and less) is not
        ratio = max(float((c / g).nan_to_num(1.0).sub(1).abs().max()) for c, g in zip(clipped, grads))
        if norm <= max_norm and ratio > 1e-10:
            fail(ex, f"the gradients' norm ({norm:g}) is not above max_norm ({max_norm:g}), so they "
                     f"must come back exactly as they were; yours are scaled by a factor off 1 by "
                     f"{ratio:.1e}. (torch's clip_grad_norm_ divides by norm + 1e-6, which nudges "
                     f"them; the exercise asks for min(1, max_norm / norm), exactly 1 here.)")
        for i, (c, p) in enumerate(zip(clipped, params)):
            close(ex, f"clipped[{i}]", c, p.grad, atol=1e-9, rtol=1e-6,
                  hint="Multiply every gradient by min(1, max_norm / total_norm).")
    confirm(ex, "your clipping scales by min(1, max_norm / norm), as torch.nn.utils.clip_grad_norm_ "
                "does but for its 1e-6, above, at and below the threshold, and leaves a zero "
                "gradient alone")


# ----------------------------------------------------------------------------------------------
# Exercise 6.5: gradient accumulation over micro-batches
# ----------------------------------------------------------------------------------------------
class TinyLM(nn.Module):
    """A small causal language model for the accumulation check: each position's logits come from
    the mean of the embeddings up to it. ``forward(idx, targets) -> (logits, loss)`` with ``idx``,
    ``targets`` ``(B, T)``; the loss is the mean cross-entropy over the positions whose target is
    not -1 (NaN if there are none), as ``gptlib.GPT`` computes it."""

    def __init__(self, vocab_size: int = 11, width: int = 6, seed: int = 65):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embedding = nn.Parameter(torch.randn(vocab_size, width, generator=generator))
        self.head = nn.Parameter(torch.randn(width, vocab_size, generator=generator) / width ** 0.5)
        self.calls: list[int] = []

    def forward(self, idx, targets=None):
        self.calls.append(int(idx.size(0)))
        h = self.embedding[idx].cumsum(dim=1) / torch.arange(1, idx.size(1) + 1)[:, None]
        logits = torch.tanh(h) @ self.head  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss


def _accumulation_case(seed: int, sizes, ignored_rows: dict[int, int]):
    """A batch (x, y) of sum(sizes) rows of 9 tokens, with the first k targets of row r set to -1
    for each r: k in ``ignored_rows``."""
    g = torch.Generator().manual_seed(seed)
    B, T = sum(sizes), 9
    x = torch.randint(0, 11, (B, T), generator=g)
    y = torch.randint(0, 11, (B, T), generator=g)
    for row, k in ignored_rows.items():
        y[row, :k] = -1
    return x, y


def check_accumulate_gradients(accumulate_gradients) -> None:
    """``accumulate_gradients(model, x, y, sizes)``: run ``model`` on the micro-batches of ``x``,
    ``y`` ``(B, T)`` given by ``sizes`` (in order), leave in every parameter's ``.grad`` the
    gradient of the whole batch's mean loss over its counted positions (targets of -1 do not count)
    and return that loss. Compared with one backward pass over the whole batch, for equal and
    unequal micro-batches, rows with different numbers of counted positions, a micro-batch with
    none, and parameters that hold stale gradients; ``x`` and ``y`` must come back unchanged and
    the model must be called once per micro-batch."""
    ex = "6.5"
    require_callable(ex, "accumulate_gradients", accumulate_gradients)
    cases = (  # (sizes, {row: leading targets ignored})
        ([8], {}),
        ([2, 2, 2, 2], {}),
        ([1, 3, 4], {}),
        ([2, 2, 4], {0: 5, 3: 2, 6: 8}),           # rows count different numbers of positions
        ([2, 3, 3], {0: 9, 1: 9, 4: 3}),           # the first micro-batch counts nothing
    )
    for n, (sizes, ignored) in enumerate(cases):
        x, y = _accumulation_case(650 + n, sizes, ignored)
        reference = TinyLM()
        _, loss = reference(x, y)
        loss.backward()
        model = TinyLM()
        for p in model.parameters():  # stale gradients from an earlier step
            p.grad = torch.full_like(p, 0.5)
        model.calls.clear()
        given_x, given_y = x.clone(), y.clone()
        got = _call(ex, "accumulate_gradients", accumulate_gradients, model, given_x, given_y,
                    list(sizes))
        _unchanged(ex, "x", given_x, x)
        _unchanged(ex, "y", given_y, y)
        where = f"micro-batches of {sizes} sequences" + (
            f", some targets -1 (rows {sorted(ignored)})" if ignored else "")
        if model.calls and max(model.calls) > max(sizes):
            fail(ex, f"with {where} the model was called on {max(model.calls)} sequences at once: "
                     f"run it on one micro-batch at a time (that is the point: only one "
                     f"micro-batch's activations fit in memory).")
        counted_sizes, start = [], 0
        for size in sizes:
            if (y[start:start + size] != -1).any():
                counted_sizes.append(size)
            start += size
        if sorted(model.calls) not in (sorted(sizes), sorted(counted_sizes)):
            fail(ex, f"with {where} the model was called on batches of {model.calls}; call it once "
                     f"per micro-batch, on x[start:start + size].")
        grads = [p.grad for p in model.parameters()]
        if any(g is None for g in grads):
            fail(ex, "some parameters have no gradient after your function: call backward on each "
                     "micro-batch's (scaled) loss.")
        if not all(torch.isfinite(g).all() for g in grads):
            fail(ex, f"with {where} the gradients hold NaN. A micro-batch whose targets are all -1 "
                     f"has loss NaN (0 / 0), and even 0 * NaN is NaN in the backward pass: skip "
                     f"such a micro-batch, it holds no information.")
        expected = [p.grad for p in reference.parameters()]
        if all(torch.allclose(g, e, atol=1e-6, rtol=1e-5) for g, e in zip(grads, expected)):
            value = _scalar(ex, "accumulate_gradients", got)
            if math.isnan(value):
                fail(ex, f"with {where} the gradients are right but the returned loss is NaN: a "
                         f"micro-batch whose targets are all -1 has loss NaN (0 / 0), and 0 * NaN "
                         f"is still NaN. Skip such a micro-batch.")
            if not math.isclose(value, float(loss.detach()), rel_tol=1e-5, abs_tol=1e-6):
                fail(ex, f"with {where} the gradients are right but the returned loss is {value:.6g}; "
                         f"the whole batch's mean loss is {float(loss.detach()):.6g}. Weight each "
                         f"micro-batch's loss as you weighted its gradient.")
            continue
        if all(torch.allclose(g - 0.5, e, atol=1e-6, rtol=1e-5) for g, e in zip(grads, expected)):
            fail(ex, "your gradients include what the parameters held before (here 0.5 everywhere): "
                     "clear them first (model.zero_grad() or p.grad = None), since backward ADDS "
                     "into .grad.")
        # which weighting did the answer use? (gradients of the micro-batch means, by hand)
        per_micro, counts, start = [], [], 0
        for size in sizes:
            xs, ys = x[start:start + size], y[start:start + size]
            counts.append(int((ys != -1).sum()))
            if counts[-1]:
                twin = TinyLM()
                twin(xs, ys)[1].backward()
                per_micro.append([p.grad for p in twin.parameters()])
            else:
                per_micro.append(None)
            start += size
        total = sum(counts)

        def weighted(weights):
            out = [torch.zeros_like(e) for e in expected]
            for w, g in zip(weights, per_micro):
                if g is not None:
                    out = [o + w * gi for o, gi in zip(out, g)]
            return out

        def matches(candidate):
            return all(torch.allclose(g, c, atol=1e-6, rtol=1e-5) for g, c in zip(grads, candidate))

        k = len(sizes)
        if matches(weighted([1.0] * k)) and k > 1:
            hint = (f"your gradient is the SUM of the {k} micro-batch gradients, {k} times too "
                    f"large when they are equal: scale each micro-batch's loss before backward.")
        elif matches(weighted([1.0 / k] * k)):
            hint = ("you weighted every micro-batch equally (1/k). That is right only when every "
                    "micro-batch counts the same number of positions; weight each by its share of "
                    "the counted positions of the whole batch.")
        elif matches(weighted([s / sum(sizes) for s in sizes])):
            hint = ("you weighted each micro-batch by its share of the SEQUENCES. With targets of "
                    "-1 the sequences count different numbers of positions: weight by the share "
                    "of counted positions, (y_j != -1).sum() / (y != -1).sum().")
        else:
            hint = ("weight micro-batch j's mean loss by n_j / n, its counted positions over the "
                    "whole batch's, so that the weighted losses add up to the batch's mean loss.")
        fail(ex, f"with {where} your accumulated gradient differs from the gradient of the whole "
                 f"batch's mean loss. Hint: {hint}")
    confirm(ex, "your accumulated gradients equal the whole batch's, for equal and unequal "
                "micro-batches, ignored targets, and a micro-batch with nothing to count")
