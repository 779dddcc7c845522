"""The trainer: exact resume, NaN stop, callbacks, the schedule it follows, config errors, the CLI."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptlib.config import ConfigError
from gptlib.train import (BOOK_RECIPE, Dataset, TrainConfig, Trainer, TrainingDiverged, evaluation_starts,
                          load_dataset, resolve_device, resolve_precision)
from gptlib.train.checkpoints import TrainingCheckpointError, latest_checkpoint, read_training_state
from gptlib.train.cli import build_parser, config_from_args, main

REPO = Path(__file__).resolve().parent.parent
TINY = dict(n_layer=2, n_head=2, d_model=32, context_length=16, batch_size=4, max_steps=8, warmup_steps=2,
            eval_interval=4, eval_windows=16, final_eval_windows=32, log_interval=1, progress=False,
            threads=1, device="cpu")


@pytest.fixture(scope="module")
def dataset():
    """A small corner of the corpus (fast), tokenized like the real one."""
    full = load_dataset()
    return Dataset(full.train[:50_000], full.val[:5_000], full.tokenizer, full.sha256)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def test_dataset_is_the_character_level_corpus():
    ds = load_dataset()
    text = ds.tokenizer.decode(ds.val[:200].tolist())
    assert ds.tokenizer.encode(text) == ds.val[:200].tolist()
    assert ds.train.dtype == torch.int64 and len(ds.train) > 9 * len(ds.val) * 0.99


def test_exact_resume_is_bit_identical(dataset, tmp_path):
    """N steps in one go == N/2 steps, save, a new process-like Trainer resumes, N/2 more steps.
    Dropout is on, so the RNG states must be restored too, not just weights and optimizer."""
    config = dict(TINY, dropout=0.1)
    straight = Trainer(TrainConfig(**config), dataset=dataset)
    straight.fit()
    first = Trainer(TrainConfig(**config, out_dir=str(tmp_path)), dataset=dataset)
    first.fit(steps=4)
    assert latest_checkpoint(tmp_path).name == "step_000004"
    torch.manual_seed(12345)  # disturb the global RNG: resume must restore it
    second = Trainer(TrainConfig(**config, out_dir=str(tmp_path), resume=True), dataset=dataset)
    result = second.fit()
    assert result.steps == 8
    a, b = weights(straight), weights(second)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert second.history.loss == straight.history.loss
    assert read_training_state(latest_checkpoint(tmp_path))["step"] == 8


def test_resume_with_another_recipe_is_refused(dataset, tmp_path):
    Trainer(TrainConfig(**TINY, out_dir=str(tmp_path)), dataset=dataset).fit(steps=2)
    other = Trainer(TrainConfig(**dict(TINY, peak_lr=1e-2), out_dir=str(tmp_path), resume=True), dataset=dataset)
    with pytest.raises(TrainingCheckpointError, match="peak_lr: checkpoint 0.003, this run 0.01"):
        other.fit()


def test_nan_loss_stops_with_a_message_and_keeps_the_checkpoint(dataset, tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out_dir=str(tmp_path), checkpoint_interval=2), dataset=dataset)
    trainer.fit(steps=3)  # checkpoints at steps 2 and 3
    good = latest_checkpoint(tmp_path)
    with torch.no_grad():
        trainer.model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    poisoned = weights(trainer)
    with pytest.raises(TrainingDiverged, match=r"step 3: the training loss is nan.*not applied.*step_000003.*intact"):
        trainer.fit()
    assert latest_checkpoint(tmp_path) == good
    read_training_state(good)  # still whole
    after = weights(trainer)
    assert all(torch.equal(poisoned[k], after[k]) or torch.isnan(after[k]).any() for k in after)
    assert trainer.step == 3


def test_callbacks_see_the_loss_curve_and_the_schedule(dataset):
    events = []
    trainer = Trainer(TrainConfig(**TINY), dataset=dataset, callbacks=[events.append])
    result = trainer.fit()
    steps = [e for e in events if e["event"] == "step"]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in steps] == list(range(1, 9))
    assert [e["step"] for e in evals] == [4, 8]
    assert events[-1]["event"] == "end" and events[-1]["val_loss"] == result.final_val_loss
    schedule = trainer.config.schedule()
    assert [e["lr"] for e in steps] == [schedule(s) for s in range(8)]
    assert all(e["tokens_per_s"] > 0 and math.isfinite(e["loss"]) for e in steps)
    # the gradient norm of every logged step, measured before clipping
    assert result.history.grad_norm == [e["grad_norm"] for e in steps]
    assert all(math.isfinite(g) and g > 0 for g in result.history.grad_norm)
    assert result.tokens == 8 * 4 * 16
    assert result.history.val_step == [4, 8]


def test_training_lowers_the_validation_loss(dataset):
    config = TrainConfig(**dict(TINY, max_steps=60, warmup_steps=5, peak_lr=1e-2, eval_interval=0))
    trainer = Trainer(config, dataset=dataset)
    before = trainer.evaluate()
    assert before == pytest.approx(math.log(dataset.vocab_size), abs=0.3)  # uniform at init
    assert trainer.fit().final_val_loss < before - 0.8


def test_evaluation_uses_fixed_evenly_spaced_windows():
    starts = evaluation_starts(1000, 16, 5)
    assert starts.tolist() == [0, 246, 492, 737, 983]
    assert evaluation_starts(20, 16, 100).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="fewer than one window"):
        evaluation_starts(10, 16, 4)


def test_bf16_autocast_runs_on_the_cpu(dataset):
    trainer = Trainer(TrainConfig(**dict(TINY, max_steps=2, precision="bf16", eval_interval=0)), dataset=dataset)
    assert trainer.dtype == torch.bfloat16
    assert math.isfinite(trainer.fit().final_val_loss)
    assert trainer.model.transformer.wte.weight.dtype == torch.float32  # master weights stay fp32


def test_compiled_training_follows_the_plain_run(dataset):
    """compile=True trains the same model: the same losses, step by step, and the same weights,
    to the rounding of torch.compile's fused kernels."""
    config = dict(TINY, max_steps=4, eval_interval=0)
    plain = Trainer(TrainConfig(**config), dataset=dataset)
    plain.fit()
    fast = Trainer(TrainConfig(**config, compile=True), dataset=dataset)
    assert fast.step_model is not fast.model
    fast.fit()
    assert fast.history.loss == pytest.approx(plain.history.loss, rel=1e-4)
    a, b = weights(plain), weights(fast)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)


def test_compile_without_a_cpp_compiler_is_refused(dataset, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="needs a C.. compiler"):
        Trainer(TrainConfig(**TINY, compile=True), dataset=dataset)


def test_device_and_precision_choice():
    auto = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert auto.type == expected
    assert resolve_precision("auto", torch.device("cpu")) == torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available.*available: \\['cpu'"):
            resolve_device("cuda")


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(peak_lr=-1.0), r"peak_lr must be a number in \(0"),
    (dict(decay="exponential"), "decay must be one of"),
    (dict(d_model=100, n_head=3), "not divisible by n_head"),
    (dict(warmup_steps=10, max_steps=5), "warmup_steps"),
    (dict(resume=True), "resume needs out_dir"),
    (dict(beta2=1.0), "beta2"),
])
def test_bad_configs_say_what_is_wrong(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change)


def test_unknown_setting_gets_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="'learning_rate'.*did you mean 'peak_lr'|'max_step' \\(did you mean 'max_steps'"):
        TrainConfig.from_dict({"max_step": 10})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json(bad)


def test_cli_reads_a_config_file_and_flags_override_it(tmp_path, capsys):
    file = tmp_path / "recipe.json"
    file.write_text(json.dumps({"max_steps": 50, "warmup_steps": 5, "d_model": 64, "n_head": 4}))
    config = config_from_args(["--config", str(file), "--max_steps", "7", "--mup", "true", "--d_ffn", "none"])
    assert (config.max_steps, config.model.d_model, config.model.mup) == (7, 64, True)
    assert config.model.d_ffn == 4 * 64 and config.to_dict()["d_ffn"] is None  # none: F = 4 C
    with pytest.raises(SystemExit) as exit_info:
        config_from_args(["--config", str(file), "--n_head", "3"])
    assert exit_info.value.code == 2
    assert "not divisible by n_head=3" in capsys.readouterr().err
    # --book-recipe starts from BOOK_RECIPE; the file and the flags still change it
    config = config_from_args(["--book-recipe", "--config", str(file), "--max_steps", "9"])
    assert (config.model.mup, config.model.n_layer, config.batch_size, config.model.d_model,
            config.max_steps) == (True, 3, 8, 64, 9)
    assert config_from_args(["--book-recipe"]).to_dict() == {**BOOK_RECIPE.to_dict(), "out_dir": "out"}
    help_text = build_parser().format_help()
    for flag in ("--book-recipe", "--config", "--peak_lr", "--batch_size", "--out_dir", "--resume", "--precision"):
        assert flag in help_text


def test_cli_trains_and_writes_a_checkpoint(tmp_path):
    file = tmp_path / "recipe.json"
    file.write_text(json.dumps(dict(TINY, max_steps=3, progress=False)))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "gptlib.train", "--config", str(file), "--out_dir", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "final validation loss" in proc.stdout
    assert latest_checkpoint(out).name == "step_000003"


def test_cli_refuses_a_bad_setting_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--batch_size", "-4"])
    assert exit_info.value.code == 2
    assert "batch_size must be a positive integer" in capsys.readouterr().err


def test_cli_resume_with_nothing_to_resume_says_so_and_exits_nonzero(tmp_path):
    """A mistyped --out_dir with --resume true must not silently start a fresh run."""
    out = tmp_path / "typo"
    proc = subprocess.run([sys.executable, "-m", "gptlib.train", "--max_steps", "3", "--warmup_steps", "1",
                           "--out_dir", str(out), "--resume", "true", "--progress", "false"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no checkpoint to resume from in" in proc.stderr and str(out) in proc.stderr
    assert "run without resume" in proc.stderr
    assert not out.exists(), "the refused run should not create the mistyped folder"


def test_flags_take_their_types_from_the_field_annotations():
    parser = build_parser()
    args = parser.parse_args(["--d_ffn", "none", "--threads", "2", "--peak_lr", "1e-3", "--bias", "no",
                              "--out_dir", "none", "--activation", "gelu_new"])
    assert (args.d_ffn, args.threads, args.peak_lr, args.bias, args.out_dir, args.activation) == \
        (None, 2, 1e-3, False, None, "gelu_new")
    for bad in (["--n_layer", "2.5"], ["--mup", "maybe"], ["--activation", "relu"], ["--decay", "step"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    # every setting has a flag, with the help declared on its field
    help_text = " ".join(parser.format_help().split())
    for name in TrainConfig.setting_names():
        assert f"--{name}" in help_text
    assert "the output head reuses the token-embedding matrix" in help_text  # GPTConfig's own help


def test_model_settings_live_on_the_model():
    config = TrainConfig(n_layer=3, d_model=64, n_head=4, batch_size=8)
    assert config.model.n_layer == 3 and config.model.d_ffn == 256  # F follows 4 C
    assert config.replace(d_model=128).model.d_ffn == 512
    assert config.model_config(78).vocab_size == 78
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(Exception, match="frozen|cannot assign"):
        config.batch_size = 4
