"""Scaling-law tools: compute-optimal sizing and power-law fits (the compute of a run is
:meth:`gptlib.GPTConfig.training_flops`).

Chapter 8 uses them to retrace the argument of Cerebras-GPT (Dey et al. 2023), which trained every
model on 20 tokens per parameter, the compute-optimal ratio of Hoffmann et al. (2022), and fitted
the Pile test loss of the seven models against their training compute with a power law plus an
irreducible term::

    L(f) = a * f^b + c          here b < 0, and c is the loss no amount of compute removes

(f is the training compute in FLOPs; the book keeps C for the model width.)

The paper's fit, ``L(f) = (f / 5.984e22)^(-0.0737) + 0.5066`` (f in FLOPs, L in nats per token),
is :data:`PAPER_LAW`: the same form with a = 5.984e22^0.0737, b = -0.0737, c = 0.5066.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import checks
from .checks import ArgumentError
from .config import CEREBRAS_GPT

TOKENS_PER_PARAMETER = 20.0  # Chinchilla's compute-optimal ratio, used for every Cerebras-GPT run


@dataclass(frozen=True)
class PowerLaw:
    """``L(f) = a * f^b + c``: the loss reached with ``f`` FLOPs of training compute (the book
    writes compute as f because C is the model width)."""

    a: float
    b: float
    c: float

    def __call__(self, compute):
        """The loss at compute ``compute`` (a number or an array of FLOPs)."""
        compute = np.asarray(compute, dtype=float)
        if np.any(compute <= 0):
            raise ArgumentError("compute must be positive (FLOPs)")
        out = self.a * compute ** self.b + self.c
        return float(out) if out.ndim == 0 else out

    def compute_for_loss(self, loss: float) -> float:
        """The compute at which the law reaches ``loss`` (which must exceed ``c`` when b < 0)."""
        if loss <= self.c:
            raise ArgumentError(f"the law never goes below its irreducible loss c = {self.c:.4f}; "
                             f"got {loss}")
        return ((loss - self.c) / self.a) ** (1.0 / self.b)

    def __str__(self) -> str:
        return f"L(f) = {self.a:.4g} * f^({self.b:.4f}) + {self.c:.4f}"


PAPER_LAW = PowerLaw(a=5.984e22 ** 0.0737, b=-0.0737, c=0.5066)
"""Dey et al. (2023): Pile test loss against pre-training FLOPs, L(f) = (f / 5.984e22)^-0.0737 + 0.5066."""


# ----------------------------------------------------------------------------------------------
# sizing a run
# ----------------------------------------------------------------------------------------------
def compute_optimal(compute: float | None = None, params: float | None = None,
                    tokens_per_parameter: float = TOKENS_PER_PARAMETER) -> dict[str, float]:
    """Compute-optimal sizing with C = 6 N D and D = r N (r = 20 tokens per parameter).

    Give exactly one of ``compute`` (FLOPs: then N = sqrt(C / (6 r)), D = r N) or ``params``
    (N: then D = r N, C = 6 N D).

    Returns:
        ``{"params": N, "tokens": D, "compute": C}``.
    """
    if (compute is None) == (params is None):
        raise ArgumentError("give exactly one of compute (FLOPs) or params (parameter count)")
    checks.number("tokens_per_parameter", tokens_per_parameter, low=0, low_open=True)
    if compute is not None:
        checks.number("compute", compute, low=0, low_open=True, hint="FLOPs")
        n = math.sqrt(compute / (6.0 * tokens_per_parameter))
    else:
        checks.number("params", params, low=0, low_open=True, hint="a parameter count")
        n = float(params)
    d = tokens_per_parameter * n
    return {"params": n, "tokens": d, "compute": 6.0 * n * d}


def cerebras_points() -> tuple[np.ndarray, np.ndarray]:
    """The seven Cerebras-GPT runs as ``(compute, loss)``: the paper's reported training FLOPs and
    Pile test cross-entropy (standard parametrization), each ``(7,)``."""
    runs = list(CEREBRAS_GPT.values())
    return (np.array([r.reported_flops for r in runs]), np.array([r.pile_xent for r in runs]))


# ----------------------------------------------------------------------------------------------
# fitting L(f) = a f^b + c
# ----------------------------------------------------------------------------------------------
def _fit_given_c(log_c: np.ndarray, loss: np.ndarray, c: float) -> tuple[float, float, float]:
    """Least squares of log(L - c) = log a + b log f; returns (a, b, squared error in L)."""
    y = np.log(loss - c)
    b, log_a = np.polyfit(log_c, y, 1)
    a = math.exp(log_a)
    residual = a * np.exp(b * log_c) + c - loss
    return a, b, float(residual @ residual)


def fit_power_law(compute: Sequence[float], loss: Sequence[float], irreducible: float | None = None) -> PowerLaw:
    """Fit ``L(f) = a * f^b + c`` to points by least squares in L.

    For a fixed c the model is a straight line in log-log space, log(L - c) = log a + b log f; the
    fit searches c in [0, min L) (golden-section search, after a grid) and keeps the (a, b) of the
    best line. Pass ``irreducible`` to fix c instead (c = 0 gives a pure power law).

    Args:
        compute: ``(n,)`` positive FLOPs (n >= 3, or >= 2 with ``irreducible``).
        loss: ``(n,)`` losses.
    """
    compute = np.asarray(compute, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if compute.shape != loss.shape or compute.ndim != 1:
        raise ArgumentError(f"compute and loss must be 1-D of the same length, got {compute.shape} and {loss.shape}")
    if np.any(compute <= 0) or not np.all(np.isfinite(compute)) or not np.all(np.isfinite(loss)):
        raise ArgumentError("compute must be positive and finite, loss finite")
    log_c = np.log(compute)
    if irreducible is not None:
        if len(compute) < 2 or irreducible >= loss.min():
            raise ArgumentError("a fit with a fixed irreducible loss needs >= 2 points and "
                                f"irreducible below every loss, got {len(compute)} points and "
                                f"irreducible={irreducible}")
        a, b, _ = _fit_given_c(log_c, loss, irreducible)
        return PowerLaw(a, b, float(irreducible))
    if len(compute) < 3:
        raise ArgumentError(f"fitting a, b and c needs at least 3 points, got {len(compute)}")
    hi = float(loss.min())
    grid = np.linspace(0.0, hi, 401)[:-1]
    errors = [_fit_given_c(log_c, loss, c)[2] for c in grid]
    i = int(np.argmin(errors))
    lo_c, hi_c = grid[max(i - 1, 0)], (grid[i + 1] if i + 1 < len(grid) else hi * (1 - 1e-9))
    ratio = (math.sqrt(5) - 1) / 2  # golden-section search on [lo_c, hi_c]
    x1, x2 = hi_c - ratio * (hi_c - lo_c), lo_c + ratio * (hi_c - lo_c)
    f1, f2 = _fit_given_c(log_c, loss, x1)[2], _fit_given_c(log_c, loss, x2)[2]
    for _ in range(100):
        if f1 < f2:
            hi_c, x2, f2 = x2, x1, f1
            x1 = hi_c - ratio * (hi_c - lo_c)
            f1 = _fit_given_c(log_c, loss, x1)[2]
        else:
            lo_c, x1, f1 = x1, x2, f2
            x2 = lo_c + ratio * (hi_c - lo_c)
            f2 = _fit_given_c(log_c, loss, x2)[2]
    c = (lo_c + hi_c) / 2
    a, b, _ = _fit_given_c(log_c, loss, c)
    return PowerLaw(a, b, float(c))
