"""Reading and writing models in Hugging Face's GPT-2 format, the format of every Cerebras-GPT release.

A directory holds ``config.json`` (``GPT2Config`` keys) and the weights, as ``model.safetensors``
or, in older uploads, ``pytorch_model.bin`` (read with ``torch.load(weights_only=True)``, so a
pickle that tries to run code is refused, never executed). Hugging Face's GPT-2 keeps its linear
layers as ``Conv1D`` with the weight stored ``(in, out)``; ``nn.Linear`` stores ``(out, in)``, so
those four matrices per block are transposed on the way in and out. Chapter 5 walks through it.

**Any GPT-2 loader computes the same logits.** A plain GPT-2 has no muP multipliers, so
:func:`save_pretrained` folds them into the weights (:func:`fold_mup`), which is exact in real
arithmetic: the embedding multiplier m_emb into ``wte`` and ``wpe``; the logit multiplier 1 / m_d,
and the undoing of m_emb in the tied head, into ``ln_f``; the muP attention scale 1 / D (GPT-2
divides the scores by sqrt(D)) into the query third of each ``c_attn``. ``config.json`` then
describes a plain GPT-2, plus a ``"gptlib"`` entry that other loaders ignore and gptlib reads to
rebuild the muP model. Folding rounds about one float32 weight in ten by half a unit in the last
place, invisible in the logits but enough to make a resumed muP run drift from an uninterrupted
one; so the unfolded tensors are saved too, in ``mup_unfolded.safetensors``, stamped with the
SHA-256 of the folded file they belong to, and gptlib loads them when that stamp still matches.

Every file is written atomically (:func:`gptlib.files.atomic_write`), so a crash mid-save leaves
the previous file whole.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from . import checks
from .checks import GptlibError
from .config import ConfigError, GPTConfig
from .files import atomic_write, sha256_of
from .model import GPT

CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# buffers some GPT-2 checkpoints carry that are not parameters (the causal mask, a constant)
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
GPTLIB_KEY = "gptlib"  # config.json entry for settings GPT2Config has no name for (muP)
GPT2_END_OF_TEXT = 50256  # <|endoftext|>, GPT-2's bos and eos token
WEIGHTS_FILE = "model.safetensors"
UNFOLDED_FILE = "mup_unfolded.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(GptlibError, RuntimeError):
    """A checkpoint that cannot be loaded; the message names the file, tensors or keys at fault."""


# ----------------------------------------------------------------------------------------------
# config.json <-> GPTConfig
# ----------------------------------------------------------------------------------------------
def config_to_hf(config: GPTConfig) -> dict:
    """The ``config.json`` Hugging Face's ``GPT2LMHeadModel`` expects for this configuration.

    ``bos_token_id`` and ``eos_token_id`` name GPT-2's ``<|endoftext|>`` (50256) for the GPT-2
    vocabulary only, and None for any other (a 78-character vocabulary has no id 50256).
    """
    end_of_text = GPT2_END_OF_TEXT if config.vocab_size == GPT2_END_OF_TEXT + 1 else None
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.context_length,
        "n_ctx": config.context_length,
        "n_embd": config.d_model,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.d_ffn,
        "activation_function": config.activation,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": config.init_std,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": end_of_text,
        "eos_token_id": end_of_text,
        GPTLIB_KEY: {"bias": config.bias, "mup": config.mup, "mup_base_width": config.mup_base_width,
                     "mup_embedding_multiplier": config.mup_embedding_multiplier,
                     "mup_init_std": config.mup_init_std, "mup_folded": config.mup},
    }


def config_from_hf(hf: dict) -> GPTConfig:
    """A :class:`GPTConfig` from a GPT-2 ``config.json`` dict (defaults as in ``GPT2Config``)."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"config.json has model_type {hf.get('model_type')!r}; only GPT-2-format "
                              f"checkpoints (model_type 'gpt2', like every Cerebras-GPT model) load here")
    d_model = hf.get("n_embd", 768)
    extra = {k: v for k, v in hf.get(GPTLIB_KEY, {}).items() if k != "mup_folded"}
    try:
        return GPTConfig(
            vocab_size=hf.get("vocab_size", 50257),
            context_length=hf.get("n_positions", hf.get("n_ctx", 1024)),
            n_layer=hf.get("n_layer", 12),
            n_head=hf.get("n_head", 12),
            d_model=d_model,
            d_ffn=hf.get("n_inner") or 4 * d_model,
            activation=hf.get("activation_function", "gelu_new"),
            layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            init_std=hf.get("initializer_range", 0.02),
            dropout=0.0,  # loaded models are for inference and fine-tuning; set dropout after loading
            tie_embeddings=hf.get("tie_word_embeddings", True),
            **extra,
        )
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"config.json does not describe a valid model: {e}") from None


def mup_is_folded(hf: dict) -> bool:
    """Whether a ``config.json`` dict says its weights carry muP's multipliers (as
    :func:`save_pretrained` writes a muP model)."""
    extra = hf.get(GPTLIB_KEY, {})
    return bool(extra.get("mup") and extra.get("mup_folded"))


# ----------------------------------------------------------------------------------------------
# muP's multipliers folded into plain GPT-2 weights, and back
# ----------------------------------------------------------------------------------------------
def mup_fold_factors(config: GPTConfig, names) -> dict[str, float]:
    """What :func:`fold_mup` multiplies each tensor by, for the gptlib names ``names``.

    With m_emb the embedding multiplier, m_d = d_model / d_base and D the head width, a muP model
    computes ``logits = ln_f(h) W^T / m_d`` on ``h0 = m_emb (wte[x] + wpe[t])`` with attention
    scores ``q k^T / D``. A plain GPT-2 computes ``ln_f(h) W^T`` on ``wte[x] + wpe[t]`` with
    ``q k^T / sqrt(D)``. They agree when ``wte`` and ``wpe`` are multiplied by m_emb; when the
    head's 1 / m_d (and, with a tied head, the 1 / m_emb that undoes its multiplied ``wte``) goes
    into ``ln_f``'s gain and bias, or into an untied head; and when the query rows of ``c_attn``
    are multiplied by 1 / sqrt(D). LayerNorm makes every block blind to the scale of its input, so
    nothing else changes. Returns ``{name: factor}``; the query third is keyed ``"<name>[q]"``.
    """
    if not config.mup:
        return {}
    m_emb = config.mup_embedding_multiplier
    m_d = config.d_model / config.mup_base_width
    head = (1.0 / m_d) / (m_emb if config.tie_embeddings else 1.0)
    factors = {}
    for name in names:
        if name in ("transformer.wte.weight", "transformer.wpe.weight"):
            factors[name] = m_emb
        elif name.startswith("transformer.ln_f.") and config.tie_embeddings:
            factors[name] = head
        elif name == "lm_head.weight" and not config.tie_embeddings:
            factors[name] = head
        elif name.endswith(("attn.c_attn.weight", "attn.c_attn.bias")):
            factors[name + "[q]"] = 1.0 / math.sqrt(config.d_head)
    return factors


def fold_mup(config: GPTConfig, state: dict[str, torch.Tensor], inverse: bool = False) -> dict:
    """The tensors of ``state`` (gptlib names and layout) with the muP multipliers folded in
    (``inverse=True``: taken out again). Computed in float64, rounded once to each tensor's dtype.
    A model without muP is returned unchanged."""
    out = dict(state)
    for key, factor in mup_fold_factors(config, state).items():
        name = key.removesuffix("[q]")
        scale = 1.0 / factor if inverse else factor
        tensor = state[name].double()
        if key.endswith("[q]"):  # the first C rows of c_attn (nn.Linear layout) make the queries
            tensor = tensor.clone()
            tensor[: config.d_model] *= scale
        else:
            tensor = tensor * scale
        out[name] = tensor.to(state[name].dtype)
    return out


# ----------------------------------------------------------------------------------------------
# state dicts
# ----------------------------------------------------------------------------------------------
def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """This model's weights under Hugging Face GPT-2 names, muP multipliers folded in, Conv1D
    matrices transposed to (in, out). A tied LM head is left out, as Hugging Face does."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight")
    state = fold_mup(model.config, state)
    return {name: (t.t() if name.endswith(CONV1D_SUFFIXES) else t).contiguous()
            for name, t in state.items()}


def from_hf_state_dict(model: GPT, hf_state: dict[str, torch.Tensor], source: str = "checkpoint",
                       folded: bool = False) -> None:
    """Copy Hugging Face GPT-2 weights into ``model`` after checking every name and shape.

    Accepts keys with or without the ``transformer.`` prefix (``GPT2LMHeadModel`` vs ``GPT2Model``).
    ``folded``: the weights carry the muP multipliers (as :func:`save_pretrained` writes a muP
    model), so they are taken out again.

    Raises:
        CheckpointError: listing missing tensors, unexpected tensors, and shape mismatches
            (name, shape in the file, shape the config implies).
    """
    expected = model.state_dict()
    renamed = {}
    for key, value in hf_state.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        name = key if key in expected or key.startswith("transformer.") or key.startswith("lm_head") \
            else f"transformer.{key}"
        renamed[name] = value
    expected_keys = set(expected)
    if model.config.tie_embeddings:
        renamed.pop("lm_head.weight", None)
        expected_keys.discard("lm_head.weight")
    missing = sorted(expected_keys - set(renamed))
    unexpected = sorted(set(renamed) - expected_keys)
    mismatched = []
    for name in sorted(expected_keys & set(renamed)):
        conv1d = name.endswith(CONV1D_SUFFIXES)
        value = renamed[name].t() if conv1d and renamed[name].dim() == 2 else renamed[name]
        if tuple(value.shape) != tuple(expected[name].shape):
            needed = expected[name].shape[::-1] if conv1d else expected[name].shape
            mismatched.append(f"{name}: file {tuple(renamed[name].shape)}, config needs {tuple(needed)}")
        renamed[name] = value
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (("missing tensors", missing), ("unexpected tensors", unexpected)):
            if items:
                parts.append(f"{label} ({len(items)}): {items[:8]}{' ...' if len(items) > 8 else ''}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): " + "; ".join(mismatched[:8]))
        raise CheckpointError(f"{source} does not match its config "
                              f"(n_layer={model.config.n_layer}, d_model={model.config.d_model}, "
                              f"vocab_size={model.config.vocab_size}): " + " | ".join(parts))
    if folded:
        renamed = fold_mup(model.config, renamed, inverse=True)
    with torch.no_grad():
        for name in expected_keys:
            expected[name].copy_(renamed[name])


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------
def save_pretrained(model: GPT, path) -> None:
    """Write ``config.json`` and ``model.safetensors`` (Hugging Face GPT-2 format) into ``path``,
    so that any GPT-2 loader computes this model's logits; for a muP model also
    ``mup_unfolded.safetensors`` (the exact tensors gptlib trains, see the module docstring).
    Each file is replaced atomically; the folder is created if needed."""
    checks.instance("model", model, GPT, what="a gptlib GPT")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a directory")
    state = to_hf_state_dict(model)
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    unfolded = path / UNFOLDED_FILE
    if model.config.mup:
        changed = {n.removesuffix("[q]") for n in mup_fold_factors(model.config, state)}
        exact = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in changed}
        stamp = {"format": "pt", "folded_sha256": sha256_of(path / WEIGHTS_FILE)}
        atomic_write(unfolded, lambda tmp: save_file(exact, str(tmp), metadata=stamp))
    else:
        unfolded.unlink(missing_ok=True)
    atomic_write(path / CONFIG_FILE, json.dumps(config_to_hf(model.config), indent=2) + "\n")


def read_weights(path: Path, map_location="cpu") -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (preferred) or ``pytorch_model.bin`` in ``path``.
    A ``.bin`` is read with ``weights_only=True``: pickled code is refused, not run."""
    st, binary = path / WEIGHTS_FILE, path / "pytorch_model.bin"
    if st.is_file():
        try:
            return load_file(str(st), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{st} is not a readable safetensors file (truncated or corrupt?): "
                                  f"{e}. Re-save or re-download it.") from None
    if binary.is_file():
        try:
            state = torch.load(binary, map_location=map_location, weights_only=True)
        except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError ... here
            raise CheckpointError(f"{binary} could not be loaded safely ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:200]}). Only plain tensors are accepted; "
                                  f"a file that carries code is refused.") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{binary} does not hold a dict of tensors")
        return state
    raise CheckpointError(f"no weights in {path}: expected model.safetensors or pytorch_model.bin")


def read_config(path: Path) -> tuple[GPTConfig, bool]:
    """``(config, folded)`` from the ``config.json`` in folder ``path``: the model's
    configuration, and whether its weights carry muP's multipliers (:func:`mup_is_folded`)."""
    config_file = path / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(f"{config_file} is missing")
    try:
        hf = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_file} is not valid JSON: {e}") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{config_file} must hold a JSON object")
    return config_from_hf(hf), mup_is_folded(hf)


def _exact_unfolded(path: Path, map_location) -> dict[str, torch.Tensor]:
    """The tensors of ``mup_unfolded.safetensors`` if it belongs to this folder's weights file
    (its stamp matches the file's SHA-256), else ``{}`` (the weights were rewritten since, e.g.
    by another library: they are unfolded by arithmetic instead)."""
    file = path / UNFOLDED_FILE
    if not file.is_file() or not (path / WEIGHTS_FILE).is_file():
        return {}
    try:
        with safe_open(str(file), framework="pt") as f:
            stamp = (f.metadata() or {}).get("folded_sha256")
        if stamp != sha256_of(path / WEIGHTS_FILE):
            return {}
        return load_file(str(file), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{file} is not a readable safetensors file ({e}); delete it to load "
                              f"the weights of {WEIGHTS_FILE} alone") from None


def load_pretrained(path, map_location="cpu") -> GPT:
    """Load a Hugging Face GPT-2-format directory (any Cerebras-GPT release, or one written by
    :func:`save_pretrained`) into a :class:`GPT` in eval mode.

    Raises:
        CheckpointError: missing folder or files, unreadable JSON or weights, or weights that do not
            match the config (the offending tensors and shapes are named).
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; expected a folder with config.json and "
                              f"model.safetensors (or pytorch_model.bin)")
    config, folded = read_config(path)
    with torch.device("meta"):
        model = GPT(config)
    model = model.to_empty(device=map_location)
    if config.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight
    load_weights(model, path, folded, map_location)
    return model.eval()


def load_weights(model: GPT, path: Path, folded: bool, map_location="cpu") -> None:
    """Copy the weights of folder ``path`` into ``model`` (every name and shape checked): the
    exact unfolded tensors where the folder has them for its weights file, the folded ones with the
    multipliers taken out by arithmetic otherwise (``folded``: see :func:`read_config`)."""
    from_hf_state_dict(model, read_weights(path, map_location), source=str(path), folded=folded)
    exact = _exact_unfolded(path, map_location) if folded else {}
    current = model.state_dict()
    with torch.no_grad():
        for name, tensor in exact.items():
            if name not in current or current[name].shape != tensor.shape:
                raise CheckpointError(f"{path / UNFOLDED_FILE} holds {name} {tuple(tensor.shape)}, "
                                      f"which this model does not have; delete the file to load "
                                      f"{WEIGHTS_FILE} alone")
            current[name].copy_(tensor)
