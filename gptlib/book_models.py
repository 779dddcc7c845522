"""The book's pretrained small model, built on first use and cached, and text-in, text-out generation.

Chapter 7 (sampling) needs a model that already writes Shakespeare-like text; it must not depend on
chapter 6 having been run. So::

    import gptlib
    shakespeare = gptlib.pretrained("shakespeare-char")
    print(shakespeare.generate_text("ROMEO:", max_new_tokens=200, temperature=0.8, seed=0))

trains the character-level model with the recipe in :data:`RECIPES` the first time (a few minutes
on two CPU cores; ``make data`` runs ``python -m gptlib.pretrained prepare`` so readers never wait),
and caches it under the data folder, in ``models/shakespeare-char/``: the model in Hugging Face
format, plus ``recipe.json`` with the exact recipe, the SHA-256 of the corpus it was trained on,
the tokenizer's alphabet, the SHA-256 of the weights, and the validation loss it reached. A cached
model whose recipe or corpus differs from the current one is retrained; a corrupt one is refused
with a message that says how to rebuild it.

:func:`generate_text` is the same one-line call for any model and tokenizer, e.g. a Cerebras-GPT
checkpoint with :func:`gptlib.tokenizer.gpt2`.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

import torch

from .assets import data_dir, sha256_of
from .checkpoint import CheckpointError, atomic_write, load_pretrained, save_pretrained
from .model import GPT
from .tokenizer import CharTokenizer
from .train import BOOK_RECIPE, TrainConfig, Trainer, load_dataset
from .training_checkpoint import OutputLock, TrainingCheckpointError

PREPARE_COMMAND = "python -m gptlib.pretrained prepare"
FORMAT_VERSION = 1

RECIPES: dict[str, TrainConfig] = {
    # The book's small-model recipe, the one bench/bench_train.py measures: under 5 minutes on 2 CPU cores.
    "shakespeare-char": BOOK_RECIPE,
}
"""The recipe each pretrained model is trained with (a change here retrains the cached model)."""

# settings that change how a run is executed or reported, not the model it produces
RUN_ONLY_FIELDS = ("progress", "threads", "out_dir", "resume", "checkpoint_interval", "keep_checkpoints",
                   "device", "precision", "log_interval", "eval_interval", "eval_windows", "final_eval_windows")


class PretrainedError(RuntimeError):
    """A pretrained model that cannot be provided; the message says what to do."""


def models_dir() -> Path:
    """Where pretrained models are cached: ``<data folder>/models``."""
    return data_dir() / "models"


def recipe_identity(config: TrainConfig) -> dict:
    """The settings of a recipe that determine the trained model (run-only settings left out)."""
    return {k: v for k, v in config.to_dict().items() if k not in RUN_ONLY_FIELDS}


# ----------------------------------------------------------------------------------------------
# text in, text out
# ----------------------------------------------------------------------------------------------
def generate_text(model: GPT, tokenizer, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> str:
    """Continue ``prompt`` with ``max_new_tokens`` sampled tokens and return prompt plus continuation.

    Args:
        model: any :class:`~gptlib.model.GPT`.
        tokenizer: anything with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``
            (a :class:`~gptlib.tokenizer.CharTokenizer` or a tiktoken ``Encoding``).
        temperature, top_k, top_p: as in :func:`gptlib.sample.generate` (temperature 0: greedy).
        seed: makes the sample reproducible (None: use torch's global generator).
    Returns:
        The text of the prompt followed by the generated tokens.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    ids = tokenizer.encode(prompt)
    if not ids:
        eot = getattr(tokenizer, "eot_token", None)
        if eot is None:
            raise ValueError("the prompt is empty: give at least one character to continue")
        ids = [eot]  # GPT-2 models start a text from <|endoftext|>
    if len(ids) and max(ids) >= model.config.vocab_size:
        raise ValueError(f"the tokenizer produced id {max(ids)}, but the model's vocabulary has "
                         f"{model.config.vocab_size} tokens: this tokenizer does not belong to this model")
    device = model.transformer.wte.weight.device
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                         generator=generator)
    text = tokenizer.decode(out[0].tolist())
    return prompt + text[len(tokenizer.decode(ids)):] if text.startswith(tokenizer.decode(ids)) else text


@dataclass
class PretrainedModel:
    """A trained model with its tokenizer, the recipe that made it, and the loss it reached."""

    name: str
    model: GPT
    tokenizer: CharTokenizer
    recipe: dict
    val_loss: float
    path: Path

    def generate_text(self, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> str:
        """Prompt in, prompt plus ``max_new_tokens`` new characters out; see :func:`generate_text`."""
        return generate_text(self.model, self.tokenizer, prompt, max_new_tokens, temperature, top_k,
                             top_p, seed)

    def __repr__(self) -> str:
        c = self.model.config
        return (f"PretrainedModel({self.name!r}: {c.n_layer} layers, d_model {c.d_model}, context "
                f"{c.context_length}, {self.model.num_params():,} parameters, validation loss "
                f"{self.val_loss:.3f} nats/char)")


# ----------------------------------------------------------------------------------------------
# the cache
# ----------------------------------------------------------------------------------------------
def _check_name(name: str) -> TrainConfig:
    if name not in RECIPES:
        raise PretrainedError(f"unknown pretrained model {name!r}; available: {sorted(RECIPES)}")
    return RECIPES[name]


def cache_status(name: str = "shakespeare-char") -> str:
    """``"missing"``, ``"stale: <why>"`` (trained with another recipe or corpus), or ``"ready"``.
    Does not read the weights; :func:`pretrained` checks them."""
    recipe = _check_name(name)
    record_file = models_dir() / name / "recipe.json"
    if not record_file.is_file():
        return "missing"
    record = _read_record(record_file)
    if record.get("format_version") != FORMAT_VERSION:
        return "stale: written by another version of gptlib"
    if record.get("recipe") != recipe_identity(recipe):
        saved, current = record.get("recipe", {}), recipe_identity(recipe)
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        return f"stale: the recipe changed ({', '.join(changed)})"
    from .assets import SHAKESPEARE
    if record.get("data_sha256") != SHAKESPEARE.sha256:
        return "stale: the corpus changed"
    return "ready"


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return record
    except (ValueError, UnicodeDecodeError) as e:
        raise PretrainedError(f"{path} is corrupt ({e}). Delete {path.parent} and run "
                              f"`{PREPARE_COMMAND}` (or `make data`) to rebuild the model.") from None


def _load_cached(name: str) -> PretrainedModel:
    folder = models_dir() / name
    record = _read_record(folder / "recipe.json")
    advice = f"Delete {folder} and run `{PREPARE_COMMAND}` (or `make data`) to rebuild it."
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise PretrainedError(f"the cached model {name!r} has no weights ({weights} is missing). {advice}")
    if sha256_of(weights) != record.get("weights_sha256"):
        raise PretrainedError(f"the cached model {name!r} is corrupt: {weights} does not have the "
                              f"SHA-256 recorded when it was trained. {advice}")
    try:
        model = load_pretrained(folder)
    except CheckpointError as e:
        raise PretrainedError(f"the cached model {name!r} cannot be loaded: {e}. {advice}") from None
    tokenizer = CharTokenizer(record["tokenizer_alphabet"])
    if tokenizer.n_vocab != model.config.vocab_size:
        raise PretrainedError(f"the cached model {name!r} has a vocabulary of {model.config.vocab_size} "
                              f"but its recorded alphabet has {tokenizer.n_vocab} characters. {advice}")
    return PretrainedModel(name, model, tokenizer, record["recipe"], record["val_loss"], folder)


def build(name: str = "shakespeare-char", progress: bool = True) -> Path:
    """Train the named model with its recipe and store it in the cache (replacing any old one
    atomically). Returns the model's folder."""
    recipe = _check_name(name)
    config = TrainConfig.from_dict({**recipe.to_dict(), "progress": progress})
    dataset = load_dataset(config.data, config.val_fraction)
    trainer = Trainer(config, dataset=dataset)
    result = trainer.fit()
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / name
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.tmp"))
    try:
        save_pretrained(trainer.model, tmp)
        record = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "recipe": recipe_identity(config),
            "data_sha256": dataset.sha256,
            "tokenizer_alphabet": "".join(dataset.tokenizer.chars),
            "weights_sha256": sha256_of(tmp / "model.safetensors"),
            "val_loss": result.final_val_loss,
            "steps": result.steps,
            "train_time_s": round(result.train_time_s, 1),
            "tokens_per_s": round(result.tokens_per_s),
            "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch_version": torch.__version__,
        }
        text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
        atomic_write(tmp / "recipe.json", lambda p: p.write_text(text, encoding="utf-8"))
        if folder.exists():
            trash = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.old"))
            os.replace(folder, trash / name)
            os.replace(tmp, folder)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _locked(wait_s: float = 1800.0) -> OutputLock:
    """The cache lock, waiting (up to ``wait_s``) while another process builds a model."""
    lock = OutputLock(models_dir())
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            return lock.acquire()
        except TrainingCheckpointError:
            if time.monotonic() > deadline:
                raise PretrainedError(f"another process has been building a model in {models_dir()} "
                                      f"for over {wait_s:.0f} s; stop it or try again later") from None
            if not told:
                print("waiting for another process that is building the pretrained model ...", file=sys.stderr)
                told = True
            time.sleep(2.0)


def pretrained(name: str = "shakespeare-char", progress: bool = True) -> PretrainedModel:
    """The book's pretrained model ``name`` (``"shakespeare-char"``), ready to generate text.

    Loads it from the cache when the cache holds a model trained with the current recipe on the
    current corpus; otherwise trains it first (a few minutes on a CPU) and caches it.

    Raises:
        PretrainedError: unknown name, or a cached model that is corrupt (the message says how
            to rebuild it).
    """
    _check_name(name)
    status = cache_status(name)
    if status == "ready":
        return _load_cached(name)
    with _locked():
        status = cache_status(name)  # another process may have built it while we waited
        if status != "ready":
            why = "is not built yet" if status == "missing" else f"is {status}"
            print(f"The pretrained model {name!r} {why}; training it now (under 5 minutes on two CPU "
                  f"cores; `{PREPARE_COMMAND}` does this ahead of time).", file=sys.stderr)
            build(name, progress=progress)
        return _load_cached(name)


def prepare(force: bool = False, progress: bool = True) -> None:
    """Build every pretrained model that is missing or stale (all of them with ``force``)."""
    for name in RECIPES:
        with _locked():
            status = cache_status(name)
            if status == "ready" and not force:
                model = _load_cached(name)  # also verifies the weights
                print(f"ok      {model.path} (validation loss {model.val_loss:.3f})")
                continue
            started = time.perf_counter()
            folder = build(name, progress=progress)
            record = _read_record(folder / "recipe.json")
            print(f"made    {folder} (validation loss {record['val_loss']:.3f}, "
                  f"{time.perf_counter() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m gptlib.pretrained",
                                     description="Build or inspect the book's cached pretrained models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="train and cache every model that is missing or stale")
    p.add_argument("--force", action="store_true", help="retrain even if the cache is up to date")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("status", help="say which cached models are ready")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(force=args.force, progress=not args.no_progress)
        else:
            for name in RECIPES:
                print(f"{name}: {cache_status(name)}")
    except PretrainedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


class _CallableModule(types.ModuleType):
    """Lets ``gptlib.pretrained("shakespeare-char")`` call :func:`pretrained` while
    ``gptlib.pretrained.generate_text`` and ``python -m gptlib.pretrained`` still reach this module."""

    def __call__(self, name: str = "shakespeare-char", progress: bool = True) -> PretrainedModel:
        return pretrained(name, progress)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    raise SystemExit(main())
