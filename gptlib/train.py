"""The training loop of the book: Cerebras-GPT's recipe, small enough to read in one sitting.

Chapter 6 builds it piece by piece. One optimizer update (:meth:`Trainer.train_step`) is::

    lr = schedule(step)                         # linear warm-up, then decay to 10% (gptlib.schedule)
    x, y = next(batches)                        # (B, T) windows and their next tokens
    loss = model(x, y)                          # mean cross-entropy, nats per token
    loss.backward()                             # DDP averages gradients across processes here
    clip_grad_norm_(parameters, 1.0)            # the whole gradient's L2 norm at most 1
    adamw.step()                                # betas (0.9, 0.95), decay 0.1 on matrices only

Around it: periodic evaluation on the validation split, a progress bar with the loss and the
throughput in tokens per second, callbacks (a notebook draws the loss curve live with them),
checkpoints that resume exactly (:mod:`gptlib.training_checkpoint`), and a stop with a clear
message when the loss becomes NaN or infinite.

The same code runs on a CUDA GPU, on Apple's MPS, or on the CPU (``device="auto"`` picks the first
available), in bf16 mixed precision where the device supports it well (CUDA) and in fp32 otherwise,
and under ``torchrun`` as DistributedDataParallel (:mod:`gptlib.distributed`).

Command line::

    python -m gptlib.train --help
    python -m gptlib.train --max_steps 500 --out_dir out
    python -m gptlib.train --config recipe.json --resume
    torchrun --nproc_per_node=2 -m gptlib.train --config recipe.json
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch

from . import distributed
from .config import ConfigError, GPTConfig
from .data import BatchSampler, as_token_tensor
from .model import GPT
from .optim import configure_optimizer, set_learning_rate
from .schedule import DECAYS, Schedule
from .training_checkpoint import (OutputLock, TrainingCheckpointError, latest_checkpoint,
                                  load_training_checkpoint, rng_states, save_training_checkpoint,
                                  set_rng_states)

DATASETS = ("shakespeare-char",)
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


class TrainingDiverged(RuntimeError):
    """The loss (or the gradient norm) became NaN or infinite; training stopped before the bad update."""


# ----------------------------------------------------------------------------------------------
# The recipe
# ----------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Everything that defines a training run. The defaults are Cerebras-GPT's standard
    recipe (standard parametrization, AdamW 0.9/0.95, decay 0.1 on matrices, warm-up then cosine
    decay to 10%, clipping at 1.0) at the scale of a small character-level model on the Shakespeare
    corpus, the run chapter 6 takes apart. :data:`BOOK_RECIPE` changes a few of them (muP, fewer
    layers, smaller batches, more steps) into the book's small-model recipe, the one the benchmark
    measures and the pretrained model is trained with.

    Model (see :class:`~gptlib.config.GPTConfig`): ``n_layer``, ``n_head``, ``d_model``,
    ``d_ffn`` (None: 4 d_model), ``context_length`` (T), ``dropout``, ``bias``, ``activation``,
    ``mup`` (muP parametrization, chapter 8) and ``mup_base_width`` (d_base, its proxy width).

    Optimization: ``batch_size`` (B, sequences per update, over all processes), ``max_steps``,
    ``peak_lr``, ``warmup_steps``, ``decay`` (``"linear"``, ``"cosine"``, ``"constant"``),
    ``final_lr_fraction`` (0.1: decay to 10% of the peak), ``weight_decay`` (on matrices only),
    ``beta1``, ``beta2``, ``eps``, ``grad_clip`` (max gradient L2 norm; 0 turns clipping off).

    Evaluation and logging: ``eval_interval`` (steps between validation losses; 0: only at the
    end), ``eval_windows`` (validation windows of T characters per evaluation, evenly spaced over
    the split), ``final_eval_windows`` (windows for the last evaluation; None: the whole
    validation split, in back-to-back windows), ``log_interval`` (steps between "step" callbacks), ``progress`` (tqdm bar).

    Run: ``data`` (``"shakespeare-char"``), ``val_fraction``, ``seed``, ``device``
    (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``), ``precision`` (``"auto"``: bf16 on CUDA GPUs
    that support it, fp32 elsewhere; ``"fp32"``; ``"bf16"``), ``threads`` (CPU threads; None
    leaves torch's default), ``out_dir`` (checkpoints; None: none written),
    ``checkpoint_interval`` (steps between checkpoints; 0: only at the end),
    ``keep_checkpoints``, ``resume`` (continue from ``out_dir``'s latest checkpoint).
    """

    # model
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ffn: int | None = None
    context_length: int = 128
    dropout: float = 0.0
    bias: bool = True
    activation: str = "gelu"
    mup: bool = False
    mup_base_width: int = 256
    # optimization
    batch_size: int = 16
    max_steps: int = 3000
    peak_lr: float = 3e-3
    warmup_steps: int = 100
    decay: str = "cosine"
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    # evaluation and logging
    eval_interval: int = 250
    eval_windows: int = 256
    final_eval_windows: int | None = None
    log_interval: int = 10
    progress: bool = True
    # run
    data: str = "shakespeare-char"
    val_fraction: float = 0.1
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    out_dir: str | None = None
    checkpoint_interval: int = 0
    keep_checkpoints: int = 2
    resume: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~gptlib.config.ConfigError` naming the first setting that makes no run."""
        def positive_int(name, allow_zero=False, allow_none=False):
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
                bound = ">= 0" if allow_zero else "> 0"
                raise ConfigError(f"TrainConfig.{name} must be an integer {bound}, got {v!r}")

        def number(name, lo, hi, lo_open=False, hi_open=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
                interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
                raise ConfigError(f"TrainConfig.{name} must be a number in {interval}, got {v!r}")

        for name in ("n_layer", "n_head", "d_model", "context_length", "batch_size", "max_steps",
                     "eval_windows", "log_interval", "keep_checkpoints", "mup_base_width"):
            positive_int(name)
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval", "seed"):
            positive_int(name, allow_zero=True)
        positive_int("d_ffn", allow_none=True)
        positive_int("final_eval_windows", allow_none=True)
        positive_int("threads", allow_none=True)
        number("peak_lr", 0, 10, lo_open=True)
        number("final_lr_fraction", 0, 1)
        number("weight_decay", 0, 10)
        number("beta1", 0, 1, hi_open=True)
        number("beta2", 0, 1, hi_open=True)
        number("eps", 0, 1, lo_open=True)
        number("grad_clip", 0, math.inf)
        number("dropout", 0, 1, hi_open=True)
        number("val_fraction", 0, 1, lo_open=True, hi_open=True)
        if self.warmup_steps > self.max_steps:
            raise ConfigError(f"TrainConfig.warmup_steps ({self.warmup_steps}) must not exceed "
                              f"max_steps ({self.max_steps})")
        for name, allowed in (("decay", DECAYS), ("data", DATASETS), ("device", DEVICES),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"TrainConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("bias", "mup", "progress", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TrainConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.resume and not self.out_dir:
            raise ConfigError("TrainConfig.resume needs out_dir: the folder whose latest checkpoint to resume")
        self.model_config(vocab_size=2)  # let GPTConfig check the model fields (width / heads ...)

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The :class:`~gptlib.config.GPTConfig` of this recipe for a vocabulary of ``vocab_size``."""
        return GPTConfig(vocab_size=vocab_size, context_length=self.context_length, n_layer=self.n_layer,
                         n_head=self.n_head, d_model=self.d_model, d_ffn=self.d_ffn, dropout=self.dropout,
                         bias=self.bias, activation=self.activation, mup=self.mup,
                         mup_base_width=self.mup_base_width)

    def schedule(self) -> Schedule:
        """The learning-rate :class:`~gptlib.schedule.Schedule` of this recipe."""
        return Schedule(self.peak_lr, self.warmup_steps, self.max_steps, self.decay, self.final_lr_fraction)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict (e.g. a JSON file), refusing unknown keys by name with a suggestion."""
        if not isinstance(values, dict):
            raise ConfigError(f"a training config must be a JSON object (a dict), got {type(values).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in known]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, known, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"unknown training setting(s) {', '.join(hints)}; known settings: {known}")
        return cls(**values)

    @classmethod
    def from_json(cls, path) -> "TrainConfig":
        """Read a JSON config file (keys are the field names; missing ones take the defaults)."""
        return cls.from_dict(read_settings(path))

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context_length

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (checked like a new config)."""
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
    if not isinstance(values, dict):
        raise ConfigError(f"a training config must be a JSON object (a dict), got {type(values).__name__}")
    return values


BOOK_RECIPE = TrainConfig(n_layer=3, mup=True, batch_size=8, max_steps=5000, peak_lr=2e-3, eval_interval=500)
"""The book's small-model recipe: a validation loss below 1.60 nats per character within five
minutes on two CPU cores (``bench/bench_train.py`` measures it; the pretrained model of chapter 7
is trained with it). Against the defaults of :class:`TrainConfig` it uses

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


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """Token ids of the training and validation splits, and the tokenizer that made them."""

    train: torch.Tensor  # (N_train,) int64
    val: torch.Tensor  # (N_val,) int64
    tokenizer: object
    sha256: str  # of the source text, so a cached model knows which data it was trained on


def load_dataset(name: str = "shakespeare-char", val_fraction: float = 0.1) -> Dataset:
    """The named dataset, tokenized. ``"shakespeare-char"``: the Shakespeare corpus
    (:func:`gptlib.data.load_shakespeare`) with a :class:`~gptlib.tokenizer.CharTokenizer` over its
    alphabet, split by :func:`gptlib.data.train_val_split`."""
    import numpy as np

    from .assets import SHAKESPEARE
    from .data import load_shakespeare, train_val_split
    from .tokenizer import CharTokenizer

    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; available: {DATASETS}")
    text = load_shakespeare()
    tokenizer = CharTokenizer.from_text(text)
    train_text, val_text = train_val_split(text, val_fraction)
    # CharTokenizer.encode, vectorised: every character's code point looked up in the sorted alphabet
    alphabet = np.array([ord(c) for c in tokenizer.chars], dtype=np.uint32)

    def encode(s: str) -> torch.Tensor:
        codes = np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)
        return torch.from_numpy(np.searchsorted(alphabet, codes).astype(np.int64))

    # load_shakespeare verified the file against its pinned SHA-256, so that hash names this corpus
    return Dataset(encode(train_text), encode(val_text), tokenizer, SHAKESPEARE.sha256)


def evaluation_starts(n_tokens: int, context_length: int, windows: int) -> torch.Tensor:
    """Start positions of ``windows`` evenly spaced windows of ``context_length + 1`` tokens
    (fewer if the split is short; never overlapping more than needed): ``(W,)`` int64."""
    last = n_tokens - context_length - 1
    if last < 0:
        raise ValueError(f"the validation split has {n_tokens} tokens, fewer than one window of "
                         f"{context_length + 1}; use a shorter context or a larger val_fraction")
    windows = min(windows, last + 1)
    return torch.linspace(0, last, windows).round().long().unique()


# ----------------------------------------------------------------------------------------------
# Device and precision
# ----------------------------------------------------------------------------------------------
def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU. An explicit device that is not
    available raises a ConfigError that says which ones are."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if device == "cuda" and not cuda or device == "mps" and not mps:
        available = ["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else [])
        raise ConfigError(f"device {device!r} is not available on this machine; available: {available}")
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {device!r}")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: bf16 where it is fast (CUDA GPUs with bf16 support), fp32 elsewhere.
    On a CPU without bf16 matrix units bf16 is slower than fp32, so ``"auto"`` keeps fp32 there."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


# ----------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------
@dataclass
class History:
    """What a run measured: training loss, learning rate and gradient norm per logged step,
    validation loss per evaluation."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)  # L2 norm of the whole gradient, before clipping
    val_step: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    train_time_s: float = 0.0  # seconds spent in training steps (evaluation excluded)
    tokens: int = 0  # tokens processed by all processes


@dataclass
class TrainResult:
    """The outcome of :meth:`Trainer.fit`."""

    steps: int
    tokens: int
    train_time_s: float
    wall_time_s: float
    tokens_per_s: float
    final_val_loss: float
    history: History
    checkpoint: Path | None


class Trainer:
    """Trains a :class:`~gptlib.model.GPT` with a :class:`TrainConfig`.

    Args:
        config: the recipe.
        dataset: a :class:`Dataset`; by default :func:`load_dataset` of ``config.data``.
        callbacks: functions called with an event dict on the main process: ``{"event": "step",
            "step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"}`` every
            ``log_interval`` steps, ``{"event": "eval", "step", "val_loss", ...}`` after each
            evaluation, and ``{"event": "end", ...}`` at the end. A notebook can append the points
            to a plotly figure to draw the loss curve live.
    """

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None,
                 callbacks: list[Callable[[dict], None]] | tuple = ()):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer needs a TrainConfig, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.callbacks = list(callbacks)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        self.dtype = resolve_precision(config.precision, self.device)
        try:
            self.context = distributed.setup(self.device.type)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.device.type == "cuda" and self.context.enabled:
            self.device = torch.device("cuda", self.context.local_rank)
        if config.batch_size % self.context.world_size:
            raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of "
                              f"processes ({self.context.world_size})")
        self.dataset = dataset if dataset is not None else load_dataset(config.data, config.val_fraction)
        self.model_config = config.model_config(self.dataset.tokenizer.n_vocab)
        torch.manual_seed(config.seed)
        self.model = GPT(self.model_config).to(self.device)
        self.ddp_model = distributed.wrap_model(self.model, self.context)
        # the fused AdamW kernel updates all parameters in one pass (on a CPU, 4 ms -> 1 ms a step here)
        self.optimizer = configure_optimizer(self.model, config.peak_lr, config.weight_decay,
                                             (config.beta1, config.beta2), config.eps,
                                             fused=self.device.type in ("cpu", "cuda"))
        self.schedule = config.schedule()
        # every process draws the same global batch and keeps its slice (gptlib.distributed.shard)
        self.batches = BatchSampler(self.dataset.train, config.batch_size, config.context_length,
                                    seed=config.seed)
        self.step = 0
        self.last_grad_norm = math.nan
        self.history = History()
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ one update
    def autocast(self):
        """bf16 autocast when the run uses it, otherwise nothing."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def train_step(self) -> float:
        """One optimizer update on the next batch; returns its training loss (this process's slice).

        Raises:
            TrainingDiverged: the loss or the gradient norm is NaN or infinite. The update is not
                applied, and no checkpoint is written after it.
        """
        lr = self.schedule(self.step)
        set_learning_rate(self.optimizer, lr)
        x, y = next(self.batches)  # (B, T) global batch
        x = distributed.shard(x, self.context).to(self.device, non_blocking=True)
        y = distributed.shard(y, self.context).to(self.device, non_blocking=True)
        with self.autocast():
            _, loss = self.ddp_model(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # the norm before clipping (clip_grad_norm_ returns it; max_norm=inf measures without clipping)
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        self.last_grad_norm = grad_norm
        loss_value = float(loss.detach())
        if not (math.isfinite(loss_value) and math.isfinite(grad_norm)):
            self.diverged(loss_value, grad_norm, lr)
        self.optimizer.step()
        self.step += 1
        return loss_value

    def diverged(self, loss: float, grad_norm: float, lr: float) -> None:
        what = f"the training loss is {loss}" if not math.isfinite(loss) else f"the gradient norm is {grad_norm}"
        kept = (f"The last checkpoint, {self.last_checkpoint}, is intact: resume from it with "
                f"resume=True (--resume) after the change." if self.last_checkpoint is not None
                else "No checkpoint was written by this run, and none was overwritten.")
        raise TrainingDiverged(
            f"training stopped at step {self.step}: {what} (learning rate {lr:.3g}). The update was "
            f"not applied. Usual causes: a learning rate too high for this model (try a lower "
            f"peak_lr or a longer warm-up), or bad inputs. {kept}")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, windows: int | None = None) -> float:
        """Mean validation loss (nats per token) over ``windows`` evenly spaced windows of T tokens,
        shared out among the processes. ``windows=None``: the whole split, window after window."""
        config = self.config
        T = config.context_length
        windows = (len(self.dataset.val) - 1) // T if windows is None else windows
        starts = evaluation_starts(len(self.dataset.val), T, windows)
        mine = starts[self.context.rank::self.context.world_size]
        offsets = torch.arange(T + 1)
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64)
        batch = max(1, 8192 // T)
        for i in range(0, len(mine), batch):
            w = self.dataset.val[mine[i:i + batch, None] + offsets].to(self.device)  # (b, T + 1)
            with self.autocast():
                _, loss = self.model(w[:, :-1], w[:, 1:])
            total += torch.tensor([float(loss) * w.size(0) * T, w.size(0) * T], dtype=torch.float64)
        self.model.train(was_training)
        total = distributed.all_reduce_sum(total, self.context)
        return float(total[0] / total[1])

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """The JSON-able state a checkpoint needs besides the weights and the optimizer."""
        return {"train_config": self.config.to_dict(), "sampler": _encode_state(self.batches.state_dict()),
                "rng": rng_states(), "history": asdict(self.history),
                "tokenizer_alphabet": "".join(getattr(self.dataset.tokenizer, "chars", []))}

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (main process only; the others wait)."""
        path = None
        if self.context.is_main and self.config.out_dir:
            path = save_training_checkpoint(self.config.out_dir, self.model, self.optimizer, self.step,
                                            self.state(), keep=self.config.keep_checkpoints)
            self.last_checkpoint = path
        distributed.barrier(self.context)
        return path

    def resume(self, path=None) -> int:
        """Continue from checkpoint folder ``path`` (default: ``out_dir``'s latest). Returns the step.

        Raises:
            TrainingCheckpointError: no checkpoint, a corrupt one, or one for another model/recipe.
        """
        path = Path(path) if path is not None else latest_checkpoint(self.config.out_dir)
        if path is None:
            raise TrainingCheckpointError(f"no checkpoint to resume from in {self.config.out_dir}; "
                                          f"run without resume to start training")
        record = load_training_checkpoint(path, self.model, self.optimizer, map_location=self.device)
        saved = record["state"].get("train_config", {})
        changed = [k for k in ("batch_size", "max_steps", "peak_lr", "warmup_steps", "decay", "seed",
                               "final_lr_fraction", "weight_decay", "beta1", "beta2", "eps", "grad_clip")
                   if k in saved and saved[k] != getattr(self.config, k)]
        if changed:
            raise TrainingCheckpointError(
                f"checkpoint {path} was written by a run with a different recipe: "
                + "; ".join(f"{k}: checkpoint {saved[k]!r}, this run {getattr(self.config, k)!r}" for k in changed)
                + ". An exact resume needs the same recipe; start a new run in another folder to change it.")
        self.batches.load_state_dict(_decode_state(record["state"]["sampler"]))
        set_rng_states(record["state"]["rng"])
        self.history = History(**record["state"]["history"])
        self.step = record["step"]
        self.last_checkpoint = path
        return self.step

    # ------------------------------------------------------------------ the loop
    def emit(self, event: dict) -> None:
        if self.context.is_main:
            for callback in self.callbacks:
                callback(event)

    def fit(self, steps: int | None = None) -> TrainResult:
        """Train up to ``config.max_steps`` (or only ``steps`` more updates), evaluating, logging
        and checkpointing on the way, and return a :class:`TrainResult` with a final evaluation."""
        config = self.config
        lock = OutputLock(config.out_dir) if config.out_dir and self.context.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            return self._fit(steps)
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, steps: int | None) -> TrainResult:
        config = self.config
        if config.resume and self.step == 0 and latest_checkpoint(config.out_dir) is not None:
            self.resume()
        end = config.max_steps if steps is None else min(config.max_steps, self.step + steps)
        bar = None
        if config.progress and self.context.is_main:
            from tqdm.auto import tqdm
            bar = tqdm(total=config.max_steps, initial=self.step, unit="step", dynamic_ncols=True,
                       desc="training")
        wall_start = time.perf_counter()
        tokens_per_step = config.tokens_per_step
        window_start, window_tokens, window_time = time.perf_counter(), 0, 0.0
        postfix = {}
        try:
            while self.step < end:
                t0 = time.perf_counter()
                loss = self.train_step()
                dt = time.perf_counter() - t0
                self.history.train_time_s += dt
                self.history.tokens += tokens_per_step
                window_tokens += tokens_per_step
                window_time += dt
                if self.step % config.log_interval == 0 or self.step == end:
                    rate = window_tokens / max(window_time, 1e-9)
                    lr = self.schedule(self.step - 1)
                    self.history.step.append(self.step)
                    self.history.loss.append(loss)
                    self.history.lr.append(lr)
                    self.history.grad_norm.append(self.last_grad_norm)
                    postfix.update(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
                    self.emit({"event": "step", "step": self.step, "loss": loss, "lr": lr,
                               "grad_norm": self.last_grad_norm,
                               "tokens": self.history.tokens, "tokens_per_s": rate,
                               "elapsed_s": time.perf_counter() - wall_start})
                    window_tokens, window_time = 0, 0.0
                if config.eval_interval and self.step % config.eval_interval == 0 and self.step < config.max_steps:
                    val = self.evaluate(config.eval_windows)
                    self.record_eval(val, wall_start)
                    postfix["val"] = f"{val:.3f}"
                if config.checkpoint_interval and self.step % config.checkpoint_interval == 0 \
                        and self.step < end:
                    self.save_checkpoint()
                if bar is not None:
                    bar.set_postfix(postfix, refresh=False)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        final = self.evaluate(config.final_eval_windows if self.step >= config.max_steps
                              else config.eval_windows)
        self.record_eval(final, wall_start)
        checkpoint = self.save_checkpoint()
        wall = time.perf_counter() - wall_start
        result = TrainResult(self.step, self.history.tokens, self.history.train_time_s, wall,
                             self.history.tokens / max(self.history.train_time_s, 1e-9), final,
                             self.history, checkpoint)
        self.emit({"event": "end", "step": self.step, "val_loss": final, "tokens": self.history.tokens,
                   "tokens_per_s": result.tokens_per_s, "elapsed_s": wall})
        return result

    def record_eval(self, val: float, wall_start: float) -> None:
        if self.history.val_step and self.history.val_step[-1] == self.step:
            self.history.val_loss[-1] = val  # a final, larger evaluation replaces the periodic one
        else:
            self.history.val_step.append(self.step)
            self.history.val_loss.append(val)
        self.emit({"event": "eval", "step": self.step, "val_loss": val, "tokens": self.history.tokens,
                   "elapsed_s": time.perf_counter() - wall_start})


def _encode_state(state: dict) -> dict:
    from .training_checkpoint import encode_bytes
    return {k: encode_bytes(v) if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _decode_state(state: dict) -> dict:
    from .training_checkpoint import decode_bytes
    return {k: decode_bytes(v) if isinstance(v, str) else v for k, v in state.items()}


def train(config: TrainConfig | None = None, callbacks=(), **overrides) -> tuple[GPT, TrainResult]:
    """Train a model with ``config`` (default: the book's recipe) changed by ``overrides``.

    >>> model, result = train(max_steps=200, progress=False)   # doctest: +SKIP

    Returns:
        ``(model, result)``: the trained :class:`~gptlib.model.GPT` (unwrapped) and its
        :class:`TrainResult`.
    """
    base = (config or TrainConfig()).to_dict()
    base.update(overrides)
    trainer = Trainer(TrainConfig.from_dict(base), callbacks=callbacks)
    try:
        result = trainer.fit()
    finally:
        distributed.teardown(trainer.context)
    return trainer.model, result


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else kind(text)
    parse.__name__ = kind.__name__
    return parse


FLAG_HELP = {
    "n_layer": "transformer blocks L", "n_head": "attention heads H per block",
    "d_model": "width C of the residual stream", "d_ffn": "feed-forward width F (none: 4 x d_model)",
    "context_length": "characters per training window T", "dropout": "dropout probability",
    "bias": "biases in linear layers and LayerNorms", "activation": "gelu (exact) or gelu_new (tanh)",
    "mup": "muP parametrization (chapter 8)", "mup_base_width": "muP base width d_base",
    "batch_size": "sequences per update B, over all processes", "max_steps": "optimizer updates",
    "peak_lr": "learning rate at the end of the warm-up", "warmup_steps": "linear warm-up steps",
    "decay": "linear, cosine or constant", "final_lr_fraction": "where the decay ends, as a fraction of the peak",
    "weight_decay": "AdamW weight decay (hidden matrices only)", "beta1": "AdamW beta1",
    "beta2": "AdamW beta2", "eps": "AdamW epsilon", "grad_clip": "max gradient L2 norm (0: no clipping)",
    "eval_interval": "steps between validation losses (0: at the end only)",
    "eval_windows": "validation windows per periodic evaluation",
    "final_eval_windows": "validation windows at the end (none: the whole split)",
    "log_interval": "steps between logged training losses", "progress": "show a progress bar",
    "data": "dataset: shakespeare-char", "val_fraction": "held-out fraction of the corpus",
    "seed": "random seed (initialisation and batches)", "device": "auto, cpu, cuda or mps",
    "precision": "auto (bf16 on CUDA, else fp32), fp32 or bf16", "threads": "CPU threads (none: torch's default)",
    "out_dir": "folder for checkpoints", "checkpoint_interval": "steps between checkpoints (0: at the end only)",
    "keep_checkpoints": "how many checkpoints to keep", "resume": "continue from out_dir's latest checkpoint",
}


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m gptlib.train`` argument parser: ``--config FILE`` plus one flag per
    :class:`TrainConfig` field (flags override the file)."""
    parser = argparse.ArgumentParser(
        prog="python -m gptlib.train",
        description="Train a character-level GPT on the Shakespeare corpus with Cerebras-GPT's recipe "
                    "(AdamW 0.9/0.95, weight decay 0.1 on matrices, warm-up then decay to 10%, "
                    "gradient clipping 1.0). Runs on CUDA, MPS or CPU; under torchrun as DDP.",
        epilog="Example: python -m gptlib.train --max_steps 500 --out_dir out ; "
               "torchrun --nproc_per_node=2 -m gptlib.train --config recipe.json")
    parser.add_argument("--book-recipe", action="store_true",
                        help="start from the book's small-model recipe (BOOK_RECIPE: muP, 3 layers, batch 8, "
                             "5000 steps) instead of the defaults below")
    parser.add_argument("--config", metavar="FILE", help="JSON file of settings (keys as the flags below)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resulting settings as JSON and exit (a starting config file)")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        kind = {"int": int, "float": float, "str": str, "bool": _parse_bool}
        type_name = str(f.type).replace(" | None", "").strip()
        parse = kind.get(type_name, str)
        if "None" in str(f.type):
            parse = _optional(parse)
        parser.add_argument(f"--{f.name}", type=parse, default=None, metavar=type_name.upper(),
                            help=f"{FLAG_HELP.get(f.name, '')} (default: {default})")
    return parser


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Parse command-line arguments into a :class:`TrainConfig` (defaults, or :data:`BOOK_RECIPE`
    with ``--book-recipe`` < ``--config`` < flags). A bad setting exits with a message naming it
    (status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values = (BOOK_RECIPE if args.book_recipe else TrainConfig()).to_dict()
    values["out_dir"] = "out"
    try:
        if args.config:
            values.update(read_settings(args.config))
        for f in fields(TrainConfig):
            v = getattr(args, f.name)
            if v is not None:
                values[f.name] = v
        config = TrainConfig.from_dict(values)
    except ConfigError as e:
        parser.error(str(e))
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        raise SystemExit(0)
    return config


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(argv)
    try:
        trainer = Trainer(config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = trainer.fit()
    except (TrainingDiverged, TrainingCheckpointError) as e:
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


if __name__ == "__main__":
    raise SystemExit(main())
