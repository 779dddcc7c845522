"""The book's small-model recipe, end to end: wall time, tokens/s, and the validation loss reached.

Recipe: ``gptlib.train.BOOK_RECIPE``, a character-level GPT on the Shakespeare corpus (the one the
book's model of chapter 7, ``gptlib.book_model``, is trained with). Goal: validation loss <= 1.60 nats per character
within 5 minutes on two CPU cores, evaluation included. The validation loss is measured on the
whole held-out split (the last 10% of the corpus), in back-to-back windows of the context length.
The loss curve (training loss every 100 steps, validation loss at every evaluation) is printed too.

    python bench/bench_train.py                 # the book's recipe
    python bench/bench_train.py --max_steps 500 # a quick look (the schedule shrinks to 500 steps)
    python bench/bench_train.py --set mup=false --set peak_lr=0.003   # try another recipe

How the recipe was chosen (this script with --set, two CPU cores unless marked "1 thread"; per
100 steps the same shape varies by up to 15% in speed from run to run on a shared machine):

    recipe (changes to TrainConfig's defaults)        steps   params  val loss   wall time
    defaults: 4 layers, width 128, batch 16, SP 3e-3    3000   0.82 M   1.598      339 s
    width 96, lr 4e-3                                    4000   0.47 M   1.579      579 s (1 thread)
    2 layers, lr 4e-3                                    5200   0.42 M   1.602      533 s (1 thread)
    3 layers                                             3700   0.62 M   1.570      601 s (1 thread)
    3 layers                                             3500   0.62 M   1.588      302 s
    3 layers                                             3400   0.62 M   1.592      298 s
    3 layers, lr 4e-3                                    3300   0.62 M   1.603      272 s
    3 layers, batch 8, lr 2e-3                           6800   0.62 M   1.585      528 s (1 thread)
    3 layers, batch 8, lr 3e-3                           6000   0.62 M   1.627      495 s (1 thread)
    3 layers, batch 8, muP, lr 2e-3                      6000   0.62 M   1.572      490 s (1 thread)
    3 layers, batch 8, muP, lr 2e-3                      6000   0.62 M   1.571      317 s
    3 layers, batch 8, muP, lr 2e-3 (BOOK_RECIPE)        5000   0.62 M   1.592      250 s

A step of 3 layers takes 75-90 ms at batch 16 and 44-53 ms at batch 8 here; the 1-thread runs
shared the machine two at a time, so their wall times are about 1.8x what the recipe takes alone.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gptlib

import torch  # noqa: E402

from common import machine  # noqa: E402
from gptlib.train import BOOK_RECIPE, Trainer, load_dataset  # noqa: E402

GOAL_LOSS, GOAL_SECONDS = 1.60, 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_steps", type=int, help="shorter run (the schedule is scaled to it)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures and curve as JSON")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="change one setting of the recipe (JSON value), e.g. --set peak_lr=0.006; repeatable")
    args = parser.parse_args()
    overrides = {"progress": False}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a bare string such as --set decay=linear
    if args.max_steps:
        overrides.update(max_steps=args.max_steps,
                         warmup_steps=min(BOOK_RECIPE.warmup_steps, args.max_steps // 10))
    if args.threads:
        overrides["threads"] = args.threads
    config = BOOK_RECIPE.replace(**overrides)

    t0 = time.perf_counter()
    dataset = load_dataset(config.data, config.val_fraction)
    load_s = time.perf_counter() - t0
    curve = []
    trainer = Trainer(config, dataset=dataset, callbacks=[curve.append])
    print(f"machine: {machine()}")
    print(f"recipe: {json.dumps({k: v for k, v in config.to_dict().items() if k not in ('progress', 'out_dir', 'resume')})}")
    print(f"model: {trainer.model.num_params():,} parameters "
          f"({trainer.model.num_params(include_embeddings=False):,} without embeddings), "
          f"{config.tokens_per_step:,} tokens per step, {config.max_steps * config.tokens_per_step:,} tokens, "
          f"device {trainer.device}, {torch.get_num_threads()} threads, {str(trainer.dtype).replace('torch.', '')}")
    result = trainer.fit()

    print("\nloss curve (nats per character):")
    print("   step   train loss   val loss   elapsed")
    train_points = {e["step"]: e for e in curve if e["event"] == "step"}
    val_points = {e["step"]: e for e in curve if e["event"] == "eval"}
    report_every = 100
    for step in sorted(set(train_points) | set(val_points)):
        if step % report_every and step not in val_points:
            continue
        recent = [train_points[s]["loss"] for s in range(step - report_every + 1, step + 1) if s in train_points]
        train = f"{sum(recent) / len(recent):10.4f}" if recent else " " * 10
        val = f"{val_points[step]['val_loss']:9.4f}" if step in val_points else " " * 9
        elapsed = (val_points.get(step) or train_points[step])["elapsed_s"]
        print(f"{step:7d}   {train}   {val}   {elapsed:6.1f} s")

    met = result.final_val_loss <= GOAL_LOSS and result.wall_time_s <= GOAL_SECONDS
    print(f"\ndata loading and tokenizing: {load_s:.1f} s (before training)")
    print(f"wall time of the run: {result.wall_time_s:.1f} s "
          f"({result.train_time_s:.1f} s in training steps, the rest in evaluation)")
    print(f"throughput: {result.tokens_per_s:,.0f} tokens/s ({result.tokens:,} tokens in {result.steps} steps)")
    print(f"validation loss: {result.final_val_loss:.4f} nats/char on the whole validation split "
          f"({len(dataset.val):,} characters)")
    print(f"goal (val loss <= {GOAL_LOSS} within {GOAL_SECONDS / 60:.0f} minutes): {'met' if met else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "wall_time_s": result.wall_time_s, "train_time_s": result.train_time_s,
            "tokens_per_s": result.tokens_per_s, "val_loss": result.final_val_loss,
            "recipe": config.to_dict(), "curve": curve}, indent=1))


if __name__ == "__main__":
    main()
