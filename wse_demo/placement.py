"""A performance model of a GPT on a full wafer: layer pipelined or weight streaming (chapter 10).

The functional simulator (:mod:`wse_demo.fabric`, :mod:`wse_demo.kernels`) computes real numbers
on small fabrics. A full WSE-2 has 753,972 PEs in its grid, far too many to simulate value by value,
so this module models them with arithmetic instead: bytes against SRAM, FLOPs against the PEs' peak
rate, bytes against the streaming bandwidth. Every assumption is in :mod:`wse_demo.assumptions`.

Both modes keep activations for the backward pass by one policy (:func:`activation_policy`,
default :data:`~wse_demo.assumptions.ACTIVATION_POLICY`): ``"save all"`` keeps everything backward
needs, ``"recompute"`` keeps each layer's input and recomputes the rest in backward (one extra
forward pass of FLOPs). Pass ``activations=`` to either mode to see how the other policy moves the
boundary between them.

**Layer pipelined** (:func:`layer_pipelined`): every layer keeps its weights, optimizer state and
saved activations in its own region of the wafer; regions are sized so each stage of the pipeline
takes the same time (balanced), but never smaller than their memory needs, and laid out along a
snake path through the grid so consecutive layers are neighbours.

**Weight streaming** (:func:`weight_streaming`): the whole wafer computes one layer at a time; the
layer's weights stream in from MemoryX (forward, and again for backward) while its gradients stream
out. A layer takes the longer of its compute and its weight I/O; enough sequences per micro-batch
make it compute-bound. SwarmX copies the weights to N systems for data parallelism.

Letters as in the book: T sequence length, C = d_model, F = d_ffn, V vocabulary, L layers, H heads,
D = C / H.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gptlib.config import CEREBRAS_GPT, GPTConfig

from . import assumptions
from .wafer import WaferSpec, get_wafer


class PlacementError(ValueError):
    """An argument the performance model cannot use; the message says what is allowed."""


def _check_config(config) -> GPTConfig:
    if isinstance(config, str):
        return GPTConfig.cerebras(config)
    if not isinstance(config, GPTConfig):
        raise PlacementError(f"config must be a GPTConfig or a Cerebras-GPT name such as '111M', "
                             f"got {type(config).__name__}")
    config.validate()
    return config


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise PlacementError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seq_len(config: GPTConfig, seq_len) -> int:
    T = config.context_length if seq_len is None else _check_positive_int("seq_len", seq_len)
    if T > config.context_length:
        raise PlacementError(f"seq_len {T} is longer than the model's context {config.context_length}")
    return T


POLICIES = ("save all", "recompute")
"""The activation policies both modes understand (see :data:`wse_demo.assumptions.ACTIVATION_POLICY`)."""


def activation_policy(activations: str | None = None) -> str:
    """``activations``, or the assumed default policy when None, checked against :data:`POLICIES`
    (read at call time, so a changed assumption applies).

    Raises:
        PlacementError: a policy that is not one of :data:`POLICIES`.
    """
    policy = assumptions.ACTIVATION_POLICY if activations is None else activations
    if policy not in POLICIES:
        raise PlacementError(f"activations must be one of {list(POLICIES)}, got {policy!r}")
    return policy


def training_passes(activations: str | None = None) -> float:
    """Forward passes' worth of FLOPs one training step costs per token: 3 (forward, then backward at
    twice the forward) saving all activations, 4 recomputing them (one more forward in backward)."""
    return 3.0 if activation_policy(activations) == "save all" else 4.0


# ----------------------------------------------------------------------------------------------
# What each layer costs
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """Part of a layer that gets its own share of the layer's region (an attention head, the FFN).

    ``flops_per_token``: forward FLOPs; ``params``: weights it holds; ``saved_per_token``: values
    kept for backward.
    """

    name: str
    flops_per_token: float
    params: int
    saved_per_token: float


@dataclass(frozen=True)
class LayerCost:
    """One stage of the model: the embedding, a transformer block, or the output head.

    Attributes:
        name: ``"embedding"``, ``"h.0"`` ... ``"h.{L-1}"``, ``"lm_head"``.
        kind: ``"embedding"``, ``"block"`` or ``"head"``.
        params: weights it holds (the head holds its own copy of a tied embedding matrix).
        flops_per_token: forward FLOPs per token (multiply-add = 2) at sequence length T.
        saved_per_token: activation values kept per token for the backward pass.
        input_per_token: values of its input (what weight streaming checkpoints): C.
        components: its parts (heads, FFN, LayerNorms), which sum to the totals above.
    """

    name: str
    kind: str
    params: int
    flops_per_token: float
    saved_per_token: float
    input_per_token: float
    components: tuple = ()


def layer_costs(config: GPTConfig | str, seq_len: int | None = None) -> list[LayerCost]:
    """The stages of ``config`` with their parameters, FLOPs and saved activations per token.

    Block (per token, forward): Q, K, V projections ``6 C^2``; scores ``Q K^T`` ``2 T C``; softmax
    ``3 H T``; ``A V`` ``2 T C``; output projection ``2 C^2``; FFN ``4 C F`` (the same terms as
    :meth:`gptlib.GPTConfig.flops_per_token`). Head ``h`` gets ``1/H`` of the projections and of the
    attention; the FFN and the LayerNorms are their own components. Saved activations (see
    :data:`~wse_demo.assumptions.ACTIVATIONS_SAVED_PER_TOKEN`): ``8 C + 2 F`` per token.

    Embedding: a lookup plus the position embedding (``C`` adds per token; no matrix multiply, so
    none of the ``2 C V`` that the Chinchilla appendix's count, and the book's full count of chapter
    4, charge to it). Head: final LayerNorm and the ``2 C V`` logits; saves its input, the normalised
    input and the logits (``2 C + V``).
    """
    c = _check_config(config)
    T = _seq_len(c, seq_len)
    C, F, V, H, L = c.d_model, c.d_ffn, c.vocab_size, c.n_head, c.n_layer
    D = C // H
    b = 1 if c.bias else 0
    part = c.param_counts()  # the model's own counts: every stage's weights are one of its parts
    flops = c.layer_flops_per_token(T)
    embedding_params = part["token_embedding"] + part["position_embedding"]
    layers = [LayerCost("embedding", "embedding", embedding_params, float(C), 0.0, 0.0,
                        (Component("embedding", float(C), embedding_params, 0.0),))]
    # head h: 1/H of the projections and of the attention (H divides every term exactly);
    # c_proj's output bias is shared by the heads, so it goes with the LayerNorms
    head_flops = sum(flops[k] for k in ("qkv", "attention_scores", "attention_softmax",
                                        "attention_values", "attention_output")) // H
    head_params = (part["attention"] - b * C) // H  # its Q/K/V columns and its rows of c_proj
    norm_params = 2 * part["layer_norm"] + b * C  # ln_1, ln_2 and c_proj's bias
    heads = tuple(Component(f"head {h}", float(head_flops), head_params, 4.0 * D) for h in range(H))
    ffn = Component("ffn", float(flops["ffn"]), part["ffn"], 2.0 * F + 2.0 * C)
    norms = Component("layer norms", 0.0, norm_params, 2.0 * C)
    block_params = H * head_params + part["ffn"] + norm_params
    for layer in range(L):
        parts = heads + (ffn, norms)
        layers.append(LayerCost(f"h.{layer}", "block", block_params,
                                float(sum(p.flops_per_token for p in parts)),
                                float(sum(p.saved_per_token for p in parts)), float(C), parts))
    # the head holds its own copy of the token table even when the model ties the two
    head_params_total = part["token_embedding"] + part["final_norm"]
    logits = c.flops_per_token(T)["logits"]
    layers.append(LayerCost("lm_head", "head", head_params_total, logits, float(2 * C + V),
                            float(C), (Component("lm_head", logits, head_params_total,
                                                 float(2 * C + V)),)))
    return layers


# ----------------------------------------------------------------------------------------------
# The snake path: consecutive regions are neighbours
# ----------------------------------------------------------------------------------------------
def snake_coordinates(index: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row, col)`` of positions along the snake path: row 0 west to east, row 1 east to west..."""
    index = np.asarray(index)
    row = index // cols
    col = index % cols
    return row, np.where(row % 2 == 0, col, cols - 1 - col)


def snake_rectangles(start: int, count: int, cols: int) -> list[tuple[int, int, int, int]]:
    """The PEs ``start .. start + count - 1`` of the snake path as at most three rectangles
    ``(row0, row1, col0, col1)`` (inclusive ranges), for outlining a region on the wafer map."""
    if count <= 0:
        return []
    end = start + count - 1
    r0, r1 = start // cols, end // cols
    rects = []

    def span(row, a, b):  # positions a..b of one row, as columns
        _, ca = snake_coordinates(np.array(row * cols + a), cols)
        _, cb = snake_coordinates(np.array(row * cols + b), cols)
        return row, row, int(min(ca, cb)), int(max(ca, cb))

    if r0 == r1:
        return [span(r0, start % cols, end % cols)]
    rects.append(span(r0, start % cols, cols - 1))
    if r1 - r0 > 1:
        rects.append((r0 + 1, r1 - 1, 0, cols - 1))
    rects.append(span(r1, 0, end % cols))
    return rects


# ----------------------------------------------------------------------------------------------
# Layer pipelined
# ----------------------------------------------------------------------------------------------
@dataclass
class PlacedLayer:
    """One layer's region in a layer-pipelined placement.

    Attributes:
        layer: its :class:`LayerCost`.
        start, pes: its PEs are positions ``start .. start + pes - 1`` of the snake path.
        bytes_needed: weights (and, training, optimizer state and saved activations), bytes.
        weight_bytes, activation_bytes: the two parts of ``bytes_needed``.
        bytes_available: ``pes * sram_per_pe``.
        tokens_per_s: the rate this stage alone could sustain.
        utilisation: the fraction of its PEs' peak it is busy at the pipeline's rate, every FLOP
            it does included (recomputation too): 1.0 for the slowest stage.
        components: ``[(name, start, pes, flops_per_token, bytes)]`` inside the region.
    """

    layer: LayerCost
    start: int
    pes: int
    bytes_needed: float
    weight_bytes: float
    activation_bytes: float
    bytes_available: float
    tokens_per_s: float = 0.0
    utilisation: float = 0.0
    components: list = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.bytes_needed <= self.bytes_available

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass
class LayerPipelinedPlacement:
    """Every layer of a model on its own region of one wafer; see :func:`layer_pipelined`.

    Attributes:
        fits: every region holds what it needs.
        bytes_needed: the whole model's total; compare with ``wafer.grid_sram_bytes``.
        tokens_per_s: pipeline throughput (the slowest stage's rate), training or inference.
        utilisation: the model's FLOP rate (3 x forward for training, without recomputation) /
            peak of the whole grid.
        bottleneck: name of the slowest stage.
        activations: the activation policy, ``"save all"`` or ``"recompute"``.
    """

    config: GPTConfig
    wafer: WaferSpec
    seq_len: int
    training: bool
    regions: list
    fits: bool
    bytes_needed: float
    tokens_per_s: float
    utilisation: float
    bottleneck: str
    activations: str = "recompute"

    @property
    def weight_bytes(self) -> float:
        """Bytes of weights (and, training, gradients and Adam state) over all regions."""
        return float(sum(r.weight_bytes for r in self.regions))

    @property
    def activation_bytes(self) -> float:
        """Bytes of activations kept for backward (training) or K and V (inference)."""
        return float(sum(r.activation_bytes for r in self.regions))

    def region(self, name: str) -> PlacedLayer:
        """The region of the layer called ``name`` (``"embedding"``, ``"h.3"``, ``"lm_head"``)."""
        for r in self.regions:
            if r.name == name:
                return r
        raise PlacementError(f"no layer {name!r}; layers are {[r.name for r in self.regions]}")

    def pe_map(self) -> np.ndarray:
        """``(rows, cols)`` int16: the index of the region each PE belongs to (-1: unused)."""
        rows, cols = self.wafer.grid
        order = np.full(rows * cols, -1, dtype=np.int16)
        for i, r in enumerate(self.regions):
            order[r.start:r.start + r.pes] = i
        grid = order.reshape(rows, cols)
        grid[1::2] = grid[1::2, ::-1].copy()  # odd rows run east to west
        return grid

    def memory_fill_map(self) -> np.ndarray:
        """``(rows, cols)`` float32: bytes a PE must hold / its SRAM (above 1: does not fit)."""
        fill = np.array([r.bytes_needed / max(r.pes, 1) / self.wafer.sram_per_pe for r in self.regions]
                        + [0.0], dtype=np.float32)
        return fill[self.pe_map()]  # index -1 picks the trailing 0 (unused PEs)

    def table(self) -> list[dict]:
        """One row per region: PEs, memory needed and available, fit, rate and utilisation."""
        return [{"layer": r.name, "PEs": r.pes, "needed (MB)": r.bytes_needed / 1e6,
                 "available (MB)": r.bytes_available / 1e6, "fits": r.fits,
                 "stage tokens/s": r.tokens_per_s, "busy": r.utilisation} for r in self.regions]


def _balanced_pes(work: np.ndarray, need: np.ndarray, total: int) -> np.ndarray:
    """Integer PEs per region, at least ``need`` each, the rest in proportion to ``work``: find
    ``lam`` with ``sum(max(need, lam * work)) = total`` (water filling), then round down and hand
    the leftover PEs to the largest remainders."""
    lo, hi = 0.0, total / work.min()
    for _ in range(100):
        lam = 0.5 * (lo + hi)
        if np.maximum(need, lam * work).sum() > total:
            hi = lam
        else:
            lo = lam
    ideal = np.maximum(need, lo * work)
    pes = np.maximum(np.floor(ideal).astype(np.int64), need)
    left = total - int(pes.sum())
    if left > 0:
        order = np.argsort(-(ideal - np.floor(ideal)))
        pes[order[:left]] += 1
        left = total - int(pes.sum())
        pes[np.argmax(work)] += left  # whatever rounding left over goes to the busiest stage
    return pes


def one_forward_one_backward(stages: int, sequences: int) -> tuple[np.ndarray, list[int]]:
    """The one-forward-one-backward (1F1B) schedule of a pipeline of ``stages`` stages training on
    ``sequences`` sequences that enter one at a time, every forward and backward pass taking one
    time step (for the picture; a backward pass really takes about twice a forward).

    Stage ``s`` (from 0) first runs ``stages - s - 1`` forward passes ahead, then alternates one
    forward and one backward, then finishes the backward passes left. A forward pass of sequence
    ``k`` needs the stage before to have finished it; a backward pass needs the stage after to have
    finished its backward (the last stage: its own forward). Each step every stage runs its next
    pass if that pass is ready, else it idles.

    Returns:
        ``(grid, held)``: ``grid`` is an object array ``(stages, steps)`` of ``(kind, k)`` with
        kind ``"F"``, ``"B"`` or ``""`` (idle); ``held[s]`` is the most sequences whose activations
        stage ``s`` keeps at once (from the start of a sequence's forward pass to the end of its
        backward pass): ``stages - s`` when ``sequences >= stages``.
    """
    S, n = _check_positive_int("stages", stages), _check_positive_int("sequences", sequences)
    order = []
    for s in range(S):
        warm = min(S - s - 1, n)
        ops = [("F", k) for k in range(warm)]
        for i in range(n - warm):
            ops += [("F", warm + i), ("B", i)]
        ops += [("B", k) for k in range(n - warm, n)]
        order.append(ops)
    done: dict = {}  # (kind, stage, k) -> step it finished
    nxt = [0] * S
    columns, t = [], 0
    while any(nxt[s] < len(order[s]) for s in range(S)):
        column = []
        for s in range(S):
            if nxt[s] == len(order[s]):
                column.append(("", -1))
                continue
            kind, k = order[s][nxt[s]]
            if kind == "F":
                need = ("F", s - 1, k) if s > 0 else None
            else:
                need = ("B", s + 1, k) if s < S - 1 else ("F", s, k)
            if need is None or done.get(need, t) < t:
                column.append((kind, k))
            else:
                column.append(("", -1))
        for s, (kind, k) in enumerate(column):
            if kind:
                done[(kind, s, k)] = t
                nxt[s] += 1
        columns.append(column)
        t += 1
    grid = np.empty((S, len(columns)), dtype=object)
    for step, column in enumerate(columns):
        for s, op in enumerate(column):
            grid[s, step] = op
    held = []
    for s in range(S):
        live, most = 0, 0
        for step in range(len(columns)):
            kind, _ = grid[s, step]
            if kind == "F":
                live += 1
            most = max(most, live)
            if kind == "B":
                live -= 1
        held.append(most)
    return grid, held


def layer_pipelined(config: GPTConfig | str, wafer: WaferSpec | str = "WSE-2",
                    seq_len: int | None = None, training: bool = True,
                    efficiency: float | None = None,
                    activations: str | None = None) -> LayerPipelinedPlacement:
    """Place every layer of ``config`` on its own region of ``wafer`` and model the pipeline.

    Memory of a region (training): ``16`` bytes per parameter (FP16 weight and gradient, FP32 master
    copy and two Adam moments) plus FP16 activations for backward. Stage ``s`` of ``S`` has
    ``S - s`` sequences of ``T`` tokens in flight (one-forward-one-backward schedule); for each it
    keeps, by the ``activations`` policy, all its saved values (``"save all"``: ``8 C + 2 F`` per
    token for a block) or only its input (``"recompute"``: ``C`` per token); recomputing, the
    sequence whose backward pass runs has its full activations instead of its input (they include
    the input, so it is counted once): ``(S - s - 1) C + 8 C + 2 F`` per token for a block.
    Inference: 2 bytes per parameter and each block's K and V for one sequence.

    Sizes: if everything fits, each region gets at least the PEs its memory needs and the rest in
    proportion to its FLOPs, which balances the stages; otherwise every region is sized by its FLOPs
    alone and the ones that overflow are marked (``fits`` False). Regions follow each other along
    the snake path, so each layer's region borders the next.

    Rate of stage ``i``: ``pes_i * pe_flops * efficiency / (k * flops_i)`` tokens/s with ``k`` the
    policy's :func:`training_passes` (3 or 4) for training and 1 for inference; the pipeline runs at
    its slowest stage. ``utilisation`` counts the model's FLOPs only (3 x forward for training, as
    model-FLOPs utilisation does), not the recomputation.

    Args:
        config: a :class:`gptlib.GPTConfig` or a Cerebras-GPT name (``"111M"`` ... ``"13B"``).
        wafer: a preset name or a :class:`WaferSpec`.
        seq_len: tokens per sequence (default: the model's context).
        efficiency: fraction of peak the PEs reach (default ``assumptions.COMPUTE_EFFICIENCY``).
        activations: ``"save all"`` or ``"recompute"`` (default ``assumptions.ACTIVATION_POLICY``).
    """
    c = _check_config(config)
    w = get_wafer(wafer)
    T = _seq_len(c, seq_len)
    policy = activation_policy(activations)
    efficiency = assumptions.COMPUTE_EFFICIENCY if efficiency is None else efficiency
    if not (isinstance(efficiency, (int, float)) and 0 < efficiency <= 1):
        raise PlacementError(f"efficiency must be in (0, 1], got {efficiency!r}")
    layers = layer_costs(c, T)
    S = len(layers)
    value = assumptions.BYTES_PER_VALUE
    saved = np.array([l.saved_per_token for l in layers])
    if training:
        weight_bytes = np.array([l.params * assumptions.TRAINING_BYTES_PER_PARAM for l in layers], float)
        in_flight = (S - np.arange(S)) * assumptions.PIPELINE_MICRO_BATCH
        if policy == "save all":
            act_bytes = saved * T * in_flight * value
        else:  # each sequence in flight keeps the layer's input; one has its full activations
            inputs = np.array([l.input_per_token for l in layers])  # (saved includes the input)
            act_bytes = (inputs * (in_flight - 1) + saved) * T * value
    else:
        weight_bytes = np.array([l.params * value for l in layers], float)
        act_bytes = np.array([2.0 * c.d_model * T if l.kind == "block" else 0.0 for l in layers]) * value
    need_bytes = weight_bytes + act_bytes
    k = training_passes(policy) if training else 1.0
    work = np.array([l.flops_per_token for l in layers]) * k
    need_pes = np.ceil(need_bytes / w.sram_per_pe).astype(np.int64)
    fits_overall = int(need_pes.sum()) <= w.n_pe
    pes = _balanced_pes(work, need_pes if fits_overall else np.ones(S, np.int64), w.n_pe)
    rate = pes * w.pe_flops * efficiency / work
    tokens_per_s = float(rate.min())
    starts = np.concatenate([[0], np.cumsum(pes)[:-1]])
    regions = []
    for i, layer in enumerate(layers):
        used = tokens_per_s * work[i] / (pes[i] * w.pe_flops)
        comp, s0 = [], int(starts[i])
        total_flops = sum(p.flops_per_token for p in layer.components) or 1.0
        shares = np.array([p.flops_per_token / total_flops for p in layer.components])
        if layer.kind == "block":  # LayerNorms: a token share of the PEs so they appear on the map
            shares = np.where(shares == 0, 0.01, shares)
            shares /= shares.sum()
        counts = np.floor(shares * pes[i]).astype(np.int64)
        counts[np.argmax(shares)] += pes[i] - counts.sum()
        for p, n_pe in zip(layer.components, counts):
            b = (p.params * (weight_bytes[i] / max(layer.params, 1))
                 + (act_bytes[i] * p.saved_per_token / layer.saved_per_token if layer.saved_per_token else 0))
            comp.append((p.name, s0, int(n_pe), p.flops_per_token, float(b)))
            s0 += int(n_pe)
        regions.append(PlacedLayer(layer, int(starts[i]), int(pes[i]), float(need_bytes[i]),
                                   float(weight_bytes[i]), float(act_bytes[i]),
                                   float(pes[i] * w.sram_per_pe), float(rate[i]), float(used), comp))
    fits = all(r.fits for r in regions)
    model_flops = np.array([l.flops_per_token for l in layers]).sum() * (3.0 if training else 1.0)
    utilisation = tokens_per_s * model_flops / (w.n_pe * w.pe_flops)
    return LayerPipelinedPlacement(c, w, T, training, regions, fits, float(need_bytes.sum()),
                                   tokens_per_s, float(utilisation), layers[int(rate.argmin())].name,
                                   policy)


# ----------------------------------------------------------------------------------------------
# Weight streaming
# ----------------------------------------------------------------------------------------------
@dataclass
class StreamedLayer:
    """One layer's time on the wafer for one micro-batch, seconds.

    ``compute_fwd``/``compute_bwd``: FLOPs / (peak x efficiency), backward including any
    recomputation; ``io``: its FP16 weights over the streaming bandwidth (once forward, once
    backward while gradients stream out); ``forward`` and ``backward`` are the larger of the two in
    each pass.
    """

    name: str
    weight_bytes: float
    compute_fwd: float
    compute_bwd: float
    io: float

    @property
    def forward(self) -> float:
        return max(self.compute_fwd, self.io)

    @property
    def backward(self) -> float:
        return max(self.compute_bwd, self.io)

    @property
    def bound(self) -> str:
        """``"compute"`` if compute takes longer than the weights' I/O in the forward pass."""
        return "compute" if self.compute_fwd >= self.io else "I/O"


@dataclass
class WeightStreamingEstimate:
    """One training step with weight streaming; see :func:`weight_streaming`.

    Attributes:
        batch_size: sequences per step over all systems; ``n_systems`` CS-2s share them.
        micro_batch: sequences per system per pass through the layers (fits in SRAM).
        n_micro: passes per step (gradient accumulation).
        layers: one :class:`StreamedLayer` per layer, for one micro-batch.
        step_time: seconds per step; ``tokens_per_s`` of the whole cluster.
        compute_bound_micro_batch: the smallest micro-batch (sequences) at which every matmul layer's
            forward compute covers its weight I/O.
        max_micro_batch: the largest micro-batch whose activations fit in the wafer's SRAM.
        utilisation: the model's FLOP rate (3 x forward, without recomputation) / peak of all
            systems.
        activations: the activation policy, ``"save all"`` or ``"recompute"``.
    """

    config: GPTConfig
    wafer: WaferSpec
    seq_len: int
    batch_size: int
    n_systems: int
    io_bandwidth: float
    efficiency: float
    micro_batch: float
    n_micro: int
    layers: list
    step_time: float
    tokens_per_s: float
    compute_bound_micro_batch: float
    max_micro_batch: int
    utilisation: float
    activations: str = "recompute"

    @property
    def compute_bound(self) -> bool:
        return self.micro_batch >= self.compute_bound_micro_batch

    @property
    def fits(self) -> bool:
        """At least one sequence's activations fit on the wafer."""
        return self.max_micro_batch >= 1


def _max_micro_batch(layers: list[LayerCost], wafer: WaferSpec, T: int,
                     policy: str = "recompute", buffers: int | None = None) -> int:
    """Largest micro-batch (sequences) the wafer holds, in FP16, while it works on any one layer.

    Beside the activations it holds the FP16 weights of the layer being worked on and, with
    ``buffers`` = 2 (default :data:`~wse_demo.assumptions.STREAMED_WEIGHT_BUFFERS`), those of
    the next one in the pass as well (double buffering). Activations per sequence: saving all,
    every layer's saved values; recomputing, the inputs of the layers before it (kept for their
    backward passes) and the full activations of the layer being worked on, which include its
    own input."""
    buffers = assumptions.STREAMED_WEIGHT_BUFFERS if buffers is None else buffers
    if buffers not in (1, 2):
        raise PlacementError(f"streamed weight buffers must be 1 or 2, got {buffers!r}")
    value = assumptions.BYTES_PER_VALUE
    weights = np.array([l.params * value for l in layers], float)
    if buffers == 2 and len(layers) > 1:  # the next layer forward; the last one's is the one below
        weights = weights + np.concatenate([weights[1:], weights[-2:-1]])
    saved = np.array([l.saved_per_token for l in layers]) * T * value  # per sequence
    if policy == "save all":
        per_seq = np.full(len(layers), saved.sum())
    else:
        inputs = np.array([l.input_per_token for l in layers]) * T * value
        before = np.concatenate([[0.0], np.cumsum(inputs)[:-1]])  # inputs of the layers before l
        per_seq = before + saved  # (n_layers,): while layer l is worked on
    free = wafer.grid_sram_bytes - weights
    with np.errstate(divide="ignore"):
        b = np.where(per_seq > 0, np.floor(free / np.where(per_seq > 0, per_seq, 1.0)), np.inf)
    b = np.where(free < 0, -1.0, b)  # a layer's weights alone do not fit
    return int(max(b.min(), 0))


def weight_streaming(config: GPTConfig | str, wafer: WaferSpec | str = "WSE-2",
                     batch_size: int | None = None, n_systems: int = 1, seq_len: int | None = None,
                     micro_batch: float | None = None, io_bandwidth: float | None = None,
                     efficiency: float | None = None,
                     activations: str | None = None) -> WeightStreamingEstimate:
    """Model one training step with weight streaming on ``n_systems`` wafers (data parallel).

    Each system gets ``batch_size / n_systems`` sequences and works through them in micro-batches
    no larger than fit in its SRAM (:func:`_max_micro_batch`; default: as large as fits). For every
    micro-batch each layer streams in (forward: compute ``f b T`` FLOPs), then in reverse order
    streams in again for backward (``2 f b T`` FLOPs, plus ``f b T`` recomputing the layer's
    activations from its saved input under the ``"recompute"`` policy) while its gradients stream
    out. A pass takes ``max(compute, weight bytes / io_bandwidth)``. ``utilisation`` counts the
    model's FLOPs only (3 x forward), not the recomputation.

    The compute-bound micro-batch is where compute equals I/O for a layer's forward pass:
    ``b*_l = peak * efficiency * weight_bytes / (io_bandwidth * f * T)``. For a layer whose FLOPs
    are all weight FLOPs (2 per weight per token, each weight 2 bytes, as in the head) this is
    ``peak / (io_bandwidth T)``; a block's attention adds FLOPs that use no weights, so its ``b*``
    is a little lower. ``compute_bound_micro_batch`` is the largest over the layers with weights to
    multiply (all but the embedding, a look-up): the head's.

    Args:
        config: a :class:`gptlib.GPTConfig` or a Cerebras-GPT name.
        batch_size: sequences per step (default: the paper's batch for a named model, else 1).
        n_systems: CS-2s sharing the batch.
        micro_batch: override the micro-batch (sequences per system per pass).
        io_bandwidth: bytes/s each way between MemoryX and one system (default
            ``assumptions.MEMORYX_BANDWIDTH``, read at call time so a changed assumption applies).
        efficiency: fraction of peak the PEs reach (default ``assumptions.COMPUTE_EFFICIENCY``).
        activations: ``"save all"`` or ``"recompute"`` (default ``assumptions.ACTIVATION_POLICY``).
    """
    name = config if isinstance(config, str) else None
    policy = activation_policy(activations)
    c = _check_config(config)
    w = get_wafer(wafer)
    T = _seq_len(c, seq_len)
    io_bandwidth = assumptions.MEMORYX_BANDWIDTH if io_bandwidth is None else io_bandwidth
    efficiency = assumptions.COMPUTE_EFFICIENCY if efficiency is None else efficiency
    if batch_size is None:
        batch_size = published_batch_size(name) if name else 1
    batch_size = _check_positive_int("batch_size", batch_size)
    n_systems = _check_positive_int("n_systems", n_systems)
    if n_systems > batch_size:
        raise PlacementError(f"{n_systems} systems cannot share a batch of {batch_size} sequences: "
                             f"each needs at least one")
    for label, v in (("io_bandwidth", io_bandwidth), ("efficiency", efficiency)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise PlacementError(f"{label} must be a positive number, got {v!r}")
    if efficiency > 1:
        raise PlacementError(f"efficiency must be in (0, 1], got {efficiency}")
    layers = layer_costs(c, T)
    per_system = batch_size / n_systems
    max_micro = _max_micro_batch(layers, w, T, policy)
    if micro_batch is None:
        if max_micro < 1:
            micro, n_micro = per_system, 1  # does not fit: report, with the time it would take
        else:
            n_micro = math.ceil(per_system / min(per_system, max_micro))
            micro = per_system / n_micro
    else:
        if not (isinstance(micro_batch, (int, float)) and 0 < micro_batch <= per_system):
            raise PlacementError(f"micro_batch must be in (0, {per_system}] sequences per system, "
                                 f"got {micro_batch!r}")
        n_micro = math.ceil(per_system / micro_batch)
        micro = per_system / n_micro
    rate = w.peak_flops * efficiency
    value = assumptions.BYTES_PER_VALUE
    streamed = []
    backward = training_passes(policy) - 1  # 2 x forward, or 3 x when it recomputes first
    for l in layers:
        fwd = l.flops_per_token * micro * T / rate
        streamed.append(StreamedLayer(l.name, l.params * value, fwd, backward * fwd,
                                      l.params * value / io_bandwidth))
    step = n_micro * sum(s.forward + s.backward for s in streamed)
    tokens = batch_size * T
    b_star = max(l.params * value * rate / (io_bandwidth * l.flops_per_token * T)
                 for l in layers if l.kind != "embedding")
    flops = 3 * sum(l.flops_per_token for l in layers) * tokens
    utilisation = flops / (step * n_systems * w.peak_flops)
    return WeightStreamingEstimate(c, w, T, batch_size, n_systems, float(io_bandwidth), float(efficiency),
                                   float(micro), n_micro, streamed, float(step), tokens / step,
                                   float(b_star), max_micro, float(utilisation), policy)


# ----------------------------------------------------------------------------------------------
# The published runs
# ----------------------------------------------------------------------------------------------
def published_batch_size(name: str) -> int:
    """The batch size (sequences) of a Cerebras-GPT run; for 13B, which switched from 720 to 1080
    during training, the final 1080."""
    if name not in CEREBRAS_GPT:
        GPTConfig.cerebras(name)  # raises the helpful unknown-name error
    return max(int(s) for s in CEREBRAS_GPT[name].batch_size.split() if s.isdigit())


def scale_out(config: GPTConfig | str, n_systems: list[int], wafer: WaferSpec | str = "WSE-2",
              batch_size: int | None = None, **kwargs) -> list[WeightStreamingEstimate]:
    """:func:`weight_streaming` for each number of systems in ``n_systems`` (same batch)."""
    return [weight_streaming(config, wafer, batch_size, n, **kwargs) for n in n_systems]


def training_time(name: str, n_systems: int | None = None, wafer: WaferSpec | str = "WSE-2",
                  **kwargs) -> dict:
    """Estimated wall-clock training time of a Cerebras-GPT model with weight streaming.

    Steps = published tokens / (batch x 2048); each step timed by :func:`weight_streaming` on
    ``n_systems`` CS-2 (default: the number the paper used). With the default efficiency of 1.0
    the PEs run at peak: the time is the model's, not a bound on a real run (the model leaves out
    overheads, and its FLOP count and activation policy need not be Cerebras').

    Returns a dict: ``model``, ``n_systems``, ``steps``, ``step_time_s``, ``days``, ``tokens_per_s``,
    ``compute_bound``, ``micro_batch``, ``flops_simulated`` (the model's FLOPs: 3 x forward, the
    embedding as a lookup, no recomputation), ``flops_paper`` (the paper's reported "algorithmic
    FLOPs", which include attention; the paper does not publish their term-by-term accounting).
    """
    if name not in CEREBRAS_GPT:
        GPTConfig.cerebras(name)
    run = CEREBRAS_GPT[name]
    n = run.n_cs2 if n_systems is None else n_systems
    batch = published_batch_size(name)
    est = weight_streaming(name, wafer, batch, n, **kwargs)
    steps = run.tokens / (batch * est.seq_len)
    seconds = steps * est.step_time
    flops = 3 * sum(l.flops_per_token for l in layer_costs(name)) * run.tokens
    return {"model": name, "n_systems": n, "batch": batch, "steps": steps,
            "step_time_s": est.step_time, "days": seconds / 86400, "tokens_per_s": est.tokens_per_s,
            "compute_bound": est.compute_bound, "micro_batch": est.micro_batch,
            "flops_simulated": flops, "flops_paper": run.reported_flops}
