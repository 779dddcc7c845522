"""Count-based baselines for a language model's loss (chapter 8).

A unigram model predicts every token from the training split's token frequencies; a bigram model
predicts it from the frequencies of what followed the previous token. Neither has a parameter to
train, so their losses are the floors a trained model must get under before it has learned more
than single-token or token-pair statistics. Both are smoothed by adding ``alpha`` to every count
(Laplace's rule for ``alpha = 1``), so a pair never seen in training still gets a finite loss.

The losses are scored on the positions :meth:`gptlib.train.Trainer.evaluate` scores: the targets
of evenly spaced windows of the validation split (:func:`gptlib.train.dataset.evaluation_starts`),
each predicted from the token before it. A model of context T sees more than that one token at
every position of a window but the first.
"""
from __future__ import annotations

import torch

from . import checks
from .model import check_token_ids


def count_log_probs(train: torch.Tensor, vocab_size: int, order: int,
                    alpha: float = 1.0) -> torch.Tensor:
    """Log-probabilities of an add-``alpha`` n-gram model counted on ``train``.

    Args:
        train: ``(N,)`` integer token ids in ``[0, vocab_size)``.
        vocab_size: V.
        order: 1 (unigram) or 2 (bigram).
        alpha: the pseudo-count added to every cell, > 0.
    Returns:
        ``(V,)`` for ``order=1``: log p(token); ``(V, V)`` for ``order=2``: row ``a`` holds
        log p(next token | previous token ``a``). float64, each distribution sums to 1.
    """
    checks.one_of("order", order, (1, 2))
    checks.integer("vocab_size", vocab_size, low=1)
    checks.number("alpha", alpha, low=0, low_open=True,
                  hint="a positive pseudo-count; 0 would give unseen pairs an infinite loss")
    train = _ids("train", train, vocab_size, at_least=order)
    if order == 1:
        counts = torch.bincount(train, minlength=vocab_size).double() + alpha
        return counts.log() - counts.sum().log()
    pairs = train[:-1] * vocab_size + train[1:]
    counts = torch.bincount(pairs, minlength=vocab_size * vocab_size).double()
    counts = counts.view(vocab_size, vocab_size) + alpha
    return counts.log() - counts.sum(dim=1, keepdim=True).log()


def ngram_loss(train: torch.Tensor, val: torch.Tensor, vocab_size: int, order: int,
               context_length: int, windows: int | None = None, alpha: float = 1.0) -> float:
    """Mean cross-entropy, nats per token, of an n-gram model counted on ``train`` (see
    :func:`count_log_probs`), on the validation windows a trainer with this context length
    scores (``windows=None``: the whole split, window after window, as
    :meth:`~gptlib.train.Trainer.evaluate` does).

    Args:
        train, val: ``(N_train,)`` and ``(N_val,)`` integer token ids in ``[0, vocab_size)``.
        vocab_size: V.
        order: 1 (unigram) or 2 (bigram).
        context_length: T, the length of a window (T targets each).
        windows: how many evenly spaced windows; None for all of them.
        alpha: the pseudo-count added to every cell, > 0.
    """
    from .train.dataset import evaluation_starts  # the trainer's own windows

    checks.integer("context_length", context_length, low=1)
    checks.integer("windows", windows, low=1, none_ok=True)
    log_probs = count_log_probs(train, vocab_size, order, alpha)
    val = _ids("val", val, vocab_size, at_least=context_length + 1)
    if windows is None:
        windows = (len(val) - 1) // context_length
    starts = evaluation_starts(len(val), context_length, windows)
    positions = (starts[:, None] + torch.arange(1, context_length + 1)).reshape(-1)  # targets
    targets = val[positions]
    scores = log_probs[targets] if order == 1 else log_probs[val[positions - 1], targets]
    return float(-scores.mean())


def _ids(name: str, ids, vocab_size: int, at_least: int) -> torch.Tensor:
    """``ids`` as a 1-D int64 tensor of at least ``at_least`` ids in ``[0, vocab_size)``."""
    checks.token_ids(name, ids, 1, "(N,)")
    if len(ids) < at_least:
        raise checks.ArgumentError(f"{name} holds {len(ids)} token ids; it needs at least "
                                   f"{at_least}")
    check_token_ids(ids, vocab_size)
    return ids.long()
