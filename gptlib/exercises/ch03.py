"""Checks for the exercises of chapter 3 (the attention formula).

Each check makes its own inputs and builds its reference with numpy (or torch's autograd) written
here, never with ``gptlib.model`` and never from the notebook's variables, so a reader's answer is
compared with an independent computation that the reader cannot change by accident. The inputs
are chosen so the common mistakes show: several shapes (not only the example's), fewer queries
than keys, rows of a batch at very different scales, exact zeros where keys are masked. A check
also fails an answer that changes its input in place.

When an answer is wrong, the check recomputes the usual wrong answers (no scale, no mask, the
mask in the wrong place, the softmax over the wrong axis, ...) and names the one that matches;
otherwise it reports the first entry that differs.

Where an exercise rules something out ("build the mask yourself", "no T x T matrix", "matrix
products, not the fused kernel"), the check enforces it: it reads the names the answer's code
uses (following the reader's own helper functions) and refuses the library calls the exercise
excludes, and 3.2 also watches the sizes of the tensors the answer creates.
"""
from __future__ import annotations

import dis
import math
import types

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ._core import close, confirm, fail, require_answer, require_callable


# ----------------------------------------------------------------------------------------------
# Shared helpers (chapter 5's checks use _call and _to_numpy too)
# ----------------------------------------------------------------------------------------------
def _to_numpy(exercise: str, name: str, value) -> np.ndarray:
    """An answer (tensor, array or nested list) as a float64 numpy array, or a clear failure."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(exercise, f"`{name}` should be a tensor, got {type(value).__name__}.")


def _call(exercise: str, name: str, function, *args):
    """Call the reader's function, turning a crash or a missing result into a hint."""
    require_answer(exercise, **{name: function})
    if not callable(function):
        fail(exercise, f"`{name}` should be a function (def {name}(...): ...), got "
                       f"{type(function).__name__}.")
    try:
        result = function(*args)
    except Exception as e:  # the reader's code; report what went wrong and where
        fail(exercise, f"calling `{name}` raised {type(e).__name__}: {e}")
    if result is None or result is Ellipsis:
        fail(exercise, f"`{name}` returned {result!r}: did you forget the `return`?")
    return result


def _run_tensor(exercise: str, name: str, function, inputs: dict, case: str,
                crash_hint=None) -> torch.Tensor:
    """Call ``function(*inputs.values())``, then check it returned a tensor and left every tensor
    input unchanged; return the result, detached. ``case`` says in words which input this was;
    ``crash_hint(error)`` may add a sentence to the message when the answer raises."""
    require_callable(exercise, name, function)
    before = {k: v.clone() for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    try:
        result = function(*inputs.values())
    except Exception as e:  # the reader's code failed: say on what
        extra = crash_hint(e) if crash_hint is not None else ""
        fail(exercise, f"`{name}` raised {type(e).__name__} on {case}: {e}"
                       + (f". {extra}" if extra else ""))
    if result is None or result is Ellipsis:
        fail(exercise, f"`{name}` returned {result!r}: did you forget the `return`?")
    for key, old in before.items():
        if not torch.equal(inputs[key], old):
            fail(exercise, f"`{name}` changed its input `{key}` in place (on {case}). The caller "
                           f"still needs it: compute new tensors (x / 2, masked_fill) instead of "
                           f"writing into the argument (x /= 2, masked_fill_, x[...] = ...).")
    if not isinstance(result, torch.Tensor):
        fail(exercise, f"`{name}` should return a tensor, got {type(result).__name__}.")
    return result.detach().cpu()


def _run(exercise: str, name: str, function, inputs: dict, case: str,
         crash_hint=None) -> np.ndarray:
    """:func:`_run_tensor`, with the result as a float64 numpy array."""
    return _run_tensor(exercise, name, function, inputs, case, crash_hint).double().numpy()


def keepdim_hint(error: Exception) -> str:
    """For a crash of a row-wise answer: a broadcasting error is usually a lost row dimension."""
    if isinstance(error, RuntimeError) and "must match the size" in str(error):
        return ("A reduction over the last dimension (sum, mean) drops that dimension unless you "
                "pass keepdim=True, and the result then no longer lines up with the rows.")
    return ""


def _code_of(function):
    """The code object of a Python function, a bound method or a callable object, or None."""
    for candidate in (function, getattr(function, "__func__", None),
                      getattr(type(function), "__call__", None)):
        code = getattr(candidate, "__code__", None)
        if isinstance(code, types.CodeType):
            return candidate, code
    return None, None


def names_used(function) -> tuple[set, list]:
    """What an answer's code refers to: the global and attribute names in its code (nested
    functions and lambdas included), and ``(name, object)`` for each global (or closure
    variable) it uses. The reader's own helper functions that it calls are followed, so a helper
    copied from the chapter counts as part of the answer."""
    names, objects, seen = set(), [], set()
    pending = [function]
    while pending:
        holder, code = _code_of(pending.pop())
        if code is None or code in seen:
            continue
        seen.add(code)
        own, stack = set(), [code]
        while stack:
            c = stack.pop()
            own.update(c.co_names)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        names |= own
        scope = getattr(holder, "__globals__", {})
        found = [(n, scope[n]) for n in sorted(own) if n in scope]
        free = getattr(code, "co_freevars", ())
        cells = getattr(holder, "__closure__", None) or ()
        found += [(n, cell.cell_contents) for n, cell in zip(free, cells) if _cell_filled(cell)]
        for global_name, value in found:
            objects.append((global_name, value))
            if isinstance(value, (types.FunctionType, types.MethodType)) and \
                    not _library_object(value):
                pending.append(value)
    return names, objects


_ATTRIBUTE_OPS = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "IMPORT_NAME", "IMPORT_FROM"}


def attribute_names(function) -> set:
    """The names an answer's code reads as attributes or imports (``F.rms_norm`` gives
    ``rms_norm``; ``from torch import nn`` gives ``torch`` and ``nn``), in its own code, nested
    code and the reader's helpers that :func:`names_used` follows."""
    found: set = set()
    helpers = [value for _, value in names_used(function)[1]
               if isinstance(value, (types.FunctionType, types.MethodType))
               and not _library_object(value)]
    for holder in [function] + helpers:
        _, code = _code_of(holder)
        stack = [code] if code is not None else []
        while stack:
            c = stack.pop()
            found.update(i.argval for i in dis.get_instructions(c) if i.opname in _ATTRIBUTE_OPS)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return found


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _library_object(value) -> str:
    """'gptlib', 'torch' or 'wse_demo' if ``value`` (a module, function or class) comes from one,
    else ''."""
    module = value.__name__ if isinstance(value, types.ModuleType) else \
        getattr(value, "__module__", None)
    if not isinstance(module, str):
        return ""
    for library in ("gptlib", "torch", "wse_demo"):
        if module == library or module.startswith(library + "."):
            return library
    return ""


def forbid(exercise: str, name: str, function, names=(), libraries=("gptlib",),
           rule: str = "") -> None:
    """Fail if the answer ``function`` uses one of ``names`` (as a global or an attribute, e.g.
    ``F.scaled_dot_product_attention``) or anything from ``libraries``; ``rule`` is the sentence
    of the exercise it breaks."""
    library = _library_object(function)
    if library and library in libraries:
        fail(exercise, f"`{name}` is {library}'s own "
                       f"`{getattr(function, '__name__', type(function).__name__)}`, which the "
                       f"exercise rules out: {rule}")
    used, objects = names_used(function)
    # A banned name counts as an attribute (F.rms_norm, p.numel()) or an import, wherever it
    # is; as a bare global only when it is not the reader's own function or class (a helper of
    # theirs may be called `parameters`).
    attributes = attribute_names(function)
    own = {n for n, v in objects if isinstance(v, (types.FunctionType, type)) and
           not _library_object(v)}
    for bad in names:
        if bad in attributes or (bad in used and bad not in own):
            fail(exercise, f"`{name}` uses `{bad}`, which the exercise rules out: {rule}")
    for global_name, value in objects:
        library = _library_object(value)
        if library and library in libraries:
            fail(exercise, f"`{name}` uses `{global_name}` from {library}, which the exercise "
                           f"rules out: {rule}")


class _LargestTensor(TorchFunctionMode):
    """Records the largest number of entries of any tensor a torch call creates while active."""

    def __init__(self):
        super().__init__()
        self.largest, self.shape = 0, ()

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(t, torch.Tensor) and t.numel() > self.largest:
                self.largest, self.shape = t.numel(), tuple(t.shape)
        return out


def _same(got: np.ndarray, other: np.ndarray, atol: float = 1e-6) -> bool:
    """True if ``got`` equals ``other`` (same shape, close, NaN where ``other`` has NaN)."""
    return got.shape == other.shape and np.allclose(got, other, atol=atol, rtol=1e-5,
                                                    equal_nan=True)


def _softmax(s: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax over ``axis``, stable per row; a row that is all -inf gives NaN (0 / 0)."""
    top = np.max(s, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(s - top)
        return e / e.sum(axis=axis, keepdims=True)


def _mask(t_query: int, t_key: int, offset: int = 0) -> np.ndarray:
    """``(T_q, T_k)`` bool: query i (the newest T_q of T_k positions) sees keys up to
    ``T_k - T_q + i + offset``. ``offset`` = 0 is the right mask; others are readers' mistakes."""
    i = np.arange(t_query)[:, None]
    j = np.arange(t_key)[None, :]
    return j <= t_key - t_query + i + offset


def _attend(q, k, v, *, scale=None, allowed=None, fill=-np.inf, axis=-1, zero_after=False):
    """softmax(q k^T * scale, masked) v in numpy, with switches for the usual mistakes."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("...id,...jd->...ij", q, k) * scale
    if allowed is not None and not zero_after:
        s = np.where(allowed, s, fill)
    w = _softmax(s, axis=axis)
    if allowed is not None and zero_after:
        w = np.where(allowed, w, 0.0)
    with np.errstate(invalid="ignore"):
        return np.einsum("...ij,...jd->...id", w, v)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# Exercise 3.1: attention with fewer queries than keys (what a KV cache needs)
# ----------------------------------------------------------------------------------------------
CACHE_CASES = (  # leading dims, T_q, T_k, D
    ((3,), 6, 6, 8),        # no cache: ordinary causal attention, rows at three scales
    ((2,), 1, 5, 8),        # one new token that sees the whole cache
    ((2, 3), 3, 7, 16),     # three new tokens after four cached ones, batch and heads
    ((), 4, 9, 4),          # no leading dimensions at all
    ((3,), 2, 6, 4),        # rows at three scales again, now with a cache
)


def _cache_inputs(lead, t_query, t_key, d, seed):
    g = _generator(seed)
    q = torch.randn(*lead, t_query, d, generator=g, dtype=torch.float64)
    k = torch.randn(*lead, t_key, d, generator=g, dtype=torch.float64)
    v = torch.randn(*lead, t_key, d, generator=g, dtype=torch.float64)
    if lead == (3,):  # the batch's rows at very different scales
        scales = torch.tensor([0.2, 1.0, 30.0], dtype=torch.float64)[:, None, None]
        q, k = q * scales, k * scales
    return q, k, v


def _attention_diagnosis(got, q, k, v, allowed, t_query, t_key, expected_shape, where):
    """The hint for a wrong attention output, by recomputing the usual mistakes."""
    d = q.shape[-1]
    if got.shape != expected_shape:
        if got.shape[-1] == t_key and got.shape[:-1] == expected_shape[:-1]:
            return (f"on {where} the result has shape {got.shape}, which looks like the weights "
                    f"(one per key). Return the weighted sum of the values, shape "
                    f"{expected_shape} (..., T_q, D).")
        return f"on {where} the result should have shape {expected_shape} (..., T_q, D), got {got.shape}."
    off = t_key - t_query
    mistakes = [
        (dict(allowed=_mask(t_query, t_key, -off)),
         "the mask lines query i up with key i, as if the queries were the first T_q positions. "
         "They are the newest ones: query i sits at position T_k - T_q + i and may see every key "
         "up to there."),
        (dict(allowed=None), "queries attend to keys after their own position: the causal mask is "
                             "missing."),
        (dict(allowed=_mask(t_query, t_key, +1)),
         "each query also sees the one key just after its own position: the mask is off by one."),
        (dict(allowed=_mask(t_query, t_key, -1)),
         "each query is kept from its own key: the mask is off by one (a token may attend to "
         "itself)."),
        (dict(allowed=allowed, fill=0.0),
         "masked keys still get weight: a masked score set to 0 becomes exp(0) = 1 before "
         "normalising. Masked scores must be -inf."),
        (dict(allowed=allowed, zero_after=True),
         "the weights are zeroed after the softmax, so each row no longer sums to 1. Mask the "
         "scores before the softmax, so it renormalises over the keys a query may see."),
        (dict(allowed=allowed, scale=1.0), f"the scores are not scaled: divide them by sqrt(D), "
                                           f"D = {d} here (the last dimension of q)."),
        (dict(allowed=allowed, scale=1 / d), "you divided the scores by D; the standard scale is "
                                             "1/sqrt(D) (1/D is muP's, section 3.7)."),
        (dict(allowed=allowed, scale=1 / math.sqrt(t_key)),
         "the scale uses the number of keys; it comes from the head size D, the last dimension "
         "of q and k."),
        (dict(allowed=allowed, scale=1 / math.sqrt(max(t_query, 1))),
         "the scale uses the number of queries; it comes from the head size D, the last "
         "dimension of q and k."),
        (dict(allowed=allowed, axis=-2),
         "the softmax runs over the queries (dim -2); each query's weights over the keys (the "
         "last dimension) must sum to 1."),
    ]
    if off > 0:  # with T_q = T_k the offset is 0 and its sign cannot be wrong
        mistakes.insert(1, (dict(allowed=_mask(t_query, t_key, -2 * off)),
                            "the mask's diagonal offset has the wrong sign: query i then sees "
                            "keys only up to i - (T_k - T_q), so the first queries see no key at "
                            "all and their softmax is 0 / 0 (NaN). Query i sits at position "
                            "T_k - T_q + i."))
    for switches, hint in mistakes:
        if _same(got, _attend(q, k, v, **switches)):
            return f"on {where}, {hint}"
    nan_rows = np.isnan(got).any(axis=-1).reshape(-1, t_query)       # (leading, T_q)
    if nan_rows.any() and (nan_rows == nan_rows[:1]).all() and nan_rows[0, 0]:
        return (f"on {where} the first queries' outputs are NaN in every batch row: those queries "
                f"see no key at all, and a softmax over nothing is 0 / 0. Check the mask: query i "
                f"sits at position T_k - T_q + i and sees every key up to there, its own "
                f"included.")
    if np.isnan(got).any():
        return (f"on {where} some outputs are NaN (0 / 0 in a softmax): if you subtract a maximum "
                f"before exp, take it per row, over the keys; a maximum over the whole tensor "
                f"underflows every row whose scores are far smaller (the rows here differ in scale "
                f"by 150x).")
    return ""


def check_cached_attention(cached_attention) -> None:
    """Exercise 3.1: ``cached_attention(q, k, v)``: causal attention where the ``T_q`` queries are
    the last ``T_q`` of the ``T_k`` positions. ``q``: ``(..., T_q, D)``; ``k``, ``v``:
    ``(..., T_k, D)``; returns ``(..., T_q, D)``."""
    ex = "3.1"
    require_callable(ex, "cached_attention", cached_attention)
    forbid(ex, "cached_attention", cached_attention,
           names=("scaled_dot_product_attention", "causal_mask", "MultiheadAttention"),
           rule="build the mask yourself and write the scores, the softmax and the weighted sum "
                "with matrix products (not gptlib's attention or causal_mask, not "
                "F.scaled_dot_product_attention).")
    for n, (lead, t_query, t_key, d) in enumerate(CACHE_CASES):
        q, k, v = _cache_inputs(lead, t_query, t_key, d, seed=310 + n)
        shape = tuple(lead) + (t_query, d)
        where = f"q {tuple(q.shape)}, k and v {tuple(k.shape)} (T_q = {t_query}, T_k = {t_key})"
        got = _run(ex, "cached_attention", cached_attention, {"q": q, "k": k, "v": v}, where)
        qn, kn, vn = q.numpy(), k.numpy(), v.numpy()
        allowed = _mask(t_query, t_key)
        expected = _attend(qn, kn, vn, allowed=allowed)
        if _same(got, expected, atol=1e-6) and not np.isnan(got).any():
            continue
        hint = _attention_diagnosis(got, qn, kn, vn, allowed, t_query, t_key, shape, where)
        if hint:
            fail(ex, hint)
        close(ex, "cached_attention(q, k, v)", got, expected, atol=1e-6,
              hint=f"(on {where}) Query i may see keys 0 .. T_k - T_q + i; the scores are "
                   f"q k^T / sqrt(D), masked with -inf, softmax over the keys, times v.")
    confirm(ex, "cached_attention is right for T_q = T_k, T_q = 1 and T_q < T_k")


# ----------------------------------------------------------------------------------------------
# Exercise 3.2: the softmax's backward pass, derived
# ----------------------------------------------------------------------------------------------
def _backward_inputs(shape, seed, masked=False):
    """Scores at three scales per row (flat to nearly one-hot), and upstream gradients whose rows
    also differ in size; ``masked`` sets a causal pattern of -inf (probabilities exactly 0)."""
    g = _generator(seed)
    s = torch.randn(*shape, generator=g, dtype=torch.float64)
    rows = s.shape[-2] if s.dim() > 1 else 1
    row_scale = torch.tensor([0.1, 1.0, 8.0], dtype=torch.float64).repeat(rows)[:rows]
    grad_scale = torch.tensor([1.0, 50.0, 0.02], dtype=torch.float64).repeat(rows)[:rows]
    if s.dim() > 1:
        s = s * row_scale[:, None]
    if masked:
        T = shape[-1]
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    grad_p = torch.randn(*shape, generator=g, dtype=torch.float64)
    if grad_p.dim() > 1:
        grad_p = grad_p * grad_scale[:, None]
    return s, grad_p


def check_softmax_backward(softmax_backward) -> None:
    """Exercise 3.2: ``softmax_backward(p, grad_p)`` returns dL/ds for ``p = softmax(s)`` over the
    last dimension and ``grad_p = dL/dp``, both ``(..., T)``; the reference is torch's autograd."""
    ex = "3.2"
    require_callable(ex, "softmax_backward", softmax_backward)
    forbid(ex, "softmax_backward", softmax_backward, libraries=("gptlib",),
           names=("diag_embed", "diag", "diagflat", "eye", "outer", "ger", "kron", "jacobian",
                  "autograd", "backward", "grad", "vjp", "jvp", "vmap"),
           rule="derive dL/ds and compute it from p and grad_p alone, without autograd and "
                "without building the T x T Jacobian.")
    cases = (((6,), False), ((3, 5), False), ((2, 4, 4), True), ((3, 7), False))
    for n, (shape, masked) in enumerate(cases):
        s, grad_p = _backward_inputs(shape, seed=320 + n, masked=masked)
        s.requires_grad_(True)
        p = torch.softmax(s, dim=-1)
        (expected,) = torch.autograd.grad(p, s, grad_outputs=grad_p)
        expected = expected.numpy()
        p = p.detach()
        where = (f"p and grad_p of shape {tuple(shape)}" + (" with masked (zero) probabilities"
                                                            if masked else ""))
        watch = _LargestTensor()
        with watch:
            got = _run(ex, "softmax_backward", softmax_backward,
                       {"p": p.clone(), "grad_p": grad_p}, where, crash_hint=keepdim_hint)
        if watch.largest > 2 * p.numel():
            fail(ex, f"on {where} your answer builds a tensor of shape {watch.shape}, "
                     f"{watch.largest // p.numel()} times the size of p: a T x T matrix per row "
                     f"(the Jacobian, or an outer product of p with itself). The exercise asks "
                     f"for the gradient without one: simplify the sum in (J^T g)_j until only "
                     f"p and g are left.")
        if got.shape != expected.shape:
            fail(ex, f"on {where} the result should keep the shape {tuple(shape)} (one gradient "
                     f"per score), got {got.shape}.")
        if _same(got, expected, atol=1e-9):
            continue
        P, G = p.numpy(), grad_p.numpy()
        inner = (P * G).sum(-1, keepdims=True)
        mistakes = [
            (G, "that is grad_p itself, the gradient with respect to the probabilities; the "
                "question asks for the gradient with respect to the scores s."),
            (P * (1 - P) * G, "you kept only the diagonal of the Jacobian, dp_j/ds_j = p_j (1 - "
                              "p_j). Raising one score also lowers every other probability (the "
                              "-p_i p_j terms), and those terms carry gradient too."),
            (P * (G - (P * G).sum()), "the inner product sum_i p_i g_i is taken over the whole "
                                      "tensor; it belongs to each row (one softmax per row)."),
            (P * (G - G.sum(-1, keepdims=True)), "the sum subtracted from g is not weighted: "
                                                 "in (J^T g)_j each g_i comes with the p_i of "
                                                 "its row of J; keep it when you simplify."),
            (P * (G - G.mean(-1, keepdims=True)), "you subtracted the plain mean of g over the "
                                                  "row. The derivation gives another average: "
                                                  "in (J^T g)_j each g_i comes with the p_i of "
                                                  "its row of J; keep it when you simplify."),
            (G - inner, "the whole result must be multiplied by p elementwise (a key the softmax "
                        "gives no weight gets no gradient)."),
            (P * (inner - G), "the sign is flipped: raising s_j by a little raises the loss by "
                              "p_j (g_j - sum_i p_i g_i) times that little."),
            (P * G, "the term that comes from the normaliser is missing: each p_i depends on s_j "
                    "through the sum in the denominator too."),
        ]
        if P.ndim > 1:
            mistakes.append((P * (G - (P * G).sum(0, keepdims=True)),
                             "the inner product sum_i p_i g_i runs over the wrong dimension: the "
                             "softmax normalises over the last one."))
        for wrong, hint in mistakes:
            if _same(got, wrong, atol=1e-9):
                fail(ex, f"on {where}, {hint}")
        close(ex, "softmax_backward(p, grad_p)", got, expected, atol=1e-9,
              hint=f"(on {where}) Compare your formula with autograd on one small row: the "
                   f"answer is J^T g for the Jacobian J derived in section 3.3.")
    confirm(ex, "softmax_backward equals autograd, masked keys included")


# ----------------------------------------------------------------------------------------------
# Exercise 3.3: grouped-query attention
# ----------------------------------------------------------------------------------------------
GQA_CASES = (  # B, H, G, T, D
    (3, 4, 2, 5, 8),    # two groups of two heads; the batch's rows at three scales
    (1, 6, 3, 4, 4),    # three groups of two
    (2, 8, 2, 3, 16),   # two groups of four
    (2, 4, 1, 6, 8),    # one group: multi-query attention
    (1, 3, 3, 5, 4),    # as many groups as heads: ordinary multi-head attention
)


def check_grouped_query_attention(grouped_query_attention) -> None:
    """Exercise 3.3: ``grouped_query_attention(q, k, v)``: causal attention where ``q`` is
    ``(B, H, T, D)`` and ``k``, ``v`` are ``(B, G, T, D)`` with G dividing H, query head ``h``
    using key/value group ``h // (H // G)``; returns ``(B, H, T, D)``."""
    ex = "3.3"
    name = "grouped_query_attention"
    require_callable(ex, name, grouped_query_attention)
    forbid(ex, name, grouped_query_attention,
           names=("scaled_dot_product_attention", "MultiheadAttention", "causal_mask"),
           rule="write the scores, mask, softmax and weighted sum with matrix products, not "
                "F.scaled_dot_product_attention (or gptlib).")
    for n, (B, H, G, T, D) in enumerate(GQA_CASES):
        g = _generator(330 + n)
        q = torch.randn(B, H, T, D, generator=g, dtype=torch.float64)
        k = torch.randn(B, G, T, D, generator=g, dtype=torch.float64)
        v = torch.randn(B, G, T, D, generator=g, dtype=torch.float64)
        if B == 3:
            scales = torch.tensor([0.2, 1.0, 30.0], dtype=torch.float64)[:, None, None, None]
            q, k = q * scales, k * scales
        where = f"q {tuple(q.shape)}, k and v {tuple(k.shape)} (H = {H} heads, G = {G} groups)"
        got = _run(ex, name, grouped_query_attention, {"q": q, "k": k, "v": v}, where)
        qn, kn, vn = q.numpy(), k.numpy(), v.numpy()
        group = np.arange(H) // (H // G)
        allowed = _mask(T, T)
        expected = _attend(qn, kn[:, group], vn[:, group], allowed=allowed)
        if _same(got, expected, atol=1e-6) and not np.isnan(got).any():
            continue
        if got.shape != expected.shape:
            fail(ex, f"on {where} the result should have one output per query head, shape "
                     f"(B, H, T, D) = {expected.shape}, got {got.shape}.")
        tiled = np.arange(H) % G
        first = np.zeros(H, dtype=int)
        if _same(got, _attend(qn, kn[:, tiled], vn[:, tiled], allowed=allowed)):
            fail(ex, f"on {where}, head h was paired with group h mod G (the groups tiled "
                     f"0, 1, 0, 1, ...). The question pairs consecutive heads with the same "
                     f"group: heads 0 .. H/G - 1 with group 0, and so on.")
        if _same(got, _attend(qn, kn[:, first], vn[:, first], allowed=allowed)):
            fail(ex, f"on {where}, every query head used the first group's keys and values; "
                     f"head h should use group h // (H // G).")
        hint = _attention_diagnosis(got, qn, kn[:, group], vn[:, group], allowed, T, T,
                                    expected.shape, where)
        if hint:
            fail(ex, hint)
        close(ex, f"{name}(q, k, v)", got, expected, atol=1e-6,
              hint=f"(on {where}) Each query head h attends, causally and with scale "
                   f"1/sqrt(D), to the keys and values of group h // (H // G).")
    confirm(ex, "grouped_query_attention is right for G = 1, 2, 3 and G = H")


# ----------------------------------------------------------------------------------------------
# Exercise 3.4: temperature from the weights alone
# ----------------------------------------------------------------------------------------------
def check_retemper(retemper) -> None:
    """Exercise 3.4: ``retemper(weights, tau)`` must turn softmax(s) into softmax(s / tau) without
    s. ``weights``: ``(..., T)``, rows summing to 1, masked keys exactly 0."""
    ex = "3.4"
    require_callable(ex, "retemper", retemper)
    forbid(ex, "retemper", retemper,
           rule="use only `weights` and `tau` (not the explorer's own "
                "gptlib.viz.attention.retemper).")
    g = _generator(34)
    T = 6
    scores = torch.randn(2, 3, T, T, generator=g, dtype=torch.float64)
    scores = scores * torch.tensor([0.3, 1.0, 4.0], dtype=torch.float64)[:, None, None]
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    weights = torch.softmax(scores, dim=-1)         # (2, 3, T, T), zeros above the diagonal
    masked = np.broadcast_to(np.triu(np.ones((T, T), dtype=bool), 1), weights.shape)
    for tau in (0.5, 2.0, 0.25, 10.0, 1.0):
        where = f"causal weights of shape {tuple(weights.shape)}, tau = {tau}"
        got = _run(ex, "retemper", retemper, {"weights": weights.clone(), "tau": tau}, where)
        expected = torch.softmax(scores / tau, dim=-1).numpy()
        if got.shape != expected.shape:
            fail(ex, f"retemper should keep the shape {expected.shape}, got {got.shape}.")
        if _same(got, expected, atol=1e-9) and (got[masked] == 0).all():
            continue
        w = weights.numpy()
        if np.isnan(got).any():
            fail(ex, f"on {where} the result has NaN. Masked keys have weight exactly 0: whatever "
                     f"you do to them (a power, a log then exp) must keep them at 0, not 0/0.")
        powered = w ** tau
        powered = powered / powered.sum(-1, keepdims=True)
        if _same(got, powered, atol=1e-9):
            fail(ex, f"you raised the weights to the power tau; softmax(s / tau) is proportional "
                     f"to exp(s)^(1/tau), so the power is 1/tau (tau = {tau}).")
        if _same(got, torch.softmax(torch.as_tensor(w) / tau, -1).numpy(), atol=1e-9):
            fail(ex, "you applied a softmax to weights / tau, as if the weights were scores. "
                     "The scores s are gone; start from w_j = exp(s_j) / Z.")
        if (got[masked] != 0).any():
            fail(ex, f"on {where} masked keys (weight 0) got weight (up to "
                     f"{np.abs(got[masked]).max():.1e}). A key the model could not see must stay "
                     f"at exactly 0 at every temperature; an epsilon added to the weights "
                     f"(before a log, say) lifts it.")
        if not np.allclose(got.sum(-1), 1, atol=1e-6):
            fail(ex, f"on {where} the rows no longer sum to 1: renormalise each row (over the "
                     f"last dimension) after changing the weights.")
        close(ex, f"retemper(weights, {tau})", got, expected, atol=1e-9,
              hint="w_j = exp(s_j) / Z, so w_j^(1/tau) is proportional to exp(s_j / tau).")
    confirm(ex, "retemper equals softmax(s / tau) for five tau, masked keys at 0")
