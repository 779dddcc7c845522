import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from gptlib import GPT, CheckpointError, GPTConfig, load_pretrained, save_pretrained
from gptlib.checkpoint import config_from_hf, config_to_hf, fold_mup


@pytest.fixture
def saved(tmp_path, tiny_model):
    save_pretrained(tiny_model, tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_round_trip_gives_identical_logits(saved, tiny_model, tiny_config):
    loaded = load_pretrained(saved)
    idx = torch.randint(0, tiny_config.vocab_size, (2, 16))
    assert torch.equal(loaded(idx)[0], tiny_model(idx)[0])
    assert loaded.config == tiny_model.config
    assert loaded.lm_head.weight is loaded.transformer.wte.weight


def test_files_use_hugging_face_gpt2_names_and_layout(saved, tiny_config):
    hf = json.loads((saved / "config.json").read_text())
    assert hf["model_type"] == "gpt2" and hf["architectures"] == ["GPT2LMHeadModel"]
    assert (hf["n_embd"], hf["n_layer"], hf["n_head"], hf["n_positions"]) == (32, 2, 4, 32)
    tensors = load_file(saved / "model.safetensors")
    assert "lm_head.weight" not in tensors  # tied, as Hugging Face stores it
    # Hugging Face's Conv1D keeps weights as (in, out)
    assert tensors["transformer.h.0.attn.c_attn.weight"].shape == (32, 96)
    assert tensors["transformer.h.0.mlp.c_fc.weight"].shape == (32, 128)


def test_checkpoint_without_transformer_prefix_and_with_mask_buffers_loads(saved, tiny_model):
    """GPT2Model-style keys (no 'transformer.') and the old 'attn.bias' mask buffers are accepted."""
    tensors = load_file(saved / "model.safetensors")
    renamed = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    renamed["h.0.attn.bias"] = torch.ones(1, 1, 32, 32)
    save_file(renamed, saved / "model.safetensors")
    loaded = load_pretrained(saved)
    torch.testing.assert_close(loaded.transformer.h[1].mlp.c_fc.weight, tiny_model.transformer.h[1].mlp.c_fc.weight)


def test_pytorch_bin_is_loaded_safely(saved, tiny_model, tmp_path):
    tensors = load_file(saved / "model.safetensors")
    (saved / "model.safetensors").unlink()
    torch.save(tensors, saved / "pytorch_model.bin")
    loaded = load_pretrained(saved)
    assert torch.equal(loaded.transformer.wte.weight, tiny_model.transformer.wte.weight)


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > should_not_exist.txt",))


def test_pickled_code_is_refused_not_run(saved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (saved / "model.safetensors").unlink()
    torch.save({"x": _Exploit()}, saved / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_pretrained(saved)
    assert not (tmp_path / "should_not_exist.txt").exists()


def test_mismatched_checkpoint_names_tensors_and_shapes(saved):
    tensors = load_file(saved / "model.safetensors")
    del tensors["transformer.h.1.ln_2.weight"]
    tensors["transformer.h.0.mlp.c_fc.weight"] = torch.zeros(32, 64)
    tensors["transformer.extra.weight"] = torch.zeros(3)
    save_file(tensors, saved / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_pretrained(saved)
    message = str(info.value)
    assert "missing tensors (1): ['transformer.h.1.ln_2.weight']" in message
    assert "unexpected tensors (1): ['transformer.extra.weight']" in message
    assert "transformer.h.0.mlp.c_fc.weight: file (32, 64), config needs (32, 128)" in message


def test_truncated_and_missing_files_are_reported(saved, tmp_path):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_pretrained(saved)
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        load_pretrained(saved)
    with pytest.raises(CheckpointError, match="not a directory"):
        load_pretrained(tmp_path / "nowhere")
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_pretrained(saved)


def test_save_is_atomic_when_writing_fails(saved, tiny_model, monkeypatch):
    """A crash while writing leaves the previous checkpoint loadable and no temporary files."""
    before = (saved / "model.safetensors").read_bytes()
    import gptlib.checkpoint as ck

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash mid-write")
    monkeypatch.setattr(ck, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(tiny_model, saved)
    assert (saved / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    load_pretrained(saved)


def test_hf_config_round_trip_and_defaults():
    config = GPTConfig.cerebras("111M")
    assert config_from_hf(config_to_hf(config)) == config
    mup = config.replace(mup=True)
    assert config_from_hf(config_to_hf(mup)) == mup
    # a plain GPT-2 config.json (no n_inner, tanh GELU)
    gpt2 = config_from_hf({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12,
                           "n_positions": 1024, "vocab_size": 50257, "activation_function": "gelu_new"})
    assert gpt2.d_ffn == 3072 and gpt2.activation == "gelu_new"
    with pytest.raises(CheckpointError, match="model_type 'llama'"):
        config_from_hf({"model_type": "llama"})
    with pytest.raises(CheckpointError, match="not divisible"):
        config_from_hf({"n_embd": 100, "n_head": 3})


def test_bos_and_eos_name_only_ids_the_vocabulary_has():
    small = config_to_hf(GPTConfig(vocab_size=78, context_length=8, n_layer=1, n_head=2, d_model=8))
    assert small["bos_token_id"] is None and small["eos_token_id"] is None
    gpt2 = config_to_hf(GPTConfig.cerebras("111M"))
    assert gpt2["bos_token_id"] == gpt2["eos_token_id"] == 50256 < gpt2["vocab_size"]


@pytest.mark.parametrize("tied", [True, False])
def test_mup_folding_is_undone_exactly_in_float64(tied):
    config = GPTConfig(vocab_size=40, context_length=8, n_layer=2, n_head=2, d_model=32, mup=True,
                       mup_base_width=8, tie_embeddings=tied)
    torch.manual_seed(0)
    state = {k: v.double() for k, v in GPT(config).state_dict().items()}
    folded = fold_mup(config, state)
    assert not torch.equal(folded["transformer.wte.weight"], state["transformer.wte.weight"])
    back = fold_mup(config, folded, inverse=True)
    for name in state:
        torch.testing.assert_close(back[name], state[name], rtol=1e-15, atol=0)


def test_mup_export_round_trip_is_exact_and_survives_other_loaders_rewriting_it(tmp_path):
    """gptlib reads back the exact tensors it trains; if another program rewrites the weights, the
    stamp no longer matches and the multipliers are taken out by arithmetic instead."""
    config = GPTConfig(vocab_size=40, context_length=16, n_layer=2, n_head=2, d_model=32, mup=True,
                       mup_base_width=8)
    torch.manual_seed(0)
    model = GPT(config).eval()
    save_pretrained(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["gptlib"]["mup_folded"] is True
    loaded = load_pretrained(tmp_path)
    assert loaded.config == config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    tensors = load_file(tmp_path / "model.safetensors")
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt", "by": "someone else"})
    rewritten = load_pretrained(tmp_path)
    idx = torch.randint(0, 40, (2, 16))
    with torch.no_grad():
        expected, got = model(idx)[0], rewritten(idx)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * float(expected.abs().max()))
