"""From logits to text: temperature, top-k, top-p, and generation with a key/value cache.

Derived in chapter 7. The filters work on the last position's logits, ``(B, V)``;
:func:`generate` runs a model token by token, and :func:`generate_text` wraps it for text in,
text out.

The three sampling settings are named, defaulted and checked in one place,
:func:`next_token_distribution` (and :func:`check_sampling`). Everything above it passes them on
as ``**sampling``: ``temperature`` (0: greedy), ``top_k`` and ``top_p``.
"""
from __future__ import annotations

import contextlib

import torch

from . import checks
from .model import GPT, one_row_split


def check_sampling(vocab_size: int, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> None:
    """Refuse sampling settings that make no distribution over ``vocab_size`` tokens, saying
    what is allowed (an unknown setting's name is refused by Python itself)."""
    checks.number("temperature", temperature, low=0, hint="0 means greedy")
    checks.integer("top_k", top_k, low=1, high=vocab_size, none_ok=True, hint="the vocabulary size")
    checks.number("top_p", top_p, low=0, high=1, low_open=True, none_ok=True)


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
    check_sampling(logits.size(-1), temperature, top_k, top_p)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(torch.float32)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def sample_next(logits: torch.Tensor, generator: torch.Generator | None = None,
                **sampling) -> torch.Tensor:
    """Pick one token per row: ``(B, V)`` logits -> ``(B, 1)`` int64 ids, drawn from
    :func:`next_token_distribution` with the ``sampling`` settings (greedy: the argmax)."""
    if sampling.get("temperature", 1.0) == 0:
        check_sampling(logits.size(-1), **sampling)
        return logits.argmax(-1, keepdim=True)
    probs = next_token_distribution(logits, **sampling)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs, 1, generator=generator).to(logits.device)


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, use_cache: bool = True,
             generator: torch.Generator | None = None, **sampling) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to each prompt.

    Args:
        idx: ``(B, T)`` or ``(T,)`` int64 prompt ids; a prompt longer than the context is cropped
            to its last ``context_length`` tokens (the returned sequence still holds all of it).
        use_cache: keep a :class:`~gptlib.model.KVCache`, so each step feeds one token instead of
            the whole window. Once the sequence fills the context, the window slides and every
            position shifts, so each further step recomputes the window (as without the cache).
        generator: a ``torch.Generator`` for reproducible sampling.
        sampling: ``temperature`` (0 for greedy decoding), ``top_k``, ``top_p``, as in
            :func:`next_token_distribution`.
    Returns:
        ``(B, T + max_new_tokens)`` (or ``(T + max_new_tokens,)`` for a 1-D prompt).

    The prompt's ids are checked once, here; the model's own tokens are in range by construction,
    so no step waits for the device to check them. For one sequence with the cache on a CPU, the
    steps run inside :func:`gptlib.model.one_row_split`: each large one-row product is spread
    over torch's threads, which changes the logits only in their last digits (with one thread,
    ``torch.set_num_threads(1)``, nothing is split).
    """
    checks.instance("model", model, GPT, what="a gptlib GPT")
    checks.integer("max_new_tokens", max_new_tokens, low=0)
    config = model.config
    check_sampling(config.vocab_size, **sampling)
    squeeze = isinstance(idx, torch.Tensor) and idx.dim() == 1
    if squeeze:
        idx = idx[None]
    if isinstance(idx, torch.Tensor) and idx.dim() == 2 and idx.size(1) == 0:
        raise checks.ArgumentError("the prompt is empty: give at least one token (GPT-2 models start "
                                   "from <|endoftext|> = 50256)")
    window = config.context_length
    model.check_input(idx[:, -window:] if isinstance(idx, torch.Tensor) and idx.dim() == 2 else idx)
    was_training = model.training
    model.eval()
    B, T = idx.shape
    # the whole output is allocated once (int64, the dtype of the sampled ids), and each step
    # writes its token in place
    dtype = torch.long if max_new_tokens else idx.dtype
    out = torch.empty(B, T + max_new_tokens, dtype=dtype, device=idx.device)
    out[:, :T] = idx
    # the cache holds what is fed: the (cropped) prompt, then each new token but the last
    capacity = min(window, T + max_new_tokens - 1) if max_new_tokens else min(window, T)
    cache = model.new_kv_cache(B, max(capacity, 1)) if use_cache else None
    # one sequence, fed one token a step: every product has one row, and on a CPU splitting the
    # large ones across torch's threads reads each weight faster (gptlib.model.one_row_split
    # leaves layers on other devices whole)
    split = one_row_split(model) if cache is not None and B == 1 else contextlib.nullcontext()
    try:
        with split:
            logits, _ = model(idx[:, -window:], kv_cache=cache, last_only=True)
            for step in range(max_new_tokens):
                end = T + step  # tokens so far; the new one goes to position `end`
                next_id = sample_next(logits[:, -1, :], generator, **sampling)
                out[:, end:end + 1] = next_id
                if step == max_new_tokens - 1:
                    break
                if cache is not None and cache.length < cache.capacity:
                    logits, _ = model(next_id, kv_cache=cache, last_only=True)
                else:
                    if cache is not None:
                        cache.reset()
                    logits, _ = model(out[:, max(0, end + 1 - window):end + 1], kv_cache=cache,
                                      last_only=True)
    finally:
        model.train(was_training)
    idx = out
    return idx[0] if squeeze else idx


def generate_text(model: GPT, tokenizer, prompt: str, max_new_tokens: int = 200,
                  seed: int | None = None, **sampling) -> str:
    """Continue ``prompt`` with ``max_new_tokens`` sampled tokens; return prompt plus continuation.

    Args:
        model: any :class:`~gptlib.model.GPT`.
        tokenizer: anything with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``
            (a :class:`~gptlib.tokenizer.CharTokenizer` or a tiktoken ``Encoding``).
        seed: makes the sample reproducible (None: use torch's global generator).
        sampling: ``temperature`` (0: greedy), ``top_k``, ``top_p``, as in :func:`generate`.
    Returns:
        The text of the prompt followed by the generated tokens.
    """
    checks.instance("prompt", prompt, str)
    ids = tokenizer.encode(prompt)
    if not ids:
        eot = getattr(tokenizer, "eot_token", None)
        if eot is None:
            raise checks.ArgumentError("the prompt is empty: give at least one character to continue")
        ids = [eot]  # GPT-2 models start a text from <|endoftext|>
    if max(ids) >= model.config.vocab_size:
        raise checks.ArgumentError(
            f"the tokenizer produced id {max(ids)}, but the model's vocabulary has "
            f"{model.config.vocab_size} tokens: this tokenizer does not belong to this model")
    device = model.transformer.wte.weight.device
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    out = generate(model, idx, max_new_tokens, generator=generator, **sampling)
    text, head = tokenizer.decode(out[0].tolist()), tokenizer.decode(ids)
    return prompt + text[len(head):] if text.startswith(head) else text
