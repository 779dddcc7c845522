"""The shape of a GPT: one dataclass, the seven published Cerebras-GPT sizes, and their cost.

Derived in chapter 4 (parameters and FLOPs per block) and chapter 8 (training compute); the
Cerebras-GPT table comes from Dey et al. (2023), Table 1, and the Cerebras model zoo configs.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields, replace

ACTIVATIONS = ("gelu", "gelu_new")
ATTENTION_IMPLS = ("fast", "explicit")


class ConfigError(ValueError):
    """A GPTConfig value that makes no model; the message says which field and what is allowed."""


@dataclass(frozen=True)
class CerebrasRun:
    """One row of the Cerebras-GPT model table (architecture plus the published training run)."""

    name: str
    n_layer: int
    d_model: int
    n_head: int
    d_ffn: int
    peak_lr: float
    lr_decay: str
    batch_size: str  # in sequences of 2048 tokens; "720 then 1080" for 13B
    tokens: float
    pile_xent: float  # Pile test cross-entropy, nats/token (standard parametrization)
    reported_flops: float  # the paper's "algorithmic" training FLOPs
    n_cs2: int  # CS-2 systems used for the run

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head


CEREBRAS_GPT = {
    r.name: r
    for r in (
        CerebrasRun("111M", 10, 768, 12, 3072, 6.0e-4, "linear", "120", 2.22e9, 2.608, 2.6e18, 1),
        CerebrasRun("256M", 14, 1088, 17, 4352, 6.0e-4, "linear", "264", 5.12e9, 2.349, 1.3e19, 1),
        CerebrasRun("590M", 18, 1536, 12, 6144, 2.0e-4, "linear", "264", 1.18e10, 2.181, 6.1e19, 1),
        CerebrasRun("1.3B", 24, 2048, 16, 8192, 2.0e-4, "cosine", "528", 2.63e10, 1.997, 2.8e20, 4),
        CerebrasRun("2.7B", 32, 2560, 32, 10240, 2.0e-4, "cosine", "528", 5.30e10, 1.834, 1.1e21, 4),
        CerebrasRun("6.7B", 32, 4096, 32, 16384, 1.2e-4, "linear", "1040", 1.33e11, 1.704, 6.3e21, 16),
        CerebrasRun("13B", 40, 5120, 40, 20480, 1.2e-4, "cosine", "720 then 1080", 2.57e11, 1.572, 2.3e22, 12),
    )
}
"""The seven Cerebras-GPT sizes, keyed "111M" ... "13B" (Dey et al. 2023, Table 1)."""

GPT2_VOCAB_SIZE = 50257
CEREBRAS_CONTEXT = 2048


@dataclass
class GPTConfig:
    """Every number that fixes a GPT's architecture.

    Letters used in the book (see the notation page): V = ``vocab_size``, T_max = ``context_length``,
    L = ``n_layer``, H = ``n_head``, C = ``d_model``, D = C / H (``d_head``), F = ``d_ffn``.

    Attributes:
        vocab_size: V, number of token ids.
        context_length: longest sequence the learned position table covers.
        n_layer: L, number of transformer blocks.
        n_head: H, attention heads per block; must divide ``d_model``.
        d_model: C, width of the residual stream.
        d_ffn: F, hidden width of the feed-forward network (4 C in every Cerebras-GPT model).
        activation: ``"gelu"`` (exact, erf-based; Cerebras-GPT) or ``"gelu_new"`` (GPT-2's tanh form).
        layer_norm_eps: epsilon inside LayerNorm.
        bias: biases in the linear layers and LayerNorms (the LM head never has one).
        tie_embeddings: the output head reuses the token-embedding matrix (Cerebras-GPT does).
        dropout: dropout probability (0 in Cerebras-GPT).
        init_std: standard deviation of the normal initialisation (0.02 in GPT-2 and Cerebras-GPT).
        attention_impl: ``"fast"`` (torch's fused ``scaled_dot_product_attention``) or ``"explicit"``
            (the formula written out, chapter 3); both give the same numbers.
        mup: use the maximal-update parametrization of Cerebras-GPT's muP models (chapter 8).
        mup_base_width: d_base, the proxy width the hyperparameters were tuned at (256).
        mup_embedding_multiplier: m_emb, multiplies the embedding output (10).
        mup_init_std: sigma_base, the base initialisation std under muP (0.08).
    """

    vocab_size: int = GPT2_VOCAB_SIZE
    context_length: int = 1024
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    d_ffn: int | None = None
    activation: str = "gelu"
    layer_norm_eps: float = 1e-5
    bias: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.0
    init_std: float = 0.02
    attention_impl: str = "fast"
    mup: bool = False
    mup_base_width: int = 256
    mup_embedding_multiplier: float = 10.0
    mup_init_std: float = 0.08

    def __post_init__(self) -> None:
        if self.d_ffn is None:
            self.d_ffn = 4 * self.d_model if isinstance(self.d_model, int) else self.d_ffn
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first field that makes no model."""
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "d_model", "d_ffn",
                     "mup_base_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head:
            divisors = [h for h in range(1, min(self.d_model, 64) + 1) if self.d_model % h == 0]
            raise ConfigError(
                f"GPTConfig.d_model={self.d_model} is not divisible by n_head={self.n_head}: every "
                f"head gets d_model / n_head dimensions. Head counts that divide {self.d_model}: "
                f"{divisors}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"GPTConfig.activation must be one of {ACTIVATIONS} "
                              f"(exact GELU or GPT-2's tanh approximation), got {self.activation!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ConfigError(f"GPTConfig.attention_impl must be one of {ATTENTION_IMPLS}, "
                              f"got {self.attention_impl!r}")
        for name in ("layer_norm_eps", "init_std", "mup_embedding_multiplier", "mup_init_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not (
                    math.isfinite(value) and value > 0):
                raise ConfigError(f"GPTConfig.{name} must be a positive finite number, got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("bias", "tie_embeddings", "mup"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def cerebras(cls, name: str, **overrides) -> "GPTConfig":
        """The architecture of one published Cerebras-GPT model, ``"111M"`` ... ``"13B"``.

        GPT-2 vocabulary (50257), context 2048, exact GELU, LayerNorm eps 1e-5, biases, tied
        embeddings, no dropout. ``overrides`` replace any field (e.g. ``context_length=256``).

        Raises:
            ConfigError: unknown name; the message lists the valid names and the closest one.
        """
        if name not in CEREBRAS_GPT:
            close = difflib.get_close_matches(str(name), list(CEREBRAS_GPT), n=1, cutoff=0.0)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown Cerebras-GPT size {name!r}; the published sizes are "
                              f"{list(CEREBRAS_GPT)}.{hint}")
        row = CEREBRAS_GPT[name]
        base = dict(vocab_size=GPT2_VOCAB_SIZE, context_length=CEREBRAS_CONTEXT, n_layer=row.n_layer,
                    n_head=row.n_head, d_model=row.d_model, d_ffn=row.d_ffn, activation="gelu",
                    layer_norm_eps=1e-5, bias=True, tie_embeddings=True, dropout=0.0)
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> "GPTConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        """Build from a dict, refusing unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown GPTConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    # ------------------------------------------------------------------ derived sizes
    @property
    def d_head(self) -> int:
        """D = C / H, the width of one attention head."""
        return self.d_model // self.n_head

    def param_count(self, include_embeddings: bool = True) -> int:
        """Number of trainable parameters, counted from the shapes (chapter 4).

        Per block: two LayerNorms (2C each with bias), the fused QKV projection (C x 3C + 3C),
        the attention output projection (C x C + C), the FFN (C x F + F and F x C + C). Plus the
        token table V x C, the position table T_max x C, the final LayerNorm, and an untied head
        V x C. ``include_embeddings=False`` leaves out both embedding tables (Kaplan et al.'s N).
        """
        C, F, V, L = self.d_model, self.d_ffn, self.vocab_size, self.n_layer
        b = 1 if self.bias else 0
        layer_norm = C + b * C
        attention = C * 3 * C + b * 3 * C + C * C + b * C
        ffn = C * F + b * F + F * C + b * C
        block = 2 * layer_norm + attention + ffn
        total = L * block + layer_norm
        if include_embeddings:
            total += V * C + self.context_length * C
        if not self.tie_embeddings:
            total += V * C
        return total

    def flops_per_token(self, seq_len: int | None = None) -> dict[str, float]:
        """Forward-pass FLOPs for one token in a sequence of ``seq_len`` (default: the context),
        counting a multiply-add as 2 FLOPs, term by term (the Chinchilla appendix's accounting).

        Returns a dict with ``embedding`` (the logits matmul reuses it: 2 C V), ``qkv``,
        ``attention_scores`` (Q K^T: 2 T C), ``attention_softmax``, ``attention_values``
        (A V: 2 T C), ``attention_output``, ``ffn``, ``logits`` and ``total``.
        """
        T = self.context_length if seq_len is None else seq_len
        C, F, V, L, H = self.d_model, self.d_ffn, self.vocab_size, self.n_layer, self.n_head
        per_layer = {
            "qkv": 2 * 3 * C * C,
            "attention_scores": 2 * T * C,
            "attention_softmax": 3 * H * T,
            "attention_values": 2 * T * C,
            "attention_output": 2 * C * C,
            "ffn": 2 * 2 * C * F,
        }
        out = {"embedding": 2 * C * V}
        out.update({k: L * v for k, v in per_layer.items()})
        out["logits"] = 2 * C * V
        out["total"] = sum(out.values())
        return {k: float(v) for k, v in out.items()}

    def training_flops(self, tokens: float, method: str = "6ND", seq_len: int | None = None) -> float:
        """FLOPs to train on ``tokens`` tokens (forward plus backward = 3 x forward).

        ``"6ND"``: the usual estimate 6 N D with N the non-embedding parameter count: each
        parameter does one multiply-add (2 FLOPs) per token forward, and twice that backward.
        ``"full"``: 3 x :meth:`flops_per_token`, which adds what 6ND leaves out: attention's
        T-dependent Q K^T and A V products, the softmax, and the V x C logits matmul. For short
        contexts and wide models the two agree; at T = 2048 and C = 768 attention and logits add
        most of the difference between 6ND and the paper's reported compute.
        """
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        if method == "6ND":
            return 6.0 * self.param_count(include_embeddings=False) * tokens
        if method == "full":
            return 3.0 * self.flops_per_token(seq_len)["total"] * tokens
        raise ValueError(f"method must be '6ND' or 'full', got {method!r}")
