"""gptlib: the small library the book "Building Cerebras-GPT" builds, one chapter at a time.

Import what the chapters use::

    import gptlib
    config = gptlib.GPTConfig.cerebras("111M")
    model = gptlib.GPT(config)
    enc = gptlib.tokenizer.gpt2()
    out = gptlib.generate(model, idx, max_new_tokens=20, temperature=0.8)

Modules, one idea each, each importing only modules listed before it::

    checks       argument checks, and GptlibError, the base of every error gptlib raises
    settings     settings declared once on dataclass fields (help, bounds, "defines the run")
    files        atomic writes, folders replaced in one step, SHA-256 manifests, folder locks
    config       GPTConfig: the shape of a GPT and its cost (chapters 4, 8)
    assets       the offline data files (python -m gptlib.assets prepare)
    tokenizer    GPT-2's BPE, the book's BPE trainer, characters (chapter 1)
    data         the corpus and its batches (chapters 1, 6)
    model        attention, FeedForward, Block, GPT (chapters 3 to 5, 7)
    checkpoint   load_pretrained / save_pretrained: Hugging Face's GPT-2 format (chapter 5)
    sample       temperature, top-k, top-p, generate, generate_text (chapter 7)
    optim        AdamW's parameter groups (chapters 6, 8)
    schedule     warm-up and decay (chapter 6)
    train        the training package: recipe, trainer, checkpoints, command line (chapter 6)
    book_models  the book's own trained models, cached: book_model("shakespeare-char")
    baselines    unigram and bigram count tables: the losses a model must beat (chapters 6, 8)
    mup, scaling the experiments of chapter 8

Training and the book's models are imported on first use (``gptlib.train``,
``gptlib.book_model(...)``), so ``import gptlib`` stays light.
"""
from . import assets, checkpoint, checks, config, data, model, sample, tokenizer
from .checkpoint import CheckpointError, load_pretrained, save_pretrained
from .checks import GptlibError
from .config import CEREBRAS_GPT, ConfigError, GPTConfig
from .model import GPT, KVCache, attention, causal_mask
from .sample import generate, generate_text

_LAZY_MODULES = ("baselines", "book_models", "mup", "optim", "scaling", "schedule", "train")
_LAZY_NAMES = {"TrainConfig": "train", "Trainer": "train", "book_model": "book_models"}


def __getattr__(name):
    import importlib
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'gptlib' has no attribute {name!r}")


__all__ = [
    "GPT", "GPTConfig", "KVCache", "CEREBRAS_GPT", "CheckpointError", "ConfigError", "GptlibError",
    "attention", "causal_mask", "generate", "generate_text", "load_pretrained", "save_pretrained",
    "assets", "checkpoint", "checks", "config", "data", "model", "sample", "tokenizer",
    "TrainConfig", "Trainer", "book_model", "book_models", "mup", "optim", "scaling", "schedule",
    "train",
]
