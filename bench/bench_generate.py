"""Greedy generation of gptlib against transformers' ``generate``, and the KV cache's speed-up.

Batch 1, a 16-token prompt, greedy decoding, no stop at an end-of-text token. Two models:

* the Cerebras-GPT-111M architecture (random weights: speed does not depend on the values; GPT-2
  vocabulary), 128 and 256 new tokens;
* the book's Shakespeare model (``gptlib.book_model("shakespeare-char")``, if the set-up has
  cached it), as many new tokens as its 128-position context holds after the prompt: past the
  context transformers' GPT-2 has no position to embed (gptlib slides the window instead).

The reference is transformers' ``GPT2LMHeadModel`` built from gptlib's own export (same weights;
``generate`` with ``do_sample=False, use_cache=True``). Both must produce identical tokens. The two
alternate in one process, so a neighbour's load falls on both alike; figures are medians.
Then where a decode step's time goes at the 111M shape: its one-row matrix products (one new token,
one row times each weight), plain (``F.linear``; also on one thread, to show how many threads it
uses) and split across torch's threads (``gptlib.model.one_row_split``, what ``generate`` uses for
one sequence on a CPU), and the sweep of weight sizes behind the split's size thresholds. Last,
gptlib with and without its KV cache at the 111M shape and 256 new tokens (target: the cache at
least 5x faster).
"""
import argparse

import torch
import torch.nn.functional as F

from common import Timer, alternate, machine, median, transformers_twin
from gptlib import GPT, GPTConfig, generate
from gptlib.model import (SPLIT_MIN_ELEMENTS, SPLIT_MIN_MODEL_ELEMENTS, Linear, one_row_split,
                          split_row_product)

PROMPT = 16


def compare(name: str, model: GPT, prompt: torch.Tensor, new_tokens: list[int], repeats: int):
    twin = transformers_twin(model)
    mask = torch.ones_like(prompt)
    for n in new_tokens:
        out = {}

        def ours():
            out["gptlib"] = generate(model, prompt, n, temperature=0)

        @torch.no_grad()
        def theirs():
            out["transformers"] = twin.generate(prompt, attention_mask=mask, max_new_tokens=n,
                                                do_sample=False, use_cache=True)

        alternate({"gptlib": lambda: generate(model, prompt, 4, temperature=0),
                   "transformers": lambda: twin.generate(prompt, attention_mask=mask,
                                                         max_new_tokens=4, do_sample=False)}, 1)
        seconds = alternate({"gptlib": ours, "transformers": theirs}, repeats)
        assert torch.equal(out["gptlib"], out["transformers"]), f"{name}: greedy tokens differ"
        ours_s, theirs_s = median(seconds["gptlib"]), median(seconds["transformers"])
        print(f"{name}, {n} new tokens: gptlib {n / ours_s:6.1f} tokens/s, transformers "
              f"{n / theirs_s:6.1f} tokens/s (medians of {repeats}); gptlib / transformers "
              f"speed ratio {theirs_s / ours_s:.2f}x, identical tokens")


def one_row_products(model: GPT, rounds: int) -> None:
    """Time every linear layer of ``model`` once on one row, in a decode step's order (so each
    weight comes from memory, as in a step): plain, plain on one thread (if the plain kernel uses
    one thread anyway, the two take the same time), and split; taking turns. Then the head alone."""
    layers = [m for m in model.modules() if isinstance(m, Linear)]
    rows = [torch.randn(1, m.in_features) for m in layers]
    threads = torch.get_num_threads()

    def products(which):
        @torch.no_grad()
        def run():
            for m, row in zip(which, rows[-len(which):]):
                m(row)
        return run

    def one_thread(run):
        def on_one():
            torch.set_num_threads(1)
            try:
                run()
            finally:
                torch.set_num_threads(threads)
        return on_one

    def split(run):
        def in_split():
            with one_row_split(model):
                run()
        return in_split

    for name, which in (("a step's products", layers), ("the output head", layers[-1:])):
        seconds = alternate({"plain": products(which), "one thread": one_thread(products(which)),
                             "split": split(products(which))}, rounds)
        ms = {k: 1e3 * median(v) for k, v in seconds.items()}
        gigabytes = sum(m.weight.numel() for m in which) * 4 / 1e9
        rate = {k: f"{v:5.1f} ms ({gigabytes / v * 1e3:4.1f} GB/s)" for k, v in ms.items()}
        print(f"one-row products, {name} ({len(which)} weight{'s' * (len(which) > 1)}, "
              f"{gigabytes:.2f} GB, medians of {rounds}): plain {rate['plain']}, plain on one "
              f"thread {rate['one thread']}, split in {threads} {rate['split']}; split "
              f"{ms['plain'] / ms['split']:.2f}x faster than plain")


def split_threshold(cold_bytes: int = 1 << 27, hot_repeats: int = 300) -> None:
    """One-row products with square weights of 2^12 ... 2^20 elements, plain against split, the
    sweep behind ``gptlib.model.SPLIT_MIN_ELEMENTS`` and ``SPLIT_MIN_MODEL_ELEMENTS``. Cold:
    distinct weights totalling ``cold_bytes`` (128 MiB, beyond the processor's caches), each used
    once a pass, as a large model's weights are in a decode step. Hot: one weight reused, as a
    small model's weights stay in the caches."""
    parts = torch.get_num_threads()
    cells = {"from memory": [], "in the caches": []}
    for log2 in range(12, 21, 2):
        side = 1 << (log2 // 2)
        row = torch.randn(1, side)
        cold = [torch.randn(side, side) for _ in range(cold_bytes // (4 << log2))]
        hot = [torch.randn(side, side)] * hot_repeats
        for name, weights in (("from memory", cold), ("in the caches", hot)):
            with torch.no_grad():
                seconds = alternate({
                    "plain": lambda: [F.linear(row, w) for w in weights],
                    "split": lambda: [split_row_product(row, w, None, parts) for w in weights],
                }, 7)
            plain, fast = (1e6 * median(seconds[k]) / len(weights) for k in ("plain", "split"))
            cells[name].append(f"2^{log2}: {plain:.1f} / {fast:.1f} us = {plain / fast:.2f}x")
        del cold
    for name, row_cells in cells.items():
        print(f"split sweep, a square weight {name} (plain / split in {parts}, per product): "
              + "; ".join(row_cells))
    print(f"gptlib splits weights of at least 2^{SPLIT_MIN_ELEMENTS.bit_length() - 1} elements, "
          f"in models whose linear weights hold at least "
          f"2^{SPLIT_MIN_MODEL_ELEMENTS.bit_length() - 1} in all")


def cache_speedup(model: GPT, prompt: torch.Tensor, n: int) -> None:
    results = {}
    for use_cache in (True, False):
        with Timer() as t:
            out = generate(model, prompt, n, temperature=0, use_cache=use_cache)
        results[use_cache] = (out, t.seconds)
        print(f"gptlib {'with' if use_cache else 'without'} KV cache: {t.seconds:7.2f} s "
              f"= {n / t.seconds:7.1f} tokens/s")
    assert torch.equal(results[True][0], results[False][0]), "greedy tokens differ"
    print(f"speed-up from the KV cache: {results[False][1] / results[True][1]:.1f}x "
          f"(Cerebras-GPT-111M shape, {n} new tokens; identical greedy tokens)")


def main(repeats: int, new_tokens: list[int], skip_no_cache: bool) -> None:
    from gptlib.book_models import book_model, cache_status

    torch.manual_seed(0)
    model = GPT(GPTConfig.cerebras("111M")).eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT))
    compare("Cerebras-GPT-111M shape", model, prompt, new_tokens, repeats)
    one_row_products(model, rounds=30)
    split_threshold()
    status = cache_status()
    if status == "ready":
        book = book_model("shakespeare-char")
        small = book.model.eval()
        ids = torch.tensor([book.tokenizer.encode("ROMEO:\nBut soft, what light")[:PROMPT]])
        compare("book's Shakespeare model", small, ids,
                [small.config.context_length - PROMPT], repeats)
    else:
        print(f"book's Shakespeare model skipped: its cache is {status} (run `make data`)")
    if not skip_no_cache:
        cache_speedup(model, prompt, max(new_tokens))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--skip-no-cache", action="store_true", help="skip the slow no-cache run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    main(args.repeats, args.new_tokens, args.skip_no_cache)
