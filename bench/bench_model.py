"""Training throughput of the model itself (forward + backward + AdamW step), in tokens/s.

Configuration: the well-known small CPU model of the reference notes: character vocabulary of the
Shakespeare corpus, 4 layers, 4 heads, width 128, context 64, batch 12. Prints tokens/s for the
fast (fused) attention path and for the explicit formula.
"""
import argparse

import torch

from common import Timer, machine
from gptlib import GPT, GPTConfig
from gptlib.data import get_batch, load_shakespeare
from gptlib.tokenizer import CharTokenizer


def throughput(attention_impl: str, steps: int, warmup: int = 5) -> float:
    text = load_shakespeare()
    tok = CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text[:500_000]))
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tok.n_vocab, context_length=64, n_layer=4, n_head=4, d_model=128,
                       attention_impl=attention_impl)
    model = GPT(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(0)
    batch_size = 12

    def step():
        x, y = get_batch(data, batch_size, 64, g)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    with Timer() as t:
        for _ in range(steps):
            step()
    return steps * batch_size * 64 / t.seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for impl in ("fast", "explicit"):
        print(f"training throughput, {impl:8s} attention: {throughput(impl, args.steps):10,.0f} tokens/s "
              f"(4 layers, width 128, context 64, batch 12, forward+backward+AdamW)")
