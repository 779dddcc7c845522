"""Generation speed with and without the key/value cache: 256 new tokens after a 16-token prompt.

Model: the Cerebras-GPT-111M architecture (random weights; speed does not depend on the values),
GPT-2 vocabulary. Greedy decoding, batch 1. Both paths compute logits for the last position only,
so the difference is the cache alone. Target: the cache at least 5x faster.
"""
import argparse

import torch

from common import Timer, machine
from gptlib import GPT, GPTConfig, generate


def main(size: str, new_tokens: int) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig.cerebras(size)).eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, 16))
    generate(model, prompt, 4, temperature=0)  # warm-up
    results = {}
    for use_cache in (True, False):
        with Timer() as t:
            out = generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
        results[use_cache] = (out, t.seconds)
        print(f"{'with' if use_cache else 'without'} KV cache: {t.seconds:7.2f} s "
              f"= {new_tokens / t.seconds:7.1f} tokens/s")
    assert torch.equal(results[True][0], results[False][0]), "greedy tokens differ"
    print(f"speed-up from the KV cache: {results[False][1] / results[True][1]:.1f}x "
          f"(Cerebras-GPT-{size} shape, {new_tokens} new tokens; identical greedy tokens)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="111M")
    parser.add_argument("--new-tokens", type=int, default=256)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    main(args.size, args.new_tokens)
