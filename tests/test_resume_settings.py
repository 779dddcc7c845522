"""Which settings define a run: both lists written out here, held against the declarations on the
fields (gptlib.settings), and checked by resuming a real checkpoint.

A setting that changes what a run computes (the model, the data, the optimizer, the schedule, the
seed, the arithmetic) must be equal on resume, or the resumed run is not the run it continues. A
setting that only changes how the run executes or what it reports may differ.
"""
import json
import shutil

import pytest
import torch

from gptlib import GPTConfig
from gptlib.settings import declared
from gptlib.train import Dataset, TrainConfig, Trainer, load_dataset
from gptlib.train.checkpoints import STATE_FILE, TrainingCheckpointError, latest_checkpoint

DEFINES_RUN = {
    # the model (every GPTConfig field but vocab_size, which the dataset decides)
    "context_length", "n_layer", "n_head", "d_model", "d_ffn", "activation", "layer_norm_eps", "bias",
    "tie_embeddings", "dropout", "init_std", "attention_impl", "mup", "mup_base_width",
    "mup_embedding_multiplier", "mup_init_std",
    # the optimizer and the schedule
    "batch_size", "max_steps", "peak_lr", "warmup_steps", "decay", "final_lr_fraction", "weight_decay",
    "beta1", "beta2", "eps", "grad_clip",
    # the data, the randomness, the arithmetic
    "data", "val_fraction", "seed", "precision",
}
RUN_ONLY = {
    "eval_interval", "eval_windows", "final_eval_windows", "log_interval", "progress",  # measuring
    "device", "threads", "compile", "out_dir", "checkpoint_interval", "keep_checkpoints", "resume",  # executing
}
TINY = dict(n_layer=1, n_head=2, d_model=16, context_length=16, batch_size=4, max_steps=6, warmup_steps=1,
            eval_interval=0, eval_windows=4, final_eval_windows=4, progress=False, threads=1, device="cpu",
            dropout=0.1)


def test_the_two_lists_are_the_declarations():
    assert set(TrainConfig.defines_run()) == DEFINES_RUN
    assert set(TrainConfig.run_only()) == RUN_ONLY
    assert set(TrainConfig.setting_names()) == DEFINES_RUN | RUN_ONLY and not DEFINES_RUN & RUN_ONLY
    # every GPTConfig field is declared (with help) and defines the run
    assert {f.name for f in declared(GPTConfig)} - {"vocab_size"} <= DEFINES_RUN
    assert all(f.metadata["defines_run"] for f in declared(GPTConfig))


@pytest.fixture(scope="module")
def dataset():
    full = load_dataset()
    return Dataset(full.train[:20_000], full.val[:2_000], full.tokenizer, full.sha256)


@pytest.fixture(scope="module")
def checkpoint(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    Trainer(TrainConfig(**TINY, out_dir=str(out)), dataset=dataset).fit(steps=3)
    return latest_checkpoint(out)


def _other(value):
    """A value that differs from ``value`` (it only needs to differ in the record)."""
    if isinstance(value, bool):
        return not value
    if value is None:
        return 3
    if isinstance(value, (int, float)):
        return value * 2 + 1
    return f"{value}-other"


@pytest.mark.parametrize("name", sorted(DEFINES_RUN | RUN_ONLY))
def test_resume_refuses_exactly_the_settings_that_define_the_run(name, checkpoint, dataset, tmp_path):
    """The checkpoint says it was made with another value of ``name``; this run keeps TINY's."""
    out = tmp_path / "run"
    shutil.copytree(checkpoint.parent, out)
    state_file = out / checkpoint.name / STATE_FILE
    record = json.loads(state_file.read_text())
    recorded = record["state"]["train_config"]
    recorded[name] = _other(recorded[name])
    state_file.write_text(json.dumps(record))
    trainer = Trainer(TrainConfig(**TINY, out_dir=str(out), resume=True), dataset=dataset)
    if name in DEFINES_RUN:
        with pytest.raises(TrainingCheckpointError, match=f"different recipe: .*{name}: checkpoint"):
            trainer.resume()
    else:
        assert trainer.resume() == 3


def test_a_new_val_fraction_or_precision_is_refused(dataset, tmp_path):
    """Both change what the resumed run computes (its data, its arithmetic); both were accepted before."""
    full = load_dataset()
    Trainer(TrainConfig(**TINY, out_dir=str(tmp_path)), dataset=dataset).fit(steps=2)
    for change in (dict(val_fraction=0.2), dict(precision="bf16")):
        config = TrainConfig(**{**TINY, **change}, out_dir=str(tmp_path), resume=True)
        with pytest.raises(TrainingCheckpointError, match=f"{next(iter(change))}: checkpoint"):
            Trainer(config, dataset=full if "val_fraction" in change else dataset).fit()


def test_settings_that_only_change_how_it_runs_leave_the_weights_bit_identical(dataset, tmp_path):
    straight = Trainer(TrainConfig(**TINY), dataset=dataset)
    straight.fit()
    Trainer(TrainConfig(**TINY, out_dir=str(tmp_path)), dataset=dataset).fit(steps=3)
    changed = dict(log_interval=2, eval_interval=2, eval_windows=8, checkpoint_interval=1, keep_checkpoints=5)
    resumed = Trainer(TrainConfig(**{**TINY, **changed}, out_dir=str(tmp_path), resume=True), dataset=dataset)
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
