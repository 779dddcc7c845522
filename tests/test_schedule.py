"""The learning-rate schedule: warm-up, then linear or cosine decay to 10% of the peak."""
import math

import pytest

from gptlib.schedule import Schedule, warmup_steps_for_tokens


def test_warmup_rises_linearly_to_the_peak():
    s = Schedule(peak_lr=1e-3, warmup_steps=10, total_steps=110, decay="linear")
    assert s(0) == pytest.approx(1e-4)
    assert s(4) == pytest.approx(5e-4)
    assert s(9) == pytest.approx(1e-3)  # the peak is reached at the last warm-up update
    assert s(10) == pytest.approx(1e-3)  # and the decay starts from it


@pytest.mark.parametrize("decay", ["linear", "cosine"])
def test_decay_ends_at_ten_percent_and_stays_there(decay):
    s = Schedule(peak_lr=6e-4, warmup_steps=100, total_steps=1100, decay=decay)
    assert s(1100) == pytest.approx(6e-5)
    assert s(5000) == pytest.approx(6e-5)
    values = s.values(1200)
    assert max(values) == pytest.approx(6e-4)
    assert values[0] == pytest.approx(6e-6)  # warm-up starts at peak / W
    assert min(values[100:]) == pytest.approx(6e-5)
    decay_part = values[100:1101]
    assert all(a >= b for a, b in zip(decay_part, decay_part[1:]))  # never rises after the warm-up


def test_linear_and_cosine_values_at_known_steps():
    lin = Schedule(peak_lr=1.0, warmup_steps=0, total_steps=100, decay="linear")
    cos = Schedule(peak_lr=1.0, warmup_steps=0, total_steps=100, decay="cosine")
    # halfway: linear is 1 - 0.9 * 0.5; cosine's (1 + cos(pi/2)) / 2 = 0.5 gives the same midpoint
    assert lin(50) == pytest.approx(0.55)
    assert cos(50) == pytest.approx(0.55)
    # a quarter of the way: linear 1 - 0.9/4; cosine 0.1 + 0.9 (1 + cos(pi/4)) / 2
    assert lin(25) == pytest.approx(0.775)
    assert cos(25) == pytest.approx(0.1 + 0.9 * (1 + math.sqrt(0.5)) / 2)
    # cosine stays higher than linear early on and lower late
    assert cos(10) > lin(10) and cos(90) < lin(90)


def test_constant_decay_and_other_final_fraction():
    assert Schedule(2.0, 5, 50, "constant")(40) == 2.0
    assert Schedule(1.0, 0, 10, "linear", final_fraction=0.0)(10) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(peak_lr=0, warmup_steps=1, total_steps=2), "peak_lr"),
    (dict(peak_lr=float("nan"), warmup_steps=1, total_steps=2), "peak_lr"),
    (dict(peak_lr=1e-3, warmup_steps=10, total_steps=5), "total_steps"),
    (dict(peak_lr=1e-3, warmup_steps=-1, total_steps=5), "warmup_steps"),
    (dict(peak_lr=1e-3, warmup_steps=1, total_steps=5, decay="exp"), "decay"),
    (dict(peak_lr=1e-3, warmup_steps=1, total_steps=5, final_fraction=1.5), "final_fraction"),
])
def test_bad_schedules_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Schedule(**kwargs)


def test_bad_step_is_refused():
    with pytest.raises(ValueError, match="step"):
        Schedule(1e-3, 1, 5)(-1)


def test_warmup_tokens_of_cerebras_gpt_111m():
    # 375M tokens at 120 sequences x 2048 tokens per step
    assert warmup_steps_for_tokens(375e6, 120 * 2048) == math.ceil(375e6 / 245760)
    with pytest.raises(ValueError):
        warmup_steps_for_tokens(1, 0)
