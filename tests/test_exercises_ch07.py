"""Chapter 7's exercise checks: each confirms a right answer, and rejects the stub `...` and the
plausible wrong answers a reader might give, with a message that says what is wrong."""
import pytest
import torch

from gptlib import GPTConfig
from gptlib.exercises import ExerciseError, ch07


def passes(capsys, check, *args):
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    with pytest.raises(ExerciseError, match=match):
        check(*args)


# ------------------------------------------------------------------ 7.1 temperature
def right_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def test_temperature(capsys):
    passes(capsys, ch07.check_temperature, right_temperature)
    rejects(ch07.check_temperature, ..., match="not answered yet")
    rejects(ch07.check_temperature, lambda z, t: torch.softmax(z * t, -1), match="divide by it")
    rejects(ch07.check_temperature, lambda z, t: z / t, match="sum to 1")
    naive = lambda z, t: torch.exp(z / t) / torch.exp(z / t).sum(-1, keepdim=True)  # overflows
    rejects(ch07.check_temperature, naive, match="NaN or infinity")
    rejects(ch07.check_temperature, lambda z, t: torch.softmax(z / t, 0), match="sum to 1")
    rejects(ch07.check_temperature, lambda z, t: 1 / 0, match="raised ZeroDivisionError")


# ------------------------------------------------------------------ 7.2 top-k
def right_top_k(probs, k):
    kth = torch.topk(probs, k).values[-1]
    kept = torch.where(probs >= kth, probs, torch.zeros_like(probs))
    return kept / kept.sum()


def test_top_k(capsys):
    passes(capsys, ch07.check_top_k, right_top_k)
    rejects(ch07.check_top_k, ..., match="not answered yet")

    def not_renormalised(probs, k):
        kth = torch.topk(probs, k).values[-1]
        return torch.where(probs >= kth, probs, torch.zeros_like(probs))

    def one_too_many(probs, k):
        return right_top_k(probs, min(k + 1, probs.numel()))

    def smallest_k(probs, k):
        kth = torch.topk(probs, k, largest=False).values[-1]
        kept = torch.where(probs <= kth, probs, torch.zeros_like(probs))
        return kept / kept.sum()

    rejects(ch07.check_top_k, not_renormalised, match="renormalised")
    rejects(ch07.check_top_k, one_too_many, match="non-zero probability")
    rejects(ch07.check_top_k, smallest_k, match="wrong tokens")
    rejects(ch07.check_top_k, lambda probs, k: probs[:k], match="shape")


# ------------------------------------------------------------------ 7.3 nucleus
def right_nucleus(probs, p):
    sorted_probs, order = probs.sort(descending=True)
    mass_before = sorted_probs.cumsum(0) - sorted_probs
    kept_sorted = torch.where(mass_before < p, sorted_probs, torch.zeros_like(sorted_probs))
    kept = torch.zeros_like(probs).scatter(0, order, kept_sorted)
    return kept / kept.sum()


def test_nucleus(capsys):
    passes(capsys, ch07.check_nucleus, right_nucleus)
    rejects(ch07.check_nucleus, ..., match="not answered yet")

    def stops_short(probs, p):  # keeps only tokens whose running sum is still below p
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) < p
        keep[0] = True
        kept = torch.zeros_like(probs).scatter(0, order, torch.where(keep, sorted_probs, 0 * sorted_probs))
        return kept / kept.sum()

    def not_renormalised(probs, p):
        return torch.where(right_nucleus(probs, p) > 0, probs, torch.zeros_like(probs))

    rejects(ch07.check_nucleus, stops_short, match="one too few")
    rejects(ch07.check_nucleus, not_renormalised, match="Renormalise")
    rejects(ch07.check_nucleus, lambda probs, p: right_top_k(probs, 4), match="nucleus has")
    rejects(ch07.check_nucleus, right_nucleus_ascending, match="nucleus has")


def right_nucleus_ascending(probs, p):
    """Wrong: walks from the least likely token up."""
    sorted_probs, order = probs.sort(descending=False)
    mass_before = sorted_probs.cumsum(0) - sorted_probs
    kept_sorted = torch.where(mass_before < p, sorted_probs, torch.zeros_like(sorted_probs))
    kept = torch.zeros_like(probs).scatter(0, order, kept_sorted)
    return kept / kept.sum()


# ------------------------------------------------------------------ 7.4 cache FLOPs
CONFIG = GPTConfig(vocab_size=65, context_length=256, n_layer=4, n_head=4, d_model=128)


def test_cache_flops(capsys):
    n = CONFIG.param_count(include_embeddings=False)
    P, T = 16, 200
    without = 2 * n * (T * P + T * (T - 1) // 2)
    with_cache = 2 * n * (P + T - 1)
    passes(capsys, ch07.check_cache_flops, without, with_cache, CONFIG, P, T)
    rejects(ch07.check_cache_flops, ..., with_cache, CONFIG, P, T, match="not answered yet")
    rejects(ch07.check_cache_flops, without, ..., CONFIG, P, T, match="not answered yet")
    rejects(ch07.check_cache_flops, 2 * n * (T * P + T * (T + 1) // 2), with_cache, CONFIG, P, T,
            match="too many")
    rejects(ch07.check_cache_flops, 2 * n * T * (T + 1) // 2, with_cache, CONFIG, P, T,
            match="leaves out the prompt")
    rejects(ch07.check_cache_flops, without, 2 * n * T, CONFIG, P, T, match="whole prompt")
    rejects(ch07.check_cache_flops, without / 2, with_cache, CONFIG, P, T, match="off")
    rejects(ch07.check_cache_flops, "many", with_cache, CONFIG, P, T, match="number")


def test_cache_flops_reference_matches_the_closed_form():
    n = CONFIG.param_count(include_embeddings=False)
    for P, T in ((1, 1), (5, 2), (16, 200)):
        assert ch07.cache_flops_reference(CONFIG, P, T) == (2.0 * n * (T * P + T * (T - 1) / 2),
                                                            2.0 * n * (P + T - 1))


# ------------------------------------------------------------------ 7.5 cache memory
def test_cache_bytes(capsys):
    right = 2 * 40 * 2048 * 5120 * 2  # K and V, 40 layers, 2048 positions, width 5120, 2 bytes
    passes(capsys, ch07.check_cache_bytes, right)
    rejects(ch07.check_cache_bytes, ..., match="not answered yet")
    rejects(ch07.check_cache_bytes, right / 2, match="half")
    rejects(ch07.check_cache_bytes, right * 2, match="twice")
    rejects(ch07.check_cache_bytes, right / 40, match="one layer")
    rejects(ch07.check_cache_bytes, right + 1e6, match="off")
    rejects(ch07.check_cache_bytes, "1.7 GB", match="number")
