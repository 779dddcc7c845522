"""The models the book trains itself: built once by the set-up, cached on disk, checked on every use.

Chapter 7 (sampling) needs a model that already writes Shakespeare-like text; it must not depend on
chapter 6 having been run. So::

    import gptlib
    shakespeare = gptlib.book_model("shakespeare-char")
    print(shakespeare.generate_text("ROMEO:", max_new_tokens=200, temperature=0.8, seed=0))

trains the character-level model with its recipe in :data:`RECIPES` the first time (a few minutes
on two CPU cores; ``make data`` runs ``python -m gptlib.book_models prepare`` so readers never
wait), and caches it under the data folder, in ``models/shakespeare-char/``: the model in Hugging
Face format (:func:`gptlib.save_pretrained`), plus ``recipe.json`` with the settings that define the
run (:meth:`~gptlib.train.TrainConfig.identity`), the SHA-256 of the corpus it was trained on, the
tokenizer's alphabet, a manifest of the weights' SHA-256, and the validation loss it reached. A
cached model whose recipe or corpus differs from the current one is retrained; a corrupt one is
refused with a message that says how to rebuild it.

(Not to be confused with :func:`gptlib.load_pretrained`, which reads any model in Hugging Face's
format, e.g. a Cerebras-GPT release.)
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checks
from .assets import SHAKESPEARE, data_dir
from .checkpoint import UNFOLDED_FILE, WEIGHTS_FILE, CheckpointError, load_pretrained, save_pretrained
from .checks import GptlibError
from .files import FolderBusy, FolderLock, atomic_write, check_manifest, manifest, replacing_folder
from .model import GPT
from .sample import generate_text
from .tokenizer import CharTokenizer
from .train import BOOK_RECIPE, TrainConfig, Trainer, load_dataset

PREPARE_COMMAND = "python -m gptlib.book_models prepare"
FORMAT_VERSION = 2  # 2: recipe = TrainConfig.identity(); muP weights folded (gptlib.checkpoint)
RECORD_FILE = "recipe.json"

RECIPES: dict[str, TrainConfig] = {
    # The book's small-model recipe, the one bench/bench_train.py measures: under 5 minutes on 2 CPU cores.
    "shakespeare-char": BOOK_RECIPE,
}
"""The recipe each book model is trained with (a change to a setting that defines the run retrains
the cached model; see :meth:`gptlib.train.TrainConfig.defines_run`)."""


class BookModelError(GptlibError, RuntimeError):
    """A book model that cannot be provided; the message says what to do."""


def models_dir() -> Path:
    """Where the book's models are cached: ``<data folder>/models``."""
    return data_dir() / "models"


@dataclass
class BookModel:
    """A trained model with its tokenizer, the recipe that made it, and the loss it reached."""

    name: str
    model: GPT
    tokenizer: CharTokenizer
    recipe: dict
    val_loss: float
    path: Path

    def generate_text(self, prompt: str, **options) -> str:
        """Prompt in, prompt plus ``max_new_tokens`` new characters out: the options of
        :func:`gptlib.sample.generate_text` (``max_new_tokens``, ``seed``, ``temperature``,
        ``top_k``, ``top_p``)."""
        return generate_text(self.model, self.tokenizer, prompt, **options)

    def __repr__(self) -> str:
        c = self.model.config
        return (f"BookModel({self.name!r}: {c.n_layer} layers, d_model {c.d_model}, context "
                f"{c.context_length}, {self.model.num_params():,} parameters, validation loss "
                f"{self.val_loss:.3f} nats/char)")


# ----------------------------------------------------------------------------------------------
# the cache
# ----------------------------------------------------------------------------------------------
def _recipe(name: str) -> TrainConfig:
    checks.one_of("the book model's name", name, tuple(RECIPES), error=BookModelError)
    return RECIPES[name]


def _advice(folder: Path) -> str:
    return f"Delete {folder} and run `{PREPARE_COMMAND}` (or `make data`) to rebuild it."


def cache_status(name: str = "shakespeare-char") -> str:
    """``"missing"``, ``"stale: <why>"`` (trained with another recipe or corpus), or ``"ready"``.
    Does not read the weights; :func:`book_model` checks them."""
    recipe = _recipe(name)
    record_file = models_dir() / name / RECORD_FILE
    if not record_file.is_file():
        return "missing"
    record = _read_record(record_file)
    if record.get("format_version") != FORMAT_VERSION:
        return "stale: written by another version of gptlib"
    saved, current = record.get("recipe", {}), recipe.identity()
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        return f"stale: the recipe changed ({', '.join(changed)})"
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
        raise BookModelError(f"{path} is corrupt ({e}). {_advice(path.parent)}") from None


def _load_cached(name: str) -> BookModel:
    folder = models_dir() / name
    record = _read_record(folder / RECORD_FILE)
    check_manifest(folder, record.get("sha256", {WEIGHTS_FILE: None}), BookModelError,
                   f"The cached model {name!r} is corrupt. {_advice(folder)}")
    try:
        model = load_pretrained(folder)
    except CheckpointError as e:
        raise BookModelError(f"the cached model {name!r} cannot be loaded: {e}. {_advice(folder)}") from None
    tokenizer = CharTokenizer(record["tokenizer_alphabet"])
    if tokenizer.n_vocab != model.config.vocab_size:
        raise BookModelError(f"the cached model {name!r} has a vocabulary of {model.config.vocab_size} "
                             f"but its recorded alphabet has {tokenizer.n_vocab} characters. "
                             f"{_advice(folder)}")
    return BookModel(name, model, tokenizer, record["recipe"], record["val_loss"], folder)


def build(name: str = "shakespeare-char", progress: bool = True) -> Path:
    """Train the named model with its recipe and store it in the cache (replacing any old one in
    one step, :func:`gptlib.files.replacing_folder`). Returns the model's folder."""
    config = _recipe(name).replace(progress=progress)
    dataset = load_dataset(config.data, config.val_fraction)
    trainer = Trainer(config, dataset=dataset)
    result = trainer.fit()
    folder = models_dir() / name
    with replacing_folder(folder) as tmp:
        save_pretrained(trainer.model, tmp)
        tensor_files = [f for f in (WEIGHTS_FILE, UNFOLDED_FILE) if (tmp / f).is_file()]
        record = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "recipe": config.identity(),
            "data_sha256": dataset.sha256,
            "tokenizer_alphabet": "".join(dataset.tokenizer.chars),
            "sha256": manifest(tmp, tensor_files),
            "val_loss": result.final_val_loss,
            "steps": result.steps,
            "train_time_s": round(result.train_time_s, 1),
            "tokens_per_s": round(result.tokens_per_s),
            "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch_version": torch.__version__,
        }
        atomic_write(tmp / RECORD_FILE, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return folder


def _locked(wait_s: float = 1800.0) -> FolderLock:
    """The cache lock, waiting (up to ``wait_s``) while another process builds a model."""
    lock = FolderLock(models_dir(), purpose="another process is building a model in",
                      advice="Stop it or try again later.")
    try:
        return lock.acquire()
    except FolderBusy:
        print("waiting for another process that is building the book's model ...", file=sys.stderr)
    try:
        return lock.acquire(wait_s=wait_s)
    except FolderBusy as e:
        raise BookModelError(f"{e} (waited {wait_s:.0f} s)") from None


def book_model(name: str = "shakespeare-char", progress: bool = True) -> BookModel:
    """The book's model ``name`` (``"shakespeare-char"``), ready to generate text.

    Loads it from the cache when the cache holds a model trained with the current recipe on the
    current corpus; otherwise trains it first (a few minutes on a CPU) and caches it.

    Raises:
        BookModelError: unknown name, or a cached model that is corrupt (the message says how
            to rebuild it).
    """
    _recipe(name)
    if cache_status(name) == "ready":
        return _load_cached(name)
    with _locked():
        status = cache_status(name)  # another process may have built it while we waited
        if status != "ready":
            why = "is not built yet" if status == "missing" else f"is {status}"
            print(f"The book's model {name!r} {why}; training it now (under 5 minutes on two CPU "
                  f"cores; `{PREPARE_COMMAND}` does this ahead of time).", file=sys.stderr)
            build(name, progress=progress)
        return _load_cached(name)


def prepare(force: bool = False, progress: bool = True) -> None:
    """Build every book model that is missing or stale (all of them with ``force``)."""
    for name in RECIPES:
        with _locked():
            if cache_status(name) == "ready" and not force:
                model = _load_cached(name)  # also verifies the weights
                print(f"ok      {model.path} (validation loss {model.val_loss:.3f})")
                continue
            started = time.perf_counter()
            folder = build(name, progress=progress)
            record = _read_record(folder / RECORD_FILE)
            print(f"made    {folder} (validation loss {record['val_loss']:.3f}, "
                  f"{time.perf_counter() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    """``python -m gptlib.book_models prepare|status``."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m gptlib.book_models",
                                     description="Build or inspect the cache of the book's models.")
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
    except GptlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
