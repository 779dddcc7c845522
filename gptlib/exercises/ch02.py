"""Checks for the exercises of chapter 2 (embeddings).

References are computed here from the check's own inputs, never from the chapter's variables:
autograd through ``F.embedding`` (2.1), ``torch.optim.AdamW`` itself (2.2), sinusoidal tables
built from complex exponentials with ``torch.polar`` (2.3, 2.4), and parameter counts of real
:class:`gptlib.GPT` modules built on the ``meta`` device (2.5). The sinusoidal table is written
:math:`P` in the chapter (``P[t, 2i] = sin(omega_i t)``, ``P[t, 2i+1] = cos(omega_i t)``).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ._core import confirm, fail, number, require_answer


def _sinusoidal_reference(n_positions: int, d_model: int) -> torch.Tensor:
    """``(T, C)`` float64: columns 2i, 2i+1 hold sin and cos of t * 10000^(-2i/C), from
    e^(i angle)."""
    t = torch.arange(n_positions, dtype=torch.float64)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angle = t[:, None] * omega[None, :]  # (T, C/2)
    z = torch.polar(torch.ones_like(angle), angle)  # cos + i sin
    return torch.stack([z.imag, z.real], dim=-1).reshape(n_positions, d_model)


def _shown(a) -> str:
    return f"tensor of shape {tuple(a.shape)}" if isinstance(a, torch.Tensor) else repr(a)


def _call(exercise: str, name: str, function, *args, hint: str = ""):
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any crash in the reader's code becomes a hint
        fail(exercise, f"`{name}({', '.join(_shown(a) for a in args)})` raised "
                       f"{type(error).__name__}: {error}{hint}")


def _require_callable(exercise: str, name: str, value) -> None:
    require_answer(exercise, **{name: value})
    if not callable(value):
        fail(exercise, f"`{name}` should be a function, got {type(value).__name__}")


def _as_float64(exercise: str, name: str, value, shape) -> torch.Tensor:
    try:
        t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value,
                            dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        fail(exercise, f"`{name}` should return a tensor, got {type(value).__name__}")
    if tuple(t.shape) != tuple(shape):
        fail(exercise, f"`{name}` returned shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t


# ----------------------------------------------------------------------------------------------
class _LargestTensor(TorchDispatchMode):
    """Records the number of elements of the largest tensor any torch operation produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _embedding_grad_cases():
    """(ids, upstream gradient, vocab_size, what the case tests): repeated ids, a batch whose
    rows differ in scale by 10^6, tokens that never occur (the last row included), one id only,
    and a batch of 128 ids over 5,000 tokens, where a one-hot X (640,000 numbers) would dwarf
    the gradient itself (15,000)."""
    g = torch.Generator().manual_seed(21)
    scales = torch.tensor([1e3, 1e-3])[:, None, None]
    return [
        (torch.tensor([3, 0, 3, 7]), torch.randn(4, 6, generator=g, dtype=torch.float64), 10,
         "ids [3, 0, 3, 7] (token 3 twice)"),
        (torch.tensor([[4, 1, 1, 0, 4], [2, 4, 1, 5, 5]]),
         torch.randn(2, 5, 3, generator=g, dtype=torch.float64) * scales, 7,
         "a (2, 5) batch whose rows differ in scale"),
        (torch.full((6,), 2), torch.randn(6, 2, generator=g, dtype=torch.float64), 4,
         "six copies of token 2"),
        (torch.randint(0, 50, (3, 4, 5), generator=g),
         torch.randn(3, 4, 5, 8, generator=g, dtype=torch.float64), 60, "ids of shape (3, 4, 5)"),
        (torch.randint(0, 5000, (4, 32), generator=g),
         torch.randn(4, 32, 3, generator=g, dtype=torch.float64), 5000,
         "128 ids over a vocabulary of 5,000"),
    ]


def check_embedding_grad(embedding_grad) -> None:
    """Exercise 2.1: ``embedding_grad(ids, grad_out, vocab_size) -> (V, C)``, the gradient of the
    loss with respect to the token table, from ids of any shape and ``grad_out`` of shape
    ``ids.shape + (C,)``. Compared with autograd through ``F.embedding``; the reader's function
    runs with autograd off and must not build an ``(N, V)`` tensor (the one-hot ``X``)."""
    ex = "2.1"
    _require_callable(ex, "embedding_grad", embedding_grad)
    for ids, grad_out, V, what in _embedding_grad_cases():
        C = grad_out.shape[-1]
        weight = torch.zeros(V, C, dtype=torch.float64, requires_grad=True)
        (F.embedding(ids, weight) * grad_out).sum().backward()
        expected = weight.grad  # (V, C): X^T G, by autograd
        ids_given, grad_given = ids.clone(), grad_out.clone()
        watch = _LargestTensor()
        try:
            with torch.no_grad(), watch:
                got = embedding_grad(ids_given, grad_given, V)
        except Exception as error:  # noqa: BLE001 - the reader's code failed: say why
            text = str(error)
            if "does not require grad" in text or "does not have a grad_fn" in text:
                hint = ("\nHint: the check runs your function with autograd switched off "
                        "(torch.no_grad()): add up the rows yourself instead of calling "
                        "backward().")
            elif "scalar type" in text or "dtype" in text:
                hint = (f"\nHint: grad_out holds {grad_out.dtype}; create the gradient with "
                        f"dtype=grad_out.dtype (torch.zeros(V, C) is float32).")
            elif ids.dim() > 1:
                hint = ("\nHint: with a batch of ids, flatten ids to (N,) and grad_out to "
                        "(N, C) first.")
            else:
                hint = ""
            fail(ex, f"`embedding_grad({_shown(ids)}, {_shown(grad_out)}, {V})` raised "
                     f"{type(error).__name__}: {error}{hint}")
        if not (torch.equal(ids_given, ids) and torch.equal(grad_given, grad_out)):
            fail(ex, f"on {what}, `embedding_grad` changed its input (`ids` or `grad_out`) in "
                     f"place; compute the gradient in a new tensor and leave the inputs alone.")
        N = ids.numel()
        if N * V >= 10 * max(V * C, N * C) and watch.largest >= N * V:
            fail(ex, f"on {what}, your function built a tensor of {watch.largest:,} numbers, as "
                     f"large as the one-hot X (N x V = {N} x {V}). The point is to get X^T G "
                     f"without X: add each row of grad_out into the row of its token.")
        if isinstance(got, torch.Tensor) and got.dtype != grad_out.dtype \
                and got.dtype.is_floating_point:
            fail(ex, f"on {what}, your gradient has dtype {got.dtype} but grad_out is "
                     f"{grad_out.dtype}: create it with dtype=grad_out.dtype, so no precision "
                     f"is lost (torch.zeros(V, C) is float32).")
        try:
            got = torch.as_tensor(got.detach() if isinstance(got, torch.Tensor) else got,
                                  dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            fail(ex, f"`embedding_grad` should return a (V, C) tensor, got {type(got).__name__}")
        if tuple(got.shape) != (V, C):
            why = ("it is transposed" if tuple(got.shape) == (C, V) else
                   "the table has one row per token of the vocabulary, and tokens that do not "
                   "occur get a row of zeros")
            fail(ex, f"on {what} with vocab_size={V}, the gradient must have the table's shape "
                     f"(V, C) = ({V}, {C}); yours has {tuple(got.shape)}: {why}.")
        if torch.allclose(got, expected, rtol=1e-9, atol=1e-12):
            continue
        counts = torch.bincount(ids.flatten(), minlength=V).to(torch.float64)  # (V,)
        once = counts == 1
        repeated = counts > 1
        if repeated.any() and torch.allclose(got, expected / counts.clamp(min=1)[:, None],
                                             rtol=1e-9, atol=1e-12):
            fail(ex, f"on {what}: a token that occurs several times gets the SUM of the "
                     f"gradients of its positions, not their average.")
        rows_right = torch.isclose(got, expected, rtol=1e-9, atol=1e-12).all(dim=1)  # (V,)
        if rows_right[once | (counts == 0)].all() and not rows_right[repeated].all():
            fail(ex, f"on {what}: the rows of tokens that occur once are right, but a token that "
                     f"occurs several times must get the sum of all its positions' gradients. "
                     f"Indexed assignment (`grad[ids] = ...` and even `grad[ids] += ...`) "
                     f"writes each repeated index once; it does not add them up.")
        if not rows_right[counts == 0].all():
            fail(ex, f"on {what}: tokens that do not occur must get exactly zero gradient.")
        fail(ex, f"on {what}, your gradient differs from autograd's. Row j of dL/dW_E is the sum "
                 f"of grad_out over the positions where ids == j (X^T G).")
    confirm(ex, "your gradient equals autograd's, repeats and batches included")


# ----------------------------------------------------------------------------------------------
def _absent_row_reference(g: torch.Tensor, n: int, lr: float, betas) -> torch.Tensor:
    """The change of a row at step n under torch.optim.AdamW (eps 0, no decay) when its gradient
    is g at step 1 and zero at every later step."""
    w = torch.nn.Parameter(torch.zeros_like(g, dtype=torch.float64))
    optimizer = torch.optim.AdamW([w], lr=lr, betas=betas, eps=0.0, weight_decay=0.0,
                                  foreach=False)
    before = w.detach().clone()
    for step in range(1, n + 1):
        before = w.detach().clone()
        w.grad = g.to(torch.float64).clone() if step == 1 else torch.zeros_like(w)
        optimizer.step()
    return w.detach() - before


def _absent_row_slips(n: int, lr: float, betas) -> dict[str, float]:
    """The step size |w_n - w_(n-1)| that the usual slips give (the step is -size * sign(g))."""
    b1, b2 = betas
    m, v = (1 - b1) * b1 ** (n - 1), (1 - b2) * b2 ** (n - 1)  # per unit g and g^2
    return {
        "no bias correction": lr * m / math.sqrt(v),
        "bias correction without the power n": lr * (m / (1 - b1)) / math.sqrt(v / (1 - b2)),
        "no (1 - beta) factors": lr * (b1 ** (n - 1) / (1 - b1 ** n))
                                    / math.sqrt(b2 ** (n - 1) / (1 - b2 ** n)),
        "corrects sqrt(v) instead of v": lr * (m / (1 - b1 ** n)) / (math.sqrt(v) / (1 - b2 ** n)),
    }


_ABSENT_ROW_HINTS = {
    "no bias correction": "your step lacks Adam's bias correction: divide m by (1 - beta1**n) "
                          "and v by (1 - beta2**n) before using them.",
    "bias correction without the power n": "your bias correction divides by (1 - beta1) and "
                                           "(1 - beta2); at step n it is (1 - beta1**n) and "
                                           "(1 - beta2**n), with the step number as the power.",
    "no (1 - beta) factors": "your m and v lack the factors (1 - beta1) and (1 - beta2) with "
                             "which the step-1 gradient enters them (m_1 = (1 - beta1) g).",
    "corrects sqrt(v) instead of v": "the bias correction divides v by (1 - beta2**n) before "
                                     "the square root is taken, not sqrt(v) after.",
}


def _late_ratio(betas) -> float:
    """|step n+1| / |step n| of torch's AdamW for a row seen at step 1 only, at an n where
    beta2**n < 1e-13 (the bias corrections have died out) but nothing has underflowed yet."""
    b1, b2 = betas
    n = int(math.log(1e-13) / math.log(b2)) + 1
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.AdamW([w], lr=1.0, betas=betas, eps=0.0, weight_decay=0.0,
                                  foreach=False)
    steps = []
    for step in range(1, n + 2):
        with torch.no_grad():
            w.zero_()  # no weight decay, so the step does not depend on w: read it off exactly
        w.grad = torch.full((1,), 1.0 if step == 1 else 0.0, dtype=torch.float64)
        optimizer.step()
        steps.append(abs(w.item()))
    if not steps[-2] > 1e-250:
        raise RuntimeError(f"betas {betas}: the reference step underflowed; choose other betas")
    return steps[-1] / steps[-2]


def check_absent_row_step(absent_row_step, shrink) -> None:
    """Exercise 2.2: ``absent_row_step(g, n, lr, betas) -> tensor like g``: how Adam moves a row
    at step ``n`` when the row's gradient was ``g`` at step 1 and zero ever since (eps and
    weight decay 0), compared with ``torch.optim.AdamW`` for several n, betas, rates and rows of
    very different scales; then ``shrink(betas)``, the factor by which that step shrinks from one
    step to the next as n grows large, compared with the limit of torch's own steps."""
    ex = "2.2"
    _require_callable(ex, "absent_row_step", absent_row_step)
    gen = torch.Generator().manual_seed(22)
    g_base = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    g_base = g_base.sign() * (g_base.abs() + 0.1)  # no zero entries
    g_base = g_base * torch.tensor([[1e-4], [1e3]], dtype=torch.float64)  # two very unequal rows
    cases = [(n, 1e-2, (0.9, 0.95)) for n in (1, 2, 3, 10, 40)]
    cases += [(5, 0.1, (0.9, 0.999)), (7, 3e-4, (0.5, 0.9)), (2, 1.0, (0.0, 0.5))]
    for n, lr, betas in cases:
        g = g_base.clone()
        got = _call(ex, "absent_row_step", absent_row_step, g, n, lr, betas)
        if not torch.equal(g, g_base):
            fail(ex, "`absent_row_step` changed `g` in place; leave its input alone.")
        got = _as_float64(ex, "absent_row_step", got, g.shape)
        expected = _absent_row_reference(g_base, n, lr, betas)
        if torch.allclose(got, expected, rtol=1e-7, atol=0.0):
            continue
        b1, b2 = betas
        setting = f"at step n={n} with lr={lr:g}, betas={betas}"
        sign = g_base.sign()
        if n > 1 and torch.count_nonzero(got) == 0:
            fail(ex, f"{setting} the row still moves: its gradient is zero now, but Adam's "
                     f"momentum m still remembers g.")
        if torch.allclose(got, -expected, rtol=1e-7, atol=0.0):
            fail(ex, f"{setting} your step has the wrong sign: Adam moves against the "
                     f"gradient's direction (w <- w - lr * ...).")
        for slip, size in _absent_row_slips(n, lr, betas).items():
            if torch.allclose(got, -size * sign, rtol=1e-7, atol=0.0):
                fail(ex, f"{setting} {_ABSENT_ROW_HINTS[slip]}")
        ratio = got / expected
        if not torch.allclose(ratio[0].median(), ratio[1].median(), rtol=1e-3):
            fail(ex, f"{setting} your step scales with the size of g (the two rows differ by "
                     f"10^7 in scale, and so do your steps). Adam divides m by the square root "
                     f"of v, so how far a row moves does not depend on how large g was.")
        fail(ex, f"{setting} you give {got[0, 0].item():.6g} for the first entry, torch's AdamW "
                 f"moves it by {expected[0, 0].item():.6g}. Write m and v after step 1, then note "
                 f"that each step of zero gradient only multiplies m by beta1 and v by beta2; "
                 f"the bias corrections use the step number n.")

    _require_callable(ex, "shrink", shrink)
    for betas in ((0.9, 0.95), (0.5, 0.8), (0.8, 0.9), (0.95, 0.98)):
        b1, b2 = betas
        got = number(ex, f"shrink({betas})", _call(ex, "shrink", shrink, betas))
        limit = _late_ratio(betas)
        if math.isclose(got, limit, rel_tol=1e-6):
            continue
        slips = {b1: "that is how m shrinks (beta1 per step), but the step is m divided by "
                     "sqrt(v), and v shrinks too",
                 math.sqrt(b2): "that is how sqrt(v) shrinks, but the numerator m shrinks too "
                                "(beta1 per step)",
                 b1 / b2: "the step divides by the SQUARE ROOT of v, so v's factor beta2 "
                          "enters as sqrt(beta2)",
                 b1 * math.sqrt(b2): "v sits in the denominator: as v shrinks the step grows, "
                                     "so sqrt(beta2) divides rather than multiplies"}
        for value, why in slips.items():
            if math.isclose(got, value, rel_tol=1e-9):
                fail(ex, f"shrink({betas}) = {got:.6g}: {why}.")
        if any(got == round(limit, d) for d in range(1, 7)):
            fail(ex, f"shrink({betas}) = {got:g} is the limit rounded, a number copied rather "
                     f"than computed: return the exact factor, a formula of beta1 and beta2.")
        if abs(got / limit - 1) < 0.05:
            fail(ex, f"shrink({betas}) = {got:.6g} is close to the limit {limit:.6g} but not it: "
                     f"at the step you measured, the bias corrections 1 - beta**n still matter. "
                     f"Take n to infinity in your closed form.")
        fail(ex, f"shrink({betas}) = {got:.6g}, but torch's AdamW steps shrink by {limit:.6g} "
                 f"per step once n is large. Divide your closed form at step n + 1 by the one "
                 f"at step n and let n grow.")
    confirm(ex, "absent_row_step matches torch's AdamW, and so does shrink")


# ----------------------------------------------------------------------------------------------
def _row_dot(t: int, k: int, d_model: int) -> float:
    """P[t] . P[t + k] from the two rows alone, each built from its angles (no table)."""
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    a, b = omega * t, omega * (t + k)
    return float((torch.sin(a) * torch.sin(b) + torch.cos(a) * torch.cos(b)).sum())


def check_offset_dot(pe_dot) -> None:
    """Exercise 2.3: ``pe_dot(k, d_model)`` is P[t] . P[t + k] for every t, in closed form (P the
    sinusoidal table), also for an offset of 10^7 positions, far beyond any table."""
    ex = "2.3"
    _require_callable(ex, "pe_dot", pe_dot)
    cases = [(d_model, k) for d_model in (8, 6, 64) for k in (0, 1, 3, 17, 100, -7)]
    cases += [(4096, 10 ** 7), (4096, -(10 ** 7))]
    tables = {d_model: _sinusoidal_reference(140, d_model) for d_model in (8, 6, 64)}
    for d_model, k in cases:
        if d_model in tables:
            table = tables[d_model]
            a, b = (table[:140 - k], table[k:]) if k >= 0 else (table[-k:], table[:140 + k])
            dots = (a * b).sum(dim=-1)  # P[t] . P[t + k] for every t where both exist
            if not torch.allclose(dots, dots[0], atol=1e-9):  # a property of the table itself
                raise RuntimeError("the reference sinusoidal table is wrong: dots depend on t")
            want = float(dots[0])
        else:
            want = _row_dot(12_345, k, d_model)
        try:
            got = pe_dot(k, d_model)
        except Exception as error:  # noqa: BLE001 - the reader's code failed: say why
            hint = ""
            if isinstance(error, MemoryError) or "alloc" in str(error).lower():
                hint = (f" Your function seems to build a table with a row per position (here "
                        f"|k| + 1 = {abs(k) + 1:,} rows): the closed form needs only the C/2 "
                        f"frequencies.")
            fail(ex, f"`pe_dot({k}, {d_model})` raised {type(error).__name__}: {error}.{hint}")
        try:
            got = float(got)
        except (TypeError, ValueError):
            fail(ex, f"`pe_dot({k}, {d_model})` should return a number, "
                     f"got {type(got).__name__}")
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6):
            continue
        if math.isclose(got * (d_model // 2), want, rel_tol=1e-6, abs_tol=1e-6):
            hint = " That is the mean over the C/2 pairs; the dot product is their sum."
        elif k == 0:
            hint = (" For k = 0 it is |P[t]|^2: each of the C/2 (sin, cos) pairs "
                    "contributes sin^2 + cos^2 = 1.")
        else:
            hint = (" Expand sin(a)sin(b) + cos(a)cos(b) for one pair of dimensions, then "
                    "sum over the C/2 frequencies omega_i = 10000^(-2i/C).")
        fail(ex, f"pe_dot({k}, {d_model}) should be {want:.6f}, you gave {got:.6f}.{hint}")
    confirm(ex, "P[t] . P[t+k] right for every t, at offsets up to 10^7")


# ----------------------------------------------------------------------------------------------
def check_rotation(rotation) -> None:
    """Exercise 2.4: ``rotation(omega, k)`` is the 2x2 matrix R with
    ``[sin w(t+k), cos w(t+k)] = R @ [sin wt, cos wt]`` for every t."""
    ex = "2.4"
    _require_callable(ex, "rotation", rotation)
    t = torch.arange(0, 60, dtype=torch.float64)
    for omega, k in ((1.0, 1), (0.1, 5), (10000.0 ** (-0.5), 40), (0.7, 0), (0.3, -4)):
        R = _as_float64(ex, f"rotation({omega:.4g}, {k})",
                        _call(ex, "rotation", rotation, omega, k), (2, 2))
        now = torch.stack([torch.sin(omega * t), torch.cos(omega * t)])  # (2, T)
        later = torch.stack([torch.sin(omega * (t + k)), torch.cos(omega * (t + k))])
        if torch.allclose(R @ now, later, atol=1e-6):
            continue
        if torch.allclose(R.T @ now, later, atol=1e-6):
            hint = ("Your R turns the pair by -omega k (it is the transpose of the right one): "
                    "mind that the vector is ordered (sin, cos), not (cos, sin).")
        elif k != 0 and torch.allclose(R, torch.eye(2, dtype=torch.float64)):
            hint = "R must turn the pair by the angle omega k; yours leaves it where it is."
        else:
            hint = ("Use sin(a+b) = sin a cos b + cos a sin b and cos(a+b) = cos a cos b - "
                    "sin a sin b with a = wt, b = wk; the first row of R multiplies "
                    "[sin wt, cos wt] to give sin w(t+k).")
        fail(ex, f"with omega={omega:.4g}, k={k}, R @ [sin wt, cos wt] is not "
                 f"[sin w(t+k), cos w(t+k)]. {hint}")
    confirm(ex, "R turns each (sin, cos) pair by the angle omega k")


# ----------------------------------------------------------------------------------------------
def _module_params(config) -> tuple[int, int]:
    """(all parameters, position-table parameters) of a real GPT built on the meta device."""
    from ..model import GPT
    with torch.device("meta"):
        model = GPT(config)
    total = sum(p.numel() for p in model.parameters())  # a tied matrix is one Parameter
    return total, model.transformer.wpe.weight.numel()


@functools.lru_cache(maxsize=1)
def _parameters_saved_reference() -> dict[str, tuple[int, int]]:
    """{model: (parameters saved, all parameters)} for every Cerebras-GPT size, from real
    modules: the full model for the total, and one-block models of both vocabularies for the
    saving (the blocks are the same in both, so one block shows the difference)."""
    from ..config import CEREBRAS_GPT, GPTConfig
    out = {}
    for name in CEREBRAS_GPT:
        config = GPTConfig.cerebras(name)
        one_block = config.replace(n_layer=1)
        before, _ = _module_params(one_block)
        after, positions = _module_params(one_block.replace(vocab_size=32000))
        out[name] = (before - (after - positions), config.param_count())
    return out


def check_parameters_saved(saved) -> None:
    """Exercise 2.5: ``saved = {model: parameters}``, what each Cerebras-GPT model would save
    with a 32,000-token vocabulary and sinusoidal (parameter-free) positions."""
    ex = "2.5"
    require_answer(ex, saved=saved)
    from ..config import GPTConfig
    reference = _parameters_saved_reference()
    if not isinstance(saved, dict):
        what = (" (a single number: the exercise asks for every model, keyed by its name)"
                if isinstance(saved, (int, float)) else "")
        fail(ex, f"`saved` should be a dict {{model name: parameters saved}}, got "
                 f"{type(saved).__name__}{what}")
    missing = [name for name in reference if name not in saved]
    extra = [name for name in saved if name not in reference]
    if missing or extra:
        fail(ex, f"`saved` should have one entry per model, keyed {list(reference)}; "
                 f"missing {missing}, unexpected {extra}")
    values = {}
    for name, value in saved.items():
        try:
            got = int(value)
        except (TypeError, ValueError):
            fail(ex, f"`saved[{name!r}]` should be a whole number of parameters, "
                     f"got {type(value).__name__}")
        if got != value:
            fail(ex, f"`saved[{name!r}]` should be a whole number of parameters, got {value!r}")
        values[name] = got
    if len(set(values.values())) == 1:
        fail(ex, "every model gets the same number: the saving is counted in rows of C "
                 "numbers each, and C differs from model to model.")
    for name, (expected, total) in reference.items():
        got = values[name]
        config = GPTConfig.cerebras(name)
        C, V, T_max = config.d_model, config.vocab_size, config.context_length
        if got == expected:
            continue
        if got == expected + (V - 32000) * C:
            fail(ex, f"{name}: {got:,} counts the vocabulary saving twice. Cerebras-GPT ties the "
                     f"output head to the token table: it is the same matrix, counted once.")
        if got == expected - T_max * C:
            fail(ex, f"{name}: {got:,} forgets the position table: sinusoidal positions need no "
                     f"parameters, so all T_max x C of them are saved too.")
        if got == (50000 - 32000) * C + T_max * C:
            fail(ex, f"{name}: {got:,} uses 50,000 tokens: GPT-2's vocabulary is {V:,} ids "
                     f"(256 bytes, 50,000 merges and <|endoftext|>).")
        if got == (V - 32000) * C + 1024 * C:
            fail(ex, f"{name}: {got:,} uses GPT-2's 1,024 positions; Cerebras-GPT's context, "
                     f"and so its position table, is {T_max:,} long.")
        if got == round(100 * expected / total) or got == round(100 * expected / total, 1):
            fail(ex, f"{name}: {got} looks like a percentage; give the number of parameters.")
        fail(ex, f"`saved[{name!r}]` = {got:,} is not right. Count the rows that disappear from "
                 f"the token table (each has C = {C:,} numbers) and the whole position table.")
    over = [name for name, (s, total) in reference.items() if s > 0.05 * total]
    confirm(ex, f"right for all {len(reference)} models; over 5% saved only in "
                f"{', '.join(over)}")
