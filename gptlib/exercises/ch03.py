"""Checks for the exercises of chapter 3 (the attention formula).

Each check builds its reference with plain numpy or torch operations written here, never with
``gptlib.model``, so a reader's answer is compared with an independent computation.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._core import close, confirm, fail, require_answer


def _to_numpy(exercise: str, name: str, value) -> np.ndarray:
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
        fail(exercise, f"`{name}` should be a function (def {name}(...): ...), got {type(function).__name__}.")
    try:
        result = function(*args)
    except Exception as e:  # the reader's code; report what went wrong and where
        fail(exercise, f"calling `{name}` raised {type(e).__name__}: {e}")
    if result is None or result is Ellipsis:
        fail(exercise, f"`{name}` returned {result!r}: did you forget the `return`?")
    return result


# ----------------------------------------------------------------------------------------------
def check_scaled_scores(q, k, scores) -> None:
    """Exercise 3.1: ``scores`` must be Q K^T / sqrt(d_k) for the ``(T, d_k)`` tensors ``q``, ``k``."""
    ex = "3.1"
    require_answer(ex, scores=scores)
    qn, kn = _to_numpy(ex, "q", q), _to_numpy(ex, "k", k)
    got = _to_numpy(ex, "scores", scores)
    d_k = qn.shape[-1]
    raw = np.einsum("id,jd->ij", qn, kn)
    expected = raw / math.sqrt(d_k)
    if got.shape == expected.shape:
        if np.allclose(got, raw, atol=1e-4):
            fail(ex, "these are the raw dot products Q K^T: divide them by sqrt(d_k) "
                     f"= sqrt({d_k}) = {math.sqrt(d_k):.3f}.")
        if np.allclose(got, raw / d_k, atol=1e-4):
            fail(ex, "you divided by d_k; the standard scale is 1/sqrt(d_k) (1/d_k is muP's, "
                     "section on muP below).")
        if np.allclose(got, expected.T, atol=1e-4):
            fail(ex, "the matrix is transposed: row i should belong to query i, so compute q @ k.T, "
                     "not k @ q.T.")
    close(ex, "scores", got, expected, atol=1e-4,
          hint="Entry (i, j) is the dot product of query i with key j, divided by sqrt(d_k).")
    confirm(ex, f"scores are Q K^T / sqrt({d_k}), shape {tuple(expected.shape)}")


# ----------------------------------------------------------------------------------------------
def _reference_causal_softmax(scores: np.ndarray) -> np.ndarray:
    T = scores.shape[-1]
    allowed = np.tril(np.ones((T, T), dtype=bool))
    s = np.where(allowed, scores, -np.inf)
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def check_causal_softmax(causal_softmax) -> None:
    """Exercise 3.2: ``causal_softmax(scores)`` maps ``(T, T)`` scores to causal attention weights."""
    ex = "3.2"
    g = torch.Generator().manual_seed(32)
    for T in (1, 4, 7):
        scores = torch.randn(T, T, generator=g, dtype=torch.float64) * 2
        got = _to_numpy(ex, "causal_softmax(scores)", _call(ex, "causal_softmax", causal_softmax, scores.clone()))
        expected = _reference_causal_softmax(scores.numpy())
        if got.shape != expected.shape:
            fail(ex, f"for ({T}, {T}) scores your function returned shape {got.shape}; it should keep "
                     f"the shape (one row of weights per query).")
        if np.isnan(got).any():
            fail(ex, "the result contains NaN. A row whose every score is -inf gives 0/0; only the keys "
                     "after the query (above the diagonal) should be masked, never the diagonal.")
        if np.abs(np.triu(got, 1)).max() > 1e-6:
            fail(ex, "query i gives weight to keys after it (above the diagonal). Mask with "
                     "torch.tril: True on and below the diagonal means 'allowed'.")
        if T > 1 and not np.allclose(got.sum(-1), 1, atol=1e-5):
            fail(ex, "the rows do not sum to 1. Did you zero the weights after the softmax? Set the "
                     "masked scores to -inf before the softmax, so each row is renormalised over "
                     "the keys it may see.")
        close(ex, "causal_softmax(scores)", got, expected, atol=1e-6,
              hint="Masked scores must be -inf (exactly zero weight), not 0: a score of 0 still gets "
                   "weight exp(0) = 1 before normalising.")
    confirm(ex, "causal_softmax matches the masked softmax for T = 1, 4 and 7")


# ----------------------------------------------------------------------------------------------
def check_split_heads(split_heads) -> None:
    """Exercise 3.3: ``split_heads(x, n_head)`` maps ``(B, T, C)`` to ``(B, H, T, C / H)``, head h
    holding channels ``h*D .. (h+1)*D - 1`` of every position."""
    ex = "3.3"
    g = torch.Generator().manual_seed(33)
    for B, T, C, H in ((2, 5, 12, 3), (1, 4, 8, 2)):
        x = torch.randn(B, T, C, generator=g)
        got = _to_numpy(ex, "split_heads(x, n_head)", _call(ex, "split_heads", split_heads, x.clone(), H))
        D = C // H
        expected = x.numpy().reshape(B, T, H, D).transpose(0, 2, 1, 3)
        if got.shape != expected.shape:
            fail(ex, f"for x of shape {(B, T, C)} and {H} heads the result should be (B, H, T, D) = "
                     f"{expected.shape}, got {got.shape}.")
        if np.allclose(got, x.numpy().reshape(B, H, T, D)):
            fail(ex, "right shape, wrong contents: x.view(B, H, T, D) cuts the sequence into pieces "
                     "instead of cutting each position's channels. View as (B, T, H, D) first, then "
                     "swap the T and H axes with .transpose(1, 2).")
        close(ex, "split_heads(x, n_head)", got, expected,
              hint="Head h of position t should hold x[b, t, h*D:(h+1)*D].")
    confirm(ex, "split_heads gives every head its own slice of channels, shape (B, H, T, D)")


# ----------------------------------------------------------------------------------------------
def check_retemper(retemper) -> None:
    """Exercise 3.4: ``retemper(weights, tau)`` must turn softmax(s) into softmax(s / tau) without s."""
    ex = "3.4"
    g = torch.Generator().manual_seed(34)
    scores = torch.randn(3, 6, generator=g, dtype=torch.float64) * 1.5
    weights = torch.softmax(scores, dim=-1)
    for tau in (0.5, 2.0, 1.0):
        got = _to_numpy(ex, "retemper(weights, tau)", _call(ex, "retemper", retemper, weights.clone(), tau))
        expected = torch.softmax(scores / tau, dim=-1).numpy()
        if got.shape != expected.shape:
            fail(ex, f"retemper should keep the shape {expected.shape}, got {got.shape}.")
        if tau != 1.0:
            inverted = weights.numpy() ** tau
            inverted /= inverted.sum(-1, keepdims=True)
            if np.allclose(got, inverted, atol=1e-6):
                fail(ex, f"you raised the weights to the power tau; softmax(s / tau) is proportional to "
                         f"exp(s)^(1/tau), so the power is 1/tau (tau = {tau}).")
            if np.allclose(got.sum(-1), 1 / tau, atol=1e-6) or not np.allclose(got.sum(-1), 1, atol=1e-6):
                fail(ex, "the rows no longer sum to 1: renormalise each row after changing the weights.")
        close(ex, f"retemper(weights, {tau})", got, expected, atol=1e-6,
              hint="w_j = exp(s_j) / Z, so w_j^(1/tau) is proportional to exp(s_j / tau).")
    confirm(ex, "re-tempered weights equal softmax(scores / tau) for tau = 0.5, 2 and 1")
