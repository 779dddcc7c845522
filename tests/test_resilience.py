"""Resilience of training runs against the operating system, not just against exceptions.

- A run killed (SIGKILL: no ``finally``, no cleanup) in the middle of writing a checkpoint leaves
  the previous checkpoint whole; resuming from it ends with exactly the weights of a run that was
  never interrupted.
- A second run started on an output folder that a live run is writing is refused with a message
  naming the other process, and the live run goes on undisturbed.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gptlib import load_pretrained
from gptlib.train import Dataset, TrainConfig, Trainer, load_dataset
from gptlib.files import FolderLock
from gptlib.train.checkpoints import latest_checkpoint, read_training_state

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(n_layer=2, n_head=2, d_model=32, context_length=16, batch_size=4, max_steps=8, warmup_steps=2,
            eval_interval=0, final_eval_windows=16, progress=False, threads=1, device="cpu", dropout=0.1,
            checkpoint_interval=2)

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

# The child trains TINY and kills itself (SIGKILL) half-way through writing the checkpoint of step 4:
# the optimizer file is half written when the process disappears.
KILLED_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    import gptlib.train.checkpoints as tc
    from gptlib.train import Dataset, TrainConfig, Trainer, load_dataset

    calls = []

    def save_and_die_on_the_second_checkpoint(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            with open(filename, "wb") as f:
                f.write(b"half an optimizer state")
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(tensors, filename, metadata=metadata)

    real_save, tc.save_file = tc.save_file, save_and_die_on_the_second_checkpoint
    full = load_dataset()
    data = Dataset(full.train[:50_000], full.val[:5_000], full.tokenizer, full.sha256)
    Trainer(TrainConfig(**{config!r}, out_dir=sys.argv[1]), dataset=data).fit()
    print("not killed")
""")


@pytest.fixture(scope="module")
def dataset():
    full = load_dataset()
    return Dataset(full.train[:50_000], full.val[:5_000], full.tokenizer, full.sha256)


def test_a_run_killed_mid_checkpoint_resumes_from_the_last_good_one_with_no_loss(dataset, tmp_path):
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE.format(config=TINY), str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    # the half-written step 4 is not a checkpoint; step 2 is the latest, and whole
    assert latest_checkpoint(out).name == "step_000002"
    assert read_training_state(latest_checkpoint(out))["step"] == 2
    assert not (out / "step_000004").exists()

    resumed = Trainer(TrainConfig(**TINY, out_dir=str(out), resume=True), dataset=dataset)
    result = resumed.fit()  # also shows the dead process's folder lock was released
    assert result.steps == 8 and latest_checkpoint(out).name == "step_000008"
    assert [p.name for p in out.iterdir() if p.name.startswith(".step")] == []  # leftovers cleaned

    straight = Trainer(TrainConfig(**TINY), dataset=dataset)
    straight.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs from an uninterrupted one"
    assert resumed.history.loss == straight.history.loss


def _cli(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "gptlib.train", "--n_layer", "1", "--n_head", "2", "--d_model", "16",
            "--context_length", "16", "--batch_size", "4", "--max_steps", str(steps), "--warmup_steps", "1",
            "--eval_interval", "0", "--final_eval_windows", "8", "--checkpoint_interval", "20",
            "--keep_checkpoints", "1000000",  # none deleted while the test reads them
            "--progress", "false", "--threads", "1", "--device", "cpu", "--out_dir", str(out)]


def test_a_second_run_on_a_busy_output_folder_is_refused_and_the_first_goes_on(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(_cli(out, 1_000_000), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while latest_checkpoint(out) is None:  # wait until the first run is writing checkpoints
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run wrote no checkpoint in 2 minutes"
            time.sleep(0.2)
        second = subprocess.run(_cli(out, 10), cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1
        assert "another training run is writing to" in second.stderr
        assert f"pid {first.pid}" in second.stderr, second.stderr
        before = read_training_state(latest_checkpoint(out))["step"]
        deadline = time.monotonic() + 120
        while read_training_state(latest_checkpoint(out))["step"] == before:  # the first run goes on
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run stopped checkpointing"
            time.sleep(0.2)
    finally:
        first.kill()
        first.wait()
    # killed at any moment, the first run's latest checkpoint is whole (every file matches the hash
    # recorded with it) and loads, and the system released its lock on the folder
    latest = latest_checkpoint(out)
    assert read_training_state(latest)["step"] > before
    assert load_pretrained(latest).config.d_model == 16
    with FolderLock(out):
        pass
