"""Small helpers shared by the benchmarks: timing, a one-line summary of the machine, the
machine's measured matrix-multiply peak, and the reference model (transformers' GPT-2) built from
gptlib's own export, so that no weights are downloaded."""
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's gptlib


def machine() -> str:
    """One line: the processor's model (from /proc/cpuinfo where there is one), its CPUs, torch's
    version, its BLAS library and how many threads it uses."""
    model = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    blas_name = blas.group(1) if blas else "unknown"
    return (f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__} (BLAS: {blas_name}) "
            f"with {torch.get_num_threads()} threads")


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def alternate(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Run each callable of ``runs`` in turn, ``repeats`` rounds, and return every run's seconds.

    Alternating in one process means that a neighbour's load on a shared machine falls on both
    sides of a comparison alike; compare medians (:func:`median`), not single runs.
    """
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            with Timer() as t:
                fn()
            seconds[name].append(t.seconds)
    return seconds


def median(values) -> float:
    return statistics.median(values)


def matmul_peak(n: int = 2048, repeats: int = 7) -> float:
    """The fp32 ``torch.mm`` rate of this machine on torch's current threads, in FLOP/s: the best
    of ``repeats`` products of two ``(n, n)`` matrices (2 n^3 floating-point operations each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = min(alternate({"mm": lambda: torch.mm(a, b)}, repeats)["mm"])
    return 2 * n ** 3 / best


def transformers_twin(model):
    """transformers' ``GPT2LMHeadModel`` loaded from the folder :func:`gptlib.save_pretrained`
    writes for ``model``: the same weights (a muP model's multipliers folded in), same mode.
    Its generation config never stops at an end-of-text token, so both sides make every token."""
    import transformers
    from gptlib import save_pretrained

    transformers.utils.logging.set_verbosity(logging.ERROR)
    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder)
        twin = transformers.GPT2LMHeadModel.from_pretrained(folder)
    twin.train(model.training)
    twin.generation_config.eos_token_id = None
    twin.generation_config.pad_token_id = 0
    return twin
