"""Training checkpoints: everything needed to continue a run exactly where it stopped.

Chapter 6 explains why each piece is needed for an exact resume. An output folder looks like::

    out/
      .lock                   held by the run writing here (a second run is refused)
      latest                  the name of the newest complete checkpoint, e.g. "step_000500"
      step_000500/
        config.json           \\ the model, in Hugging Face GPT-2 format:
        model.safetensors     /  gptlib.load_pretrained("out/step_000500") loads it
        mup_unfolded.safetensors  (muP models only: see gptlib.checkpoint)
        optimizer.safetensors AdamW's moment estimates (exp_avg, exp_avg_sq) and step counts
        training_state.json   step, recipe, optimizer hyper-parameters, RNG states, file hashes

**Atomic.** A checkpoint is written into a temporary folder, renamed into place in one step, and
only then is ``latest`` switched to it (:mod:`gptlib.files`). A crash at any moment leaves
``latest`` naming a complete checkpoint; the half-written temporary folder is ignored (and
removed by the next save).

**Checked.** ``training_state.json`` holds a manifest, the SHA-256 of every tensor file; loading
recomputes them and refuses a corrupt checkpoint, and refuses one whose model or parameter names
differ from the model it is loaded into, saying which fields differ.
"""
from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import checks
from ..checkpoint import (UNFOLDED_FILE, WEIGHTS_FILE, CheckpointError, load_weights, read_config,
                          save_pretrained)
from ..config import ConfigError, GPTConfig
from ..files import atomic_write, check_manifest, manifest, remove_leftovers, replacing_folder

LATEST_FILE = "latest"
STATE_FILE = "training_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
FORMAT_VERSION = 2  # 2: muP weights folded for any GPT-2 loader, with their exact values beside them


class TrainingCheckpointError(CheckpointError):
    """A training checkpoint that cannot be written or resumed from; the message says why and what to do."""


# ----------------------------------------------------------------------------------------------
# RNG states travel as base64 text inside the JSON
# ----------------------------------------------------------------------------------------------
def encode_bytes(state: torch.Tensor) -> str:
    """A ``uint8`` RNG-state tensor as base64 text."""
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_bytes(text: str) -> torch.Tensor:
    """The inverse of :func:`encode_bytes`: a ``uint8`` tensor."""
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def rng_states() -> dict:
    """The global random-number generators that training touches (torch CPU, and CUDA if present)."""
    states = {"torch_cpu": encode_bytes(torch.get_rng_state())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch_cuda"] = [encode_bytes(s) for s in torch.cuda.get_rng_state_all()]
    return states


def set_rng_states(states: dict) -> None:
    """Restore what :func:`rng_states` saved."""
    torch.set_rng_state(decode_bytes(states["torch_cpu"]))
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([decode_bytes(s) for s in states["torch_cuda"]])


# ----------------------------------------------------------------------------------------------
# the optimizer's state as named tensors plus JSON
# ----------------------------------------------------------------------------------------------
def _parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    names = {id(p): n for n, p in model.named_parameters()}
    try:
        return [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
    except KeyError:
        raise TrainingCheckpointError("the optimizer holds a parameter that is not in the model") from None


def optimizer_to_files(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and JSON-able settings.

    Returns ``(tensors, meta)``: ``tensors["state.<i>.<key>"]`` for every tensor of parameter ``i``
    (``exp_avg``, ``exp_avg_sq``, ``step`` for AdamW); ``meta`` holds the param groups (with the
    parameter names, so a resume can check they match) and any non-tensor state values.
    """
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    groups = []
    for group, names in zip(sd["param_groups"], _parameter_names(model, optimizer)):
        g = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items() if k != "names"}
        g["names"] = names
        groups.append(g)
    return tensors, {"type": type(optimizer).__name__, "param_groups": groups, "scalars": scalars}


def optimizer_from_files(model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict,
                         meta: dict, source: str) -> None:
    """Load what :func:`optimizer_to_files` wrote into ``optimizer``, after checking that it was
    saved for the same optimizer type and the same parameters in the same groups."""
    if meta.get("type") != type(optimizer).__name__:
        raise TrainingCheckpointError(f"{source} holds the state of a {meta.get('type')} optimizer, "
                                      f"but this run uses {type(optimizer).__name__}")
    current = _parameter_names(model, optimizer)
    saved = [g["names"] for g in meta["param_groups"]]
    if saved != current:
        diff = sorted(set(sum(saved, [])) ^ set(sum(current, [])))
        raise TrainingCheckpointError(
            f"{source}: the optimizer's parameter groups differ from this run's "
            f"({[len(s) for s in saved]} vs {[len(c) for c in current]} parameters per group"
            f"{'; differing names: ' + str(diff[:6]) if diff else ''}). Resume with the same model "
            f"and optimizer settings, or start a new run in another output folder.")
    state: dict = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------
def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}"


def save_training_checkpoint(out_dir, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                             step: int, state: dict | None = None, keep: int = 2) -> Path:
    """Write a complete checkpoint of ``step`` into ``out_dir`` atomically and point ``latest`` at it.

    Args:
        model: the :class:`~gptlib.model.GPT` (or its DDP wrapper).
        step: number of optimizer updates done so far.
        state: extra JSON-able training state (recipe, sampler and RNG states, loss history ...).
        keep: how many checkpoints to keep (oldest removed first; at least 1).
    Returns:
        The checkpoint folder, ``out_dir / "step_<step>"``.
    """
    checks.integer("keep", keep, low=1)
    core = getattr(model, "module", model)
    out_dir = Path(out_dir)
    final = out_dir / checkpoint_name(step)
    remove_leftovers(out_dir, ".step_*.tmp*")  # left by a run that was killed while saving
    with replacing_folder(final) as tmp:  # re-saving a step (after a resume) replaces it
        save_pretrained(core, tmp)
        tensors, optimizer_meta = optimizer_to_files(core, optimizer)
        save_file(tensors, str(tmp / OPTIMIZER_FILE), metadata={"format": "pt"})
        tensor_files = [WEIGHTS_FILE, OPTIMIZER_FILE] + ([UNFOLDED_FILE] if (tmp / UNFOLDED_FILE).is_file()
                                                         else [])
        record = {
            "format_version": FORMAT_VERSION,
            "step": step,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "model_config": core.config.to_dict(),
            "optimizer": optimizer_meta,
            "sha256": manifest(tmp, tensor_files),
            "state": state or {},
        }
        atomic_write(tmp / STATE_FILE, json.dumps(record, indent=1) + "\n")
    atomic_write(out_dir / LATEST_FILE, final.name + "\n")
    checkpoints = sorted(p for p in out_dir.glob("step_*") if p.is_dir())
    for old in checkpoints[:-keep]:
        if old.name != final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def latest_checkpoint(out_dir) -> Path | None:
    """The checkpoint ``out_dir/latest`` names, or None if the folder has no checkpoint yet.

    Raises:
        TrainingCheckpointError: ``latest`` names a folder that does not exist.
    """
    out_dir = Path(out_dir)
    pointer = out_dir / LATEST_FILE
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    path = out_dir / name
    if not name.startswith("step_") or not path.is_dir():
        raise TrainingCheckpointError(
            f"{pointer} names {name!r}, which is not a checkpoint folder in {out_dir}. "
            f"Write the name of an existing step_* folder into it, or start afresh in a new folder.")
    return path


def read_training_state(path) -> dict:
    """The parsed ``training_state.json`` of checkpoint folder ``path``, after checking the hashes
    of its tensor files.

    Raises:
        TrainingCheckpointError: a file is missing, unreadable, or differs from its recorded hash.
    """
    path = Path(path)
    advice = (f"Resume from an earlier checkpoint (write its folder name into {path.parent / LATEST_FILE}) "
              f"or start afresh in a new output folder.")
    state_file = path / STATE_FILE
    try:
        record = json.loads(state_file.read_text())
    except FileNotFoundError:
        raise TrainingCheckpointError(f"{path} is not a training checkpoint: {STATE_FILE} is missing. "
                                      + advice) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TrainingCheckpointError(f"{state_file} is corrupt ({e}). " + advice) from None
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        raise TrainingCheckpointError(f"{state_file} is not a gptlib training state of format "
                                      f"version {FORMAT_VERSION}. " + advice)
    check_manifest(path, record["sha256"], TrainingCheckpointError, advice)
    return record


def config_differences(saved: GPTConfig, current: GPTConfig) -> list[str]:
    """``["n_layer: checkpoint 4, this run 6", ...]`` for every field that differs."""
    a, b = saved.to_dict(), current.to_dict()
    return [f"{k}: checkpoint {a[k]!r}, this run {b[k]!r}" for k in a if a[k] != b.get(k)]


def load_training_checkpoint(path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                             map_location="cpu") -> dict:
    """Load checkpoint folder ``path`` into ``model`` (and ``optimizer``) and return its record.

    The caller restores what it keeps in ``record["state"]`` (sampler, history) and the RNGs
    (:func:`set_rng_states`). Nothing is changed if any check fails.

    Raises:
        TrainingCheckpointError: corrupt files, or a model config or parameter groups that differ
            from the checkpoint's (each differing field is named).
    """
    path = Path(path)
    record = read_training_state(path)
    core = getattr(model, "module", model)
    try:
        saved_config = GPTConfig.from_dict(record["model_config"])
        hf_config, folded = read_config(path)
    except (ConfigError, CheckpointError) as e:
        raise TrainingCheckpointError(f"{path} does not describe a model gptlib can build: {e}") from None
    differences = config_differences(saved_config, core.config)
    if differences:
        raise TrainingCheckpointError(
            f"checkpoint {path} was saved for a different model: " + "; ".join(differences)
            + ". Resume with the checkpoint's model settings, or use a new output folder for a new model.")
    if config_differences(hf_config, saved_config.replace(dropout=0.0)):
        raise TrainingCheckpointError(f"{path}: config.json and {STATE_FILE} disagree about the model")
    try:
        optimizer_tensors = load_file(str(path / OPTIMIZER_FILE), device="cpu") if optimizer is not None else None
    except (SafetensorError, OSError) as e:
        raise TrainingCheckpointError(f"{path}: a tensor file cannot be read ({e})") from None
    backup = {k: v.clone() for k, v in core.state_dict().items()}
    try:
        load_weights(core, path, folded, map_location)
        if optimizer is not None:
            optimizer_from_files(core, optimizer, optimizer_tensors, record["optimizer"], str(path))
    except BaseException:
        core.load_state_dict(backup)
        raise
    return record
