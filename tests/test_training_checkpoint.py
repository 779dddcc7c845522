"""Training checkpoints: atomic, hash-checked, refusing mismatches, one run per folder."""
import json
import subprocess
import sys

import pytest
import torch

import gptlib.train.checkpoints as tc
from gptlib import GPT, GPTConfig, load_pretrained
from gptlib.files import FolderBusy, FolderLock
from gptlib.optim import configure_optimizer
from gptlib.train.checkpoints import (TrainingCheckpointError, latest_checkpoint, load_training_checkpoint,
                                      rng_states, save_training_checkpoint, set_rng_states)


def make(seed=0, **kw):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=40, context_length=16, n_layer=2, n_head=2, d_model=32, **kw)
    model = GPT(config)
    optimizer = configure_optimizer(model, lr=1e-2)
    return model, optimizer


def train_a_bit(model, optimizer, steps=2):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randint(40, (4, 16), generator=g)
        _, loss = model(x, x.roll(-1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_round_trip_restores_model_and_optimizer_exactly(tmp_path):
    model, opt = make()
    train_a_bit(model, opt)
    path = save_training_checkpoint(tmp_path, model, opt, step=2, state={"note": "hi"})
    assert path.name == "step_000002" and latest_checkpoint(tmp_path) == path
    fresh, fresh_opt = make(seed=5)
    record = load_training_checkpoint(path, fresh, fresh_opt)
    assert record["step"] == 2 and record["state"] == {"note": "hi"}
    assert same_weights(model, fresh)
    a, b = opt.state_dict(), fresh_opt.state_dict()
    for i in a["state"]:
        for k in a["state"][i]:
            assert torch.equal(a["state"][i][k], b["state"][i][k])
    assert [g["lr"] for g in a["param_groups"]] == [g["lr"] for g in b["param_groups"]]
    # the same steps from both give the same weights
    train_a_bit(model, opt)
    train_a_bit(fresh, fresh_opt)
    assert same_weights(model, fresh)
    # and the folder is a Hugging Face checkpoint too
    assert torch.equal(load_pretrained(path).transformer.h[1].mlp.c_fc.weight,
                       fresh.transformer.h[1].mlp.c_fc.weight) is False  # fresh moved on since the save
    assert set(p.name for p in path.iterdir()) == {"config.json", "model.safetensors",
                                                   "optimizer.safetensors", "training_state.json"}


@pytest.mark.parametrize("crash", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_a_crash_while_saving_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch, crash):
    model, opt = make()
    first = save_training_checkpoint(tmp_path, model, opt, step=1)
    saved_weights = {k: v.clone() for k, v in model.state_dict().items()}
    train_a_bit(model, opt)

    def crash_mid_write(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise crash

    monkeypatch.setattr(tc, "save_file", crash_mid_write)  # dies while writing the optimizer state
    with pytest.raises(type(crash)):
        save_training_checkpoint(tmp_path, model, opt, step=3)
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == first
    assert not (tmp_path / "step_000003").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".step")] == []
    fresh, fresh_opt = make(seed=9)
    load_training_checkpoint(first, fresh, fresh_opt)
    assert all(torch.equal(saved_weights[k], v) for k, v in fresh.state_dict().items())


def test_leftovers_of_a_killed_save_are_ignored_and_cleaned(tmp_path):
    model, opt = make()
    first = save_training_checkpoint(tmp_path, model, opt, step=1)
    junk = tmp_path / ".step_000002.tmpabc"  # what a process killed mid-save leaves behind
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"\0" * 10)
    assert latest_checkpoint(tmp_path) == first
    save_training_checkpoint(tmp_path, model, opt, step=2)
    assert not junk.exists()


def test_corrupt_files_are_refused_with_advice(tmp_path):
    model, opt = make()
    path = save_training_checkpoint(tmp_path, model, opt, step=1)
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit in a weight
    weights.write_bytes(bytes(data))
    fresh, fresh_opt = make(seed=3)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(TrainingCheckpointError, match="corrupt.*SHA-256.*earlier checkpoint"):
        load_training_checkpoint(path, fresh, fresh_opt)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())  # untouched
    (path / "training_state.json").write_text('{"step": 1, "sha')  # truncated JSON
    with pytest.raises(TrainingCheckpointError, match="training_state.json is corrupt"):
        load_training_checkpoint(path, fresh, fresh_opt)
    (tmp_path / "latest").write_text("step_000999\n")
    with pytest.raises(TrainingCheckpointError, match="not a checkpoint folder"):
        latest_checkpoint(tmp_path)


def test_checkpoint_of_another_model_is_refused_naming_the_fields(tmp_path):
    model, opt = make()
    path = save_training_checkpoint(tmp_path, model, opt, step=1)
    other, other_opt = make(mup=True)
    with pytest.raises(TrainingCheckpointError, match="mup: checkpoint False, this run True"):
        load_training_checkpoint(path, other, other_opt)


def test_optimizer_with_other_groups_is_refused(tmp_path):
    model, opt = make()
    path = save_training_checkpoint(tmp_path, model, opt, step=1)
    plain = torch.optim.AdamW(model.parameters())
    with pytest.raises(TrainingCheckpointError, match="parameter groups differ"):
        load_training_checkpoint(path, model, plain)


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    model, opt = make()
    for step in (1, 2, 3, 4):
        save_training_checkpoint(tmp_path, model, opt, step=step, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000003", "step_000004"]
    save_training_checkpoint(tmp_path, model, opt, step=4, keep=2)  # re-saving a step replaces it
    assert latest_checkpoint(tmp_path).name == "step_000004"


def test_rng_states_round_trip():
    state = rng_states()
    json.dumps(state)  # travels inside the JSON
    a = torch.rand(5)
    set_rng_states(state)
    assert torch.equal(torch.rand(5), a)


def test_muP_checkpoint_resumes_bit_exactly(tmp_path):
    """The folded weights (for other loaders) round to float32; the checkpoint keeps the exact ones."""
    model, opt = make(mup=True, mup_base_width=16)
    train_a_bit(model, opt)
    path = save_training_checkpoint(tmp_path, model, opt, step=2)
    assert (path / "mup_unfolded.safetensors").is_file()
    fresh, fresh_opt = make(seed=4, mup=True, mup_base_width=16)
    load_training_checkpoint(path, fresh, fresh_opt)
    assert same_weights(model, fresh)


def test_two_runs_cannot_write_one_folder(tmp_path):
    purpose = "another training run is writing to"  # what the refused process is told
    with FolderLock(tmp_path, purpose=purpose):
        with pytest.raises(FolderBusy, match=f"{purpose} {tmp_path} \\(pid "):
            FolderLock(tmp_path, purpose=purpose).acquire()
    with FolderLock(tmp_path):  # released: the next run may go
        pass


def test_lock_held_by_another_process_and_freed_when_it_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gptlib.files import FolderLock; "
         f"lock = FolderLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusy, match=f"pid {holder.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with FolderLock(tmp_path):  # the system released the dead process's lock
        pass
