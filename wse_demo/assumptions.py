"""Every assumption the simulator and the performance model add to the published facts, in one place.

Cerebras publishes what a processing element (PE) holds and how the fabric is wired (48 KB of SRAM,
four neighbour links, 32-bit wavelets, one hop per cycle) but not the timings a simulator needs. So
each number below is either a published fact (marked ``fact``, with its source) or an assumption of
ours (marked ``assumed``) or a value derived from facts (marked ``derived``). Chapters 9 and 10 print
:func:`table` so the text and the code state the same thing. Change a value here and every
simulation and estimate follows.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    """One number of the model and where it comes from (``fact``, ``derived`` or ``assumed``)."""

    name: str
    value: object
    kind: str
    why: str


# ----------------------------------------------------------------------------------------------
# One PE and the fabric (functional simulator, chapter 9)
# ----------------------------------------------------------------------------------------------
WAVELET_BITS = 32
"""fact: a message on the fabric is a 32-bit wavelet (Cerebras SDK)."""

HOP_CYCLES = 1
"""fact: a neighbour is one hop, one cycle away. We add no further router latency (none published)."""

LINK_WAVELETS_PER_CYCLE = 1
"""assumed: each link carries one wavelet per cycle in each direction, both directions at once."""

ROUTING = "XY"
"""assumed: a wavelet travels along its row first (X, east/west), then along its column (Y)."""

CLOCK_HZ = 1.1e9
"""fact (WSE-2): PE clock about 1.1 GHz, as the book's reference table gives it (none of the sources
the book cites states it, so it is the least certain of these facts). Assumed the same on WSE-1 and
WSE-3, whose clocks are not published."""

FMAC_PER_CYCLE = 4
"""derived (WSE-2): Cerebras publishes no per-PE rate; Andromeda's 120 PFLOP/s over 16 CS-2 of
850,000 cores at 1.1 GHz is 8.0 FP16 FLOP per core per cycle, which we read as 4 multiply-add lanes
(a <- a + b c, 2 FLOP each)."""

FLOPS_PER_CYCLE = 2 * FMAC_PER_CYCLE
"""derived: 8 FP16 FLOP per cycle per PE (a multiply-add counts 2 FLOP), from Andromeda's peak."""

ELEMENTWISE_PER_CYCLE = 1
"""assumed: an operation that is not a multiply-add (add, exp, erf, divide, compare) takes one cycle
per element; the real cost of exp or erf is not published."""

OVERLAP_COMPUTE_AND_COMMUNICATION = True
"""assumed: a PE computes while its router moves wavelets, so a step costs the larger of its compute
and its communication cycles, not their sum."""

CUT_THROUGH_REDUCTION = True
"""assumed: in a chain reduction a PE adds each incoming partial-sum wavelet as it arrives and sends
the result on the next cycle, so a column of R PEs adds R - 1 cycles of latency, not R vectors."""

PARTIAL_SUM_ADDS_FREE = True
"""assumed: those adds (n_j per token at each PE below the top row) cost no busy cycles; the
matrix multiply charges a PE only its ceil(k_i n_j / 4) cycles of multiply-adds per token."""

SRAM_HOLDS_DATA_ONLY = True
"""assumed: all 48 KB of a PE hold data (tiles, activations, partial sums). A real PE also keeps its
program, its stack and buffers there (the SDK's memcpy adds code to every PE of a program), so
less is left than the simulator lets a PE fill."""

OPS_RUN_ONE_AFTER_ANOTHER = True
"""assumed: the functional simulator runs the ops of a forward pass one after another and reports
their summed cycles (the latency of one batch); a real layer pipeline overlaps consecutive batches."""

SIMULATOR_BYTES_PER_VALUE = 4
"""assumed: the functional simulator stores and moves float32 (4 bytes, one 32-bit wavelet per value)
so its results can be checked against torch to 1e-4. Cycle counts are for the FP16 rate above."""

# ----------------------------------------------------------------------------------------------
# Training on a whole wafer (performance model, chapter 10)
# ----------------------------------------------------------------------------------------------
BYTES_PER_VALUE = 2
"""assumed: weights, activations and streamed gradients are FP16 (2 bytes)."""

TRAINING_BYTES_PER_PARAM = 16
"""assumed: mixed-precision training with Adam keeps, per parameter, an FP16 weight (2) and gradient
(2), an FP32 master weight (4) and two FP32 Adam moments (4 + 4) = 16 bytes."""

ACTIVATIONS_SAVED_PER_TOKEN = "8 C + 2 F"
"""derived: what backward needs from one block, per token, without storing the T x T attention matrix
(recomputed from Q and K, 2 T C + 3 H T FLOPs per token that the model does not charge): the inputs
of both LayerNorms (2 C, the first is the block's input), their outputs (2 C), Q, K and V (3 C), the
heads' output (C), the FFN's hidden layer before and after GELU (2 F). In FP16: 2 (8 C + 2 F) bytes."""

ACTIVATION_POLICY = "recompute"
"""assumed: one policy for both modes. ``"recompute"`` keeps only each layer's input (C values per
token) until backward, and recomputes the rest of the layer's activations from it when its backward
pass comes (activation checkpointing): one extra forward pass, so training costs 4 x the forward
FLOPs instead of 3 x. ``"save all"`` keeps 8 C + 2 F values per token per block and costs 3 x.
Which one Cerebras' compiler uses is not published."""

PIPELINE_MICRO_BATCH = 1
"""assumed: in layer-pipelined training whole sequences of T tokens enter the pipeline one at a
time, scheduled one forward, one backward (1F1B): with S stages, stage s keeps S - s sequences'
activations for their backward passes. Cerebras does not publish its pipeline's schedule."""

MEMORYX_BANDWIDTH = 150e9
"""assumed: weights stream from MemoryX into one CS-2, and gradients back out, at 150 GB/s each way
(1.2 Tb/s). This is our choice: we found no published MemoryX-to-CS-2 figure, so treat every result
that depends on it as an estimate."""

STREAMED_WEIGHT_BUFFERS = 1
"""assumed: weight streaming keeps room for one layer's FP16 weights at a time, used as they arrive
(a layer's turn takes the longer of its compute and its weight I/O). 2 also holds the next layer's
weights (double buffering), which leaves a little less room for activations."""

MICRO_BATCHES = "as few as fit"
"""assumed: in weight streaming each system splits its share of the batch into as few equal
micro-batches as its SRAM holds (gradient accumulation), and every micro-batch streams every
layer's weights in again, forward and backward. The embedding streams its whole table."""

SWARMX_FULL_BANDWIDTH = True
"""assumed: SwarmX broadcasts weights to many systems and reduces their gradients without lowering
any one system's streaming bandwidth or adding latency."""

COMPUTE_EFFICIENCY = 1.0
"""assumed: the PEs run their matrix multiplies at this fraction of peak; 1.0 is peak. The real
fraction is not published for these runs."""


FABRIC = ("WAVELET_BITS", "HOP_CYCLES", "LINK_WAVELETS_PER_CYCLE", "ROUTING", "CLOCK_HZ",
          "FMAC_PER_CYCLE", "FLOPS_PER_CYCLE", "ELEMENTWISE_PER_CYCLE",
          "OVERLAP_COMPUTE_AND_COMMUNICATION", "CUT_THROUGH_REDUCTION", "PARTIAL_SUM_ADDS_FREE",
          "SRAM_HOLDS_DATA_ONLY", "OPS_RUN_ONE_AFTER_ANOTHER", "SIMULATOR_BYTES_PER_VALUE")
"""The names of the functional simulator's numbers (chapter 9), in the order they are defined."""

TRAINING = ("BYTES_PER_VALUE", "TRAINING_BYTES_PER_PARAM", "ACTIVATIONS_SAVED_PER_TOKEN",
            "ACTIVATION_POLICY", "PIPELINE_MICRO_BATCH", "MEMORYX_BANDWIDTH",
            "STREAMED_WEIGHT_BUFFERS", "MICRO_BATCHES", "SWARMX_FULL_BANDWIDTH",
            "COMPUTE_EFFICIENCY")
"""The names of the performance model's numbers (chapter 10), in the order they are defined."""

PARTS = {"fabric": FABRIC, "training": TRAINING}


def table(part: str | None = None) -> list[Assumption]:
    """The numbers above with their kind and reason, in the order they are defined: all of them,
    or one ``part``, ``"fabric"`` (the simulator, chapter 9) or ``"training"`` (chapter 10).

    Raises:
        ValueError: an unknown part; the message lists the parts.
    """
    if part is None:
        names = FABRIC + TRAINING
    elif part in PARTS:
        names = PARTS[part]
    else:
        raise ValueError(f"part must be one of {sorted(PARTS)} or None (all), got {part!r}")
    g = globals()
    rows = []
    for name in names:
        kind, _, why = _DOCS[name].partition(":")
        rows.append(Assumption(name, g[name], kind.split()[0], " ".join(why.split())))
    return rows


def markdown(part: str | None = None) -> str:
    """:func:`table` (all, or one ``part``) as a Markdown table (``name | value | kind | why``).
    Values are read at call time, so a changed assumption shows."""
    lines = ["| name | value | kind | why |", "|---|---|---|---|"]
    for a in table(part):
        value = f"{a.value:.3g}" if isinstance(a.value, float) else str(a.value)
        why = a.why.replace("|", "\\|")
        lines.append(f"| `{a.name}` | {value} | {a.kind} | {why} |")
    return "\n".join(lines)


def _module_docs() -> dict[str, str]:
    """The docstring under each constant above (read from this file's source)."""
    import ast
    import inspect
    import sys

    tree = ast.parse(inspect.getsource(sys.modules[__name__]))
    docs, body = {}, tree.body
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.Assign) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.targets[0].id] = nxt.value.value
    return docs


_DOCS = _module_docs()
