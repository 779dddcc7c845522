"""The count-based baselines of chapter 8, against a plain-Python count of the same windows."""
import math
from collections import Counter

import pytest
import torch

from gptlib.baselines import count_log_probs, ngram_loss
from gptlib.checks import ArgumentError
from gptlib.train.dataset import evaluation_starts


def python_ngram_loss(train, val, vocab_size, order, context_length, windows, alpha):
    """The same loss with Counter and math.log, position by position."""
    train, val = train.tolist(), val.tolist()
    unigrams, pairs, after = Counter(train), Counter(zip(train, train[1:])), Counter(train[:-1])
    total, n = 0.0, 0
    for start in evaluation_starts(len(val), context_length, windows).tolist():
        for i in range(start + 1, start + context_length + 1):
            if order == 1:
                p = (unigrams[val[i]] + alpha) / (len(train) + alpha * vocab_size)
            else:
                p = (pairs[val[i - 1], val[i]] + alpha) / (after[val[i - 1]] + alpha * vocab_size)
            total -= math.log(p)
            n += 1
    return total / n


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("alpha", [1.0, 0.1])
@pytest.mark.parametrize("windows", [3, None])
def test_ngram_loss_matches_a_direct_count(order, alpha, windows):
    g = torch.Generator().manual_seed(order)
    vocab = 7
    train = torch.randint(0, vocab - 1, (500,), generator=g)  # id 6 never seen in training
    val = torch.randint(0, vocab, (90,), generator=g)
    every = (len(val) - 1) // 8 if windows is None else windows
    expected = python_ngram_loss(train, val, vocab, order, 8, every, alpha)
    assert ngram_loss(train, val, vocab, order, 8, windows, alpha) == pytest.approx(expected,
                                                                                    rel=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_count_tables_are_distributions(order):
    train = torch.tensor([0, 1, 1, 2, 0, 1])
    log_probs = count_log_probs(train, 4, order)
    assert log_probs.shape == (4,) * order
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones((4,) * (order - 1),
                                                                   dtype=torch.float64))


def test_a_bigram_beats_a_unigram_on_text_with_pair_structure():
    """On text that alternates two letters, the pair table knows what comes next."""
    text = torch.tensor([0, 1] * 200)
    unigram = ngram_loss(text, text[:81], 2, 1, 16)
    bigram = ngram_loss(text, text[:81], 2, 2, 16)
    assert unigram == pytest.approx(math.log(2), abs=1e-3)
    assert bigram < 0.01


def test_bad_inputs_say_what_is_allowed():
    ids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0])
    with pytest.raises(ArgumentError, match=r"order must be one of \(1, 2\)"):
        ngram_loss(ids, ids, 4, 3, 4)
    with pytest.raises(ArgumentError, match=r"alpha .*0 would give unseen pairs"):
        count_log_probs(ids, 4, 2, alpha=0.0)
    with pytest.raises(ArgumentError, match=r"in \[0, 3\), got values in \[0, 3\]"):
        count_log_probs(ids, 3, 1)
    with pytest.raises(ArgumentError, match="val holds 9 token ids; it needs at least 17"):
        ngram_loss(ids, ids, 4, 2, 16)
