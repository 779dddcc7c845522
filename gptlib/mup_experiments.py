"""muP experiments: the coordinate check and learning-rate transfer, small enough for a CPU.

Chapter 8 uses both. The parametrization itself lives where it acts: :class:`gptlib.GPTConfig`
(``mup=True``) turns on the embedding multiplier m_emb, the 1 / m_d output-logit multiplier, the
1 / d_head attention scale and the width-scaled initialisation in :class:`gptlib.model.GPT`;
:func:`gptlib.optim.parameter_groups` divides the hidden matrices' learning rate by m_d
(Yang et al. 2021; Dey et al. 2023, the muP models), with m_d = d_model / d_base.

* :func:`coordinate_check` trains models of several widths for a few Adam steps at one learning
  rate and records the typical size (mean absolute value) of every layer's output. Under the
  standard parametrization the updates make activations grow with the width; under muP the curves
  lie on top of each other. It is the test Yang et al. use to catch a parametrization bug.
* :func:`lr_transfer` trains small models of several widths over a grid of learning rates (one
  seed per call; :func:`mean_losses` and :func:`best_learning_rates` average several). Under muP
  the best learning rate should stay put as the width grows (Yang et al. show it at the scale of
  GPT-3), which is what let Cerebras tune on a 40M-parameter proxy and transfer the settings to
  2.7B; :func:`best_is_interior` says whether a grid was wide enough to locate each optimum.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from . import checks
from .checks import ArgumentError
from .config import GPTConfig
from .model import GPT
from .optim import configure_optimizer

ETA_BASE = 6e-3  # Cerebras-GPT muP base learning rate (reference table, "muP variants")


def _check_widths(widths: Sequence[int], d_head: int) -> list[int]:
    widths = list(widths)
    if not widths:
        raise ArgumentError("widths must hold at least one width")
    for i, w in enumerate(widths):
        checks.integer(f"widths[{i}]", w, low=1)
        if w % d_head:  # the heads split the width evenly
            raise ArgumentError(f"widths[{i}] must be a multiple of d_head={d_head}, got {w}")
    return widths


def _tokens(tokens, vocab_size: int | None):
    if tokens is None:
        from .train import load_dataset
        dataset = load_dataset()
        return dataset.train, dataset.tokenizer.n_vocab
    tokens = torch.as_tensor(tokens).long()
    if tokens.dim() != 1:
        raise ArgumentError(f"tokens must be a 1-D sequence of ids, got shape {tuple(tokens.shape)}")
    return tokens, vocab_size if vocab_size is not None else int(tokens.max()) + 1


def activation_sizes(model: GPT, idx: torch.Tensor) -> dict[str, float]:
    """Mean absolute value of each layer's output on ``idx`` ``(B, T)``: ``"embedding"`` (after the
    muP embedding multiplier), ``"block 1"`` ... ``"block L"`` (the residual stream after each
    block), and ``"logits"`` (after the muP output multiplier)."""
    sizes: dict[str, float] = {}
    hooks = [model.transformer.drop.register_forward_hook(
        lambda m, i, o: sizes.__setitem__("embedding", o.abs().mean().item()))]
    for n, block in enumerate(model.transformer.h, start=1):
        hooks.append(block.register_forward_hook(
            lambda m, i, o, n=n: sizes.__setitem__(f"block {n}", o.abs().mean().item())))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, _ = model(idx)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    sizes["logits"] = logits.abs().mean().item()
    return sizes


def coordinate_check(widths: Sequence[int] = (64, 128, 256, 512), mup: bool = True, steps: int = 4,
                     lr: float = ETA_BASE, n_layer: int = 2, d_head: int = 32, context_length: int = 32,
                     batch_size: int = 8, seed: int = 0, tokens=None, vocab_size: int | None = None,
                     base_width: int = 64) -> list[dict]:
    """Activation size per layer, per width, after each of the first ``steps`` Adam updates.

    Every width trains from the same seed on the same batches, with AdamW (no weight decay, no
    clipping, no schedule) at learning rate ``lr`` (under muP: eta_base, hidden matrices get
    ``lr / m_d``). The sizes are measured on a fixed probe batch.

    Args:
        widths: d_model values; the number of heads is ``width // d_head``.
        mup: muP (True) or the standard parametrization (False).
        base_width: d_base, where muP and the standard parametrization's learning rates agree.
        tokens, vocab_size: a 1-D token sequence to train on (default: the Shakespeare characters).
    Returns:
        One record per (width, step, layer): ``{"width", "step", "layer", "size", "mup"}``, with
        step 0 the initialisation. A plot of size against width, one line per layer and step,
        is flat under muP and climbs under the standard parametrization.
    """
    widths = _check_widths(widths, d_head)
    checks.integer("steps", steps, low=1)
    data, vocab = _tokens(tokens, vocab_size)
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - context_length - 1, (steps + 1, batch_size), generator=generator)
    offsets = torch.arange(context_length + 1)
    batches = [data[s[:, None] + offsets] for s in starts]  # (B, T + 1) each; the last is the probe
    records = []
    for width in widths:
        torch.manual_seed(seed)
        config = GPTConfig(vocab_size=vocab, context_length=context_length, n_layer=n_layer,
                           n_head=width // d_head, d_model=width, mup=mup, mup_base_width=base_width)
        model = GPT(config)
        optimizer = configure_optimizer(model, lr, weight_decay=0.0)
        probe = batches[-1][:, :-1]
        for step in range(steps + 1):
            for layer, size in activation_sizes(model, probe).items():
                records.append({"width": width, "step": step, "layer": layer, "size": size, "mup": mup})
            if step == steps:
                break
            window = batches[step]
            _, loss = model(window[:, :-1], window[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return records


def growth_with_width(records: list[dict], layer: str, step: int) -> float:
    """The slope of log(size) against log(width) for one layer at one step, fitted by least
    squares: about 0 when the size does not depend on the width (muP), about 1 when it grows in
    proportion to it."""
    points = [(math.log(r["width"]), math.log(r["size"])) for r in records
              if r["layer"] == layer and r["step"] == step]
    if len(points) < 2:
        raise ArgumentError(f"need records of at least two widths for layer {layer!r} at step {step}")
    xs, ys = zip(*points)
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def lr_transfer(widths: Sequence[int] = (64, 128, 256), learning_rates: Sequence[float] = (1e-3, 3e-3, 1e-2, 3e-2),
                mup: bool = True, steps: int = 150, n_layer: int = 2, d_head: int = 32, context_length: int = 64,
                batch_size: int = 16, seed: int = 0, base_width: int = 64, threads: int | None = None,
                eval_windows: int = 128, progress=None) -> list[dict]:
    """Final validation loss of small Shakespeare character models over a grid of widths and
    learning rates.

    Each model trains ``steps`` updates with the book's trainer (warm-up of 10% of the steps, cosine
    decay to 10%, AdamW as in Cerebras-GPT) and is evaluated on ``eval_windows`` evenly spaced
    validation windows of ``context_length`` characters, the same for every run. With the defaults
    the whole grid runs in a few minutes on two CPU cores. A run that diverges (the trainer stops
    with :class:`~gptlib.train.TrainingDiverged`) is recorded with a NaN loss.

    Args:
        learning_rates: peak learning rates; under muP these are eta_base (the hidden matrices
            train at eta_base / m_d, m_d = width / base_width).
        progress: optional ``callback(done, total, record)`` after each run.
        seed: the trainer's seed (initialisation and batches); run again with other seeds and
            concatenate the records to see how much of a curve is noise.
    Returns:
        ``[{"width", "lr", "val_loss", "mup", "seed"}, ...]``, one per (width, learning rate).
        Plot loss against learning rate, one line per width: under muP the minima line up.
    """
    from .train import Trainer, TrainConfig, TrainingDiverged, load_dataset

    widths = _check_widths(widths, d_head)
    learning_rates = list(learning_rates)
    if not learning_rates:
        raise ArgumentError("learning_rates must hold at least one rate")
    for i, lr in enumerate(learning_rates):
        checks.number(f"learning_rates[{i}]", lr, low=0, low_open=True)
    dataset = load_dataset()
    records = []
    total = len(widths) * len(learning_rates)
    for width in widths:
        for lr in learning_rates:
            config = TrainConfig(n_layer=n_layer, n_head=width // d_head, d_model=width,
                                 context_length=context_length, batch_size=batch_size, max_steps=steps,
                                 peak_lr=lr, warmup_steps=max(1, steps // 10), mup=mup,
                                 mup_base_width=base_width, eval_interval=0, eval_windows=eval_windows,
                                 final_eval_windows=eval_windows, progress=False, seed=seed, threads=threads,
                                 device="cpu")
            trainer = Trainer(config, dataset=dataset)
            try:
                val = trainer.fit().final_val_loss
            except TrainingDiverged:  # a data point too: this learning rate is too high for this width
                val = float("nan")
            record = {"width": width, "lr": lr, "val_loss": val, "mup": mup, "seed": seed}
            records.append(record)
            if progress is not None:
                progress(len(records), total, record)
    return records


def mean_losses(records: list[dict]) -> dict[tuple[int, float], float]:
    """For :func:`lr_transfer` records (one or more seeds per width and rate): the mean final
    loss of each ``(width, lr)``, in the order first seen. A rate at which any seed diverged
    (NaN) gets NaN: a rate that sometimes blows up is not a candidate for the best."""
    grouped: dict[tuple[int, float], list[float]] = {}
    for i, r in enumerate(records):
        missing = {"width", "lr", "val_loss"} - set(r) if isinstance(r, dict) else None
        if missing is None or missing:
            raise ArgumentError(f"record {i} should be a dict with 'width', 'lr' and 'val_loss' (as "
                             f"lr_transfer returns), got {r!r}")
        grouped.setdefault((r["width"], r["lr"]), []).append(float(r["val_loss"]))
    return {key: (math.nan if any(math.isnan(v) for v in values) else sum(values) / len(values))
            for key, values in grouped.items()}


def best_learning_rates(records: list[dict]) -> dict[int, float]:
    """For :func:`lr_transfer` records: the learning rate with the lowest loss at each width,
    averaged over seeds when there are several (:func:`mean_losses`; diverged runs, NaN, never
    win)."""
    best: dict[int, tuple[float, float]] = {}
    for (width, lr), loss in mean_losses(records).items():
        if math.isnan(loss):
            continue
        if width not in best or loss < best[width][1]:
            best[width] = (lr, loss)
    return {w: lr for w, (lr, _) in sorted(best.items())}


def best_is_interior(records: list[dict]) -> dict[int, bool]:
    """For :func:`lr_transfer` records: whether each width's best rate has a rate of the grid on
    both sides of it. A best rate at an end of the grid is only a bound: the true optimum may
    lie beyond it."""
    best = best_learning_rates(records)
    out = {}
    for width, lr in best.items():
        rates = sorted({r["lr"] for r in records if r["width"] == width})
        out[width] = rates[0] < lr < rates[-1]
    return out
