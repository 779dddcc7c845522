"""The checks of what a figure is given: series, matrices, distributions, logits, token labels.

Every figure module checks its arrays here, so a bad input gets the same kind of message from
every figure (``"<name> must be ..., got ..."``, as :mod:`gptlib.checks` words it) and a figure
never draws a silent NaN or a bar of the wrong model. The values come back as the arrays the
figures draw: float64 numpy arrays for series and matrices, float32 CPU tensors for
distributions and logits.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..checks import ArgumentError, ArgumentTypeError, instance, integer
from .style import visible


def _shown(a: np.ndarray) -> str:
    """The values of a small array, or the first few of a large one, for a message."""
    values = a.ravel().tolist()
    return str(values) if len(values) <= 8 else f"[{', '.join(map(str, values[:8]))}, ...]"


def _numbers(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def series(name: str, values, *, length: int | None = None, per: str = "x",
           positive: bool = False, nonnegative: bool = False, why: str | None = None) -> np.ndarray:
    """``values`` (a sequence, array or tensor) as a ``(n,)`` float64 array: non-empty, finite,
    ``length`` long if given (one value per ``per``), ``> 0`` if ``positive`` (a log axis),
    ``>= 0`` if ``nonnegative``. ``why`` says in the message why the sign matters."""
    a = _numbers(values)
    if a.ndim != 1 or a.size == 0:
        raise ArgumentError(f"{name} must be a non-empty 1-D series of numbers, got shape {a.shape}")
    if length is not None and a.size != length:
        raise ArgumentError(f"{name} must hold one value per {per} ({length}), got {a.size}")
    if not np.isfinite(a).all():
        raise ArgumentError(f"{name} must be finite (no NaN or infinite values), got {_shown(a)}")
    extra = f" ({why})" if why else ""
    if positive and (a <= 0).any():
        raise ArgumentError(f"{name} must hold positive values (> 0){extra}, got {_shown(a)}")
    if nonnegative and (a < 0).any():
        raise ArgumentError(f"{name} must hold values >= 0{extra}, got {_shown(a)}")
    return a


def matrix(name: str, value) -> np.ndarray:
    """``value`` (an array or tensor) as a finite 2-D float64 array."""
    a = _numbers(value)
    if a.ndim != 2:
        raise ArgumentError(f"{name} must be a 2-D matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ArgumentError(f"{name} must be finite (no NaN or infinite values)")
    return a


def paired(name: str, xs: Sequence, ys: Sequence) -> None:
    """Check that ``xs`` and ``ys`` are as long as each other (one y per x)."""
    if len(xs) != len(ys):
        raise ArgumentError(f"{name}: {len(xs)} x values but {len(ys)} y values; give one y per x")


def token_labels(labels: Sequence[str]) -> list[str]:
    """The V token strings, whitespace made visible (:func:`gptlib.viz.style.visible`), an empty
    token as ∅."""
    if isinstance(labels, str) or not all(isinstance(t, str) for t in labels):
        raise ArgumentTypeError("labels must be a sequence of str, one per token id")
    return [visible(t) or "∅" for t in labels]


def distribution(name: str, probs, vocab_size: int | None = None):
    """``probs`` as a ``(V,)`` float32 CPU tensor of probabilities (entries >= 0 summing to 1),
    ``vocab_size`` long if given."""
    import torch

    instance(name, probs, torch.Tensor, what="a torch.Tensor of shape (V,)")
    if probs.dim() != 1:
        raise ArgumentError(f"{name} must have shape (V,) (one position's distribution), "
                            f"got {tuple(probs.shape)}; index one row, e.g. probs[0]")
    if vocab_size is not None and probs.numel() != vocab_size:
        raise ArgumentError(f"{name} has {probs.numel()} entries but there are {vocab_size} labels")
    probs = probs.detach().float().cpu()
    if (probs < 0).any() or not torch.isfinite(probs).all() or abs(float(probs.sum()) - 1) > 1e-3:
        raise ArgumentError(f"{name} must be a probability distribution (entries >= 0 summing "
                            f"to 1), got entries summing to {float(probs.sum()):.4g}")
    return probs


def logits(value, vocab_size: int | None = None):
    """``value`` as the ``(V,)`` float32 CPU logits of one position, ``vocab_size`` long if given."""
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() != 1:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ArgumentError(f"logits must be a (V,) tensor (one position), got {shape}")
    if vocab_size is not None and value.numel() != vocab_size:
        raise ArgumentError(f"logits has {value.numel()} entries but there are {vocab_size} labels")
    return value.detach().float().cpu()


def top(value, vocab_size: int) -> int:
    """How many of the most likely tokens to draw: a positive integer, at most ``vocab_size``."""
    return min(integer("top", value, low=1), vocab_size)
