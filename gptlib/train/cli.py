"""The command line: ``python -m gptlib.train`` (or ``torchrun ... -m gptlib.train``).

One flag per setting of :class:`~gptlib.train.TrainConfig`, made from the settings' declarations:
the flag's type from the field's annotation (``int | None`` takes a number or ``none``), its help
and default from the field. ``--config FILE`` reads a JSON file of settings; flags override it.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..checks import GptlibError
from ..config import ConfigError
from ..settings import value_type
from . import distributed
from .recipe import BOOK_RECIPE, TrainConfig, read_settings
from .trainer import Trainer


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case)."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def flag_type(kind: type, optional: bool):
    """The argparse ``type=`` for a setting of type ``kind`` (``optional``: ``none`` gives None)."""
    parse = parse_bool if kind is bool else kind

    def parse_optional(text: str):
        return None if text.lower() in ("none", "null") else parse(text)

    parse_optional.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse_optional if optional else parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m gptlib.train`` argument parser: ``--config FILE`` plus one flag per
    setting (flags override the file)."""
    parser = argparse.ArgumentParser(
        prog="python -m gptlib.train",
        description="Train a character-level GPT on the Shakespeare corpus with Cerebras-GPT's recipe "
                    "(AdamW 0.9/0.95, weight decay 0.1 on matrices, warm-up then decay to 10%, "
                    "gradient clipping 1.0). Runs on CUDA, MPS or CPU; under torchrun as DDP.",
        epilog="Example: python -m gptlib.train --max_steps 500 --out_dir runs/a ; "
               "torchrun --nproc_per_node=2 -m gptlib.train --config recipe.json")
    parser.add_argument("--book-recipe", action="store_true",
                        help="start from the book's small-model recipe (BOOK_RECIPE: muP, 3 layers, "
                             "batch 8, 5000 steps) instead of the defaults below")
    parser.add_argument("--config", metavar="FILE", help="JSON file of settings (keys as the flags below)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resulting settings as JSON and exit (a starting config file)")
    defaults = TrainConfig().to_dict()
    for name in TrainConfig.setting_names():
        owner, declaration = TrainConfig.declaration(name)
        kind, optional = value_type(owner, name)
        choices = declaration.metadata["choices"]
        parser.add_argument(f"--{name}", type=flag_type(kind, optional), default=None, choices=choices,
                            metavar=kind.__name__.upper() if choices is None else None,
                            help=f"{declaration.metadata['help']} (default: {defaults[name]})")
    return parser


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse command-line arguments into a :class:`TrainConfig` (defaults, or :data:`BOOK_RECIPE`
    with ``--book-recipe`` < ``--config`` < flags; ``out_dir`` defaults to ``out``). A bad
    setting exits with a message naming it (status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values = (BOOK_RECIPE if args.book_recipe else TrainConfig()).to_dict()
    values["out_dir"] = "out"
    try:
        if args.config:
            values.update(read_settings(args.config))
        values.update({name: getattr(args, name) for name in TrainConfig.setting_names()
                       if getattr(args, name) is not None})
        config = TrainConfig.from_dict(values)
    except ConfigError as e:
        parser.error(str(e))
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        raise SystemExit(0)
    return config


def main(argv: list[str] | None = None) -> int:
    """Train with the settings of the command line; 0 on success, 1 when training stops with an
    error (a diverged loss, a busy or mistyped output folder, a corrupt checkpoint), 2 for a bad
    setting."""
    config = config_from_args(argv)
    try:
        trainer = Trainer(config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = trainer.fit()
    except GptlibError as e:
        if trainer.context.is_main:
            print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        distributed.teardown(trainer.context)
    if trainer.context.is_main:
        print(f"steps {result.steps}  tokens {result.tokens:,}  train time {result.train_time_s:.1f} s  "
              f"{result.tokens_per_s:,.0f} tokens/s  final validation loss {result.final_val_loss:.4f}"
              + (f"  checkpoint {result.checkpoint}" if result.checkpoint else ""))
    return 0
