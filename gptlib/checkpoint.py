"""Reading and writing models in Hugging Face's GPT-2 format, the format of every Cerebras-GPT release.

A directory holds ``config.json`` (``GPT2Config`` keys) and the weights, as ``model.safetensors``
or, in older uploads, ``pytorch_model.bin`` (read with ``torch.load(weights_only=True)``, so a
pickle that tries to run code is refused, never executed). Hugging Face's GPT-2 keeps its linear
layers as ``Conv1D`` with the weight stored ``(in, out)``; ``nn.Linear`` stores ``(out, in)``, so
those four matrices per block are transposed on the way in and out. Chapter 5 walks through it.

Every file is written atomically (to a temporary name in the same folder, then ``os.replace``),
so a crash mid-save leaves the previous file whole.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ConfigError, GPTConfig
from .model import GPT

CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# buffers some GPT-2 checkpoints carry that are not parameters (the causal mask, a constant)
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
GPTLIB_KEY = "gptlib"  # config.json entry for settings GPT2Config has no name for (muP)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the file, tensors or keys at fault."""


# ----------------------------------------------------------------------------------------------
# config.json <-> GPTConfig
# ----------------------------------------------------------------------------------------------
def config_to_hf(config: GPTConfig) -> dict:
    """The ``config.json`` Hugging Face's ``GPT2LMHeadModel`` expects for this configuration."""
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
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        GPTLIB_KEY: {"bias": config.bias, "mup": config.mup, "mup_base_width": config.mup_base_width,
                     "mup_embedding_multiplier": config.mup_embedding_multiplier,
                     "mup_init_std": config.mup_init_std},
    }


def config_from_hf(hf: dict) -> GPTConfig:
    """A :class:`GPTConfig` from a GPT-2 ``config.json`` dict (defaults as in ``GPT2Config``)."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"config.json has model_type {hf.get('model_type')!r}; only GPT-2-format "
                              f"checkpoints (model_type 'gpt2', like every Cerebras-GPT model) load here")
    d_model = hf.get("n_embd", 768)
    extra = hf.get(GPTLIB_KEY, {})
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


# ----------------------------------------------------------------------------------------------
# state dicts
# ----------------------------------------------------------------------------------------------
def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """This model's weights under Hugging Face GPT-2 names, Conv1D matrices transposed to (in, out).
    A tied LM head is left out, as Hugging Face does."""
    out = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_embeddings:
            continue
        out[name] = (tensor.t() if name.endswith(CONV1D_SUFFIXES) else tensor).detach().contiguous().cpu()
    return out


def from_hf_state_dict(model: GPT, hf_state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy Hugging Face GPT-2 weights into ``model`` after checking every name and shape.

    Accepts keys with or without the ``transformer.`` prefix (``GPT2LMHeadModel`` vs ``GPT2Model``).

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
    if model.config.tie_embeddings:
        renamed.pop("lm_head.weight", None)
        expected_keys = set(expected) - {"lm_head.weight"}
    else:
        expected_keys = set(expected)
    missing = sorted(expected_keys - set(renamed))
    unexpected = sorted(set(renamed) - expected_keys)
    mismatched = []
    for name in sorted(expected_keys & set(renamed)):
        value = renamed[name]
        if name.endswith(CONV1D_SUFFIXES) and value.dim() == 2:
            value = value.t()
        if tuple(value.shape) != tuple(expected[name].shape):
            mismatched.append(f"{name}: file {tuple(renamed[name].shape)}, config needs "
                              f"{tuple(expected[name].shape[::-1] if name.endswith(CONV1D_SUFFIXES) else expected[name].shape)}")
        renamed[name] = value
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing tensors ({len(missing)}): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected tensors ({len(unexpected)}): {unexpected[:8]}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        if mismatched:
            parts.append(f"shape mismatches ({len(mismatched)}): " + "; ".join(mismatched[:8]))
        raise CheckpointError(f"{source} does not match its config "
                              f"(n_layer={model.config.n_layer}, d_model={model.config.d_model}, "
                              f"vocab_size={model.config.vocab_size}): " + " | ".join(parts))
    with torch.no_grad():
        for name in expected_keys:
            expected[name].copy_(renamed[name])


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------
def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.
    If ``write`` fails, ``path`` is untouched and the temporary file removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pretrained(model: GPT, path) -> None:
    """Write ``config.json`` and ``model.safetensors`` (Hugging Face GPT-2 format) into ``path``.
    Each file is replaced atomically; the folder is created if needed."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a directory")
    state = to_hf_state_dict(model)
    atomic_write(path / "model.safetensors",
                 lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    text = json.dumps(config_to_hf(model.config), indent=2) + "\n"
    atomic_write(path / "config.json", lambda tmp: tmp.write_text(text))


def read_weights(path: Path, map_location="cpu") -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (preferred) or ``pytorch_model.bin`` in ``path``.
    A ``.bin`` is read with ``weights_only=True``: pickled code is refused, not run."""
    st, binary = path / "model.safetensors", path / "pytorch_model.bin"
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
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{config_file} is missing")
    try:
        hf = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_file} is not valid JSON: {e}") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{config_file} must hold a JSON object")
    config = config_from_hf(hf)
    with torch.device("meta"):
        model = GPT(config)
    model = model.to_empty(device=map_location)
    if config.tie_embeddings:
        model.lm_head.weight = model.transformer.wte.weight
    from_hf_state_dict(model, read_weights(path, map_location), source=str(path))
    return model.eval()
