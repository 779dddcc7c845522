"""The performance model: what fits on a wafer, how fast it runs, and how it scales out."""
import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gptlib import CEREBRAS_GPT, GPTConfig
from gptlib.model import Block
from wse_demo import assumptions
from wse_demo import placement as P
from wse_demo.wafer import WaferSpec, get_wafer

SIZES = list(CEREBRAS_GPT)


def test_111m_fits_wse2_layer_pipelined_and_13b_does_not():
    small, big = P.layer_pipelined("111M", "WSE-2"), P.layer_pipelined("13B", "WSE-2")
    assert small.fits and all(r.fits for r in small.regions)
    assert not big.fits
    # 13B's weights and Adam state alone (16 bytes per parameter) are over 5x the grid's SRAM
    assert big.bytes_needed > 5 * get_wafer("WSE-2").grid_sram_bytes


def test_the_fit_frontier_moves_with_the_activation_policy():
    save_all = [P.layer_pipelined(m, "WSE-2", activations="save all").fits for m in SIZES]
    recompute = [P.layer_pipelined(m, "WSE-2", activations="recompute").fits for m in SIZES]
    assert save_all == [True, True, True, False, False, False, False]
    assert recompute == [True, True, True, True, False, False, False]
    # 2.7B's weights and Adam state alone are more than the grid holds: no policy can fit it
    p = P.layer_pipelined("2.7B", "WSE-2", activations="recompute")
    assert p.weight_bytes > p.wafer.grid_sram_bytes
    # recomputing keeps less than a third of what saving all keeps, for every size
    for m in SIZES:
        a = P.layer_pipelined(m, "WSE-2", activations="save all").activation_bytes
        b = P.layer_pipelined(m, "WSE-2", activations="recompute").activation_bytes
        assert b < a / 3


def test_one_activation_policy_serves_both_modes(monkeypatch):
    assert assumptions.ACTIVATION_POLICY in P.POLICIES
    assert P.layer_pipelined("111M").activations == assumptions.ACTIVATION_POLICY
    assert P.weight_streaming("111M").activations == assumptions.ACTIVATION_POLICY
    monkeypatch.setattr(assumptions, "ACTIVATION_POLICY", "save all")
    assert P.layer_pipelined("111M").activations == "save all"
    assert P.weight_streaming("111M").activations == "save all"
    assert not P.layer_pipelined("1.3B").fits  # the changed default applies to both at call time
    with pytest.raises(P.PlacementError, match="activations must be one of"):
        P.layer_pipelined("111M", activations="checkpoint")
    with pytest.raises(P.PlacementError, match="activations must be one of"):
        P.weight_streaming("111M", activations="all")


def test_recomputing_costs_a_fourth_forward_pass():
    assert P.training_passes("save all") == 3 and P.training_passes("recompute") == 4
    # 111M fits both ways and its pipeline is balanced both ways: the rates differ by 4 / 3
    a = P.layer_pipelined("111M", "WSE-2", activations="save all")
    b = P.layer_pipelined("111M", "WSE-2", activations="recompute")
    assert a.tokens_per_s / b.tokens_per_s == pytest.approx(4 / 3, rel=0.02)
    assert b.utilisation == pytest.approx(0.75 * a.utilisation, rel=0.02)
    # weight streaming, compute-bound: each backward pass does 3 forward passes' worth
    e = P.weight_streaming("1.3B", "WSE-2", n_systems=4, activations="recompute")
    h = next(l for l in e.layers if l.name == "h.0")
    assert h.compute_bwd == pytest.approx(3 * h.compute_fwd)
    assert e.utilisation == pytest.approx(0.75, abs=0.02)


def test_saving_all_activations_starves_weight_streaming_of_big_models():
    big = P.weight_streaming("13B", "WSE-2", n_systems=12, activations="save all")
    assert big.max_micro_batch == 2 and not big.compute_bound and big.utilisation < 0.2
    small = P.weight_streaming("111M", "WSE-2", activations="save all")
    assert small.compute_bound
    for m in SIZES:
        e = P.weight_streaming(m, "WSE-2", n_systems=CEREBRAS_GPT[m].n_cs2, activations="recompute")
        assert e.compute_bound


def test_13b_placement_on_the_full_wse2_grid_takes_under_a_second():
    start = time.perf_counter()
    p = P.layer_pipelined("13B", "WSE-2")
    grid = p.pe_map()
    fill = p.memory_fill_map()
    assert time.perf_counter() - start < 1.0
    assert grid.shape == (996, 757) and fill.shape == grid.shape  # rows x cols
    assert (grid >= 0).all()  # every PE is given to some layer
    assert (fill > 1).any()  # and some of them are asked for more than their SRAM


def test_regions_cover_the_grid_and_consecutive_layers_are_neighbours():
    p = P.layer_pipelined("256M", "WSE-2")
    counts = np.bincount(p.pe_map().ravel(), minlength=len(p.regions))
    assert counts.tolist() == [r.pes for r in p.regions]
    assert sum(r.pes for r in p.regions) == p.wafer.n_pe
    # consecutive positions on the snake path are grid neighbours, so region i touches region i+1
    rows, cols = P.snake_coordinates(np.arange(p.wafer.n_pe), p.wafer.cols)
    assert (np.abs(np.diff(rows)) + np.abs(np.diff(cols)) == 1).all()
    grid = p.pe_map()
    for a, b in zip(p.regions, p.regions[1:]):
        ra, ca = P.snake_coordinates(np.array(a.start + a.pes - 1), p.wafer.cols)
        rb, cb = P.snake_coordinates(np.array(b.start), p.wafer.cols)
        assert abs(int(ra) - int(rb)) + abs(int(ca) - int(cb)) == 1
        assert grid[int(ra), int(ca)] != grid[int(rb), int(cb)]


def test_a_fitting_pipeline_is_balanced_and_respects_memory():
    for policy, top in (("save all", 1.0), ("recompute", 0.75)):
        p = P.layer_pipelined("111M", "WSE-2", activations=policy)
        for r in p.regions:
            assert r.bytes_needed <= r.bytes_available
        blocks = [r.tokens_per_s for r in p.regions if r.layer.kind == "block"]
        assert max(blocks) / min(blocks) < 1.001  # the stages that bound it run at one rate
        assert 0.95 * top < p.utilisation <= top + 1e-9


def test_snake_rectangles_cover_exactly_the_region():
    for start, count, cols in [(0, 5, 7), (3, 20, 7), (12, 2, 7), (5, 100, 9)]:
        covered = sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, r1, c0, c1 in
                      P.snake_rectangles(start, count, cols))
        assert covered == count


def test_layer_costs_match_gptlib_and_a_torch_flop_count():
    c = GPTConfig.cerebras("111M")
    layers = P.layer_costs(c)
    params = sum(l.params for l in layers)
    assert params == c.param_count() + c.vocab_size * c.d_model  # the head keeps its own copy
    gpt = c.flops_per_token()
    block_terms = sum(gpt[k] for k in ("qkv", "attention_scores", "attention_softmax",
                                       "attention_values", "attention_output", "ffn"))
    assert sum(l.flops_per_token for l in layers if l.kind == "block") == pytest.approx(block_terms)
    # an independent count: torch's FLOP counter on a real block (explicit attention)
    small = GPTConfig(vocab_size=50, context_length=16, n_layer=1, n_head=4, d_model=32,
                      attention_impl="explicit")
    T = 16
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        Block(small)(torch.randn(1, T, 32))
    block = P.layer_costs(small, T)[1]
    softmax = 3 * small.n_head * T  # element-wise, not counted by torch's counter
    assert counter.get_total_flops() == pytest.approx((block.flops_per_token - softmax) * T)


@pytest.mark.parametrize("config", [
    GPTConfig.cerebras("111M"), GPTConfig.cerebras("13B"),
    GPTConfig(vocab_size=50, context_length=16, n_layer=2, n_head=4, d_model=32, bias=False,
              tie_embeddings=False)], ids=["111M", "13B", "no bias, untied"])
def test_each_stage_costs_exactly_what_gptconfig_counts(config):
    """wse_demo takes every stage's weights and FLOPs from GPTConfig, to the last unit."""
    T = min(128, config.context_length)
    part, flops = config.param_counts(), config.layer_flops_per_token(T)
    embedding, *blocks, head = P.layer_costs(config, T)
    assert len(blocks) == config.n_layer
    assert embedding.params == part["token_embedding"] + part["position_embedding"]
    for block in blocks:
        assert block.params == part["block"]
        assert block.flops_per_token == sum(flops.values())
        assert sum(p.params for p in block.components) == block.params
    assert head.params == part["token_embedding"] + part["final_norm"]  # its own copy
    assert head.flops_per_token == config.flops_per_token(T)["logits"]
    # and GPTConfig's parts are the real model's
    if config.n_layer <= 2:
        from gptlib import GPT
        model = GPT(config)
        assert sum(t.numel() for t in model.transformer.h[0].parameters()) == part["block"]
        assert sum(t.numel() for t in model.parameters()) == config.param_count()


def test_weight_streaming_becomes_compute_bound_at_the_predicted_micro_batch():
    w = get_wafer("WSE-2")
    e = P.weight_streaming("1.3B", w)
    b_star = e.compute_bound_micro_batch
    # every weight does 2 FLOPs per token and is 2 bytes, so b* is about peak / (bandwidth x T)
    assert b_star == pytest.approx(w.peak_flops / (assumptions.MEMORYX_BANDWIDTH * 2048), rel=0.1)
    low = P.weight_streaming("1.3B", w, batch_size=4, micro_batch=4)
    high = P.weight_streaming("1.3B", w, batch_size=64, micro_batch=64)
    assert not low.compute_bound and high.compute_bound
    assert all(l.bound == "I/O" for l in low.layers if l.name.startswith("h."))
    assert all(l.bound == "compute" for l in high.layers if l.name.startswith("h."))
    assert high.utilisation > 2 * low.utilisation


def test_activations_limit_the_micro_batch():
    e = P.weight_streaming("13B", "WSE-2", n_systems=12)
    assert 1 <= e.max_micro_batch < 90 < 1080 / 12 + 1  # 90 sequences per system do not fit at once
    assert e.n_micro > 1 and e.micro_batch <= e.max_micro_batch


def test_data_parallel_scale_out_is_linear_while_compute_bound():
    a, b = P.scale_out("1.3B", [1, 2], "WSE-2")
    assert b.tokens_per_s / a.tokens_per_s == pytest.approx(2.0, rel=0.05)
    one = P.weight_streaming("111M", "WSE-2", n_systems=1)
    starved = P.weight_streaming("111M", "WSE-2", n_systems=60)  # 2 sequences per system
    assert not starved.compute_bound
    assert starved.tokens_per_s < 0.5 * 60 * one.tokens_per_s  # far from linear: waiting for weights
    assert starved.utilisation < 0.5


def test_training_time_on_the_papers_systems():
    rows = [P.training_time(m) for m in SIZES]
    assert [r["n_systems"] for r in rows] == [1, 1, 1, 4, 4, 16, 12]
    for r in rows:
        assert r["compute_bound"]
        # the model's FLOPs (no 2 C V for the embedding look-up) are within 30% of the paper's
        # reported algorithmic FLOPs, and below them
        assert r["flops_simulated"] == pytest.approx(r["flops_paper"], rel=0.3)
        assert r["flops_simulated"] < r["flops_paper"]
    thirteen = rows[-1]
    # compute-bound at peak, time = executed FLOPs / (systems x peak), whatever the micro-batching
    executed = thirteen["flops_simulated"] * P.training_passes() / 3
    ideal = executed / (12 * get_wafer("WSE-2").peak_flops) / 86400
    assert thirteen["days"] == pytest.approx(ideal, rel=0.05)


def test_bad_input_is_refused_clearly():
    with pytest.raises(Exception, match="Did you mean"):
        P.layer_pipelined("111m")
    with pytest.raises(P.PlacementError, match="GPTConfig"):
        P.layer_pipelined(42)
    with pytest.raises(P.PlacementError, match="longer than the model's context"):
        P.layer_pipelined("111M", seq_len=4096)
    with pytest.raises(P.PlacementError, match="at least one"):
        P.weight_streaming("111M", n_systems=200)
    with pytest.raises(P.PlacementError, match="efficiency"):
        P.weight_streaming("111M", efficiency=1.5)
    with pytest.raises(P.PlacementError, match="no layer"):
        P.layer_pipelined("111M").region("h.99")


def test_custom_small_wafer():
    tiny = WaferSpec.custom(32, 32)
    p = P.layer_pipelined("111M", tiny)
    assert not p.fits and p.pe_map().shape == (32, 32)


def test_a_changed_assumption_applies_at_call_time(monkeypatch):
    before = P.weight_streaming("1.3B").compute_bound_micro_batch
    monkeypatch.setattr(assumptions, "MEMORYX_BANDWIDTH", assumptions.MEMORYX_BANDWIDTH / 2)
    assert P.weight_streaming("1.3B").compute_bound_micro_batch == pytest.approx(2 * before)


def test_the_one_forward_one_backward_schedule_holds_s_minus_s_sequences():
    grid, held = P.one_forward_one_backward(4, 6)
    assert held == [4, 3, 2, 1]
    for s in range(4):  # every stage runs every sequence forward, then backward, once each
        ops = [op for op in grid[s] if op[0]]
        assert sorted(ops) == sorted([("F", k) for k in range(6)] + [("B", k) for k in range(6)])
    # a backward pass at stage s comes only after the stage below it has finished its own
    when = {(kind, s, k): t for s in range(4) for t, (kind, k) in enumerate(grid[s]) if kind}
    for k in range(6):
        for s in range(3):
            assert when[("B", s, k)] > when[("B", s + 1, k)]
            assert when[("F", s + 1, k)] > when[("F", s, k)]
    for S in range(1, 7):  # the rule the layer-pipelined placement uses: stage s keeps S - s
        assert P.one_forward_one_backward(S, S + 3)[1] == [S - s for s in range(S)]


def test_recomputing_counts_the_recomputed_sequences_input_once():
    c = GPTConfig.cerebras("1.3B")
    p = P.layer_pipelined("1.3B", "WSE-2", activations="recompute")
    S, T, C = len(p.regions), 2048, c.d_model
    h0 = p.region("h.0")
    # stage 1 has S - 1 sequences in flight: S - 2 inputs kept, one sequence's 8C + 2F in full
    assert h0.activation_bytes == ((S - 2) * C + 8 * C + 2 * c.d_ffn) * T * 2


def test_block_b_star_is_below_the_heads():
    # attention's T x T work uses no weights, so a block turns compute-bound a little earlier
    # than the head, whose FLOPs are all weight FLOPs: the head sets b*
    e = P.weight_streaming("13B", "WSE-2")
    per_layer = {l.name: e.micro_batch * l.io / l.compute_fwd for l in e.layers}
    assert max(per_layer, key=per_layer.get) == "embedding"  # a look-up: never compute-bound
    head, block = per_layer["lm_head"], per_layer["h.0"]
    assert block < head and head == pytest.approx(e.compute_bound_micro_batch)
    peak = get_wafer("WSE-2").peak_flops
    # (its final LayerNorm adds a few weights but no multiply-adds: 1e-4 above the formula)
    assert head == pytest.approx(peak / (assumptions.MEMORYX_BANDWIDTH * 2048), rel=1e-3)


def test_double_buffering_streamed_weights_leaves_no_more_room(monkeypatch):
    one = P.weight_streaming("1.3B", "WSE-2").max_micro_batch
    monkeypatch.setattr(assumptions, "STREAMED_WEIGHT_BUFFERS", 2)
    two = P.weight_streaming("1.3B", "WSE-2").max_micro_batch
    assert two <= one
    monkeypatch.setattr(assumptions, "STREAMED_WEIGHT_BUFFERS", 3)
    with pytest.raises(P.PlacementError, match="buffers must be 1 or 2"):
        P.weight_streaming("1.3B", "WSE-2")
