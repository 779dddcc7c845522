"""The corpus, its train/validation split, and batches of (input, target) token windows.

Derived in chapter 1 (batching) and used in chapter 6 (training).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from . import checks
from .assets import SHAKESPEARE, require

DEFAULT_VAL_FRACTION = 0.1


def load_shakespeare() -> str:
    """All 38 plays as one plain text (about 4.8 million characters), hash-checked.

    Raises:
        gptlib.assets.AssetError: the file is missing or modified (says to run ``make data``).
    """
    return require(SHAKESPEARE).read_text(encoding="utf-8")


def train_val_split(text_or_ids: Sequence, val_fraction: float = DEFAULT_VAL_FRACTION):
    """Split a text (or a token sequence) into a training head and a validation tail.

    The split is by position: the last ``val_fraction`` of the corpus is held out, cut at the start
    of a line when the input is text, so no speech is shared between the two and the split is the
    same on every machine.

    Returns:
        ``(train, val)`` of the same type as the input.
    """
    checks.number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    n = len(text_or_ids)
    if n < 2:
        raise checks.ArgumentError(f"need at least 2 items to split, got {n}")
    cut = int(n * (1.0 - val_fraction))
    if isinstance(text_or_ids, str):
        newline = text_or_ids.rfind("\n", 0, cut)
        cut = newline + 1 if newline > 0 else cut
    return text_or_ids[:cut], text_or_ids[cut:]


def as_token_tensor(ids) -> torch.Tensor:
    """A 1-D int64 tensor of token ids (from a list, numpy array or tensor)."""
    t = torch.as_tensor(np.asarray(ids) if not isinstance(ids, torch.Tensor) else ids)
    return checks.token_ids("tokens", t, 1, "(N,)").long()


def get_batch(tokens: torch.Tensor, batch_size: int, context_length: int,
              generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
    """Sample ``batch_size`` random windows of ``context_length + 1`` tokens.

    Args:
        tokens: ``(N,)`` int64 token ids.
    Returns:
        ``x, y``: both ``(B, T)`` int64, with ``y[b, t] = x[b, t + 1]`` (the next token to predict).
    """
    checks.integer("batch_size", batch_size, low=1)
    checks.integer("context_length", context_length, low=1)
    if len(tokens) < context_length + 1:
        raise checks.ArgumentError(f"need more than context_length={context_length} tokens to make a window, "
                         f"got {len(tokens)}")
    starts = torch.randint(len(tokens) - context_length, (batch_size,), generator=generator)
    offsets = torch.arange(context_length + 1)
    windows = tokens[starts[:, None] + offsets]  # (B, T + 1)
    x, y = windows[:, :-1], windows[:, 1:]
    return x.to(device), y.to(device)


class BatchSampler:
    """An endless, seeded stream of ``(x, y)`` batches, each ``(B, T)``, from one token sequence.

    Two samplers built with the same seed yield the same batches; :meth:`state_dict` and
    :meth:`load_state_dict` save and restore the position in the stream (for exact resume).
    """

    def __init__(self, tokens, batch_size: int, context_length: int, seed: int = 0,
                 device: str | torch.device = "cpu"):
        self.tokens = as_token_tensor(tokens)
        self.batch_size, self.context_length, self.device = batch_size, context_length, device
        self.generator = torch.Generator().manual_seed(seed)
        get_batch(self.tokens, 1, context_length, torch.Generator().manual_seed(0))  # validate early

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return get_batch(self.tokens, self.batch_size, self.context_length, self.generator, self.device)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
