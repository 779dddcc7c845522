"""Speed of the wafer simulator (wall time on this machine) and what it simulates (cycles).

1. A 64 x 64-PE weight-stationary matrix multiply, X (256, 1024) @ W (1024, 1024).
2. A tiny GPT (2 layers, 4 heads, width 32, vocabulary 97) forward pass on a 32 x 32 fabric,
   batch 2 x 16 tokens, with its logits checked against gptlib's.
3. Layer-pipelined placement of Cerebras-GPT 13B on the full WSE-2 grid (the issue asks < 1 s).

Each figure is the median of a few repeats, after one warm-up run.
"""
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gptlib and wse_demo

from gptlib import GPT, GPTConfig
from wse_demo import Fabric, kernels, placement


def median_seconds(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, torch {torch.__version__}, 1 thread")
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(256, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    fabric = Fabric(64, 64)

    def run_matmul():
        fabric.reset_stats()
        return kernels.matmul(fabric, x, w)

    seconds = median_seconds(run_matmul)
    err = (run_matmul() - x @ w).abs().max().item()
    s = fabric.stats()
    print(f"64x64-PE matmul (256 x 1024) @ (1024 x 1024): {seconds * 1e3:.1f} ms wall; simulates "
          f"{s.cycles:,} cycles ({s.seconds * 1e6:.1f} us at 1.1 GHz), {s.wavelets:,} wavelets, "
          f"mean utilisation {s.utilisation.mean():.2f}; max |error| vs torch {err:.1e}")

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=97, context_length=32, n_layer=2, n_head=4, d_model=32)).eval()
    idx = torch.randint(0, 97, (2, 16), generator=g)
    state = {}

    def run_gpt():
        f = Fabric(32, 32)
        state["fabric"] = f
        return kernels.GPTOnFabric(f, model)(idx)

    seconds = median_seconds(run_gpt)
    logits = run_gpt()
    with torch.no_grad():
        err = (logits - model(idx)[0]).abs().max().item()
    s = state["fabric"].stats()
    print(f"tiny-GPT forward on a 32x32 fabric (place + run, 2 x 16 tokens): {seconds * 1e3:.1f} ms "
          f"wall; simulates {s.cycles:,} cycles ({s.seconds * 1e6:.1f} us), {len(s.log)} ops; "
          f"max |logits - gptlib| {err:.1e}")

    seconds = median_seconds(lambda: placement.layer_pipelined("13B", "WSE-2").pe_map())
    print(f"13B layer-pipelined placement on the full WSE-2 grid (757 x 996), with its PE map: "
          f"{seconds * 1e3:.1f} ms wall")


if __name__ == "__main__":
    main()
