"""The Cerebras-GPT model: GPT-2's architecture with exact GELU, pre-LayerNorm and tied embeddings.

Shapes use the book's letters: B batch, T sequence length, C = d_model, H heads, D = C / H head
width, F = d_ffn, V vocabulary, L layers. Module names follow Hugging Face's ``GPT2LMHeadModel``
(``transformer.h.0.attn.c_attn`` ...) so a published checkpoint maps onto this module one to one.

Chapters: 3 derives :func:`attention` and :func:`causal_mask`; 4 derives :class:`FeedForward`,
LayerNorm and :class:`Block`; 5 assembles :class:`GPT`; 7 derives :class:`KVCache`.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checks
from .config import GPTConfig


# ----------------------------------------------------------------------------------------------
# The linear layer, and one-row products split across threads on a CPU
# ----------------------------------------------------------------------------------------------
class Linear(nn.Linear):
    """``nn.Linear``: ``(..., in) -> (..., out)``, ``x @ W^T + b`` with ``W`` stored ``(out, in)``.

    One addition, for generation on a CPU: inside :func:`one_row_split`, a product with a single
    row of ``x`` (``x.numel() == in``: one sequence fed one token, shape ``(1, 1, in)``, ``(1, in)``
    or ``(in,)``) is split into :attr:`one_row_parts` products over consecutive blocks of ``W``'s
    rows, done as one batched product (:func:`split_row_product`), which torch's CPU kernel spreads
    over that many threads. On the machine this book was made on (torch's MKL build on an AMD EPYC)
    a plain one-row product runs on one thread and is bound by how fast one core reads ``W``;
    split, the threads read it together (``bench/bench_generate.py`` measures both). The numbers
    are the same up to float rounding; every other product, and all training, use ``F.linear``.
    """

    one_row_parts: int = 0
    """How many blocks a one-row product is split into; 0 (the default): none. Set only by
    :func:`one_row_split`, for the length of its block."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.one_row_parts
        if parts < 2 or x.numel() != x.size(-1):
            return F.linear(x, self.weight, self.bias)
        y = split_row_product(x.reshape(1, -1), self.weight, self.bias, parts)
        return y.view(*x.shape[:-1], self.out_features)


def split_row_product(row: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      parts: int) -> torch.Tensor:
    """``row @ weight^T + bias`` computed as ``parts`` products over consecutive blocks of rows.

    Args:
        row: ``(1, in)``, on ``weight``'s device.
        weight: ``(out, in)``; its first ``out - out % parts`` rows are viewed as
            ``(parts, out // parts, in)`` without a copy, the last ``out % parts`` (if any) are
            multiplied on their own.
        bias: ``(out,)`` or None.
        parts: how many blocks, from 1 to ``out`` (torch runs the batched product on up to that
            many threads). Not checked here, since it runs once per layer and step:
            :func:`one_row_split` checks it.
    Returns:
        ``(1, out)``, equal to ``F.linear(row, weight, bias)`` up to float rounding, in the dtype
        ``F.linear`` would give (also under autocast).
    """
    n_out, n_in = weight.shape
    even = n_out - n_out % parts
    blocks = weight[:even].view(parts, even // parts, n_in)  # (parts, out // parts, in)
    y = torch.bmm(row.expand(parts, 1, n_in), blocks.transpose(1, 2)).view(1, even)
    if even < n_out:
        y = torch.cat([y, F.linear(row, weight[even:])], dim=1)
    return y if bias is None else y + bias.to(y.dtype)


SPLIT_MIN_ELEMENTS = 1 << 18
"""Weights with fewer elements (``out * in``; 1 MiB in float32) stay whole in :func:`one_row_split`:
splitting costs about seven microseconds a product on the book's machine, more than it saves on a
small one."""

SPLIT_MIN_MODEL_ELEMENTS = 1 << 24
"""Models whose linear weights hold fewer elements in all (64 MiB in float32, twice the
last-level cache of the book's machine) are not split by :func:`one_row_split`. On the book's
machine (``bench/bench_generate.py`` prints the sweep) a weight read from memory, as a large
model's are at every step, is multiplied faster split from 2^18 elements on (mixed at 2^16); a
weight that stays in the processor's caches, as a small model's can, is slower split up to 2^16,
mixed at 2^18 and faster only from 2^20, by amounts that changed from run to run. A model that
small has few such weights, and its steps are fast already."""


@contextlib.contextmanager
def one_row_split(model: nn.Module, parts: int | None = None, min_elements: int | None = None,
                  min_model_elements: int | None = None):
    """``with one_row_split(model): ...``: one-row products of ``model``'s large :class:`Linear`
    layers on a CPU are split into ``parts`` blocks (:func:`split_row_product`) until the block
    ends; the block gets ``model`` back (``as m``).

    Args:
        model: a torch module (a gptlib GPT); nothing is copied, only a count is set per layer.
        parts: how many blocks; torch's intra-op thread count when the block is entered, by
            default. With 1 nothing changes.
        min_elements: the smallest weight (``out * in``) that is split;
            :data:`SPLIT_MIN_ELEMENTS` (read when the block is entered) by default.
        min_model_elements: the smallest total of the model's linear weights (a tied matrix
            counted once) for which anything is split; :data:`SPLIT_MIN_MODEL_ELEMENTS` by default.

    :func:`gptlib.sample.generate` uses it for one sequence with the KV cache on a CPU. A small
    model stays whole, and so do layers on another device, with a non-contiguous weight, or with
    fewer output features than ``parts``. On leaving, even by an exception, every layer gets back
    what it had before, so blocks nest. Not thread-safe: two threads entering and leaving blocks on
    one model in overlapping order can leave the wrong counts behind.
    """
    checks.instance("model", model, nn.Module, what="a torch module (a gptlib GPT)")
    parts = torch.get_num_threads() if parts is None else checks.integer("parts", parts, low=1)
    min_elements = SPLIT_MIN_ELEMENTS if min_elements is None else min_elements
    checks.integer("min_elements", min_elements, low=0)
    min_model = SPLIT_MIN_MODEL_ELEMENTS if min_model_elements is None else min_model_elements
    checks.integer("min_model_elements", min_model, low=0)
    linear = [m for m in model.modules() if isinstance(m, Linear)]
    total = sum({id(m.weight): m.weight.numel() for m in linear}.values())
    layers = [m for m in linear
              if m.weight.device.type == "cpu" and m.weight.is_contiguous()
              and m.weight.numel() >= min_elements and m.out_features >= parts
              ] if total >= min_model else []
    missing = object()
    before = [m.__dict__.get("one_row_parts", missing) for m in layers]
    try:
        for m in layers:
            m.one_row_parts = parts if parts > 1 else 0
        yield model
    finally:
        for m, old in zip(layers, before):
            if old is missing:  # back to the class default, leaving no attribute behind
                m.__dict__.pop("one_row_parts", None)
            else:
                m.one_row_parts = old


# ----------------------------------------------------------------------------------------------
# Attention (chapter 3)
# ----------------------------------------------------------------------------------------------
def causal_mask(t_query: int, t_key: int | None = None, device=None) -> torch.Tensor:
    """Which keys each query may look at: ``(T_q, T_k)`` bool, True = allowed.

    The queries are the last ``T_q`` of ``T_k`` positions (``T_k = T_q`` without a cache), so
    query ``i`` sits at position ``T_k - T_q + i`` and sees keys ``0 .. T_k - T_q + i``.
    """
    t_key = t_query if t_key is None else t_key
    checks.integer("t_key", t_key, low=t_query, hint="the queries are the last t_query positions")
    return torch.ones(t_query, t_key, dtype=torch.bool, device=device).tril(diagonal=t_key - t_query)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              scale: float | None = None, dropout_p: float = 0.0,
              training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scale + mask) V, written out (the formula of chapter 3).

    Args:
        q: ``(B, H, T_q, D)`` queries.
        k, v: ``(B, H, T_k, D)`` keys and values.
        mask: ``(T_q, T_k)`` bool, True where a query may attend (see :func:`causal_mask`);
            masked scores become -inf, so they get exactly zero weight.
        scale: multiplies the scores; 1 / sqrt(D) by default (1 / D under muP).
    Returns:
        ``(out, weights)``: ``(B, H, T_q, D)`` and the attention weights ``(B, H, T_q, T_k)``,
        each row a probability distribution over keys.
    """
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    dropped = F.dropout(weights, dropout_p, training) if dropout_p > 0 else weights
    return dropped @ v, weights


class KVCache:
    """Keys and values of every layer for the tokens seen so far, so generation computes each
    token's K and V once (chapter 7).

    Storage is preallocated: ``keys[l]`` and ``values[l]`` are ``(B, H, T_max, D)``, with
    ``T_max`` = ``capacity`` (the context length unless a smaller one is given, e.g. the prompt
    plus the tokens to generate); ``length`` is how many positions are filled. Positions past
    ``length`` are never read, so the storage starts uninitialised rather than zeroed.
    """

    def __init__(self, config: GPTConfig, batch_size: int, device=None, dtype=torch.float32,
                 capacity: int | None = None):
        checks.integer("batch_size", batch_size, low=1)
        capacity = checks.integer("capacity", capacity, low=1, high=config.context_length,
                                  none_ok=True, hint="the context length") or config.context_length
        shape = (config.n_layer, batch_size, config.n_head, capacity, config.d_head)
        self.keys = torch.empty(shape, device=device, dtype=dtype)
        self.values = torch.empty(shape, device=device, dtype=dtype)
        self.length = 0
        self.capacity = capacity

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``(B, H, T_new, D)`` keys/values after the cached ones for one layer; return all of
        that layer's keys/values so far, ``(B, H, length + T_new, D)``. The last layer to append
        advances :attr:`length` (see :meth:`advance`)."""
        start, end = self.length, self.length + k.size(2)
        if end > self.capacity:
            raise checks.ArgumentError(f"KV cache holds {self.capacity} positions; cannot add {k.size(2)} "
                             f"after {start}. Reset it (or crop the prompt) first.")
        self.keys[layer, :, :, start:end] = k
        self.values[layer, :, :, start:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: ``(B, T, C) -> (B, T, C)``.

    One fused linear layer makes Q, K and V (``c_attn``: C -> 3C), the heads attend in parallel,
    and ``c_proj`` (C -> C) mixes the heads' outputs back into the residual stream.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.n_head, self.d_head = config.n_head, config.d_head
        self.c_attn = Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.c_proj = Linear(config.d_model, config.d_model, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        # muP scales scores by 1/D rather than 1/sqrt(D) (Cerebras-GPT muP; chapter 8)
        self.scale = 1.0 / self.d_head if config.mup else 1.0 / math.sqrt(self.d_head)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None, layer: int = 0,
                weights_out: list | None = None) -> torch.Tensor:
        """x: ``(B, T, C)``. With ``kv_cache`` the T new positions follow the cached ones.
        If ``weights_out`` is a list, the explicit path runs and appends ``(B, H, T, T_k)`` weights."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, H, T, D): each head gets its own D-wide slice of the channels
        q, k, v = (t.view(B, T, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        if kv_cache is not None:
            k, v = kv_cache.append(layer, k, v)
        t_key = k.size(2)
        dropout_p = self.config.dropout if self.training else 0.0
        if weights_out is not None or self.config.attention_impl == "explicit":
            mask = causal_mask(T, t_key, device=x.device)
            y, weights = attention(q, k, v, mask, self.scale, dropout_p, self.training)
            if weights_out is not None:
                weights_out.append(weights.detach())
        elif T == t_key:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p,
                                               scale=self.scale)
        else:
            mask = causal_mask(T, t_key, device=x.device) if T > 1 else None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                               scale=self.scale)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


# ----------------------------------------------------------------------------------------------
# Feed-forward network and block (chapter 4)
# ----------------------------------------------------------------------------------------------
class FeedForward(nn.Module):
    """Position-wise MLP: ``(B, T, C) -> (B, T, F) -> GELU -> (B, T, C)``.

    ``"gelu"`` is the exact x * Phi(x) (Cerebras-GPT); ``"gelu_new"`` is GPT-2's tanh approximation.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = Linear(config.d_model, config.d_ffn, bias=config.bias)
        self.c_proj = Linear(config.d_ffn, config.d_model, bias=config.bias)
        self.approximate = "none" if config.activation == "gelu" else "tanh"
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    """One pre-LayerNorm transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.
    ``(B, T, C) -> (B, T, C)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = FeedForward(config)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None, layer: int = 0,
                weights_out: list | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache, layer, weights_out)
        return x + self.mlp(self.ln_2(x))


# ----------------------------------------------------------------------------------------------
# The whole model (chapter 5)
# ----------------------------------------------------------------------------------------------
class GPT(nn.Module):
    """Token + position embeddings, L blocks, a final LayerNorm and a tied output head.

    ``forward(idx) -> (logits, loss)`` with ``idx`` ``(B, T)`` int64 token ids and ``logits``
    ``(B, T, V)``. This class is only the model: loading and saving (Hugging Face format) live in
    :mod:`gptlib.checkpoint`, generation in :mod:`gptlib.sample`, the optimizer in
    :mod:`gptlib.optim`, and this module imports none of them.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        checks.instance("config", config, GPTConfig, what="a GPTConfig (the model's shape)")
        self.config = config  # frozen, and checked when it was made
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.d_model),
            wpe=nn.Embedding(config.context_length, config.d_model),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias),
        ))
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        width_multiplier = config.d_model / config.mup_base_width
        self.embedding_multiplier = config.mup_embedding_multiplier if config.mup else 1.0
        self.logit_multiplier = 1.0 / width_multiplier if config.mup else 1.0
        self.reset_parameters()

    # ------------------------------------------------------------------ initialisation
    def init_stds(self) -> dict[str, float]:
        """The initialisation std of each kind of weight (chapter 5; muP in chapter 8).

        These are the ``std`` arguments of a normal cut at +-2 std (as in the Cerebras model zoo);
        the cut leaves the weights with about 0.88 of that spread (0.0176 for 0.02; chapter 5).
        Standard: every matrix and embedding 0.02, residual output projections
        (``attn.c_proj``, ``mlp.c_proj``) 0.02 / sqrt(2 L), so the residual stream's variance does
        not grow with depth. muP: embeddings sigma_base; hidden matrices sigma_base / sqrt(m_d);
        output projections additionally / sqrt(2 L).
        """
        c = self.config
        depth = math.sqrt(2 * c.n_layer)
        if c.mup:
            hidden = c.mup_init_std / math.sqrt(c.d_model / c.mup_base_width)
            return {"embedding": c.mup_init_std, "hidden": hidden, "output_projection": hidden / depth}
        return {"embedding": c.init_std, "hidden": c.init_std, "output_projection": c.init_std / depth}

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Truncated-normal weights (cut at 2 std) with the stds of :meth:`init_stds`; zero biases;
        LayerNorm gains 1. Skipped on the ``meta`` device, where there is no storage to fill."""
        if any(p.is_meta for p in self.parameters()):
            return
        stds = self.init_stds()
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("transformer.ln_f"):
                nn.init.ones_(p)
            else:
                kind = ("embedding" if name.startswith(("transformer.wte", "transformer.wpe", "lm_head"))
                        else "output_projection" if name.endswith("c_proj.weight") else "hidden")
                std = stds[kind]
                nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)

    # ------------------------------------------------------------------ forward
    def check_input(self, idx: torch.Tensor, start: int = 0) -> None:
        """Refuse ids the model cannot embed, with a message that says what is allowed.

        The shape, dtype and length checks read only the tensor's metadata. The range check reads
        the values (``idx.min()``, ``idx.max()``): on a GPU that waits for the device, so it runs
        where ids enter (:func:`gptlib.sample.generate` checks the prompt, the trainer its dataset),
        not on every forward pass; :meth:`forward` calls :meth:`check_shape` only.
        """
        self.check_shape(idx, start)
        check_token_ids(idx, self.config.vocab_size)

    def check_shape(self, idx: torch.Tensor, start: int = 0) -> None:
        """Refuse anything that is not a ``(B, T)`` integer tensor fitting the context after
        ``start`` cached positions. Reads no tensor values, so it costs nothing on any device."""
        c = self.config
        checks.token_ids("idx", idx, 2, "(B, T)", hint="for one sequence use idx[None] or idx.unsqueeze(0)")
        if idx.size(1) == 0:
            raise checks.ArgumentError("idx is empty (T = 0): give at least one token")
        if start + idx.size(1) > c.context_length:
            raise checks.ArgumentError(
                f"sequence of {start + idx.size(1)} positions is longer than the context length "
                f"{c.context_length}; crop it to the last {c.context_length} tokens")

    def embed(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token plus position embeddings of ``(B, T)`` ids at positions ``start ...``:
        ``(B, T, C)``, times m_emb under muP (dropout comes after).

        An id outside ``[0, V)`` makes the table look-up fail. On the CPU that failure is turned
        into the message of :func:`check_token_ids`, computed only then, so a correct batch pays
        nothing; on a GPU the look-up fails on the device, which is why ids are checked where
        they enter.
        """
        try:
            tokens = self.transformer.wte(idx)
        except IndexError:
            check_token_ids(idx, self.config.vocab_size)
            raise
        # positions start ... start + T - 1 are consecutive rows of the table: a slice, no look-up
        x = tokens + self.transformer.wpe.weight[start:start + idx.size(1)]
        # a multiplier of 1 (standard parametrisation) would be an exact no-op: skip the pass
        return x * self.embedding_multiplier if self.embedding_multiplier != 1.0 else x

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                kv_cache: KVCache | None = None, attention_weights: list | None = None,
                last_only: bool = False):
        """Next-token logits for every position, and the cross-entropy loss if targets are given.

        Args:
            idx: ``(B, T)`` int64 ids; with ``kv_cache`` they continue the cached positions.
            targets: ``(B, T)`` int64 next-token ids, or -1 where a position should not count.
            kv_cache: a :class:`KVCache` to read and extend (generation).
            attention_weights: if a list, each layer appends its ``(B, H, T, T_k)`` weights.
            last_only: compute logits for the last position only, ``(B, 1, V)`` (generation needs
                no more, and the V x C head is the largest matmul of a small model).
        Returns:
            ``(logits, loss)``: ``(B, T, V)`` float, and a scalar mean loss in nats/token (or None).
        """
        start = kv_cache.length if kv_cache is not None else 0
        self.check_shape(idx, start)
        B, T = idx.shape
        x = self.transformer.drop(self.embed(idx, start))  # (B, T, C)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, kv_cache, layer, attention_weights)
        if kv_cache is not None:
            kv_cache.advance(T)
        if last_only:
            if targets is not None:
                raise checks.ArgumentError("last_only=True gives one position's logits; it cannot "
                                           "compute a loss")
            x = x[:, -1:, :]
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V)
        if self.logit_multiplier != 1.0:  # muP's 1 / m_d; 1 would be an exact no-op
            logits = logits * self.logit_multiplier
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise checks.ArgumentError(f"targets must have the shape of idx {tuple(idx.shape)}, "
                                 f"got {tuple(targets.shape)}")
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head: ``(L, B, H, T, T)`` (explicit path)."""
        weights: list = []
        was_training = self.training
        self.eval()
        self(idx, attention_weights=weights)
        self.train(was_training)
        return torch.stack(weights)

    def new_kv_cache(self, batch_size: int, capacity: int | None = None) -> KVCache:
        """An empty :class:`KVCache` on this model's device and dtype, for ``capacity`` positions
        (default: the context length)."""
        p = self.transformer.wte.weight
        return KVCache(self.config, batch_size, device=p.device, dtype=p.dtype, capacity=capacity)

    def num_params(self, include_embeddings: bool = True) -> int:
        """Parameters actually held by this module (tied matrices counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if not include_embeddings:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Refuse token ids outside ``[0, vocab_size)`` (any shape), naming the range found.

    Reads the values, so on a GPU it waits for the device: call it where ids enter (a prompt, a
    dataset), once, not on every step.
    """
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise checks.ArgumentError(f"token ids must be in [0, {vocab_size}), got values in "
                                   f"[{lo}, {hi}]")
