"""The learning-rate schedule of Cerebras-GPT: a linear warm-up, then a decay to 10% of the peak.

Chapter 6 derives it. Every Cerebras-GPT run warms up linearly over its first 375M tokens, then
decays the learning rate, linearly (111M, 256M, 590M, 6.7B) or along a half cosine (1.3B, 2.7B,
13B), to 10% of the peak at the last step (Dey et al. 2023; the reference table in
:data:`gptlib.config.CEREBRAS_GPT`).

With W warm-up steps, S total steps, peak eta and final fraction f (0.1)::

    lr(s) = eta * (s + 1) / W                                  for s < W
    lr(s) = eta * (1 - (1 - f) * p)                            linear decay,  p = (s - W) / (S - W)
    lr(s) = eta * (f + (1 - f) * (1 + cos(pi * p)) / 2)        cosine decay
    lr(s) = eta * f                                            for s >= S

Step ``s`` counts optimizer updates from 0; ``lr(s)`` is the rate used by update ``s``. Warm-up
uses ``(s + 1) / W`` rather than ``s / W`` so that no update is spent with a learning rate of 0 and
the peak is reached exactly at update ``W - 1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import checks

DECAYS = ("linear", "cosine", "constant")


@dataclass(frozen=True)
class Schedule:
    """Warm-up then decay: call it with a step to get that step's learning rate.

    Attributes:
        peak_lr: eta, the learning rate at the end of the warm-up.
        warmup_steps: W >= 0 (0: start at the peak).
        total_steps: S, the step at which the decay reaches ``final_fraction * peak_lr``; S >= W.
        decay: ``"linear"``, ``"cosine"`` or ``"constant"`` (no decay after the warm-up).
        final_fraction: f in [0, 1], where the decay ends (Cerebras-GPT: 0.1).
    """

    peak_lr: float
    warmup_steps: int
    total_steps: int
    decay: str = "cosine"
    final_fraction: float = 0.1

    def __post_init__(self) -> None:
        checks.number("peak_lr", self.peak_lr, low=0, low_open=True)
        checks.integer("warmup_steps", self.warmup_steps, low=0)
        checks.integer("total_steps", self.total_steps, low=0)
        if self.total_steps < self.warmup_steps:
            raise checks.ArgumentError(f"total_steps ({self.total_steps}) must be >= warmup_steps "
                                       f"({self.warmup_steps}): the decay starts when the warm-up ends")
        checks.one_of("decay", self.decay, DECAYS)
        checks.number("final_fraction", self.final_fraction, low=0, high=1)

    def __call__(self, step: int) -> float:
        """The learning rate of optimizer update ``step`` (0-based)."""
        checks.integer("step", step, low=0)
        eta, f = self.peak_lr, self.final_fraction
        if step < self.warmup_steps:
            return eta * (step + 1) / self.warmup_steps
        if self.decay == "constant":
            return eta
        if step >= self.total_steps:
            return eta * f
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        if self.decay == "linear":
            return eta * (1.0 - (1.0 - f) * progress)
        return eta * (f + (1.0 - f) * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def values(self, steps: int | None = None) -> list[float]:
        """``[lr(0), ..., lr(steps - 1)]`` (default: the whole schedule, ``total_steps`` values);
        handy for plotting."""
        steps = self.total_steps if steps is None else steps
        return [self(s) for s in range(steps)]


def warmup_steps_for_tokens(warmup_tokens: float, tokens_per_step: int) -> int:
    """How many steps a token budget for the warm-up lasts (Cerebras-GPT: 375M tokens).

    >>> warmup_steps_for_tokens(375e6, 120 * 2048)   # Cerebras-GPT 111M: batch 120 x 2048
    1526
    """
    checks.integer("tokens_per_step", tokens_per_step, low=1)
    checks.number("warmup_tokens", warmup_tokens, low=0)
    return math.ceil(warmup_tokens / tokens_per_step)
