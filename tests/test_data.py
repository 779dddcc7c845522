import pytest
import torch

from gptlib.data import BatchSampler, get_batch, load_shakespeare, train_val_split


def test_split_is_deterministic_and_cuts_at_a_line():
    text = load_shakespeare()
    train, val = train_val_split(text)
    assert train + val == text
    assert train.endswith("\n")
    assert 0.09 < len(val) / len(text) < 0.11
    assert train_val_split(text) == (train, val)


def test_split_works_on_token_ids_and_refuses_bad_fractions():
    train, val = train_val_split(list(range(100)), 0.2)
    assert train == list(range(80)) and val == list(range(80, 100))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        train_val_split("abc", 1.0)


def test_batches_are_shifted_windows():
    tokens = torch.arange(1000)
    x, y = get_batch(tokens, 8, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.long
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y, x + 1)  # on arange the next token is always one more


def test_sampler_is_seeded_and_resumable():
    tokens = torch.randint(0, 50, (500,), generator=torch.Generator().manual_seed(1))
    a, b = BatchSampler(tokens, 4, 8, seed=3), BatchSampler(tokens, 4, 8, seed=3)
    for _ in range(3):
        assert all(torch.equal(p, q) for p, q in zip(next(a), next(b)))
    state = a.state_dict()
    first = next(a)
    a.load_state_dict(state)
    assert torch.equal(next(a)[0], first[0])


def test_bad_batch_requests_are_refused():
    with pytest.raises(ValueError, match="more than context_length"):
        get_batch(torch.arange(10), 2, 10)
    with pytest.raises(ValueError, match="positive"):
        get_batch(torch.arange(10), 0, 4)
    with pytest.raises(TypeError, match="integer token ids"):
        BatchSampler(torch.rand(100), 2, 4)
