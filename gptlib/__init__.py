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
# training (chapters 6 to 8); `gptlib.pretrained("shakespeare-char")` is callable, see gptlib.pretrained
from . import distributed, mup, optim, pretrained, scaling, schedule, train, training_checkpoint
from .train import TrainConfig, Trainer

__all__ = [
    "GPT", "GPTConfig", "KVCache", "CEREBRAS_GPT", "ConfigError", "CheckpointError",
    "attention", "causal_mask", "load_pretrained", "save_pretrained",
    "assets", "checkpoint", "config", "data", "model", "sample", "tokenizer",
    "TrainConfig", "Trainer", "distributed", "mup", "optim", "pretrained", "scaling", "schedule", "train",
    "training_checkpoint",
]
