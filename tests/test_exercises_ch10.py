"""Chapter 10's exercise checks confirm right answers, reject the stub and plausible wrong answers,
and their references agree with the performance model the chapter uses."""
import pytest

from gptlib import GPTConfig
from gptlib.exercises import ExerciseError, ch10
from wse_demo import placement


def passes(capsys, check, *args):
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    with pytest.raises(ExerciseError, match=match):
        check(*args)


def test_block_training_bytes(capsys):
    C = 2048
    params = 12 * C * C + 13 * C  # matrices, their biases and two LayerNorms
    passes(capsys, ch10.check_block_training_bytes, params * 16)
    rejects(ch10.check_block_training_bytes, ..., match="not answered yet")
    rejects(ch10.check_block_training_bytes, 12 * C * C * 16, match="biases")
    rejects(ch10.check_block_training_bytes, params * 2, match="16 bytes")
    # the performance model charges the same per block
    block = placement.layer_costs("1.3B")[1]
    assert block.params == params


def test_compute_bound_micro_batch(capsys):
    b = 757 * 996 * 8.8e9 / (150e9 * 2048)
    passes(capsys, ch10.check_compute_bound_micro_batch, b)
    rejects(ch10.check_compute_bound_micro_batch, ..., match="not answered yet")
    rejects(ch10.check_compute_bound_micro_batch, b * 2048, match="tokens")
    rejects(ch10.check_compute_bound_micro_batch, 2 * b, match="factors of 2")
    # the performance model's value (which includes attention's FLOPs) is close
    est = placement.weight_streaming("1.3B", "WSE-2")
    assert est.compute_bound_micro_batch == pytest.approx(b, rel=0.05)


def right_rate(pes, flops):
    return min(p * 8.8e9 / (3 * f) for p, f in zip(pes, flops))


def test_pipeline_rate(capsys):
    passes(capsys, ch10.check_pipeline_rate, right_rate)
    rejects(ch10.check_pipeline_rate, ..., match="not answered yet")
    rejects(ch10.check_pipeline_rate, lambda p, f: max(a * 8.8e9 / (3 * b) for a, b in zip(p, f)),
            match="SLOWEST")
    rejects(ch10.check_pipeline_rate, lambda p, f: 3 * right_rate(p, f), match="3 x")
    rejects(ch10.check_pipeline_rate, lambda p, f: sum(p) * 8.8e9 / (3 * sum(f)), match="balanced")
    # the right answer reproduces the performance model's pipeline throughput
    p = placement.layer_pipelined("111M", "WSE-2")
    rate = right_rate([r.pes for r in p.regions], [r.layer.flops_per_token for r in p.regions])
    assert rate == pytest.approx(p.tokens_per_s)


def test_training_days(capsys):
    days = 2.3e22 / (12 * 850_000 * 8.8e9) / 86400
    passes(capsys, ch10.check_training_days, days)
    rejects(ch10.check_training_days, ..., match="not answered yet")
    rejects(ch10.check_training_days, days * 12, match="one CS-2")
    rejects(ch10.check_training_days, days * 24, match="hours")
    assert GPTConfig.cerebras("13B").n_layer == 40
