"""The table of bad inputs: for each public function, what a reader might feed it and what they get.

Every row is a test: the call must raise the named exception with a message that matches (says
what was wrong and what is allowed), never a crash deep inside torch or a silent wrong result.
Run ``python tests/test_bad_inputs.py`` to print the table as Markdown with counts per function.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gptlib import GPT, CheckpointError, ConfigError, GPTConfig, load_pretrained  # noqa: E402
from gptlib.assets import SHAKESPEARE, AssetError, require  # noqa: E402
from gptlib.data import BatchSampler, get_batch, train_val_split  # noqa: E402
from gptlib.sample import generate  # noqa: E402
from gptlib.tokenizer import CharTokenizer, train_bpe  # noqa: E402


@dataclass
class Bad:
    function: str
    given: str
    call: Callable[[Path], object]  # receives a temporary folder
    error: type
    says: str  # regex the message must match


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, context_length=8, n_layer=1, n_head=2, d_model=8)).eval()


def _saved(tmp: Path) -> Path:
    _model().save_pretrained(tmp / "ck")
    return tmp / "ck"


def _edit_weights(tmp: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file
    path = _saved(tmp)
    tensors = load_file(path / "model.safetensors")
    edit(tensors)
    save_file(tensors, path / "model.safetensors")
    return path


def _truncate(tmp: Path) -> Path:
    path = _saved(tmp)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[:100])
    return path


def _wrong_format(tmp: Path) -> Path:
    path = _saved(tmp)
    (path / "model.safetensors").write_text("this is not a tensor file")
    return path


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo ran > pwned.txt",))


def _pickled_code(tmp: Path) -> Path:
    path = _saved(tmp)
    (path / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": _RunsCode()}, path / "pytorch_model.bin")
    return path


def _modified_corpus(tmp: Path):
    (tmp / "shakespeare.txt").write_text("To be, or not to be, edited.")
    os.environ["GPTLIB_DATA"] = str(tmp)
    try:
        return require(SHAKESPEARE)
    finally:
        del os.environ["GPTLIB_DATA"]


def _missing_corpus(tmp: Path):
    os.environ["GPTLIB_DATA"] = str(tmp)
    try:
        return require(SHAKESPEARE)
    finally:
        del os.environ["GPTLIB_DATA"]


CFG = dict(vocab_size=50, context_length=8, n_layer=1, n_head=2, d_model=8)
TABLE: list[Bad] = [
    # GPTConfig
    Bad("GPTConfig", "d_model=10, n_head=3", lambda t: GPTConfig(**{**CFG, "d_model": 10, "n_head": 3}), ConfigError, "not divisible by n_head=3.*Head counts that divide 10"),
    Bad("GPTConfig", "n_layer=0", lambda t: GPTConfig(**{**CFG, "n_layer": 0}), ConfigError, "n_layer must be a positive integer"),
    Bad("GPTConfig", "n_head=-2", lambda t: GPTConfig(**{**CFG, "n_head": -2}), ConfigError, "n_head must be a positive integer"),
    Bad("GPTConfig", "vocab_size=50.5", lambda t: GPTConfig(**{**CFG, "vocab_size": 50.5}), ConfigError, "vocab_size must be a positive integer"),
    Bad("GPTConfig", "activation='relu'", lambda t: GPTConfig(**{**CFG, "activation": "relu"}), ConfigError, r"activation must be one of \('gelu', 'gelu_new'\)"),
    Bad("GPTConfig", "dropout=1.5", lambda t: GPTConfig(**{**CFG, "dropout": 1.5}), ConfigError, r"dropout must be in \[0, 1\)"),
    Bad("GPTConfig", "layer_norm_eps=0", lambda t: GPTConfig(**{**CFG, "layer_norm_eps": 0}), ConfigError, "positive finite"),
    Bad("GPTConfig", "bias='yes'", lambda t: GPTConfig(**{**CFG, "bias": "yes"}), ConfigError, "bias must be True or False"),
    Bad("GPTConfig.cerebras", "'1.3b' (wrong case)", lambda t: GPTConfig.cerebras("1.3b"), ConfigError, "Did you mean '1.3B'"),
    Bad("GPTConfig.cerebras", "'110M' (not published)", lambda t: GPTConfig.cerebras("110M"), ConfigError, "Did you mean '111M'"),
    Bad("GPTConfig.from_dict", "HF key 'n_embd'", lambda t: GPTConfig.from_dict({"n_embd": 8}), ConfigError, "unknown GPTConfig field"),
    Bad("GPTConfig.training_flops", "method='7ND'", lambda t: GPTConfig(**CFG).training_flops(1e9, "7ND"), ValueError, "method must be '6ND' or 'full'"),
    Bad("GPTConfig.training_flops", "tokens=-1", lambda t: GPTConfig(**CFG).training_flops(-1), ValueError, "tokens must be >= 0"),
    # GPT.forward
    Bad("GPT.forward", "id equal to vocab_size", lambda t: _model()(torch.tensor([[0, 50]])), ValueError, r"token ids must be in \[0, 50\), got values in \[0, 50\]"),
    Bad("GPT.forward", "negative id", lambda t: _model()(torch.tensor([[-3, 1]])), ValueError, r"token ids must be in \[0, 50\)"),
    Bad("GPT.forward", "float ids", lambda t: _model()(torch.tensor([[1.0, 2.0]])), TypeError, "integer token ids"),
    Bad("GPT.forward", "bool ids", lambda t: _model()(torch.tensor([[True, False]])), TypeError, "integer token ids"),
    Bad("GPT.forward", "1-D ids", lambda t: _model()(torch.tensor([1, 2])), ValueError, r"shape \(B, T\).*unsqueeze"),
    Bad("GPT.forward", "3-D ids", lambda t: _model()(torch.zeros(1, 2, 3, dtype=torch.long)), ValueError, r"shape \(B, T\)"),
    Bad("GPT.forward", "empty (1, 0)", lambda t: _model()(torch.zeros(1, 0, dtype=torch.long)), ValueError, "empty"),
    Bad("GPT.forward", "9 tokens, context 8", lambda t: _model()(torch.zeros(1, 9, dtype=torch.long)), ValueError, "longer than the context length 8"),
    Bad("GPT.forward", "a Python list", lambda t: _model()([[1, 2]]), TypeError, "must be a torch.Tensor"),
    Bad("GPT.forward", "targets of another shape", lambda t: _model()(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)), ValueError, "targets must have the shape of idx"),
    Bad("GPT", "a dict instead of a config", lambda t: GPT({"n_layer": 1}), TypeError, "needs a GPTConfig"),
    # generate
    Bad("GPT.generate", "temperature=-0.5", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, temperature=-0.5), ValueError, "temperature must be a finite number >= 0"),
    Bad("GPT.generate", "temperature=nan", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, temperature=float("nan")), ValueError, "temperature must be a finite number >= 0"),
    Bad("GPT.generate", "top_k=0", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_k=0), ValueError, r"top_k must be an integer in \[1, 50\]"),
    Bad("GPT.generate", "top_k=51 > vocab", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_k=51), ValueError, r"top_k must be an integer in \[1, 50\]"),
    Bad("GPT.generate", "top_p=0", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_p=0.0), ValueError, r"top_p must be a number in \(0, 1\]"),
    Bad("GPT.generate", "top_p=1.2", lambda t: _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, top_p=1.2), ValueError, r"top_p must be a number in \(0, 1\]"),
    Bad("GPT.generate", "empty prompt", lambda t: _model().generate(torch.zeros(1, 0, dtype=torch.long), 2), ValueError, "prompt is empty"),
    Bad("GPT.generate", "max_new_tokens=-1", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), -1), ValueError, "max_new_tokens must be an integer >= 0"),
    Bad("GPT.generate", "prompt id out of range", lambda t: _model().generate(torch.tensor([[99]]), 2), ValueError, r"token ids must be in \[0, 50\)"),
    # checkpoints
    Bad("GPT.from_pretrained", "folder that does not exist", lambda t: load_pretrained(t / "nope"), CheckpointError, "not a directory"),
    Bad("GPT.from_pretrained", "no weights file", lambda t: (_saved(t) / "model.safetensors").unlink() or load_pretrained(t / "ck"), CheckpointError, "no weights"),
    Bad("GPT.from_pretrained", "config.json missing", lambda t: (_saved(t) / "config.json").unlink() or load_pretrained(t / "ck"), CheckpointError, "config.json is missing"),
    Bad("GPT.from_pretrained", "truncated safetensors", lambda t: load_pretrained(_truncate(t)), CheckpointError, "truncated or corrupt"),
    Bad("GPT.from_pretrained", "text file named .safetensors", lambda t: load_pretrained(_wrong_format(t)), CheckpointError, "not a readable safetensors"),
    Bad("GPT.from_pretrained", "a tensor missing", lambda t: load_pretrained(_edit_weights(t, lambda d: d.pop("transformer.ln_f.weight"))), CheckpointError, r"missing tensors \(1\): \['transformer.ln_f.weight'\]"),
    Bad("GPT.from_pretrained", "an extra tensor", lambda t: load_pretrained(_edit_weights(t, lambda d: d.update(extra=torch.zeros(1)))), CheckpointError, "unexpected tensors"),
    Bad("GPT.from_pretrained", "a tensor of the wrong shape", lambda t: load_pretrained(_edit_weights(t, lambda d: d.update({"transformer.wpe.weight": torch.zeros(4, 8)}))), CheckpointError, r"transformer.wpe.weight: file \(4, 8\), config needs \(8, 8\)"),
    Bad("GPT.from_pretrained", "pickled code in pytorch_model.bin", lambda t: load_pretrained(_pickled_code(t)), CheckpointError, "could not be loaded safely"),
    Bad("GPT.from_pretrained", "config.json of another architecture", lambda t: (_saved(t) / "config.json").write_text(json.dumps({"model_type": "bert"})) and load_pretrained(t / "ck"), CheckpointError, "model_type 'bert'"),
    # tokenizers and data
    Bad("train_bpe", "vocab_size=100 (< 256 bytes)", lambda t: train_bpe("abc", 100), ValueError, "vocab_size must be an integer >= 256"),
    Bad("train_bpe", "bytes instead of str", lambda t: train_bpe(b"abc", 300), TypeError, "text must be a str"),
    Bad("CharTokenizer.encode", "a character outside the alphabet", lambda t: CharTokenizer("abc").encode("abz"), ValueError, r"\['z'\] are not in this tokenizer's alphabet"),
    Bad("CharTokenizer.decode", "id >= n_vocab", lambda t: CharTokenizer("abc").decode([3]), ValueError, r"outside \[0, 3\)"),
    Bad("CharTokenizer", "empty alphabet", lambda t: CharTokenizer(""), ValueError, "non-empty alphabet"),
    Bad("train_val_split", "val_fraction=0", lambda t: train_val_split("abcdef", 0.0), ValueError, r"val_fraction must be in \(0, 1\)"),
    Bad("train_val_split", "one character", lambda t: train_val_split("a"), ValueError, "at least 2"),
    Bad("get_batch", "corpus shorter than a window", lambda t: get_batch(torch.arange(5), 2, 8), ValueError, "need more than context_length=8 tokens"),
    Bad("get_batch", "batch_size=0", lambda t: get_batch(torch.arange(50), 0, 8), ValueError, "must be positive"),
    Bad("BatchSampler", "float tokens", lambda t: BatchSampler(torch.rand(50), 2, 4), TypeError, "token ids must be integers"),
    Bad("BatchSampler", "2-D tokens", lambda t: BatchSampler(torch.zeros(5, 5, dtype=torch.long), 2, 4), ValueError, "must be 1-D"),
    Bad("load_shakespeare / require", "corpus file modified", _modified_corpus, AssetError, "corrupt or modified.*make data"),
    Bad("load_shakespeare / require", "corpus file missing", _missing_corpus, AssetError, "missing.*make data"),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda r: f"{r.function}: {r.given}")
def test_bad_input_gets_a_clear_error(row, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(row.error, match=row.says):
        row.call(tmp_path)
    assert not (tmp_path / "pwned.txt").exists(), "a pickled payload was executed"


def markdown_table() -> str:
    lines = ["| function | bad input | gets |", "|---|---|---|"]
    for r in TABLE:
        lines.append(f"| `{r.function}` | {r.given} | `{r.error.__name__}`: /{r.says}/ |")
    counts: dict[str, int] = {}
    for r in TABLE:
        counts[r.function] = counts.get(r.function, 0) + 1
    lines += ["", f"{len(TABLE)} bad inputs over {len(counts)} functions:"]
    lines += [f"- `{f}`: {n}" for f, n in counts.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
