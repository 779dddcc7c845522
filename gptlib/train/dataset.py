"""The datasets a run trains on, and the fixed windows it is evaluated on.

``"shakespeare-char"``: the Shakespeare corpus (:func:`gptlib.data.load_shakespeare`), one token
per character (:class:`~gptlib.tokenizer.CharTokenizer` over the corpus's alphabet), split by
position into a training head and a validation tail (:func:`gptlib.data.train_val_split`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import checks
from ..assets import SHAKESPEARE
from ..data import load_shakespeare, train_val_split
from ..tokenizer import CharTokenizer
from .recipe import DATASETS


@dataclass
class Dataset:
    """Token ids of the training and validation splits, and the tokenizer that made them."""

    train: torch.Tensor  # (N_train,) int64
    val: torch.Tensor  # (N_val,) int64
    tokenizer: object
    sha256: str  # of the source text, so a cached model knows which data it was trained on

    @property
    def vocab_size(self) -> int:
        """V, the number of token ids the tokenizer can produce."""
        return self.tokenizer.n_vocab


def load_dataset(name: str = "shakespeare-char", val_fraction: float = 0.1) -> Dataset:
    """The named dataset, tokenized (see the module docstring). ``(N,)`` int64 splits."""
    checks.one_of("dataset", name, DATASETS)
    text = load_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    train_text, val_text = train_val_split(text, val_fraction)
    train = torch.from_numpy(tokenizer.encode_array(train_text))
    val = torch.from_numpy(tokenizer.encode_array(val_text))
    # load_shakespeare verified the file against its pinned SHA-256, so that hash names this corpus
    return Dataset(train, val, tokenizer, SHAKESPEARE.sha256)


def evaluation_starts(n_tokens: int, context_length: int, windows: int) -> torch.Tensor:
    """Start positions of ``windows`` evenly spaced windows of ``context_length + 1`` tokens
    (fewer if the split is short; never overlapping more than needed): ``(W,)`` int64."""
    last = n_tokens - context_length - 1
    if last < 0:
        raise checks.ArgumentError(
            f"the validation split has {n_tokens} tokens, fewer than one window of "
            f"{context_length + 1}; use a shorter context or a larger val_fraction")
    windows = min(windows, last + 1)
    return torch.linspace(0, last, windows).round().long().unique()
