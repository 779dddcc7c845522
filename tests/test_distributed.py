"""Data parallelism: 2 processes with batch B/2 each take the same steps as 1 process with batch B."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptlib.train.checkpoints import latest_checkpoint
from gptlib.train.distributed import DistributedContext, all_reduce_sum, launched_by_torchrun, setup, shard

REPO = Path(__file__).resolve().parent.parent
RECIPE = dict(n_layer=2, n_head=2, d_model=32, context_length=16, batch_size=8, max_steps=4, warmup_steps=1,
              peak_lr=3e-3, eval_interval=2, eval_windows=16, final_eval_windows=16, progress=False,
              threads=1, device="cpu")


def run_cli(tmp_path: Path, processes: int) -> tuple[Path, str]:
    out = tmp_path / f"run{processes}"
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps(RECIPE))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                "--master_port", str(29400 + processes)] if processes > 1 else [sys.executable]
    proc = subprocess.run(launcher + ["-m", "gptlib.train", "--config", str(config), "--out_dir", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_two_processes_reproduce_one_process_with_the_whole_batch(tmp_path):
    """Through the real command line: torchrun, gloo, DistributedDataParallel.

    The processes add the gradients in another order than one process does, so the weights agree
    to rounding, not bit for bit. The largest difference is in the key biases, whose gradient is
    zero in exact arithmetic (adding a constant to every key's score leaves the softmax unchanged):
    Adam divides that rounding noise by its own tiny size and turns it into small steps."""
    one, log_one = run_cli(tmp_path, 1)
    two, log_two = run_cli(tmp_path, 2)
    a = load_file(str(latest_checkpoint(one) / "model.safetensors"))
    b = load_file(str(latest_checkpoint(two) / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)
    # the weights moved, so the comparison means something
    assert sum(log_two.count(line) for line in ["final validation loss"]) == 1  # only rank 0 reports
    loss_one = float(log_one.split("final validation loss ")[1].split()[0])
    loss_two = float(log_two.split("final validation loss ")[1].split()[0])
    assert loss_two == pytest.approx(loss_one, abs=1e-4)
    # only rank 0 wrote: one checkpoint folder per saved step, nothing else
    assert sorted(p.name for p in two.iterdir() if not p.name.startswith(".")) == ["latest", "step_000004"]


def test_shard_splits_the_global_batch_in_rank_order():
    batch = torch.arange(8)[:, None].expand(8, 3)
    parts = [shard(batch, DistributedContext(rank=r, world_size=2, backend="gloo")) for r in range(2)]
    assert torch.equal(torch.cat(parts), batch)
    assert torch.equal(shard(batch, DistributedContext()), batch)
    with pytest.raises(ValueError, match="divisible by 3"):
        shard(batch, DistributedContext(rank=0, world_size=3, backend="gloo"))


def test_single_process_context_without_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert not launched_by_torchrun()
    context = setup("cpu")
    assert context == DistributedContext() and context.is_main and not context.enabled
    values = torch.tensor([1.0, 2.0])
    assert torch.equal(all_reduce_sum(values, context), values)
