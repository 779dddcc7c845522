import pytest
import torch
import torch.nn.functional as F

from gptlib.sample import generate, next_token_distribution, top_k_filter, top_p_filter


def test_greedy_generation_is_identical_with_and_without_the_cache(tiny_model, tiny_config):
    idx = torch.randint(0, tiny_config.vocab_size, (3, 5), generator=torch.Generator().manual_seed(0))
    # 40 new tokens: runs past the context of 32, so the sliding-window path is exercised too
    with_cache = generate(tiny_model, idx, 40, temperature=0, use_cache=True)
    without = generate(tiny_model, idx, 40, temperature=0, use_cache=False)
    assert with_cache.shape == (3, 45)
    assert torch.equal(with_cache, without)


def test_cached_logits_equal_full_recompute(tiny_model, tiny_config):
    idx = torch.randint(0, tiny_config.vocab_size, (2, 12))
    full, _ = tiny_model(idx)
    cache = tiny_model.new_kv_cache(2)
    first, _ = tiny_model(idx[:, :7], kv_cache=cache)
    rest = [tiny_model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(7, 12)]
    torch.testing.assert_close(torch.cat([first] + rest, 1), full, atol=1e-5, rtol=1e-5)


def test_sampling_is_reproducible_with_a_generator(tiny_model):
    idx = torch.zeros(1, 1, dtype=torch.long)
    a = generate(tiny_model, idx, 20, temperature=1.0, generator=torch.Generator().manual_seed(7))
    b = generate(tiny_model, idx, 20, temperature=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_long_prompts_are_cropped_not_crashed(tiny_model, tiny_config):
    long_prompt = torch.randint(0, tiny_config.vocab_size, (50,))
    out = generate(tiny_model, long_prompt, 3, temperature=0)
    assert out.shape == (53,) and torch.equal(out[:50], long_prompt)


def test_top_k_and_top_p_keep_the_right_support():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    assert torch.isfinite(top_k_filter(logits, 2)).sum() == 2
    kept = torch.isfinite(top_p_filter(logits, 0.8))  # 0.5 + 0.2 < 0.8 <= 0.5 + 0.2 + 0.15
    assert kept.tolist() == [[True, True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.01)).sum() == 1  # the top token always stays
    probs = next_token_distribution(logits, temperature=1.0, top_k=3)
    torch.testing.assert_close(probs, torch.tensor([[0.5, 0.2, 0.15, 0, 0]]) / 0.85)
    greedy = next_token_distribution(logits, temperature=0)
    assert greedy.tolist() == [[1.0, 0, 0, 0, 0]]


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    cold, hot = next_token_distribution(logits, 0.5), next_token_distribution(logits, 2.0)
    assert cold[0, 0] > torch.softmax(logits, -1)[0, 0] > hot[0, 0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1.0), "temperature must be a finite number >= 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number >= 0"),
    (dict(top_k=0), r"top_k must be an integer in \[1, 97\]"),
    (dict(top_k=98), r"top_k must be an integer in \[1, 97\]"),
    (dict(top_p=0.0), r"top_p must be a number in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be a number in \(0, 1\]"),
    (dict(max_new_tokens=-1), "max_new_tokens must be an integer >= 0"),
])
def test_bad_sampling_settings_are_refused(tiny_model, kwargs, message):
    args = dict(max_new_tokens=2) | kwargs
    with pytest.raises(ValueError, match=message):
        generate(tiny_model, torch.zeros(1, 1, dtype=torch.long), **args)


def test_empty_prompt_is_refused(tiny_model):
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(tiny_model, torch.zeros(1, 0, dtype=torch.long), 3)


def test_generation_restores_training_mode(tiny_model):
    tiny_model.train()
    generate(tiny_model, torch.zeros(1, 1, dtype=torch.long), 2)
    assert tiny_model.training


@pytest.mark.parametrize("prompt, new", [(5, 1), (5, 20), (31, 3), (32, 4), (50, 6)])
def test_a_cache_sized_to_the_generation_gives_the_tokens_of_no_cache(tiny_model, tiny_config,
                                                                      prompt, new):
    """generate sizes its cache to the prompt plus the new tokens (at most the context of 32);
    around that bound, and past it, the tokens are those of the uncached run."""
    idx = torch.randint(0, tiny_config.vocab_size, (2, prompt),
                        generator=torch.Generator().manual_seed(prompt))
    with_cache = generate(tiny_model, idx, new, temperature=0)
    assert with_cache.dtype == torch.long and with_cache.shape == (2, prompt + new)
    assert torch.equal(with_cache, generate(tiny_model, idx, new, temperature=0, use_cache=False))
    assert torch.equal(with_cache[:, :prompt], idx)


def test_an_int32_prompt_gives_int64_ids(tiny_model):
    out = generate(tiny_model, torch.zeros(1, 3, dtype=torch.int32), 2, temperature=0)
    assert out.dtype == torch.long and out.shape == (1, 5)


@pytest.mark.parametrize("capacity", [0, 33, 2.5])
def test_a_cache_capacity_outside_the_context_is_refused(tiny_model, capacity):
    with pytest.raises(ValueError, match=r"capacity must be an integer in \[1, 32\]"):
        tiny_model.new_kv_cache(1, capacity)


def test_a_full_sized_cache_refuses_more_positions_than_it_holds(tiny_model):
    cache = tiny_model.new_kv_cache(1, capacity=4)
    tiny_model(torch.zeros(1, 4, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match="KV cache holds 4 positions"):
        tiny_model(torch.zeros(1, 1, dtype=torch.long), kv_cache=cache)


@pytest.mark.parametrize("n_out, n_in, parts", [(12, 7, 2), (13, 7, 2), (13, 7, 3), (50, 7, 4),
                                                (5, 7, 1), (3072, 768, 2), (50257, 64, 2)])
def test_a_split_row_product_equals_the_plain_one(n_out, n_in, parts):
    """Every block, and the rows left over when ``parts`` does not divide ``out``, land where
    F.linear puts them, with and without a bias; also at a 111M layer's shape and with a
    vocabulary-sized odd head."""
    from gptlib.model import split_row_product

    g = torch.Generator().manual_seed(n_out)
    row, weight = torch.randn(1, n_in, generator=g), torch.randn(n_out, n_in, generator=g)
    bias = torch.randn(n_out, generator=g)
    for b in (bias, None):
        torch.testing.assert_close(split_row_product(row, weight, b, parts),
                                   F.linear(row, weight, b), rtol=1e-6, atol=1e-6)


def test_one_row_split_gives_the_same_logits_and_is_undone_after(tiny_model, tiny_config):
    """The split changes how one-row products are computed, not what they compute; the prompt's
    many-row product is left whole; the counts are set only inside the block, even when it
    raises, and nested blocks give back what the outer one set."""
    from gptlib.model import Linear, one_row_split

    idx = torch.randint(0, tiny_config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(3))
    layers = [m for m in tiny_model.modules() if isinstance(m, Linear)]
    assert len(layers) == 4 * tiny_config.n_layer + 1  # c_attn, c_proj, c_fc, c_proj; the head
    cache = tiny_model.new_kv_cache(1)
    plain = [tiny_model(idx[:, :5], kv_cache=cache)[0]]
    plain += [tiny_model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(5, 9)]
    cache = tiny_model.new_kv_cache(1)
    with pytest.raises(KeyError), one_row_split(tiny_model, parts=3, min_elements=0,
                                                min_model_elements=0):
        assert all(m.one_row_parts == 3 for m in layers)
        with one_row_split(tiny_model, parts=2, min_elements=0, min_model_elements=0):
            assert all(m.one_row_parts == 2 for m in layers)
        assert all(m.one_row_parts == 3 for m in layers)
        fast = [tiny_model(idx[:, :5], kv_cache=cache)[0]]
        fast += [tiny_model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(5, 9)]
        raise KeyError("leave the block by an exception")
    assert all(m.one_row_parts == 0 and "one_row_parts" not in vars(m) for m in layers)
    torch.testing.assert_close(torch.cat(fast, 1), torch.cat(plain, 1), rtol=1e-5, atol=1e-6)


def test_one_row_split_leaves_layers_it_cannot_split_whole():
    """A weight on another device, a non-contiguous one, or fewer outputs than blocks: whole."""
    from gptlib.model import Linear, one_row_split

    model = torch.nn.Sequential(Linear(8, 16), Linear(8, 3), Linear(8, 16, device="meta"),
                                Linear(16, 8))
    model[3].weight = torch.nn.Parameter(torch.randn(8, 16).t().contiguous().t())  # (out, in) view
    assert not model[3].weight.is_contiguous()
    with one_row_split(model, parts=4, min_elements=0, min_model_elements=0):
        assert [m.one_row_parts for m in model] == [4, 0, 0, 0]


def test_a_split_product_keeps_the_dtype_of_autocast():
    """Under CPU autocast a split one-row product comes out in the dtype F.linear gives."""
    from gptlib.model import Linear, one_row_split

    layer = Linear(8, 16)
    row = torch.randn(1, 1, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = layer(row)
        with one_row_split(layer, parts=2, min_elements=0, min_model_elements=0):
            split = layer(row)
    assert split.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(split, plain, rtol=1e-2, atol=1e-2)


def test_one_row_split_leaves_small_weights_small_models_and_one_thread_alone(tiny_model):
    """Each weight must reach min_elements, and the model's linear weights together (the tied
    head counted once) min_model_elements; one block is no split at all."""
    from gptlib.model import SPLIT_MIN_ELEMENTS, SPLIT_MIN_MODEL_ELEMENTS, Linear, one_row_split

    layers = [m for m in tiny_model.modules() if isinstance(m, Linear)]
    total = sum(p.numel() for n, p in tiny_model.named_parameters()
                if n.endswith(".weight") and p.dim() == 2 and "wpe" not in n)
    assert all(m.weight.numel() < SPLIT_MIN_ELEMENTS for m in layers)  # the tiny model's are small
    assert total < SPLIT_MIN_MODEL_ELEMENTS
    with one_row_split(tiny_model, parts=2):
        assert all(m.one_row_parts == 0 for m in layers)
    with one_row_split(tiny_model, parts=2, min_elements=0):  # large enough weights, small model
        assert all(m.one_row_parts == 0 for m in layers)
    with one_row_split(tiny_model, parts=2, min_elements=0, min_model_elements=total):
        assert all(m.one_row_parts == 2 for m in layers)
    with one_row_split(tiny_model, parts=2, min_elements=0, min_model_elements=total + 1):
        assert all(m.one_row_parts == 0 for m in layers)
    with one_row_split(tiny_model, parts=1, min_elements=0, min_model_elements=0):
        assert all(m.one_row_parts == 0 for m in layers)


@pytest.mark.parametrize("model, arguments, error, message", [
    ("my model", {"parts": 2}, TypeError, "model must be a torch module"),
    (None, {"parts": 0}, ValueError, "parts must be a positive integer, got 0"),
    (None, {"parts": 2.5}, ValueError, "parts must be a positive integer, got 2.5"),
    (None, {"min_elements": -1}, ValueError, r"min_elements must be an integer >= 0, got -1"),
])
def test_one_row_split_refuses_bad_arguments_by_name(tiny_model, model, arguments, error, message):
    from gptlib.model import one_row_split

    with pytest.raises(error, match=message), one_row_split(model or tiny_model, **arguments):
        pass


def test_generate_on_one_sequence_uses_the_split_and_keeps_the_tokens(tiny_model, tiny_config,
                                                                      monkeypatch):
    """generate(one sequence, the KV cache, a CPU) runs with one_row_split, and its greedy
    tokens are those of the uncached run, which never uses it."""
    import gptlib.model
    import gptlib.sample as sample

    entered = []

    def spy(model):
        entered.append(model)
        return gptlib.model.one_row_split(model, parts=2, min_elements=0, min_model_elements=0)

    monkeypatch.setattr(sample, "one_row_split", spy)
    idx = torch.randint(0, tiny_config.vocab_size, (1, 4), generator=torch.Generator().manual_seed(4))
    fast = generate(tiny_model, idx, 40, temperature=0)
    assert entered == [tiny_model]
    assert torch.equal(fast, generate(tiny_model, idx, 40, temperature=0, use_cache=False))
    generate(tiny_model, idx.expand(2, -1), 10, temperature=0)  # two sequences: two-row products
    assert entered == [tiny_model]
