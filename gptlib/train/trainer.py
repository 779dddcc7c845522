"""The trainer: one optimizer update at a time, with evaluation, callbacks and exact checkpoints.

Chapter 6 builds it piece by piece. One update (:meth:`Trainer.train_step`) is::

    lr = schedule(step)                         # linear warm-up, then decay to 10% (gptlib.schedule)
    x, y = next(batches)                        # (B, T) windows and their next tokens
    loss = model(x, y)                          # mean cross-entropy, nats per token
    loss.backward()                             # DDP averages gradients across processes here
    clip_grad_norm_(parameters, 1.0)            # the whole gradient's L2 norm at most 1
    adamw.step()                                # betas (0.9, 0.95), decay 0.1 on matrices only

Around it: periodic evaluation on the validation split, a progress bar with the loss and the
throughput in tokens per second, callbacks (a notebook draws the loss curve live with them),
checkpoints that resume exactly (:mod:`gptlib.train.checkpoints`), and a stop with a clear
message when the loss becomes NaN or infinite.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .. import checks
from ..checks import GptlibError
from ..config import ConfigError
from ..data import BatchSampler
from ..files import FolderLock
from ..model import GPT, check_token_ids
from ..optim import configure_optimizer, set_learning_rate
from . import distributed
from .checkpoints import (LATEST_FILE, TrainingCheckpointError, decode_bytes, encode_bytes,
                          latest_checkpoint, load_training_checkpoint, read_training_state,
                          rng_states, save_training_checkpoint, set_rng_states)
from .dataset import Dataset, evaluation_starts, load_dataset
from .device import autocast, compiled, resolve_device, resolve_precision
from .recipe import TrainConfig


class TrainingDiverged(GptlibError, RuntimeError):
    """The loss (or the gradient norm) became NaN or infinite; training stopped before the bad update."""


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
        checks.instance("config", config, TrainConfig, what="a TrainConfig (the recipe)")
        self.config = config  # frozen, and checked when it was made
        self.callbacks = list(callbacks)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        self.dtype = resolve_precision(config.precision, self.device)
        try:
            self.context = distributed.setup(self.device.type)
        except checks.ArgumentError as e:
            raise ConfigError(str(e)) from None
        if self.device.type == "cuda" and self.context.enabled:
            self.device = torch.device("cuda", self.context.local_rank)
        if config.batch_size % self.context.world_size:
            raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of "
                              f"processes ({self.context.world_size})")
        self.dataset = dataset if dataset is not None else load_dataset(config.data, config.val_fraction)
        self.model_config = config.model_config(self.dataset.vocab_size)
        for split in (self.dataset.train, self.dataset.val):  # once, here, not in every forward pass
            check_token_ids(split, self.model_config.vocab_size)
        torch.manual_seed(config.seed)
        self.model = GPT(self.model_config).to(self.device)
        self.ddp_model = distributed.wrap_model(self.model, self.context)
        # configure_optimizer picks torch's fused AdamW kernel on CPUs and CUDA devices
        self.optimizer = configure_optimizer(self.model, config.peak_lr, config.weight_decay,
                                             (config.beta1, config.beta2), config.eps)
        # the training steps' forward pass (evaluation always runs the plain model)
        self.step_model = compiled(self.ddp_model, self.device) if config.compile else self.ddp_model
        self.schedule = config.schedule()
        # every process draws the same global batch and keeps its slice (gptlib.train.distributed.shard)
        self.batches = BatchSampler(self.dataset.train, config.batch_size,
                                    config.model.context_length, seed=config.seed)
        self.step = 0
        self.last_grad_norm = math.nan
        self.history = History()
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ one update
    def autocast(self):
        """bf16 autocast when the run uses it, otherwise nothing."""
        return autocast(self.device, self.dtype)

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
            _, loss = self.step_model(x, y)
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
        T = self.config.model.context_length
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

        Every setting that defines the run (:meth:`TrainConfig.defines_run`: the model, the data,
        the optimizer, the schedule, the seed, the precision) must equal the checkpoint's; the
        others (device, threads, logging, evaluation, checkpointing) may change.

        Raises:
            TrainingCheckpointError: no checkpoint, a corrupt one, or one for another model/recipe.
        """
        path = Path(path) if path is not None else latest_checkpoint(self.config.out_dir)
        if path is None:
            raise TrainingCheckpointError(
                f"no checkpoint to resume from in {self.config.out_dir} (it has no "
                f"'{LATEST_FILE}' file): check the output folder, or run without resume to start "
                f"a new run")
        saved = read_training_state(path)["state"].get("train_config", {})
        changed = self.config.differences(saved)
        if changed:
            raise TrainingCheckpointError(
                f"checkpoint {path} was written by a run with a different recipe: " + "; ".join(changed)
                + ". An exact resume needs the same recipe; start a new run in another folder to change it.")
        record = load_training_checkpoint(path, self.model, self.optimizer, map_location=self.device)
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
        if config.resume and self.step == 0 and latest_checkpoint(config.out_dir) is None:
            self.resume()  # refuses before the lock would create a mistyped folder
        lock = None
        if config.out_dir and self.context.is_main:
            lock = FolderLock(config.out_dir, purpose="another training run is writing to",
                              advice="Two runs writing one folder would overwrite each other's "
                                     "checkpoints: wait for it to finish, stop it, or choose another "
                                     "output folder.").acquire()
        try:
            return self._fit(steps)
        finally:
            if lock is not None:
                lock.release()

    def _fit(self, steps: int | None) -> TrainResult:
        config = self.config
        if config.resume and self.step == 0:
            self.resume()  # refuses, rather than starting afresh, if there is nothing to resume
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
    return {k: encode_bytes(v) if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def _decode_state(state: dict) -> dict:
    return {k: decode_bytes(v) if isinstance(v, str) else v for k, v in state.items()}


def train(config: TrainConfig | None = None, callbacks=(), **overrides) -> tuple[GPT, TrainResult]:
    """Train a model with ``config`` (default: :class:`TrainConfig`'s) changed by ``overrides``.

    >>> model, result = train(max_steps=200, progress=False)   # doctest: +SKIP

    Returns:
        ``(model, result)``: the trained :class:`~gptlib.model.GPT` (unwrapped) and its
        :class:`TrainResult`.
    """
    trainer = Trainer((config or TrainConfig()).replace(**overrides), callbacks=callbacks)
    try:
        result = trainer.fit()
    finally:
        distributed.teardown(trainer.context)
    return trainer.model, result
