"""The recipe of a training run: :class:`TrainConfig`, and :data:`BOOK_RECIPE`, the book's own.

A recipe is a model (a :class:`~gptlib.config.GPTConfig`, chapter 5) plus how to train it. Every
training setting is declared once, on its field below, with its help text, its allowed values and
whether it *defines the run* (:func:`gptlib.settings.setting`); the model's settings are declared
on ``GPTConfig``'s fields, and all of them define the run. The command line, the checks, the resume
check and the cache of the book's models all read these declarations.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import checks
from ..config import ConfigError, GPTConfig
from ..schedule import DECAYS, Schedule
from ..settings import check_all, declared, setting, unknown_keys

DATASETS = ("shakespeare-char",)
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")

MODEL_SETTINGS = tuple(f.name for f in declared(GPTConfig) if f.name != "vocab_size")
"""GPTConfig's fields a recipe sets (all but ``vocab_size``, which the dataset decides)."""

SMALL_MODEL = GPTConfig(n_layer=4, n_head=4, d_model=128, context_length=128)
"""The default recipe's model: 4 layers of width 128 over windows of 128 characters (its
``vocab_size`` is replaced by the dataset's)."""


@dataclass(frozen=True, init=False)
class TrainConfig:
    """Everything that defines a training run, and how to execute it. Frozen: checked once, when
    it is made; :meth:`replace` makes a changed copy.

    The defaults are Cerebras-GPT's standard recipe (standard parametrization, AdamW 0.9/0.95,
    decay 0.1 on matrices, warm-up then cosine decay to 10%, clipping at 1.0) at the scale of a
    small character-level model on the Shakespeare corpus, the run chapter 6 takes apart.
    :data:`BOOK_RECIPE` changes a few of them (muP, fewer layers, smaller batches, more steps).

    ``model`` is the :class:`~gptlib.config.GPTConfig` to train; its ``vocab_size`` is not part of
    the recipe: the trainer takes it from the dataset (:meth:`model_config`). The model's settings
    can also be given by name, ``TrainConfig(n_layer=3, mup=True, batch_size=8)``, which changes
    them on the model (:data:`SMALL_MODEL` by default). :meth:`to_dict` lists model and training
    settings side by side, the way the command line and config files name them.
    """

    model: GPTConfig = field(default=SMALL_MODEL)
    # optimization
    batch_size: int = setting(16, "sequences per update B, over all processes", low=1)
    max_steps: int = setting(3000, "optimizer updates S (the schedule ends there)", low=1)
    peak_lr: float = setting(3e-3, "learning rate at the end of the warm-up", low=0, low_open=True,
                             high=10)
    warmup_steps: int = setting(100, "linear warm-up steps W", low=0)
    decay: str = setting("cosine", "the decay after the warm-up: linear, cosine or constant",
                         choices=DECAYS)
    final_lr_fraction: float = setting(0.1, "where the decay ends, as a fraction of the peak",
                                       low=0, high=1)
    weight_decay: float = setting(0.1, "AdamW weight decay (hidden matrices only)", low=0, high=10)
    beta1: float = setting(0.9, "AdamW beta1", low=0, high=1, high_open=True)
    beta2: float = setting(0.95, "AdamW beta2", low=0, high=1, high_open=True)
    eps: float = setting(1e-8, "AdamW epsilon", low=0, high=1, low_open=True)
    grad_clip: float = setting(1.0, "max gradient L2 norm (0: no clipping)", low=0)
    # data, randomness, arithmetic
    data: str = setting("shakespeare-char", "dataset: shakespeare-char", choices=DATASETS)
    val_fraction: float = setting(0.1, "held-out fraction of the corpus (the tail)", low=0, high=1,
                                  low_open=True, high_open=True)
    seed: int = setting(1337, "random seed (initialisation, batches, dropout)", low=0)
    precision: str = setting("auto", "auto (bf16 on CUDA, else fp32), fp32 or bf16", choices=PRECISIONS)
    # evaluation and logging: what is measured and shown, not what is trained
    eval_interval: int = setting(250, "steps between validation losses (0: at the end only)",
                                 defines_run=False, low=0)
    eval_windows: int = setting(256, "validation windows of T tokens per periodic evaluation",
                                defines_run=False, low=1)
    final_eval_windows: int | None = setting(None, "validation windows at the end (none: the whole "
                                             "split)", defines_run=False, low=1)
    log_interval: int = setting(10, "steps between logged training losses", defines_run=False, low=1)
    progress: bool = setting(True, "show a progress bar", defines_run=False)
    # where and how it runs
    device: str = setting("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps",
                          defines_run=False, choices=DEVICES)
    threads: int | None = setting(None, "CPU threads (none: torch's default)", defines_run=False, low=1)
    compile: bool = setting(False, "run the training steps through torch.compile (a warm-up of tens "
                            "of seconds, then faster steps; for long runs)", defines_run=False)
    out_dir: str | None = setting(None, "folder for checkpoints (none: no checkpoints)",
                                  defines_run=False)
    checkpoint_interval: int = setting(0, "steps between checkpoints (0: at the end only)",
                                       defines_run=False, low=0)
    keep_checkpoints: int = setting(2, "how many checkpoints to keep", defines_run=False, low=1)
    resume: bool = setting(False, "continue from out_dir's latest checkpoint (there must be one)",
                           defines_run=False)

    def __init__(self, model: GPTConfig | None = None, **settings):
        if "vocab_size" in settings:
            raise ConfigError("vocab_size is not a training setting: the trainer takes it from the "
                              "dataset")
        problem = unknown_keys(TrainConfig, settings, known=TrainConfig.setting_names())
        if problem:
            raise ConfigError(f"unknown training setting(s) {problem}")
        if model is None:
            model = SMALL_MODEL
        checks.instance("TrainConfig.model", model, GPTConfig, error=ConfigError)
        model_changes = {k: settings.pop(k) for k in MODEL_SETTINGS if k in settings}
        object.__setattr__(self, "model", model.replace(**model_changes) if model_changes else model)
        for f in declared(TrainConfig):
            object.__setattr__(self, f.name, settings.get(f.name, f.default))
        check_all(self, ConfigError)
        if self.warmup_steps > self.max_steps:
            raise ConfigError(f"TrainConfig.warmup_steps ({self.warmup_steps}) must not exceed "
                              f"max_steps ({self.max_steps})")
        if self.resume and not self.out_dir:
            raise ConfigError("TrainConfig.resume needs out_dir: the folder whose latest checkpoint "
                              "to resume")

    # ------------------------------------------------------------------ the declarations
    @staticmethod
    def setting_names() -> tuple[str, ...]:
        """Every setting by name: the model's (:data:`MODEL_SETTINGS`), then the training ones."""
        return MODEL_SETTINGS + tuple(f.name for f in declared(TrainConfig))

    @staticmethod
    def defines_run() -> tuple[str, ...]:
        """The settings that change what a run computes: every model setting, and the training
        settings declared with ``defines_run=True``. A resumed run must have the same values."""
        return MODEL_SETTINGS + tuple(f.name for f in declared(TrainConfig) if f.metadata["defines_run"])

    @staticmethod
    def run_only() -> tuple[str, ...]:
        """The settings that only change how a run executes or what it reports."""
        return tuple(f.name for f in declared(TrainConfig) if not f.metadata["defines_run"])

    @staticmethod
    def declaration(name: str):
        """``(owner class, dataclass field)`` of setting ``name``."""
        owner = GPTConfig if name in MODEL_SETTINGS else TrainConfig
        return owner, next(f for f in declared(owner) if f.name == name)

    # ------------------------------------------------------------------ derived
    def model_config(self, vocab_size: int) -> GPTConfig:
        """The :class:`~gptlib.config.GPTConfig` of this recipe for a vocabulary of ``vocab_size``."""
        return self.model.replace(vocab_size=vocab_size)

    def schedule(self) -> Schedule:
        """The learning-rate :class:`~gptlib.schedule.Schedule` of this recipe."""
        return Schedule(self.peak_lr, self.warmup_steps, self.max_steps, self.decay, self.final_lr_fraction)

    @property
    def tokens_per_step(self) -> int:
        """B x T, the tokens of one update over all processes."""
        return self.batch_size * self.model.context_length

    def identity(self) -> dict:
        """The settings that define the run, by name: what a checkpoint or a cached model records
        to say which run made it."""
        values = self.to_dict()
        return {k: values[k] for k in self.defines_run()}

    def differences(self, recorded: dict) -> list[str]:
        """``["peak_lr: checkpoint 0.003, this run 0.01", ...]`` for every setting that defines the
        run and differs between ``recorded`` (another recipe's :meth:`to_dict`) and this one."""
        mine, missing = self.to_dict(), "(not recorded)"
        return [f"{k}: checkpoint {recorded.get(k, missing)!r}, this run {mine[k]!r}"
                for k in self.defines_run() if recorded.get(k, missing) != mine[k]]

    # ------------------------------------------------------------------ dicts and files
    def to_dict(self) -> dict:
        """Every setting by name, model settings first (``d_ffn`` None where it is 4 x d_model)."""
        model = self.model.settings()
        return {**{k: model[k] for k in MODEL_SETTINGS},
                **{f.name: getattr(self, f.name) for f in declared(TrainConfig)}}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict of settings by name (e.g. a JSON file), refusing unknown keys by name
        with a suggestion; missing ones take the defaults."""
        checks.instance("a training config", values, dict, what="a JSON object (a dict)",
                        error=ConfigError)
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> "TrainConfig":
        """Read a JSON config file (keys are the setting names; missing ones take the defaults)."""
        return cls.from_dict(read_settings(path))

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed, by name (checked like a new config)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def read_settings(path) -> dict:
    """The settings in a JSON config file, as a dict (checked only when a TrainConfig is built)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    checks.instance("a training config", values, dict, what="a JSON object (a dict)", error=ConfigError)
    return values


BOOK_RECIPE = TrainConfig(n_layer=3, mup=True, batch_size=8, max_steps=5000, peak_lr=2e-3,
                          eval_interval=500)
"""The book's small-model recipe: a validation loss below 1.60 nats per character within five
minutes on two CPU cores (``bench/bench_train.py`` measures it; the model of chapter 7,
:func:`gptlib.book_model`, is trained with it). Against the defaults of :class:`TrainConfig` it uses

- Cerebras-GPT's muP parametrization (chapter 8) with base width 256 and ``peak_lr`` 2e-3 (the
  hidden matrices train at 2e-3 * 256 / 128 = 4e-3): at this width it learns faster than the
  standard parametrization at the best rates found for it (3e-3 at batch 16, 2e-3 at batch 8):
  1.572 after 6,000 steps of batch 8, against 1.585 after 6,800;
- 3 layers instead of 4: with the clock fixed, a smaller model that sees more characters wins
  (the compute-optimal trade-off of chapter 8, at a scale where 5 minutes buys about 7 million
  characters); 2 layers are too few;
- batches of 8 windows, 5,000 steps: as many characters per second as batches of 16 on two
  cores, twice the updates. 5,000 steps take about 250 s here, which leaves room for a machine
  that is 15% slower than usual (6,000 steps reach 1.571 but can take more than 300 s).

``bench/bench_train.py --set KEY=VALUE`` reruns it with any setting changed.
"""
