"""muP as in Cerebras-GPT: the multipliers, the initialisation, and the coordinate check."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib import GPT, GPTConfig
from gptlib.model import attention, causal_mask
from gptlib.mup_experiments import (activation_sizes, best_is_interior, best_learning_rates, coordinate_check,
                        growth_with_width, lr_transfer, mean_losses)


def mup_model(width=512, base=256, n_layer=2, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=64, context_length=16, n_layer=n_layer, n_head=width // 64, d_model=width,
                         mup=True, mup_base_width=base))


def test_embedding_and_logit_multipliers():
    """Embeddings x m_emb (10); logits x 1 / m_d with m_d = d_model / d_base (here 2)."""
    model = mup_model(width=256, base=128)
    idx = torch.randint(64, (2, 16))
    seen = {}
    model.transformer.drop.register_forward_hook(lambda m, i, o: seen.setdefault("embedding", o))
    model.transformer.ln_f.register_forward_hook(lambda m, i, o: seen.setdefault("final", o))
    logits, _ = model(idx)
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    torch.testing.assert_close(seen["embedding"], 10.0 * (wte[idx] + wpe[:16]))
    torch.testing.assert_close(logits, (seen["final"] @ wte.T) / 2.0)


def test_attention_scores_are_scaled_by_one_over_d_head():
    model = mup_model(width=128, base=64)
    layer = model.transformer.h[0].attn
    x = torch.randn(2, 16, 128)
    q, k, v = layer.c_attn(x).split(128, dim=2)
    q, k, v = (t.view(2, 16, 2, 64).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-2, -1)) / 64  # 1 / D, not 1 / sqrt(D)
    weights = torch.softmax(scores.masked_fill(~causal_mask(16), float("-inf")), dim=-1)
    expected = layer.c_proj((weights @ v).transpose(1, 2).reshape(2, 16, 128))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    standard = GPT(GPTConfig(vocab_size=64, context_length=16, n_layer=1, n_head=2, d_model=128))
    assert standard.transformer.h[0].attn.scale == pytest.approx(1 / 8)


def truncated_std(sigma):
    """Std of N(0, sigma^2) truncated at +-2 sigma (what trunc_normal_ draws)."""
    phi = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return sigma * math.sqrt(1 - 2 * 2 * phi / mass)


def test_width_scaled_initialisation():
    """Embeddings sigma_base (0.08); hidden matrices sigma_base / sqrt(m_d); output projections
    also / sqrt(2 L)."""
    model = mup_model(width=512, base=128, n_layer=3)
    m_d, sigma = 4.0, 0.08
    block = model.transformer.h[0]
    cases = {
        "embedding": (model.transformer.wte.weight, sigma),
        "hidden c_attn": (block.attn.c_attn.weight, sigma / math.sqrt(m_d)),
        "hidden c_fc": (block.mlp.c_fc.weight, sigma / math.sqrt(m_d)),
        "output c_proj": (block.mlp.c_proj.weight, sigma / math.sqrt(m_d) / math.sqrt(6)),
        "output attn c_proj": (block.attn.c_proj.weight, sigma / math.sqrt(m_d) / math.sqrt(6)),
    }
    for name, (weight, std) in cases.items():
        assert weight.std().item() == pytest.approx(truncated_std(std), rel=0.03), name


def test_coordinate_check_flat_under_mup_growing_under_standard():
    """Yang et al.'s coordinate check: after a few Adam steps, the hidden activations grow in
    proportion to the width under the standard parametrization and stay put under muP."""
    tokens = torch.arange(4000) % 60  # a simple repeating text keeps the test fast and deterministic
    kwargs = dict(widths=(32, 64, 128, 256), steps=3, d_head=16, n_layer=2, tokens=tokens, vocab_size=64)
    standard = coordinate_check(mup=False, **kwargs)
    mup = coordinate_check(mup=True, **kwargs)
    assert {r["step"] for r in mup} == {0, 1, 2, 3}
    assert {r["layer"] for r in mup} == {"embedding", "block 1", "block 2", "logits"}
    for layer in ("block 1", "block 2"):
        assert growth_with_width(standard, layer, step=3) > 0.6, layer
        assert abs(growth_with_width(mup, layer, step=3)) < 0.15, layer
    # logits: growing under the standard parametrization, not under muP (where they start near 0)
    assert growth_with_width(standard, "logits", step=3) > 0.3
    assert growth_with_width(mup, "logits", step=3) < 0.05
    # before any update both are flat in the hidden layers: the difference is in the updates
    assert abs(growth_with_width(standard, "block 1", step=0)) < 0.5


def test_activation_sizes_names_every_layer():
    sizes = activation_sizes(mup_model(width=128, base=64, n_layer=3), torch.randint(64, (1, 8)))
    assert list(sizes) == ["embedding", "block 1", "block 2", "block 3", "logits"]
    assert all(v > 0 for v in sizes.values())


def test_lr_transfer_grid_runs_and_picks_a_best_rate():
    records = lr_transfer(widths=(32, 64), learning_rates=(1e-3, 1e-1), steps=12, n_layer=1, d_head=16,
                          context_length=16, batch_size=4, threads=1)
    assert [(r["width"], r["lr"]) for r in records] == [(32, 1e-3), (32, 1e-1), (64, 1e-3), (64, 1e-1)]
    assert all(r["mup"] for r in records) and all(r["seed"] == 0 for r in records)
    best = best_learning_rates(records)
    assert set(best) == {32, 64}
    # in 12 steps the larger learning rate learns more, at both widths
    assert best == {32: 1e-1, 64: 1e-1}


def test_bad_widths_are_refused():
    with pytest.raises(ValueError, match="multiple of d_head"):
        coordinate_check(widths=(48,), d_head=32, tokens=torch.arange(100), vocab_size=100)
    with pytest.raises(ValueError, match="at least two widths"):
        growth_with_width([{"width": 8, "step": 0, "layer": "logits", "size": 1.0}], "logits", 0)


def test_lr_transfer_seed_changes_the_runs_and_is_recorded():
    kwargs = dict(widths=(32,), learning_rates=(1e-2,), steps=4, n_layer=1, d_head=16,
                  context_length=16, batch_size=4, threads=1)
    a, b, again = lr_transfer(seed=0, **kwargs), lr_transfer(seed=1, **kwargs), lr_transfer(seed=0, **kwargs)
    assert a[0]["seed"] == 0 and b[0]["seed"] == 1
    assert a[0]["val_loss"] == again[0]["val_loss"] != b[0]["val_loss"]


def seeded(rows):
    """Records from (width, lr, seed, loss) rows."""
    return [{"width": w, "lr": lr, "seed": s, "val_loss": loss, "mup": True} for w, lr, s, loss in rows]


def test_mean_losses_average_seeds_and_a_diverged_seed_spoils_the_rate():
    records = seeded([(32, 1e-2, 0, 3.0), (32, 1e-2, 1, 2.0), (32, 1e-1, 0, 1.0),
                      (32, 1e-1, 1, float("nan")), (64, 1e-2, 0, 2.5)])
    means = mean_losses(records)
    assert list(means) == [(32, 1e-2), (32, 1e-1), (64, 1e-2)]
    assert means[32, 1e-2] == 2.5 and math.isnan(means[32, 1e-1]) and means[64, 1e-2] == 2.5


def test_best_learning_rates_use_the_mean_over_seeds():
    # seed 0 alone prefers 1e-1, seed 1 alone 1e-2; their mean prefers 1e-2
    records = seeded([(32, 1e-2, 0, 2.6), (32, 1e-1, 0, 2.5), (32, 1e-2, 1, 2.4), (32, 1e-1, 1, 2.7)])
    assert best_learning_rates([r for r in records if r["seed"] == 0]) == {32: 1e-1}
    assert best_learning_rates([r for r in records if r["seed"] == 1]) == {32: 1e-2}
    assert best_learning_rates(records) == {32: 1e-2}
    # one record per rate: the plain minimum, as before seeds existed
    assert best_learning_rates(seeded([(8, 1e-3, 0, 3.0), (8, 1e-2, 0, 2.0)])) == {8: 1e-2}


def test_best_is_interior_flags_a_best_rate_at_an_end_of_the_grid():
    records = seeded([(32, lr, 0, loss) for lr, loss in ((1e-3, 3.0), (1e-2, 2.0), (1e-1, 2.5))]
                     + [(64, lr, 0, loss) for lr, loss in ((1e-3, 2.0), (1e-2, 2.2), (1e-1, 2.9))]
                     + [(96, lr, 0, loss) for lr, loss in ((1e-3, 3.0), (1e-2, 2.2), (1e-1, 2.1))])
    assert best_is_interior(records) == {32: True, 64: False, 96: False}


def test_records_without_the_keys_are_refused_by_name():
    with pytest.raises(ValueError, match="'width', 'lr' and 'val_loss'"):
        mean_losses([{"width": 32, "lr": 1e-2}])
    with pytest.raises(ValueError, match="record 1"):
        best_learning_rates([{"width": 32, "lr": 1e-2, "val_loss": 2.0}, (32, 1e-2, 2.0)])
