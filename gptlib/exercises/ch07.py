"""Checks for the exercises of chapter 7 (sampling).

Each check computes its reference independently with numpy (never with :mod:`gptlib.sample`, which
the chapter checks the same ideas against) and tells a plausible wrong answer apart from the right
one with a hint.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import GPTConfig
from ._core import call_answer, close, confirm, fail, require_answer, require_callable


def _as_distribution(exercise: str, name: str, got, shape) -> np.ndarray:
    """The reader's output as a float64 array of ``shape``, or a message saying what is wrong."""
    if not isinstance(got, (torch.Tensor, np.ndarray)):
        fail(exercise, f"`{name}` should return a tensor of probabilities, got {type(got).__name__}.")
    array = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    if array.shape != tuple(shape):
        fail(exercise, f"`{name}` returned shape {array.shape}, expected {tuple(shape)} "
                       f"(one probability per token of the vocabulary).")
    if not np.isfinite(array).all():
        fail(exercise, f"`{name}` returned NaN or infinity. Hint: exp of a large logit overflows; "
                       f"torch.softmax subtracts the row's maximum first, so use it.")
    return array


def _softmax(z: np.ndarray) -> np.ndarray:
    """Numerically safe softmax over the last axis, in float64."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _random_distribution(rng: np.random.Generator, vocab_size: int, sharpness: float) -> np.ndarray:
    """A distribution with distinct probabilities (so 'the k largest' is never ambiguous)."""
    return _softmax(sharpness * rng.standard_normal(vocab_size))


# ----------------------------------------------------------------------------------------------
# Exercise 7.1: temperature
# ----------------------------------------------------------------------------------------------
def check_temperature(apply_temperature) -> None:
    """``apply_temperature(logits, temperature)``: ``(B, V)`` logits and a temperature > 0 ->
    ``(B, V)`` probabilities softmax(logits / temperature). Compared with numpy on random logits at
    several temperatures, including logits of size 1000 at temperature 0.05."""
    ex = "7.1"
    require_callable(ex, "apply_temperature", apply_temperature)
    rng = np.random.default_rng(71)
    cases = [(rng.standard_normal((3, 10)) * 2, t) for t in (0.3, 1.0, 2.5)]
    cases.append((np.array([[1000.0, 999.0, 0.0, -1000.0]]), 0.05))
    for logits, temperature in cases:
        got = call_answer(ex, "apply_temperature", apply_temperature,
                          torch.tensor(logits, dtype=torch.float32), temperature)
        got = _as_distribution(ex, "apply_temperature", got, logits.shape)
        expected = _softmax(logits / temperature)
        if temperature != 1 and np.allclose(got, _softmax(logits * temperature), atol=1e-5):
            fail(ex, f"at temperature {temperature} you multiplied the logits by the temperature; "
                     f"divide by it (a low temperature must make the distribution sharper).")
        if not np.allclose(got.sum(-1), 1, atol=1e-4):
            fail(ex, "each row must sum to 1: apply softmax over the last dimension after dividing "
                     "the logits by the temperature.")
        close(ex, f"apply_temperature(logits, {temperature})", got, expected, atol=1e-5, rtol=1e-4,
              hint="Divide the logits by the temperature, then softmax over the vocabulary "
                   "(dim=-1).")
    confirm(ex, "your temperature scaling equals softmax(logits / T), even for huge logits")


# ----------------------------------------------------------------------------------------------
# Exercise 7.2: top-k
# ----------------------------------------------------------------------------------------------
def _top_k_reference(probs: np.ndarray, k: int) -> np.ndarray:
    keep = np.argsort(-probs, kind="stable")[:k]
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def check_top_k(top_k_probs) -> None:
    """``top_k_probs(probs, k)``: a ``(V,)`` distribution and an integer k -> the ``(V,)``
    distribution that keeps the k most likely tokens, renormalised, and gives the rest zero."""
    ex = "7.2"
    require_callable(ex, "top_k_probs", top_k_probs)
    rng = np.random.default_rng(72)
    for vocab_size, sharpness, k in ((10, 1.0, 3), (65, 2.5, 10), (8, 0.5, 1), (6, 1.0, 6)):
        probs = _random_distribution(rng, vocab_size, sharpness)
        got = call_answer(ex, "top_k_probs", top_k_probs, torch.tensor(probs, dtype=torch.float32), k)
        got = _as_distribution(ex, "top_k_probs", got, probs.shape)
        expected = _top_k_reference(probs, k)
        kept = int((got > 0).sum())
        if kept != k:
            fail(ex, f"with k = {k} your distribution gives {kept} tokens a non-zero probability; "
                     f"exactly the {k} most likely should stay.")
        if k < vocab_size and np.isclose(got.sum(), probs[expected > 0].sum(), atol=1e-5):
            fail(ex, "the kept probabilities must be renormalised to sum to 1 (divide by their "
                     "sum).")
        if not np.array_equal(got > 0, expected > 0):
            fail(ex, f"with k = {k} you kept the wrong tokens: keep the k LARGEST probabilities "
                     f"(torch.topk or a descending sort).")
        close(ex, f"top_k_probs(probs, {k})", got, expected, atol=1e-6, rtol=1e-4,
              hint="Zero every probability outside the k largest, then divide by the sum.")
    confirm(ex, "your top-k keeps exactly the k most likely tokens and renormalises them")


# ----------------------------------------------------------------------------------------------
# Exercise 7.3: top-p (nucleus)
# ----------------------------------------------------------------------------------------------
def _nucleus_reference(probs: np.ndarray, p: float) -> np.ndarray:
    """Smallest set of most-likely tokens whose mass reaches p (Holtzman et al. 2020), renormalised.
    Written as a plain loop, unlike the chapter's cumsum-and-mask."""
    order = np.argsort(-probs, kind="stable")
    out = np.zeros_like(probs)
    mass = 0.0
    for token in order:
        out[token] = probs[token]
        mass += probs[token]
        if mass >= p:
            break
    return out / out.sum()


def check_nucleus(nucleus) -> None:
    """``nucleus(probs, p)``: a ``(V,)`` distribution and 0 < p <= 1 -> the ``(V,)`` distribution
    over the smallest set of most likely tokens whose probabilities sum to at least p,
    renormalised; every other token gets zero."""
    ex = "7.3"
    require_callable(ex, "nucleus", nucleus)
    rng = np.random.default_rng(73)
    fixed = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    cases = [(fixed, 0.6), (fixed, 0.75), (fixed, 0.01), (fixed, 1.0),
             (_random_distribution(rng, 65, 2.0), 0.9), (_random_distribution(rng, 40, 0.7), 0.5)]
    for probs, p in cases:
        got = call_answer(ex, "nucleus", nucleus, torch.tensor(probs, dtype=torch.float64), p)
        got = _as_distribution(ex, "nucleus", got, probs.shape)
        expected = _nucleus_reference(probs, p)
        n_got, n_expected = int((got > 0).sum()), int((expected > 0).sum())
        if n_got == n_expected - 1 and p < 1:
            fail(ex, f"with p = {p} you keep {n_got} tokens, one too few: keep the token that "
                     f"makes the running sum reach p too (the nucleus is the smallest set whose "
                     f"mass is at least p). Hint: drop a token only if the mass ranked ABOVE it "
                     f"is already >= p.")
        if n_got != n_expected:
            fail(ex, f"with p = {p} you keep {n_got} tokens, the nucleus has {n_expected}. Sort "
                     f"descending, take the running sum, and keep tokens until it reaches p.")
        if not np.array_equal(got > 0, expected > 0):
            fail(ex, f"with p = {p} you keep the right number of tokens but not the most likely "
                     f"ones: sort in descending order.")
        close(ex, f"nucleus(probs, {p})", got, expected, atol=1e-6, rtol=1e-4,
              hint="Renormalise the kept probabilities so they sum to 1.")
    confirm(ex, "your nucleus keeps the smallest set of tokens with mass >= p")


# ----------------------------------------------------------------------------------------------
# Exercise 7.4: FLOPs saved by the KV cache
# ----------------------------------------------------------------------------------------------
def cache_flops_reference(config: GPTConfig, prompt_length: int, new_tokens: int) -> tuple[float, float]:
    """Matmul FLOPs of the transformer blocks, 2 N per token position fed (N: non-embedding
    parameters), to generate ``new_tokens`` after a prompt, without and with the cache. The first
    forward pass feeds the prompt; each later step feeds the whole sequence (without) or the one
    new token (with); the last token drawn is never fed. Counted by an explicit loop."""
    n = config.param_count(include_embeddings=False)
    fed_without = fed_with = 0
    length = prompt_length
    for step in range(new_tokens):
        fed_without += length
        fed_with += prompt_length if step == 0 else 1
        length += 1
    return 2.0 * n * fed_without, 2.0 * n * fed_with


def check_cache_flops(flops_without, flops_with, config: GPTConfig, prompt_length: int,
                      new_tokens: int) -> None:
    """The block FLOPs of generating ``new_tokens`` after ``prompt_length`` prompt tokens, without
    and with the KV cache, counting 2 N FLOPs per token position fed (N: non-embedding
    parameters); the sequence stays within the context."""
    ex = "7.4"
    require_answer(ex, flops_without=flops_without, flops_with=flops_with)
    if prompt_length + new_tokens > config.context_length:
        raise ValueError("this check assumes the sequence stays within the context length")
    expected_without, expected_with = cache_flops_reference(config, prompt_length, new_tokens)
    n = config.param_count(include_embeddings=False)
    for name, got in (("flops_without", flops_without), ("flops_with", flops_with)):
        if not isinstance(got, (int, float, np.integer, np.floating, torch.Tensor)):
            fail(ex, f"`{name}` should be a number, got {type(got).__name__}.")
    fw = float(flops_without)
    too_many = (2.0 * n * sum(prompt_length + i for i in range(0, new_tokens + 1)),
                2.0 * n * sum(prompt_length + i for i in range(1, new_tokens + 1)))
    if any(np.isclose(fw, wrong, rtol=1e-9) for wrong in too_many):
        fail(ex, "flops_without counts too many tokens: the first pass feeds the P prompt tokens, "
                 "and the last token drawn is never fed back, so the passes feed P, P + 1, ..., "
                 "P + new_tokens - 1 tokens.")
    if np.isclose(fw, 2.0 * n * sum(range(1, new_tokens + 1)), rtol=1e-9) or \
            np.isclose(fw, 2.0 * n * new_tokens * (new_tokens - 1) / 2, rtol=1e-9):
        fail(ex, "flops_without leaves out the prompt: every pass without the cache feeds the "
                 "prompt again as well as the tokens generated so far.")
    if np.isclose(float(flops_with), 2.0 * n * new_tokens, rtol=1e-9):
        fail(ex, "flops_with counts one token per step, but the first pass feeds the whole prompt "
                 "(P tokens); only the later passes feed a single token.")
    close(ex, "flops_without", fw, expected_without, atol=0, rtol=1e-9,
          hint="Sum 2 N x (tokens fed) over the passes: P, P + 1, ..., P + new_tokens - 1.")
    close(ex, "flops_with", float(flops_with), expected_with, atol=0, rtol=1e-9,
          hint="The first pass feeds P tokens, each of the other new_tokens - 1 passes feeds one.")
    confirm(ex, f"the cache cuts the block FLOPs by {expected_without / expected_with:.1f}x here")


# ----------------------------------------------------------------------------------------------
# Exercise 7.5: the memory a KV cache needs
# ----------------------------------------------------------------------------------------------
def check_cache_bytes(cache_bytes) -> None:
    """Bytes of the KV cache of Cerebras-GPT 13B for one sequence of its full context (2048
    tokens), keys and values held in 16-bit floats (2 bytes each)."""
    ex = "7.5"
    require_answer(ex, cache_bytes=cache_bytes)
    config = GPTConfig.cerebras("13B")
    # one key and one value vector of width C = H * D, per layer, per position
    expected = 2 * config.n_layer * config.context_length * config.n_head * config.d_head * 2
    if not isinstance(cache_bytes, (int, float, np.integer, np.floating)):
        fail(ex, f"`cache_bytes` should be a number, got {type(cache_bytes).__name__}.")
    got = float(cache_bytes)
    if np.isclose(got, expected / 2, rtol=1e-9):
        fail(ex, "half the expected size: the cache stores a key AND a value for every position "
                 "and layer, or you counted 1 byte per 16-bit number.")
    if np.isclose(got, expected * 2, rtol=1e-9):
        fail(ex, "twice the expected size: a 16-bit float is 2 bytes (not 4), and each layer has "
                 "one key and one value per position.")
    if np.isclose(got, expected / config.n_layer, rtol=1e-9):
        fail(ex, "that is one layer's cache: every one of the L layers keeps its own keys and values.")
    close(ex, "cache_bytes", got, float(expected), atol=0, rtol=1e-9,
          hint="2 (key and value) x L x T x C x 2 bytes, with C = d_model.")
    confirm(ex, f"{expected / 1e9:.2f} GB per 2048-token sequence")


__all__ = ["cache_flops_reference", "check_cache_bytes", "check_cache_flops", "check_nucleus",
           "check_temperature", "check_top_k"]
