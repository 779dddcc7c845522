"""A training step (forward, backward, AdamW) of gptlib against transformers' GPT-2, side by side.

Shape: nanoGPT's small CPU model (4 layers, 4 heads, width 128, context 64, batch 12) on the
book's character-level corpus (78 distinct characters; nanoGPT's copy has 65). The reference is
transformers' ``GPT2LMHeadModel`` built from gptlib's own export (same weights, no download). Both
train with AdamW over the same three groups (decay on the matrices only, betas 0.9/0.95), on the
same batches, with the same loss (cross-entropy of the logits), and their steps alternate in one
process, so a neighbour's load falls on both alike; the figures are medians.

The rows: gptlib as :func:`gptlib.optim.configure_optimizer` sets it up (torch's fused AdamW
kernel); transformers with ``torch.optim.AdamW``'s default kernel, what a reader who builds the
optimizer by hand gets; transformers with the fused kernel too, which leaves the models alone to
differ (and is what transformers' Trainer picks on torch 2.8 and later, ``adamw_torch_fused``);
gptlib's explicit attention formula (the chapters' path); and gptlib through ``torch.compile``
(opt-in, ``TrainConfig(compile=True)``), after a compilation that is timed apart.

Each step is also timed by phase (the forward pass with the loss; zero_grad with the backward
pass; the optimizer's step), which shows where one side's lead comes from.

The fraction of peak divides the step's matrix-multiply work, 3 x (2 N_matmul + 4 L T C) per
token (forward once, backward twice), by the rate of a large ``torch.mm`` measured in this run on
the same threads.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from common import Timer, alternate, machine, matmul_peak, median, transformers_twin
from gptlib import GPT, GPTConfig
from gptlib.data import get_batch, load_shakespeare
from gptlib.optim import configure_optimizer, parameter_kind
from gptlib.tokenizer import CharTokenizer

LR, BETAS, DECAY = 1e-3, (0.9, 0.95), 0.1


def reference_optimizer(twin, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW for transformers' model with gptlib's groups (its names are GPT-2's, like gptlib's):
    torch's default kernel (what ``torch.optim.AdamW(...)`` picks on a CPU), or ``fused=True``,
    the kernel gptlib's :func:`configure_optimizer` picks (and transformers' Trainer, on torch 2.8
    and later)."""
    groups = {"hidden_matrices": [], "embeddings": [], "biases_and_norms": []}
    for name, p in twin.named_parameters():
        groups[parameter_kind(name, p)].append(p)
    return torch.optim.AdamW([
        {"params": groups["hidden_matrices"], "weight_decay": DECAY},
        {"params": groups["embeddings"], "weight_decay": 0.0},
        {"params": groups["biases_and_norms"], "weight_decay": 0.0}], lr=LR, betas=BETAS, eps=1e-8,
        fused=fused)


def step_flops(c: GPTConfig, batch_size: int) -> float:
    """Matrix-multiply FLOPs of one training step (the causal half of attention counted too)."""
    matmul_params = 12 * c.n_layer * c.d_model ** 2 + c.vocab_size * c.d_model
    forward = 2 * matmul_params + 4 * c.n_layer * c.context_length * c.d_model
    return 3 * forward * batch_size * c.context_length


def paired_ratio_quartiles(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    """The speed ratio ``theirs / ours`` of each round of :func:`alternate` (the two steps ran in
    the same round, at most a few steps apart, so under nearly the same load), summarised by its
    quartiles (low, median, high): how much the ratio moves from round to round within one run,
    where the ratio of the two medians is a single number (the spread between runs is another
    matter: compare several runs for that)."""
    ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
    low, middle, high = statistics.quantiles(ratios, n=4)
    return low, middle, high


def main(steps: int, batch_size: int = 12, warmup: int = 5, compile_too: bool = True) -> None:
    text = load_shakespeare()
    tok = CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text[:500_000]))
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tok.n_vocab, context_length=64, n_layer=4, n_head=4, d_model=128)
    gpt = GPT(config).train()
    twin = transformers_twin(gpt)
    twin_fused = transformers_twin(gpt)
    compiled_gpt = GPT(config).train()
    compiled_gpt.load_state_dict(gpt.state_dict())
    explicit = GPT(config.replace(attention_impl="explicit")).train()
    explicit.load_state_dict(gpt.state_dict())
    g = torch.Generator().manual_seed(0)
    batches = [get_batch(data, batch_size, config.context_length, g) for _ in range(steps + warmup)]
    state = {"i": 0}

    def gptlib_loss(model, x, y):
        return model(x, y)[1]

    def reference_loss(model, x, y):
        logits = model(input_ids=x).logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))

    phases = {}  # name -> [(forward, backward, optimizer) seconds] of every step

    def stepper(model, opt, loss_of, name):
        phases[name] = []

        def step():
            x, y = batches[state["i"]]
            t0 = time.perf_counter()
            loss = loss_of(model, x, y)
            t1 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            phases[name].append((t1 - t0, t2 - t1, time.perf_counter() - t2))
        return step

    runs = {name: stepper(model, opt, loss_of, name) for name, (model, opt, loss_of) in {
        "gptlib": (gpt, configure_optimizer(gpt, LR, DECAY, BETAS), gptlib_loss),
        "transformers": (twin, reference_optimizer(twin), reference_loss),
        "transformers fused": (twin_fused, reference_optimizer(twin_fused, fused=True),
                               reference_loss),
        "gptlib explicit": (explicit, configure_optimizer(explicit, LR, DECAY, BETAS),
                            gptlib_loss)}.items()}

    def next_batch():
        state["i"] += 1

    if compile_too:
        compiled_forward = torch.compile(compiled_gpt)
        runs["gptlib compiled"] = stepper(compiled_forward, configure_optimizer(
            compiled_gpt, LR, DECAY, BETAS), gptlib_loss, "gptlib compiled")
        with Timer() as t:
            runs["gptlib compiled"]()  # compiles the forward and backward passes
        print(f"torch.compile's first step (the compilation): {t.seconds:.0f} s")
    runs_with_batches = dict(runs, _next=next_batch)
    alternate(runs_with_batches, warmup)
    for timings in phases.values():
        timings.clear()  # keep only the measured steps' phases
    seconds = alternate(runs_with_batches, steps)
    peak = matmul_peak()
    flops = step_flops(config, batch_size)
    ms = {name: 1e3 * median(seconds[name]) for name in runs}
    tokens = batch_size * config.context_length
    print(f"matmul peak (fp32 torch.mm 2048^3, {torch.get_num_threads()} threads): "
          f"{peak / 1e9:.0f} GFLOP/s; a step does {flops / 1e9:.2f} GFLOP of matmuls")
    for name in runs:
        print(f"training step, {name:15s}: {ms[name]:6.1f} ms (median of {steps}) = "
              f"{tokens / ms[name] * 1e3:8,.0f} tokens/s, {flops / (ms[name] / 1e3) / peak:4.0%} "
              f"of the matmul peak")
    print(f"gptlib / transformers speed ratio: {ms['transformers'] / ms['gptlib']:.2f}x "
          f"(explicit formula: {ms['transformers'] / ms['gptlib explicit']:.2f}x); "
          f"4 layers, 4 heads, width 128, context 64, batch 12, vocabulary {tok.n_vocab}, "
          f"forward+backward+AdamW, alternating steps")
    print(f"the models alone (both with the fused AdamW kernel): "
          f"{ms['transformers fused'] / ms['gptlib']:.2f}x")
    for reference in ("transformers", "transformers fused"):
        low, middle, high = paired_ratio_quartiles(seconds["gptlib"], seconds[reference])
        print(f"  gptlib / {reference}, round by round: median {middle:.2f}x, middle half of the "
              f"{steps} rounds {low:.2f}x-{high:.2f}x")
    print("where a step's time goes (medians of the same steps, ms; they need not add up to the "
          "step's median):")
    for name in runs:
        forward, backward, update = (1e3 * median(phase) for phase in zip(*phases[name]))
        print(f"  {name:18s}: forward and loss {forward:5.1f}, zero_grad and backward "
              f"{backward:5.1f}, optimizer step {update:4.1f}")
    if compile_too:
        print(f"gptlib compiled / transformers: {ms['transformers'] / ms['gptlib compiled']:.2f}x "
              f"(opt-in: TrainConfig(compile=True), after the compilation above)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--skip-compile", action="store_true",
                        help="skip the torch.compile row (its compilation takes tens of seconds)")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error(f"--steps must be at least 2 (the quartiles need two rounds), "
                     f"got {args.steps}")
    print(f"machine: {machine()}")
    main(args.steps, compile_too=not args.skip_compile)
