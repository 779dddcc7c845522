"""gptlib: the small library the book "Building Cerebras-GPT" builds, one chapter at a time.

Import what the chapters use::

    import gptlib
    config = gptlib.GPTConfig.cerebras("111M")
    model = gptlib.GPT(config)
    enc = gptlib.tokenizer.gpt2()

Modules, one idea each: ``config`` (shapes and cost), ``tokenizer``, ``data``, ``model``
(attention, FeedForward, Block, GPT), ``checkpoint`` (Hugging Face format), ``sample``
(generation), ``assets`` (the offline data files).
"""
from . import assets, checkpoint, config, data, model, sample, tokenizer
from .checkpoint import CheckpointError, load_pretrained, save_pretrained
from .config import CEREBRAS_GPT, ConfigError, GPTConfig
from .model import GPT, KVCache, attention, causal_mask

# Training (chapters 6 to 8) is imported on first use, so `python -m gptlib.train` runs the module
# once, and `import gptlib` stays light. `gptlib.pretrained("shakespeare-char")` is callable.
_TRAINING_MODULES = ("distributed", "mup", "optim", "pretrained", "scaling", "schedule", "train",
                     "training_checkpoint")
_TRAINING_NAMES = {"TrainConfig": "train", "Trainer": "train"}


def __getattr__(name):
    import importlib
    if name in _TRAINING_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _TRAINING_NAMES:
        return getattr(importlib.import_module(f".{_TRAINING_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'gptlib' has no attribute {name!r}")


__all__ = [
    "GPT", "GPTConfig", "KVCache", "CEREBRAS_GPT", "ConfigError", "CheckpointError",
    "attention", "causal_mask", "load_pretrained", "save_pretrained",
    "assets", "checkpoint", "config", "data", "model", "sample", "tokenizer",
    "TrainConfig", "Trainer", "distributed", "mup", "optim", "pretrained", "scaling", "schedule", "train",
    "training_checkpoint",
]
