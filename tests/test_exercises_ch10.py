"""Chapter 10's exercise checks confirm right answers (written more than one way), reject the stub
and the wrong answers readers write, each with the hint meant for it, and their references agree
with the performance model the chapter uses."""
import math

import numpy as np
import pytest

import torch

from gptlib import CEREBRAS_GPT, GPTConfig
from gptlib.exercises import ch10
from gptlib.model import Block
from wse_demo import placement
from wse_demo.wafer import get_wafer

from exercise_checks import passes, rejects


# ----------------------------------------------------------------------------------------------
# 10.1 the bytes of one block, for any FFN width
# ----------------------------------------------------------------------------------------------
def right_block_bytes(C, F):
    attention = 3 * C * C + 3 * C + C * C + C  # Q, K, V projection and output projection
    ffn = C * F + F + F * C + C
    norms = 2 * (C + C)  # two LayerNorms, a gain and a bias each
    return 16 * (attention + ffn + norms)


def meta_block_bytes(C, F):  # not an answer: it builds a block and counts
    config = GPTConfig(vocab_size=2, context_length=2, n_layer=1, n_head=1, d_model=C, d_ffn=F)
    with torch.device("meta"):
        block = Block(config)
    return np.int64(sum(p.numel() for p in block.parameters())) * (2 + 2 + 4 + 4 + 4)


def test_block_bytes(capsys):
    passes(capsys, ch10.check_block_bytes, right_block_bytes)
    rejects(ch10.check_block_bytes, meta_block_bytes, match="without building a block")
    passes(capsys, ch10.check_block_bytes, lambda C, F: float(right_block_bytes(C, F)))
    rejects(ch10.check_block_bytes, ..., match="not answered yet")
    rejects(ch10.check_block_bytes, 806e6, match="should be a function")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (12 * C * C + 13 * C), match="F = 4 C only")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (4 * C * C + 2 * C * F),
            match="weight matrices only")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (4 * C * C + 2 * C * F + 5 * C + F),
            match="LayerNorms have a gain")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (4 * C * C + 2 * C * F + 4 * C),
            match="also have biases")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (4 * C * C + C * F + 8 * C + F),
            match="two matrices")
    rejects(ch10.check_block_bytes, lambda C, F: 16 * (3 * C * C + 2 * C * F + 8 * C + F),
            match="output projection")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) / 8, match="FP16")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) / 16,
            match="number of parameters")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) * 12 / 16,
            match="every copy")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) / 4, match="every copy")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) / 1e6, match="in MB")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) / 1e9, match="in GB")
    rejects(ch10.check_block_bytes, lambda C, F: right_block_bytes(C, F) + 1, match="expected")
    rejects(ch10.check_block_bytes, lambda C, F: "806 MB", match="should be a number")


def test_the_block_bytes_agree_with_the_performance_model():
    for name in ("111M", "1.3B", "13B"):
        c = GPTConfig.cerebras(name)
        assert 16 * placement.layer_costs(name)[1].params == right_block_bytes(c.d_model, c.d_ffn)
    # the confirmation's count: WSE-2's grid holds the training state of 45 blocks of 1.3B
    assert ch10.WSE2_GRID_SRAM == get_wafer("WSE-2").grid_sram_bytes
    assert ch10.WSE2_GRID_SRAM // right_block_bytes(2048, 8192) == 45


# ----------------------------------------------------------------------------------------------
# 10.3 the rate of a pipeline
# ----------------------------------------------------------------------------------------------
def right_rate(pes, flops, passes):
    return min(p * 8.8e9 / (passes * f) for p, f in zip(pes, flops))


def numpy_rate(pes, flops, passes):  # written differently: arrays, time per token per stage
    seconds = passes * np.asarray(flops) / (np.asarray(pes) * 8 * 1.1e9)
    return 1.0 / seconds.max()


def sorting_rate(pes, flops, passes):  # sorts its input in place: the check must notice
    pes.sort()
    return right_rate(pes, flops, passes)


def test_pipeline_rate(capsys):
    passes(capsys, ch10.check_pipeline_rate, right_rate)
    passes(capsys, ch10.check_pipeline_rate, numpy_rate)
    rejects(ch10.check_pipeline_rate, ..., match="not answered yet")
    rejects(ch10.check_pipeline_rate,
            lambda p, f, k: max(a * 8.8e9 / (k * b) for a, b in zip(p, f)), match="SLOWEST")
    rejects(ch10.check_pipeline_rate, lambda p, f, k: right_rate(p, f, 3), match="`passes`")
    rejects(ch10.check_pipeline_rate, lambda p, f, k: k * right_rate(p, f, k),
            match="forward-only")
    rejects(ch10.check_pipeline_rate, lambda p, f, k: sum(p) * 8.8e9 / (k * sum(f)),
            match="balanced")
    rejects(ch10.check_pipeline_rate,
            lambda p, f, k: float(np.mean([a * 8.8e9 / (k * b) for a, b in zip(p, f)])),
            match="average")
    rejects(ch10.check_pipeline_rate,
            lambda p, f, k: 1 / sum(k * b / (a * 8.8e9) for a, b in zip(p, f)), match="alone")
    rejects(ch10.check_pipeline_rate, sorting_rate, match="changed the lists")
    rejects(ch10.check_pipeline_rate, lambda p, f, k: right_rate(p, f, k) / 1e6,
            match="millions of tokens/s")
    rejects(ch10.check_pipeline_rate, lambda p, f: 1.0, match="raised TypeError")


def test_the_pipeline_rate_reproduces_the_performance_model():
    for policy in placement.POLICIES:
        p = placement.layer_pipelined("111M", "WSE-2", activations=policy)
        rate = right_rate([r.pes for r in p.regions], [r.layer.flops_per_token for r in p.regions],
                          placement.training_passes(policy))
        assert rate == pytest.approx(p.tokens_per_s)


# ----------------------------------------------------------------------------------------------
# 10.2 activation memory under both policies
# ----------------------------------------------------------------------------------------------
def right_bytes(C, F, L, T, policy):
    in_flight = L * (L + 1) // 2  # L + (L - 1) + ... + 1 sequences over the stages
    if policy == "save all":
        return 2 * in_flight * (8 * C + 2 * F) * T
    # recomputing: every sequence keeps its input, but the one being recomputed at each stage
    # has its full activations instead (which include that input)
    return 2 * ((in_flight - L) * C + L * (8 * C + 2 * F)) * T


def loop_bytes(C, F, L, T, policy):  # written differently: stage by stage
    total = 0.0
    for s in range(L):
        if policy == "save all":
            total += (L - s) * (8 * C + 2 * F) * T * 2
        else:
            total += ((L - s - 1) * C + 8 * C + 2 * F) * T * 2
    return total


def bytes_with(C, F, L, T, policy, mistake):
    block = 8 * C + 2 * F
    if mistake == "16 C":
        block = 16 * C
    if mistake == "F once":
        block = 8 * C + F
    total = 0
    for s in range(L):
        n = {"one": 1, "all": L, "plus one": L - s + 1, "minus one": L - s - 1}.get(mistake, L - s)
        keep_all = (policy == "save all") != (mistake == "swapped") or mistake == "both save all"
        if keep_all:
            total += n * block * T
        elif mistake == "no working set":
            total += n * C * T
        elif mistake == "input twice":
            total += n * C * T + block * T
        else:
            total += (n - 1) * C * T + block * T
    per_value = 1 if mistake == "values" else 2
    total *= per_value
    return total / T if mistake == "per token" else total


@pytest.mark.parametrize("mistake, hint", [
    ("swapped", "swapped"), ("values", "2 per FP16 value"), ("per token", "per token"),
    ("no working set", "one sequence's full activations"), ("16 C", "use the given F"),
    ("F once", "before and after GELU"), ("one", "stage s still holds"),
    ("all", "not every stage holds L"), ("plus one", "one sequence too many"),
    ("minus one", "one sequence too few"), ("input twice", "count its C once"),
    ("both save all", "keeps only each layer's input"),
])
def test_pipeline_activation_bytes_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch10.check_pipeline_activation_bytes, lambda *a: bytes_with(*a, mistake), match=hint)


def test_pipeline_activation_bytes(capsys):
    passes(capsys, ch10.check_pipeline_activation_bytes, right_bytes)
    passes(capsys, ch10.check_pipeline_activation_bytes, loop_bytes)
    rejects(ch10.check_pipeline_activation_bytes, ..., match="not answered yet")
    rejects(ch10.check_pipeline_activation_bytes, lambda *a: 40.3e9, match="expected")


def test_the_activation_reference_is_the_performance_models_block_term():
    # the model's blocks sit after the embedding, so block j has L + 1 - j sequences in flight,
    # one more than in the exercise's pipeline of blocks alone
    for name in ("111M", "1.3B"):
        c = GPTConfig.cerebras(name)
        for policy in placement.POLICIES:
            p = placement.layer_pipelined(name, "WSE-2", activations=policy)
            blocks = sum(r.activation_bytes for r in p.regions if r.layer.kind == "block")
            ref = ch10._activation_bytes(c.d_model, c.d_ffn, c.n_layer, 2048, policy,
                                         in_flight_offset=1)
            assert blocks == pytest.approx(ref)


# ----------------------------------------------------------------------------------------------
# 10.4 systems that stay compute-bound
# ----------------------------------------------------------------------------------------------
def right_systems(batch, b_star, max_micro, n_max):
    out = []
    for n in range(1, min(n_max, batch) + 1):
        share = batch / n
        micro = share / math.ceil(share / min(share, max_micro))
        if micro >= b_star:
            out.append(n)
    return out


def numpy_systems(batch, b_star, max_micro, n_max):  # written differently: arrays
    n = np.arange(1, min(n_max, batch) + 1)
    share = batch / n
    micro = share / np.ceil(share / np.minimum(share, max_micro))
    return n[micro >= b_star].tolist()


def systems_with(batch, b_star, max_micro, n_max, mistake):
    top = min(n_max, batch)
    ns = {"open range": range(1, top), "no batch cap": range(1, n_max + 1)}.get(
        mistake, range(1, top + 1))
    out = []
    for n in ns:
        share = (batch // n) if mistake == "integer share" else batch / n
        if share == 0:
            break
        if mistake == "share":
            micro = share
        elif mistake == "min":
            micro = min(share, max_micro)
        elif mistake == "floor":
            micro = share / max(1, math.floor(share / min(share, max_micro)))
        else:
            micro = share / math.ceil(share / min(share, max_micro))
        ok = micro > b_star if mistake == "strict" else micro >= b_star
        if mistake == "stop" and not ok:
            break
        if ok:
            out.append(n)
    return out


@pytest.mark.parametrize("mistake, hint", [
    ("share", "compare the micro-batch"), ("strict", "exactly equal to b"),
    ("min", "equal micro-batches"), ("floor", "round the number of micro-batches up"),
    ("integer share", "may be fractional"), ("stop", "does not shrink steadily"),
    ("open range", "includes its end"), ("no batch cap", "no more systems than sequences"),
])
def test_compute_bound_systems_rejects_each_mistake_with_its_hint(mistake, hint):
    rejects(ch10.check_compute_bound_systems, lambda *a: systems_with(*a, mistake), match=hint)


def test_compute_bound_systems(capsys):
    passes(capsys, ch10.check_compute_bound_systems, right_systems)
    passes(capsys, ch10.check_compute_bound_systems, numpy_systems)
    rejects(ch10.check_compute_bound_systems, ..., match="not answered yet")
    rejects(ch10.check_compute_bound_systems, lambda *a: 12, match="list of whole numbers")
    # a wrong list the hints do not know: the message names the first N that differs
    rejects(ch10.check_compute_bound_systems, lambda *a: right_systems(*a) + [10 ** 6],
            match="N goes from 1 to min")
    rejects(ch10.check_compute_bound_systems,
            lambda *a: sorted(set(right_systems(*a)) ^ {max(1, a[3] // 2)}), match="N = ")
    rejects(ch10.check_compute_bound_systems, lambda *a: right_systems(*a)[1:],
            match="you left out N = 1: there each system's share")


def test_the_systems_reference_agrees_with_the_performance_model():
    for name in ("13B", "1.3B"):
        batch = placement.published_batch_size(name)
        one = placement.weight_streaming(name, "WSE-2")
        ns = list(range(1, 65))
        model = [e.n_systems for e in placement.scale_out(name, ns, "WSE-2") if e.compute_bound]
        ref = ch10._compute_bound_systems(batch, one.compute_bound_micro_batch,
                                          one.max_micro_batch, 64)
        assert model == ref
        assert CEREBRAS_GPT[name].n_cs2 in ref  # the paper's number of systems is compute-bound


def test_the_13b_micro_batch_limit_of_the_check_is_the_placement_model_s():
    """Exercise 10.4's closing message counts with 13B's limit on WSE-2 as the chapter does."""
    from wse_demo import placement
    assert ch10._13B_MAX_MICRO == placement.weight_streaming("13B", "WSE-2").max_micro_batch


def parameters(C, F):  # the reader's own helper, named like nn.Module.parameters
    return right_block_bytes(C, F) // 16


def test_block_bytes_counts_what_runs(capsys):
    """A helper of one's own called `parameters` is fine; building a block is refused however
    torch is reached (here imported inside the answer under another name)."""
    passes(capsys, ch10.check_block_bytes, lambda C, F: 16 * parameters(C, F))

    def imported_inside(C, F):
        import torch.nn as q
        layer = q.Linear(C, F, device="meta")
        return 16 * (layer.weight.nelement() + layer.bias.nelement())

    rejects(ch10.check_block_bytes, imported_inside, match="without building a block")
