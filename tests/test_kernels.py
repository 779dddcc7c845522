"""Distributed kernels compute the same numbers as numpy and torch, and count their traffic."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib import GPT, GPTConfig
from wse_demo import kernels
from wse_demo.fabric import Fabric, FabricError, SramError
from wse_demo.kernels import Activations, GPTOnFabric, place_matrix, split_sizes


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 9), K=st.integers(1, 40), N=st.integers(1, 40), rows=st.integers(1, 7),
       cols=st.integers(1, 7), seed=st.integers(0, 2**16), bias=st.booleans())
def test_matmul_equals_numpy_for_any_shape(M, K, N, rows, cols, seed, bias):
    """Including shapes that do not divide the grid and matrices smaller than the grid."""
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((M, K)), rng.standard_normal((K, N)), rng.standard_normal(N)
    f = Fabric(rows, cols)
    y = kernels.matmul(f, torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                       torch.tensor(b, dtype=torch.float32) if bias else None)
    expected = x @ w + (b if bias else 0)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert f.sram_used.sum() == 0  # the weights were freed again
    assert f.stats().flops == 2 * M * K * N  # multiply-adds only; the bias adds are counted as cycles


def test_tiles_hold_the_matrix_split_as_evenly_as_possible():
    f = Fabric(4, 3)
    w = torch.arange(70, dtype=torch.float32).reshape(10, 7)
    m = place_matrix(f.whole(), w, name="W")
    assert split_sizes(10, 4).tolist() == [3, 3, 2, 2] and split_sizes(7, 3).tolist() == [3, 2, 2]
    torch.testing.assert_close(m.weight(), w)
    torch.testing.assert_close(m.tiles[1, 2, :3, :2], w[3:6, 5:7])
    expected_bytes = np.outer([3, 3, 2, 2], [3, 2, 2]) * 4
    assert (f.sram_used == expected_bytes).all()


def test_link_loads_and_cycles_of_a_small_multiply():
    """2 x 2 PEs, K = N = 2, one token: every PE holds one weight.

    The x values enter PE (i, 0) at cycle 1 and PE (i, 1) at cycle 2; each PE multiplies for one
    cycle; the top row sends its partial sums south at cycles 2 and 3, the bottom row adds and is
    sending at 3 and 4; its one wavelet per column is complete one cycle later: cycle 5.
    """
    f = Fabric(2, 2, trace=True)
    kernels.matmul(f, torch.ones(1, 2), torch.ones(2, 2))
    s = f.trace[0]["schedule"]
    assert s.arrive.tolist() == [[1, 2], [1, 2]]
    assert s.send.tolist() == [[2, 3], [3, 4]]
    assert f.cycles == s.done == 5
    assert f.links["east"][:, 0].tolist() == [1, 1] and f.links["south"][0].tolist() == [1, 1]


def test_traffic_scales_with_tokens_and_tiles():
    M, K, N = 6, 12, 9
    f = Fabric(4, 3)
    kernels.matmul(f, torch.randn(M, K), torch.randn(K, N))
    k, n = split_sizes(K, 4), split_sizes(N, 3)
    assert (f.links["east"] == M * k[:, None]).all()  # every row's slice of x crosses each link
    assert (f.links["south"] == M * n[None, :]).all()  # every column's partial sums go down
    assert f.io_in == M * K and f.io_out == M * N
    util = f.stats().utilisation
    assert 0 < util.min() and util.max() <= 1


def test_a_matrix_too_big_for_the_grid_names_the_pe():
    with pytest.raises(SramError, match=r"PE \(0, 0\) would need 147,456 bytes"):
        kernels.matmul(Fabric(8, 8), torch.randn(2, 768), torch.randn(768, 3072))  # 96 x 384 floats


def test_matmul_refuses_mismatched_shapes():
    with pytest.raises(FabricError, match="agree on K"):
        kernels.matmul(Fabric(2, 2), torch.randn(3, 4), torch.randn(5, 2))
    with pytest.raises(FabricError, match="2-D"):
        kernels.matmul(Fabric(2, 2), torch.randn(4), torch.randn(4, 2))


def test_move_keeps_values_and_counts_hops():
    f = Fabric(4, 4)
    x = torch.randn(5, 6)
    act = Activations(x, np.array([0, 3, 6]), np.array([[0, 0], [0, 1]]))
    moved = kernels.move(f, act, np.array([0, 2, 6]), np.array([[3, 3], [2, 3]]))
    torch.testing.assert_close(moved.values, x)
    # overlaps: [0,2) (0,0)->(3,3) 6 hops; [2,3) (0,0)->(2,3) 5 hops; [3,6) (0,1)->(2,3) 4 hops
    assert f.log[-1].wavelets == 5 * (2 * 6 + 1 * 5 + 3 * 4)
    assert f.stats().wavelets == 5 * (2 * 6 + 1 * 5 + 3 * 4)


def make_model(**overrides):
    torch.manual_seed(0)
    cfg = dict(vocab_size=97, context_length=32, n_layer=2, n_head=4, d_model=32)
    cfg.update(overrides)
    return GPT(GPTConfig(**cfg)).eval()


@pytest.mark.parametrize("overrides", [{}, {"activation": "gelu_new", "bias": False},
                                       {"mup": True, "n_layer": 1}, {"tie_embeddings": False}])
def test_tiny_gpt_logits_equal_gptlib(overrides):
    model = make_model(**overrides)
    idx = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))
    f = Fabric(32, 32)
    placed = GPTOnFabric(f, model)
    logits = placed(idx)
    with torch.no_grad():
        expected, _ = model(idx)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    # only the weights stay in SRAM after the pass: every activation buffer was freed
    weights = sum(int(a.sum()) for _, _, a in f.allocations.values())
    assert f.sram_used.sum() == weights
    kinds = {r.kind for r in f.log}
    assert {"embedding", "layer_norm", "matmul", "attention", "gelu", "add", "move"} <= kinds
    assert f.stats().flops > 0 and f.cycles > 0


def test_gpt_placement_fails_clearly_when_the_fabric_is_too_small():
    model = make_model()
    with pytest.raises(FabricError, match="needs at least 12"):
        GPTOnFabric(Fabric(32, 10), model)  # embedding, 5 strips per block (one for the heads), head
    with pytest.raises(SramError, match=r"PE \(\d+, \d+\) would need"):
        GPTOnFabric(Fabric(2, 16, sram_per_pe=1024), model)
    with pytest.raises(FabricError, match="gptlib.GPT"):
        GPTOnFabric(Fabric(8, 8), torch.nn.Linear(2, 2))
