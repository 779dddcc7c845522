import math

import pytest
import torch

from gptlib import CEREBRAS_GPT, GPT, ConfigError, GPTConfig


@pytest.mark.parametrize("name", list(CEREBRAS_GPT))
def test_preset_param_count_matches_a_real_module(name):
    """The formula agrees with the parameters an actual module holds (built on `meta`: no memory)."""
    config = GPTConfig.cerebras(name)
    with torch.device("meta"):
        model = GPT(config)
    assert model.num_params() == config.param_count()
    assert model.num_params(include_embeddings=False) == config.param_count(include_embeddings=False)


@pytest.mark.parametrize("name", list(CEREBRAS_GPT))
def test_preset_sizes_match_their_published_names(name):
    """111M has about 111 million parameters, 1.3B about 1.3 billion, and so on (within 3%)."""
    value, unit = float(name[:-1]), name[-1]
    published = value * (1e6 if unit == "M" else 1e9)
    assert GPTConfig.cerebras(name).param_count() == pytest.approx(published, rel=0.03)


def test_preset_architecture_follows_the_reference_table():
    c = GPTConfig.cerebras("2.7B")
    assert (c.n_layer, c.d_model, c.n_head, c.d_head, c.d_ffn) == (32, 2560, 32, 80, 10240)
    assert (c.vocab_size, c.context_length, c.activation, c.layer_norm_eps) == (50257, 2048, "gelu", 1e-5)
    assert c.tie_embeddings and c.bias and c.dropout == 0.0
    assert GPTConfig.cerebras("111M", context_length=256).context_length == 256


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"Did you mean '1\.3B'"):
        GPTConfig.cerebras("1.3b")
    with pytest.raises(ConfigError, match="published sizes are"):
        GPTConfig.cerebras("7B")


@pytest.mark.parametrize("changes, message", [
    (dict(d_model=100, n_head=3), "not divisible by n_head"),
    (dict(n_layer=0), "n_layer must be a positive integer"),
    (dict(vocab_size=-5), "vocab_size must be a positive integer"),
    (dict(n_head=2.5), "n_head must be a positive integer"),
    (dict(activation="relu"), "activation must be one of"),
    (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(layer_norm_eps=float("nan")), "layer_norm_eps must be a finite number > 0"),
    (dict(attention_impl="flash"), "attention_impl must be one of"),
])
def test_invalid_configs_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ConfigError, match=message):
        GPTConfig(**{**dict(vocab_size=10, context_length=8, n_layer=1, n_head=2, d_model=8), **changes})


def test_from_dict_names_unknown_fields():
    with pytest.raises(ConfigError, match="n_embd"):
        GPTConfig.from_dict({"n_embd": 768})
    c = GPTConfig(vocab_size=10, context_length=8, n_layer=1, n_head=2, d_model=8)
    assert GPTConfig.from_dict(c.to_dict()) == c


def test_param_count_by_hand_for_a_small_model():
    c = GPTConfig(vocab_size=10, context_length=4, n_layer=1, n_head=1, d_model=2, d_ffn=3)
    block = (2 * 2) * 2 + (2 * 6 + 6) + (2 * 2 + 2) + (2 * 3 + 3) + (3 * 2 + 2)
    assert c.param_count() == 10 * 2 + 4 * 2 + block + 4
    assert c.replace(tie_embeddings=False).param_count() == c.param_count() + 10 * 2


def test_training_flops_6nd_and_the_fuller_count():
    c = GPTConfig.cerebras("111M")
    tokens = CEREBRAS_GPT["111M"].tokens
    assert c.training_flops(tokens) == 6 * c.param_count(include_embeddings=False) * tokens
    full = c.training_flops(tokens, "full")
    per_token = c.flops_per_token()
    assert per_token["attention_scores"] == c.n_layer * 2 * 2048 * 768
    assert full == pytest.approx(3 * per_token["total"] * tokens)
    # the fuller count includes attention and the logits: larger than 6ND, and within 15% of the
    # compute the paper reports for every size
    for name, run in CEREBRAS_GPT.items():
        cfg = GPTConfig.cerebras(name)
        assert cfg.training_flops(run.tokens, "full") > cfg.training_flops(run.tokens)
        assert math.isclose(cfg.training_flops(run.tokens, "full"), run.reported_flops, rel_tol=0.15)
    with pytest.raises(ValueError, match="method"):
        c.training_flops(1.0, "7ND")


def test_cerebras_runs_are_twenty_tokens_per_parameter():
    for name, run in CEREBRAS_GPT.items():
        ratio = run.tokens / GPTConfig.cerebras(name).param_count()
        assert ratio == pytest.approx(20.0, rel=0.02), name
