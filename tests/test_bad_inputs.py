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

from gptlib import (GPT, CheckpointError, ConfigError, GPTConfig, GptlibError,  # noqa: E402
                    load_pretrained, save_pretrained)
from gptlib.assets import SHAKESPEARE, AssetError, require  # noqa: E402
from gptlib.data import BatchSampler, get_batch, train_val_split  # noqa: E402
from gptlib.sample import generate, generate_text  # noqa: E402
from gptlib.tokenizer import CharTokenizer, train_bpe  # noqa: E402
from gptlib import mup_experiments as mup, scaling  # noqa: E402
from gptlib.optim import configure_optimizer, parameter_groups  # noqa: E402
from gptlib.book_models import BookModelError, book_model  # noqa: E402
from gptlib.files import FolderBusy, FolderLock  # noqa: E402
from gptlib.schedule import Schedule  # noqa: E402
from gptlib.train import Dataset, TrainConfig, Trainer, TrainingDiverged, resolve_device  # noqa: E402
from gptlib.train.checkpoints import (TrainingCheckpointError, latest_checkpoint,  # noqa: E402
                                      load_training_checkpoint, save_training_checkpoint)
from wse_demo import (Fabric, FabricError, GPTOnFabric, SramError, WaferError, WaferSpec,  # noqa: E402
                      get_wafer, layer_pipelined, weight_streaming)
from wse_demo.kernels import gelu, matmul  # noqa: E402
from wse_demo.placement import PlacementError  # noqa: E402


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
    save_pretrained(_model(), tmp / "ck")
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
    Bad("GPTConfig", "dropout=1.5", lambda t: GPTConfig(**{**CFG, "dropout": 1.5}), ConfigError, r"dropout must be a number in \[0, 1\)"),
    Bad("GPTConfig", "layer_norm_eps=0", lambda t: GPTConfig(**{**CFG, "layer_norm_eps": 0}), ConfigError, "layer_norm_eps must be a finite number > 0"),
    Bad("GPTConfig", "bias='yes'", lambda t: GPTConfig(**{**CFG, "bias": "yes"}), ConfigError, "bias must be True or False"),
    Bad("GPTConfig.cerebras", "'1.3b' (wrong case)", lambda t: GPTConfig.cerebras("1.3b"), ConfigError, "Did you mean '1.3B'"),
    Bad("GPTConfig.cerebras", "'110M' (not published)", lambda t: GPTConfig.cerebras("110M"), ConfigError, "Did you mean '111M'"),
    Bad("GPTConfig.from_dict", "HF key 'n_embd'", lambda t: GPTConfig.from_dict({"n_embd": 8}), ConfigError, r"unknown GPTConfig field\(s\) 'n_embd' \(did you mean 'n_head'\?\)"),
    Bad("GPTConfig.training_flops", "method='7ND'", lambda t: GPTConfig(**CFG).training_flops(1e9, "7ND"), ValueError, r"method must be one of \('6ND', 'full'\)"),
    Bad("GPTConfig.training_flops", "tokens=-1", lambda t: GPTConfig(**CFG).training_flops(-1), ValueError, "tokens must be a finite number >= 0"),
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
    Bad("GPT", "a dict instead of a config", lambda t: GPT({"n_layer": 1}), TypeError, "config must be a GPTConfig.*got dict"),
    # generate
    Bad("generate", "temperature=-0.5", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, temperature=-0.5), ValueError, "temperature must be a finite number >= 0"),
    Bad("generate", "temperature=nan", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, temperature=float("nan")), ValueError, "temperature must be a finite number >= 0"),
    Bad("generate", "top_k=0", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, top_k=0), ValueError, r"top_k must be an integer in \[1, 50\]"),
    Bad("generate", "top_k=51 > vocab", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, top_k=51), ValueError, r"top_k must be an integer in \[1, 50\]"),
    Bad("generate", "top_p=0", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, top_p=0.0), ValueError, r"top_p must be a number in \(0, 1\]"),
    Bad("generate", "top_p=1.2", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, top_p=1.2), ValueError, r"top_p must be a number in \(0, 1\]"),
    Bad("generate", "empty prompt", lambda t: generate(_model(), torch.zeros(1, 0, dtype=torch.long), 2), ValueError, "prompt is empty"),
    Bad("generate", "a misspelt setting 'temprature'", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), 2, temprature=0.5), TypeError, "unexpected keyword argument 'temprature'"),
    Bad("generate", "max_new_tokens=-1", lambda t: generate(_model(), torch.zeros(1, 1, dtype=torch.long), -1), ValueError, "max_new_tokens must be an integer >= 0"),
    Bad("generate", "prompt id out of range", lambda t: generate(_model(), torch.tensor([[99]]), 2), ValueError, r"token ids must be in \[0, 50\)"),
    # checkpoints
    Bad("load_pretrained", "folder that does not exist", lambda t: load_pretrained(t / "nope"), CheckpointError, "not a directory"),
    Bad("load_pretrained", "no weights file", lambda t: (_saved(t) / "model.safetensors").unlink() or load_pretrained(t / "ck"), CheckpointError, "no weights"),
    Bad("load_pretrained", "config.json missing", lambda t: (_saved(t) / "config.json").unlink() or load_pretrained(t / "ck"), CheckpointError, "config.json is missing"),
    Bad("load_pretrained", "truncated safetensors", lambda t: load_pretrained(_truncate(t)), CheckpointError, "truncated or corrupt"),
    Bad("load_pretrained", "text file named .safetensors", lambda t: load_pretrained(_wrong_format(t)), CheckpointError, "not a readable safetensors"),
    Bad("load_pretrained", "a tensor missing", lambda t: load_pretrained(_edit_weights(t, lambda d: d.pop("transformer.ln_f.weight"))), CheckpointError, r"missing tensors \(1\): \['transformer.ln_f.weight'\]"),
    Bad("load_pretrained", "an extra tensor", lambda t: load_pretrained(_edit_weights(t, lambda d: d.update(extra=torch.zeros(1)))), CheckpointError, "unexpected tensors"),
    Bad("load_pretrained", "a tensor of the wrong shape", lambda t: load_pretrained(_edit_weights(t, lambda d: d.update({"transformer.wpe.weight": torch.zeros(4, 8)}))), CheckpointError, r"transformer.wpe.weight: file \(4, 8\), config needs \(8, 8\)"),
    Bad("load_pretrained", "pickled code in pytorch_model.bin", lambda t: load_pretrained(_pickled_code(t)), CheckpointError, "could not be loaded safely"),
    Bad("load_pretrained", "config.json of another architecture", lambda t: (_saved(t) / "config.json").write_text(json.dumps({"model_type": "bert"})) and load_pretrained(t / "ck"), CheckpointError, "model_type 'bert'"),
    # tokenizers and data
    Bad("train_bpe", "vocab_size=100 (< 256 bytes)", lambda t: train_bpe("abc", 100), ValueError, "vocab_size must be an integer >= 256"),
    Bad("train_bpe", "bytes instead of str", lambda t: train_bpe(b"abc", 300), TypeError, "text must be a str"),
    Bad("CharTokenizer.encode", "a character outside the alphabet", lambda t: CharTokenizer("abc").encode("abz"), ValueError, r"\['z'\] are not in this tokenizer's alphabet"),
    Bad("CharTokenizer.decode", "id >= n_vocab", lambda t: CharTokenizer("abc").decode([3]), ValueError, r"outside \[0, 3\)"),
    Bad("CharTokenizer", "empty alphabet", lambda t: CharTokenizer(""), ValueError, "non-empty alphabet"),
    Bad("train_val_split", "val_fraction=0", lambda t: train_val_split("abcdef", 0.0), ValueError, r"val_fraction must be a number in \(0, 1\)"),
    Bad("train_val_split", "one character", lambda t: train_val_split("a"), ValueError, "at least 2"),
    Bad("get_batch", "corpus shorter than a window", lambda t: get_batch(torch.arange(5), 2, 8), ValueError, "need more than context_length=8 tokens"),
    Bad("get_batch", "batch_size=0", lambda t: get_batch(torch.arange(50), 0, 8), ValueError, "batch_size must be a positive integer"),
    Bad("BatchSampler", "float tokens", lambda t: BatchSampler(torch.rand(50), 2, 4), TypeError, r"tokens must hold integer token ids \(torch.long\), got dtype torch.float32"),
    Bad("BatchSampler", "2-D tokens", lambda t: BatchSampler(torch.zeros(5, 5, dtype=torch.long), 2, 4), ValueError, r"tokens must have shape \(N,\), got \(5, 5\)"),
    Bad("load_shakespeare / require", "corpus file modified", _modified_corpus, AssetError, "corrupt or modified.*make data"),
    Bad("load_shakespeare / require", "corpus file missing", _missing_corpus, AssetError, "missing.*make data"),
]


# ---------------------------------------------------------------------------------------------
# training: configs, checkpoints, a diverging run, two runs in one folder
# ---------------------------------------------------------------------------------------------
TINY_RUN = dict(n_layer=1, n_head=2, d_model=8, context_length=8, batch_size=2, max_steps=4, warmup_steps=1,
                eval_interval=0, eval_windows=2, final_eval_windows=2, progress=False, device="cpu")


def _tiny_dataset() -> Dataset:
    tokenizer = CharTokenizer("abcdefgh")
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randint(8, (400,), generator=g), torch.randint(8, (100,), generator=g), tokenizer, "0" * 64)


def _training_checkpoint(tmp: Path, **config) -> Path:
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**CFG, **config}))
    return save_training_checkpoint(tmp / "run", model, configure_optimizer(model, 1e-3), step=1)


def _load_into_tiny(path: Path, **config):
    model = GPT(GPTConfig(**{**CFG, **config}))
    return load_training_checkpoint(path, model, configure_optimizer(model, 1e-3))


def _flip_a_weight_bit(tmp: Path) -> Path:
    path = _training_checkpoint(tmp)
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-3] ^= 0x10
    (path / "model.safetensors").write_bytes(bytes(data))
    return path


def _diverging_run(tmp: Path):
    trainer = Trainer(TrainConfig(**TINY_RUN), dataset=_tiny_dataset())
    with torch.no_grad():
        trainer.model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("inf")
    return trainer.fit()


def _second_run_in_one_folder(tmp: Path):
    with FolderLock(tmp / "run", purpose="another training run is writing to"):
        return Trainer(TrainConfig(**TINY_RUN, out_dir=str(tmp / "run")), dataset=_tiny_dataset()).fit()


def _config_file(tmp: Path, text: str) -> TrainConfig:
    (tmp / "recipe.json").write_text(text)
    return TrainConfig.from_json(tmp / "recipe.json")


TABLE += [
    Bad("TrainConfig", "d_model=100, n_head=3", lambda t: TrainConfig(d_model=100, n_head=3), ConfigError, "not divisible by n_head=3"),
    Bad("TrainConfig", "n_layer=0", lambda t: TrainConfig(n_layer=0), ConfigError, "GPTConfig.n_layer must be a positive integer, got 0"),
    Bad("TrainConfig", "peak_lr=-1e-3", lambda t: TrainConfig(peak_lr=-1e-3), ConfigError, r"peak_lr must be a number in \(0, 10\]"),
    Bad("TrainConfig", "peak_lr=nan", lambda t: TrainConfig(peak_lr=float("nan")), ConfigError, r"peak_lr must be a number in \(0, 10\]"),
    Bad("TrainConfig", "batch_size=2.5", lambda t: TrainConfig(batch_size=2.5), ConfigError, "TrainConfig.batch_size must be a positive integer, got 2.5"),
    Bad("TrainConfig", "warmup_steps > max_steps", lambda t: TrainConfig(max_steps=10, warmup_steps=20), ConfigError, r"warmup_steps \(20\) must not exceed max_steps \(10\)"),
    Bad("TrainConfig", "beta2=1", lambda t: TrainConfig(beta2=1.0), ConfigError, r"beta2 must be a number in \[0, 1\)"),
    Bad("TrainConfig", "decay='exponential'", lambda t: TrainConfig(decay="exponential"), ConfigError, r"decay must be one of \('linear', 'cosine', 'constant'\)"),
    Bad("TrainConfig", "device='tpu'", lambda t: TrainConfig(device="tpu"), ConfigError, r"device must be one of \('auto', 'cpu', 'cuda', 'mps'\)"),
    Bad("TrainConfig", "data='tinystories' (no such dataset)", lambda t: TrainConfig(data="tinystories"), ConfigError, r"data must be one of \('shakespeare-char',\)"),
    Bad("TrainConfig", "resume without out_dir", lambda t: TrainConfig(resume=True), ConfigError, "resume needs out_dir"),
    Bad("TrainConfig.from_dict", "misspelt key 'learning_rate'", lambda t: TrainConfig.from_dict({"learning_rate": 1e-3}), ConfigError, r"unknown training setting\(s\) 'learning_rate'"),
    Bad("TrainConfig", "vocab_size (the dataset's)", lambda t: TrainConfig(vocab_size=100), ConfigError, "vocab_size is not a training setting: the trainer takes it from the dataset"),
    Bad("TrainConfig.from_dict", "misspelt key 'max_step'", lambda t: TrainConfig.from_dict({"max_step": 10}), ConfigError, "did you mean 'max_steps'"),
    Bad("TrainConfig.from_json", "file that does not exist", lambda t: TrainConfig.from_json(t / "nope.json"), ConfigError, "nope.json does not exist"),
    Bad("TrainConfig.from_json", "not JSON", lambda t: _config_file(t, "max_steps: 10"), ConfigError, "is not valid JSON"),
    Bad("TrainConfig.from_json", "a JSON list", lambda t: _config_file(t, "[1, 2]"), ConfigError, r"must be a JSON object \(a dict\), got list"),
    Bad("resolve_device", "'gpu' (not a device name)", lambda t: resolve_device("gpu"), ConfigError, r"device must be one of \('auto', 'cpu', 'cuda', 'mps'\)"),
    Bad("Trainer", "a dict instead of a TrainConfig", lambda t: Trainer({"max_steps": 10}), TypeError, r"config must be a TrainConfig \(the recipe\), got dict"),
    Bad("Trainer.fit", "a weight set to inf (loss NaN)", _diverging_run, TrainingDiverged, r"step 0: the training loss is nan.*not applied.*lower peak_lr.*No checkpoint was written"),
    Bad("Trainer.fit", "a second run writing the same out_dir", _second_run_in_one_folder, FolderBusy, "another training run is writing to .*pid .*choose another output folder"),
    Bad("Trainer.resume", "resume=True in an empty folder", lambda t: Trainer(TrainConfig(**TINY_RUN, out_dir=str(t), resume=True), dataset=_tiny_dataset()).resume(), TrainingCheckpointError, "no checkpoint to resume from"),
    Bad("Trainer.fit", "resume=True in a mistyped out_dir", lambda t: Trainer(TrainConfig(**TINY_RUN, out_dir=str(t / "typo"), resume=True), dataset=_tiny_dataset()).fit(), TrainingCheckpointError, "no checkpoint to resume from in .*typo.*run without resume"),
    Bad("Trainer", "a dataset with ids the model cannot embed", lambda t: Trainer(TrainConfig(**TINY_RUN), dataset=Dataset(torch.arange(400) % 9, torch.arange(100) % 8, CharTokenizer("abcdefgh"), "0" * 64)), ValueError, r"token ids must be in \[0, 8\), got values in \[0, 8\]"),
    Bad("load_training_checkpoint", "folder without training_state.json", lambda t: _load_into_tiny(_saved(t)), TrainingCheckpointError, "not a training checkpoint: training_state.json is missing"),
    Bad("load_training_checkpoint", "a flipped bit in the weights", lambda t: _load_into_tiny(_flip_a_weight_bit(t)), TrainingCheckpointError, "corrupt.*SHA-256"),
    Bad("load_training_checkpoint", "optimizer file deleted", lambda t: (_training_checkpoint(t) / "optimizer.safetensors").unlink() or _load_into_tiny(t / "run" / "step_000001"), TrainingCheckpointError, "optimizer.safetensors is missing.*earlier checkpoint"),
    Bad("load_training_checkpoint", "training_state.json truncated", lambda t: (_training_checkpoint(t) / "training_state.json").write_text('{"step": 1, "sh') and _load_into_tiny(t / "run" / "step_000001"), TrainingCheckpointError, "training_state.json is corrupt"),
    Bad("load_training_checkpoint", "checkpoint of a wider model", lambda t: _load_into_tiny(_training_checkpoint(t, d_model=16)), TrainingCheckpointError, "d_model: checkpoint 16, this run 8"),
    Bad("latest_checkpoint", "'latest' names a deleted folder", lambda t: (_training_checkpoint(t).parent / "latest").write_text("step_000009\n") and latest_checkpoint(t / "run"), TrainingCheckpointError, "not a checkpoint folder"),
    Bad("save_training_checkpoint", "keep=0", lambda t: save_training_checkpoint(t, _model(), configure_optimizer(_model(), 1e-3), 1, keep=0), ValueError, "keep must be a positive integer, got 0"),
    Bad("parameter_groups", "weight_decay=-0.1", lambda t: parameter_groups(_model(), -0.1), ValueError, "weight_decay must be a finite number >= 0"),
    Bad("parameter_groups", "a torch.nn.Linear", lambda t: parameter_groups(torch.nn.Linear(2, 2)), TypeError, "model must be a gptlib GPT model, got Linear"),
    Bad("Schedule", "decay='step'", lambda t: Schedule(1e-3, 10, 100, "step"), ValueError, "decay must be one of"),
    Bad("Schedule", "warmup longer than the run", lambda t: Schedule(1e-3, 200, 100), ValueError, r"total_steps \(100\) must be >= warmup_steps"),
    Bad("Schedule", "a negative step", lambda t: Schedule(1e-3, 10, 100)(-1), ValueError, "step must be an integer >= 0"),
    # scaling laws and muP
    Bad("compute_optimal", "both compute and params", lambda t: scaling.compute_optimal(compute=1e18, params=1e8), ValueError, "exactly one of compute"),
    Bad("compute_optimal", "params=0", lambda t: scaling.compute_optimal(params=0), ValueError, "params must be a finite number > 0"),
    Bad("fit_power_law", "two points for three unknowns", lambda t: scaling.fit_power_law([1e18, 1e19], [3.0, 2.8]), ValueError, "needs at least 3 points"),
    Bad("fit_power_law", "negative compute", lambda t: scaling.fit_power_law([-1.0, 1e18, 1e19], [3.0, 2.9, 2.8]), ValueError, "compute must be positive and finite"),
    Bad("PowerLaw.compute_for_loss", "a loss below the irreducible one", lambda t: scaling.PowerLaw(10.0, -0.1, 1.5).compute_for_loss(1.2), ValueError, "never goes below its irreducible loss"),
    Bad("PowerLaw", "compute=0", lambda t: scaling.PAPER_LAW(0.0), ValueError, "compute must be positive"),
    Bad("coordinate_check", "width 100 with d_head 32", lambda t: mup.coordinate_check(widths=(64, 100)), ValueError, "multiple of d_head"),
    Bad("lr_transfer", "learning rate 0", lambda t: mup.lr_transfer(widths=(32,), learning_rates=(0.0,)), ValueError, r"learning_rates\[0\] must be a finite number > 0, got 0.0"),
    # the book's model and text in, text out
    Bad("book_model", "'shakespeare' (not a model name)", lambda t: book_model("shakespeare"), BookModelError, r"the book model's name must be one of \('shakespeare-char',\), got 'shakespeare'"),
    Bad("generate_text", "empty prompt, character tokenizer", lambda t: generate_text(_model(), CharTokenizer("abc"), ""), ValueError, "the prompt is empty"),
    Bad("generate_text", "a tokenizer with a larger vocabulary", lambda t: generate_text(_model(), CharTokenizer([chr(i) for i in range(60, 120)]), "w"), ValueError, "produced id 59.*vocabulary has 50 tokens.*does not belong to this model"),
    Bad("generate_text", "bytes as the prompt", lambda t: generate_text(_model(), CharTokenizer("abc"), b"abc"), TypeError, "prompt must be a str, got bytes"),
]

# ---------------------------------------------------------------------------------------------
# wse_demo: wafers, the fabric, its kernels, placements
# ---------------------------------------------------------------------------------------------
TABLE += [
    Bad("get_wafer", "'WSE-4' (no such wafer)", lambda t: get_wafer("WSE-4"), WaferError, r"unknown wafer 'WSE-4'; the presets are \['WSE-1', 'WSE-2', 'WSE-3'\].*Did you mean"),
    Bad("get_wafer", "a number", lambda t: get_wafer(2), WaferError, "a wafer is named by a string"),
    Bad("WaferSpec.custom", "rows=0", lambda t: WaferSpec.custom(0, 10), WaferError, "rows must be a positive integer, got 0"),
    Bad("Fabric", "rows=0", lambda t: Fabric(0, 4), FabricError, "rows must be a positive integer, got 0"),
    Bad("Fabric", "3000 x 3000 PEs (too many to simulate)", lambda t: Fabric(3000, 3000), FabricError, "handles at most 4,000,000.*wse_demo.placement"),
    Bad("Fabric.allocate", "a PE over its 48 KB of SRAM", lambda t: Fabric(2, 2).allocate("w", 60_000), SramError, r"PE \(0, 0\) would need 60,000 bytes.*each PE has 49,152 bytes"),
    Bad("Fabric.allocate", "two allocations with one name", lambda t: (lambda f: (f.allocate("w", 8), f.allocate("w", 8)))(Fabric(2, 2)), FabricError, "allocation 'w' exists already"),
    Bad("Fabric.check_pe", "a PE off the grid", lambda t: Fabric(2, 3).check_pe((2, 0)), FabricError, r"PE \(2, 0\) is off the 2 x 3 grid \(rows 0..1, cols 0..2\)"),
    Bad("Fabric.free", "a name never allocated", lambda t: Fabric(2, 2).free("w"), FabricError, "no SRAM allocation called 'w'"),
    Bad("matmul", "K of x and weight differ", lambda t: matmul(Fabric(2, 2), torch.zeros(3, 4), torch.zeros(5, 6)), FabricError, r"must agree on K, got \(3, 4\) and \(5, 6\)"),
    Bad("matmul", "1-D x", lambda t: matmul(Fabric(2, 2), torch.zeros(4), torch.zeros(4, 6)), FabricError, r"x must be a 2-D tensor \(M, K\)"),
    Bad("matmul", "a weight tile over a PE's SRAM", lambda t: matmul(Fabric(1, 1), torch.zeros(1, 128), torch.zeros(128, 128)), SramError, "would need .* bytes of SRAM"),
    Bad("gelu (fabric)", "approximate='fast'", lambda t: gelu(Fabric(1, 1), None, approximate="fast"), FabricError, "approximate must be 'none' or 'tanh'"),
    Bad("GPTOnFabric", "a fabric too narrow for the model", lambda t: GPTOnFabric(Fabric(4, 5), _model()), FabricError, "the fabric has 5 columns but this model needs at least 7"),
    Bad("GPTOnFabric", "a model too big for the fabric's SRAM", lambda t: GPTOnFabric(Fabric(2, 12, sram_per_pe=256), _model()), SramError, "would need .* bytes of SRAM"),
    Bad("GPTOnFabric", "a torch.nn.Linear", lambda t: GPTOnFabric(Fabric(4, 8), torch.nn.Linear(2, 2)), FabricError, "model must be a gptlib.GPT, got Linear"),
    Bad("layer_pipelined", "'1.3b' (wrong case)", lambda t: layer_pipelined("1.3b"), ConfigError, "Did you mean '1.3B'"),
    Bad("layer_pipelined", "seq_len past the context", lambda t: layer_pipelined("111M", seq_len=4096), PlacementError, "seq_len 4096 is longer than the model's context 2048"),
    Bad("layer_pipelined", "efficiency=1.5", lambda t: layer_pipelined("111M", efficiency=1.5), PlacementError, r"efficiency must be in \(0, 1\]"),
    Bad("layer_pipelined", "wafer 'WSE2-XL'", lambda t: layer_pipelined("111M", wafer="WSE2-XL"), WaferError, "unknown wafer 'WSE2-XL'"),
    Bad("weight_streaming", "more systems than sequences", lambda t: weight_streaming("111M", n_systems=4, batch_size=2), PlacementError, "4 systems cannot share a batch of 2 sequences"),
]

@pytest.mark.parametrize("row", TABLE, ids=lambda r: f"{r.function}: {r.given}")
def test_bad_input_gets_a_clear_error(row, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(row.error, match=row.says):
        row.call(tmp_path)
    assert not (tmp_path / "pwned.txt").exists(), "a pickled payload was executed"


# wse_demo's rows raise wse_demo's errors and are left out by the error's module
@pytest.mark.parametrize("row", [r for r in TABLE if r.error.__module__.startswith(("gptlib", "builtins"))
                                 and "misspelt setting" not in r.given],
                         ids=lambda r: f"{r.function}: {r.given}")
def test_every_gptlib_refusal_is_a_gptlib_error(row, tmp_path, monkeypatch):
    """``except GptlibError`` catches anything gptlib refused, whatever built-in base it also has."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GptlibError):
        row.call(tmp_path)


def test_readme_states_the_size_of_this_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    functions = len({r.function for r in TABLE})
    stated = f"feeds {len(TABLE)} bad inputs to {functions}\npublic functions"
    assert " ".join(stated.split()) in " ".join(readme.split()), \
        f"README.md should say the table feeds {len(TABLE)} bad inputs to {functions} public functions"


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
