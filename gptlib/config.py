"""The shape of a GPT: one dataclass, the seven published Cerebras-GPT sizes, and their cost.

Derived in chapter 4 (parameters and FLOPs per block) and chapter 8 (training compute); the
Cerebras-GPT table comes from Dey et al. (2023), Table 1, and the Cerebras model zoo configs.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass

from . import checks
from .checks import GptlibError
from .settings import check_all, setting, unknown_keys

ACTIVATIONS = ("gelu", "gelu_new")
ATTENTION_IMPLS = ("fast", "explicit")


class ConfigError(GptlibError, ValueError):
    """A configuration value that makes no model or no run; the message says which setting and
    what is allowed."""


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


@dataclass(frozen=True)
class GPTConfig:
    """Every number that fixes a GPT's architecture. Frozen: checked once, when it is made;
    :meth:`replace` makes a changed copy (checked again).

    Letters used in the book (see the notation page): V = ``vocab_size``, T_max = ``context_length``,
    L = ``n_layer``, H = ``n_head``, C = ``d_model``, D = C / H (``d_head``), F = ``d_ffn``. Each
    field's help (read by the training command line too) is declared on the field below.
    """

    vocab_size: int = setting(GPT2_VOCAB_SIZE, "V, number of token ids", low=1)
    context_length: int = setting(1024, "T_max, the longest sequence the position table covers", low=1)
    n_layer: int = setting(12, "L, number of transformer blocks", low=1)
    n_head: int = setting(12, "H, attention heads per block (must divide d_model)", low=1)
    d_model: int = setting(768, "C, width of the residual stream", low=1)
    d_ffn: int | None = setting(None, "F, hidden width of the feed-forward network (none: 4 x d_model)",
                                low=1)
    activation: str = setting("gelu", "gelu (exact, erf-based; Cerebras-GPT) or gelu_new (GPT-2's tanh "
                              "form)", choices=ACTIVATIONS,
                              hint="exact GELU or GPT-2's tanh approximation")
    layer_norm_eps: float = setting(1e-5, "epsilon inside LayerNorm", low=0, low_open=True)
    bias: bool = setting(True, "biases in the linear layers and LayerNorms (never in the LM head)")
    tie_embeddings: bool = setting(True, "the output head reuses the token-embedding matrix")
    dropout: float = setting(0.0, "dropout probability (0 in Cerebras-GPT)", low=0, high=1, high_open=True)
    init_std: float = setting(0.02, "std of the normal initialisation (0.02 in GPT-2 and Cerebras-GPT)",
                              low=0, low_open=True)
    attention_impl: str = setting("fast", "fast (torch's fused kernel) or explicit (the formula of "
                                  "chapter 3); the same numbers to rounding", choices=ATTENTION_IMPLS)
    mup: bool = setting(False, "maximal-update parametrization of Cerebras-GPT's muP models (chapter 8)")
    mup_base_width: int = setting(256, "muP: d_base, the proxy width the hyperparameters were tuned at",
                                  low=1)
    mup_embedding_multiplier: float = setting(10.0, "muP: m_emb, multiplies the embedding output",
                                              low=0, low_open=True)
    mup_init_std: float = setting(0.08, "muP: sigma_base, the base initialisation std", low=0,
                                  low_open=True)

    def __post_init__(self) -> None:
        if self.d_ffn is None and type(self.d_model) is int:  # F = 4 C, as in every Cerebras-GPT model
            object.__setattr__(self, "d_ffn", 4 * self.d_model)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first field that makes no model. Runs when the
        config is made; a frozen config cannot become invalid later, so there is no need to call it
        again."""
        check_all(self, ConfigError)
        if self.d_model % self.n_head:
            divisors = [h for h in range(1, min(self.d_model, 64) + 1) if self.d_model % h == 0]
            raise ConfigError(
                f"GPTConfig.d_model={self.d_model} is not divisible by n_head={self.n_head}: every "
                f"head gets d_model / n_head dimensions. Head counts that divide {self.d_model}: "
                f"{divisors}")

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
        """A copy with some fields changed (checked again). A config whose F is the default 4 C
        keeps F = 4 C when ``d_model`` changes (unless ``d_ffn`` is given too)."""
        return GPTConfig.from_dict({**self.settings(), **changes})

    def settings(self) -> dict:
        """The fields as a dict, with ``d_ffn`` None where it is the default 4 C: what a person
        would write to make this config (and what :meth:`replace` starts from)."""
        values = asdict(self)
        if self.d_ffn == 4 * self.d_model:
            values["d_ffn"] = None
        return values

    def to_dict(self) -> dict:
        """Every field's value (``d_ffn`` as a number)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        """Build from a dict, refusing unknown keys by name (with the closest field's name)."""
        problem = unknown_keys(cls, values)
        if problem:
            raise ConfigError(f"unknown GPTConfig field(s) {problem}")
        return cls(**values)

    # ------------------------------------------------------------------ derived sizes
    @property
    def d_head(self) -> int:
        """D = C / H, the width of one attention head."""
        return self.d_model // self.n_head

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters by part, counted from the shapes (chapter 4).

        Per block: ``layer_norm`` (one of its two LayerNorms, 2C with bias), ``attention`` (the
        fused QKV projection C x 3C + 3C and the output projection C x C + C), ``ffn``
        (C x F + F and F x C + C) and ``block`` (all of one block). Once: ``final_norm``,
        ``token_embedding`` (V x C), ``position_embedding`` (T_max x C) and ``head`` (V x C, 0
        when tied to the token table).
        """
        C, F, V = self.d_model, self.d_ffn, self.vocab_size
        b = 1 if self.bias else 0
        layer_norm = C + b * C
        attention = C * 3 * C + b * 3 * C + C * C + b * C
        ffn = C * F + b * F + F * C + b * C
        return {"layer_norm": layer_norm, "attention": attention, "ffn": ffn,
                "block": 2 * layer_norm + attention + ffn, "final_norm": layer_norm,
                "token_embedding": V * C, "position_embedding": self.context_length * C,
                "head": 0 if self.tie_embeddings else V * C}

    def param_count(self, include_embeddings: bool = True) -> int:
        """Number of trainable parameters: L blocks, the final LayerNorm, the two embedding tables
        and an untied head (:meth:`param_counts` has the parts). ``include_embeddings=False``
        leaves out both embedding tables (Kaplan et al.'s N).
        """
        part = self.param_counts()
        total = self.n_layer * part["block"] + part["final_norm"] + part["head"]
        if include_embeddings:
            total += part["token_embedding"] + part["position_embedding"]
        return total

    def flops_per_token(self, seq_len: int | None = None) -> dict[str, float]:
        """Forward-pass FLOPs for one token in a sequence of ``seq_len`` (default: the context),
        counting a multiply-add as 2 FLOPs, term by term (the Chinchilla appendix's accounting).

        Returns a dict with ``embedding`` (the logits matmul reuses it: 2 C V), ``qkv``,
        ``attention_scores`` (Q K^T: 2 T C), ``attention_softmax``, ``attention_values``
        (A V: 2 T C), ``attention_output``, ``ffn``, ``logits`` and ``total``.
        """
        C, V, L = self.d_model, self.vocab_size, self.n_layer
        out = {"embedding": 2 * C * V}
        out.update({k: L * v for k, v in self.layer_flops_per_token(seq_len).items()})
        out["logits"] = 2 * C * V
        out["total"] = sum(out.values())
        return {k: float(v) for k, v in out.items()}

    def layer_flops_per_token(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward-pass FLOPs of one block for one token in a sequence of ``seq_len`` (default:
        the context), a multiply-add counted as 2: ``qkv`` (2 x 3 C^2), ``attention_scores``
        (Q K^T: 2 T C), ``attention_softmax`` (3 H T), ``attention_values`` (A V: 2 T C),
        ``attention_output`` (2 C^2) and ``ffn`` (2 x 2 C F). Exact integers."""
        T = self.context_length if seq_len is None else seq_len
        C, F, H = self.d_model, self.d_ffn, self.n_head
        return {
            "qkv": 2 * 3 * C * C,
            "attention_scores": 2 * T * C,
            "attention_softmax": 3 * H * T,
            "attention_values": 2 * T * C,
            "attention_output": 2 * C * C,
            "ffn": 2 * 2 * C * F,
        }

    def training_flops(self, tokens: float, method: str = "6ND", seq_len: int | None = None) -> float:
        """FLOPs to train on ``tokens`` tokens (forward plus backward = 3 x forward).

        ``"6ND"``: the usual estimate 6 N D with N the non-embedding parameter count: each
        parameter does one multiply-add (2 FLOPs) per token forward, and twice that backward.
        ``"full"``: 3 x :meth:`flops_per_token`, which adds what 6ND leaves out: attention's
        T-dependent Q K^T and A V products, the softmax, and the V x C logits matmul. For short
        contexts and wide models the two agree; at T = 2048 and C = 768 attention and logits add
        most of the difference between 6ND and the paper's reported compute.
        """
        checks.number("tokens", tokens, low=0)
        checks.one_of("method", method, ("6ND", "full"))
        if method == "6ND":
            return 6.0 * self.param_count(include_embeddings=False) * tokens
        return 3.0 * self.flops_per_token(seq_len)["total"] * tokens
