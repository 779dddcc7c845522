import math

import pytest
import torch
import torch.nn.functional as F

from gptlib import GPT, GPTConfig, attention, causal_mask
from gptlib.model import CausalSelfAttention, FeedForward


def test_causal_mask_shapes_and_offsets():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # two new queries after three cached keys: query 0 is position 3, sees keys 0..3
    assert torch.equal(causal_mask(2, 5), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))


def test_explicit_attention_equals_torch_fused_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 16) for _ in range(3))
    out, weights = attention(q, k, v, causal_mask(7))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))
    assert torch.all(weights.masked_select(~causal_mask(7)) == 0)


@pytest.mark.parametrize("mup", [False, True])
def test_the_two_attention_paths_of_the_model_agree(tiny_config, mup):
    torch.manual_seed(0)
    config = tiny_config.replace(mup=mup)
    model = GPT(config).eval()
    idx = torch.randint(0, config.vocab_size, (3, 20))
    fast, _ = model(idx)
    written_out = GPT(config.replace(attention_impl="explicit")).eval()
    written_out.load_state_dict(model.state_dict())
    explicit, _ = written_out(idx)
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=0)


def test_attention_layer_matches_a_hand_computation(tiny_config):
    torch.manual_seed(0)
    layer = CausalSelfAttention(tiny_config).eval()
    x = torch.randn(2, 5, tiny_config.d_model)
    q, k, v = layer.c_attn(x).split(tiny_config.d_model, dim=2)
    H, D = tiny_config.n_head, tiny_config.d_head
    heads = [t.view(2, 5, H, D).transpose(1, 2) for t in (q, k, v)]
    scores = heads[0] @ heads[1].transpose(-1, -2) / math.sqrt(D)
    scores = scores.masked_fill(torch.triu(torch.ones(5, 5, dtype=torch.bool), 1), float("-inf"))
    y = (scores.softmax(-1) @ heads[2]).transpose(1, 2).reshape(2, 5, -1)
    torch.testing.assert_close(layer(x), layer.c_proj(y), atol=1e-5, rtol=0)


def test_attention_maps_are_causal_distributions(tiny_model, tiny_config):
    idx = torch.randint(0, tiny_config.vocab_size, (2, 9))
    maps = tiny_model.attention_maps(idx)
    assert maps.shape == (tiny_config.n_layer, 2, tiny_config.n_head, 9, 9)
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))
    assert torch.all(maps[..., ~causal_mask(9)] == 0)


@pytest.mark.parametrize("activation, approximate", [("gelu", "none"), ("gelu_new", "tanh")])
def test_feed_forward_uses_the_requested_gelu(tiny_config, activation, approximate):
    torch.manual_seed(0)
    ffn = FeedForward(tiny_config.replace(activation=activation))
    x = torch.randn(2, 3, tiny_config.d_model)
    expected = ffn.c_proj(F.gelu(ffn.c_fc(x), approximate=approximate))
    torch.testing.assert_close(ffn(x), expected)


def test_gradients_flow_to_every_parameter(tiny_model, tiny_config):
    tiny_model.train()
    idx = torch.randint(0, tiny_config.vocab_size, (2, 16))
    _, loss = tiny_model(idx, targets=torch.roll(idx, -1, 1))
    loss.backward()
    for name, p in tiny_model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_untrained_loss_is_about_log_vocab(tiny_model, tiny_config):
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, tiny_config.vocab_size, (8, 32), generator=g)
    targets = torch.randint(0, tiny_config.vocab_size, (8, 32), generator=g)
    _, loss = tiny_model(idx, targets=targets)
    assert loss.item() == pytest.approx(math.log(tiny_config.vocab_size), rel=0.05)


def test_loss_ignores_positions_marked_minus_one(tiny_model, tiny_config):
    idx = torch.randint(0, tiny_config.vocab_size, (1, 8))
    targets = idx.clone()
    targets[0, 4:] = -1
    logits, loss = tiny_model(idx, targets)
    expected = F.cross_entropy(logits[0, :4], idx[0, :4])
    torch.testing.assert_close(loss, expected)


def test_tied_head_and_gpt2_initialisation():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=500, context_length=64, n_layer=8, n_head=4, d_model=256)
    model = GPT(config)
    assert model.lm_head.weight is model.transformer.wte.weight
    h0 = model.transformer.h[0]
    assert h0.attn.c_attn.weight.std().item() == pytest.approx(0.02 * 0.88, rel=0.05)  # truncated at 2 std
    assert h0.mlp.c_proj.weight.std().item() == pytest.approx(0.02 * 0.88 / math.sqrt(16), rel=0.05)
    assert torch.all(h0.attn.c_attn.bias == 0) and torch.all(h0.ln_1.weight == 1)
    assert model.transformer.wte.weight.abs().max() <= 0.04 + 1e-6


def test_mup_multipliers_and_init():
    config = GPTConfig(vocab_size=100, context_length=16, n_layer=2, n_head=4, d_model=512, mup=True)
    model = GPT(config)
    assert model.embedding_multiplier == 10.0
    assert model.logit_multiplier == pytest.approx(256 / 512)
    assert model.transformer.h[0].attn.scale == pytest.approx(1 / 128)
    stds = model.init_stds()
    assert stds["hidden"] == pytest.approx(0.08 / math.sqrt(2))
    assert stds["output_projection"] == pytest.approx(0.08 / math.sqrt(2) / 2)


@pytest.mark.parametrize("bad, error, message", [
    (lambda V: torch.tensor([[0, V]]), ValueError, r"token ids must be in \[0, 97\)"),
    (lambda V: torch.tensor([[-1, 2]]), ValueError, r"token ids must be in \[0, 97\)"),
    (lambda V: torch.tensor([[0.0, 1.0]]), TypeError, "integer token ids"),
    (lambda V: torch.tensor([1, 2, 3]), ValueError, r"shape \(B, T\)"),
    (lambda V: torch.zeros(1, 0, dtype=torch.long), ValueError, "empty"),
    (lambda V: torch.zeros(1, 33, dtype=torch.long), ValueError, "longer than the context length 32"),
    (lambda V: [[1, 2]], TypeError, "torch.Tensor"),
])
def test_bad_input_gets_a_clear_error(tiny_model, tiny_config, bad, error, message):
    with pytest.raises(error, match=message):
        tiny_model(bad(tiny_config.vocab_size))


def test_model_refuses_a_non_config():
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT({"n_layer": 2})


def test_config_is_frozen_and_checked_once(tiny_config):
    with pytest.raises(Exception, match="cannot assign"):
        tiny_config.dropout = 0.1
    assert tiny_config.replace(d_model=64).d_ffn == 256  # F = 4 C follows the new width
    assert tiny_config.replace(d_ffn=100).replace(d_model=64).d_ffn == 100  # a chosen F stays


def test_forward_reads_no_token_values(tiny_model, tiny_config, monkeypatch):
    """The id range is checked where ids enter (generate, the trainer), not in every forward pass:
    on a GPU, idx.min() and idx.max() would each wait for the device."""
    def no_reduction(*args, **kwargs):
        raise AssertionError("forward read the ids' values")
    idx = torch.randint(0, tiny_config.vocab_size, (2, 8))
    monkeypatch.setattr(torch.Tensor, "min", no_reduction)
    monkeypatch.setattr(torch.Tensor, "max", no_reduction)
    tiny_model(idx)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 97\)"):  # still clear on a CPU
        tiny_model(torch.tensor([[0, 97]]))
