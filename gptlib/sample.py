"""From logits to text: temperature, top-k, top-p, and generation with a key/value cache.

Derived in chapter 7. Every function works on the last position's logits, ``(B, V)``.
"""
from __future__ import annotations

import math

import torch

from .model import GPT


def check_sampling_args(vocab_size: int, temperature: float, top_k: int | None,
                        top_p: float | None) -> None:
    """Refuse sampling settings that make no distribution, saying what is allowed."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or not 1 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be an integer in [1, {vocab_size}] (the vocabulary size) "
                         f"or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not math.isfinite(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits in each row, set the rest to -inf. ``(B, V) -> (B, V)``.
    Ties at the k-th value are all kept."""
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most-likely tokens whose probabilities sum to at
    least ``p``, set the rest to -inf. ``(B, V) -> (B, V)``. The top token is always kept."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above this one
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> torch.Tensor:
    """The distribution the next token is drawn from: ``(B, V)`` logits -> ``(B, V)`` probabilities.

    Divide by the temperature, then apply top-k, then top-p, then softmax. Temperature 0 puts all
    the mass on the argmax (greedy decoding).
    """
    check_sampling_args(logits.size(-1), temperature, top_k, top_p)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(torch.float32)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick one token per row: ``(B, V)`` logits -> ``(B, 1)`` int64 ids."""
    if temperature == 0:
        check_sampling_args(logits.size(-1), temperature, top_k, top_p)
        return logits.argmax(-1, keepdim=True)
    probs = next_token_distribution(logits, temperature, top_k, top_p)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to each prompt.

    Args:
        idx: ``(B, T)`` or ``(T,)`` int64 prompt ids; a prompt longer than the context is cropped
            to its last ``context_length`` tokens (the returned sequence still holds all of it).
        temperature: 0 for greedy decoding, otherwise the softmax temperature.
        top_k, top_p: optional top-k and nucleus filters.
        use_cache: keep a :class:`~gptlib.model.KVCache`, so each step feeds one token instead of
            the whole window. Once the sequence fills the context, the window slides and every
            position shifts, so each further step recomputes the window (as without the cache).
        generator: a ``torch.Generator`` for reproducible sampling.
    Returns:
        ``(B, T + max_new_tokens)`` (or ``(T + max_new_tokens,)`` for a 1-D prompt).
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    config = model.config
    check_sampling_args(config.vocab_size, temperature, top_k, top_p)
    squeeze = isinstance(idx, torch.Tensor) and idx.dim() == 1
    if squeeze:
        idx = idx[None]
    if isinstance(idx, torch.Tensor) and idx.dim() == 2 and idx.size(1) == 0:
        raise ValueError("the prompt is empty: give at least one token (GPT-2 models start from "
                         "<|endoftext|> = 50256)")
    window = config.context_length
    model.check_input(idx[:, -window:] if isinstance(idx, torch.Tensor) and idx.dim() == 2 else idx)
    was_training = model.training
    model.eval()
    cache = model.new_kv_cache(idx.size(0)) if use_cache else None
    try:
        logits, _ = model(idx[:, -window:], kv_cache=cache, last_only=True)
        for step in range(max_new_tokens):
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_id], dim=1)
            if step == max_new_tokens - 1:
                break
            if cache is not None and cache.length < window:
                logits, _ = model(next_id, kv_cache=cache, last_only=True)
            else:
                if cache is not None:
                    cache.reset()
                logits, _ = model(idx[:, -window:], kv_cache=cache, last_only=True)
    finally:
        model.train(was_training)
    return idx[0] if squeeze else idx
