"""What the figure modules share: one way to draw whitespace, one set of input checks."""
import numpy as np
import pytest
import torch

from gptlib.checks import ArgumentError, GptlibError
from gptlib.viz import PALETTE, attention, inputs, sampling, style, tokens


def test_every_figure_draws_whitespace_with_the_same_glyphs():
    text = "a b\nc\td\re"
    drawn = "a␣b⏎c⇥d␍e"
    assert style.visible(text) == drawn
    assert tokens.display_text(text.encode()) == drawn
    assert sampling.token_label(text) == drawn
    assert "".join(attention.display_tokens([text])) == drawn
    # an empty token is drawn as ∅ on an axis, and as nothing on a chip
    assert sampling.token_label("") == "∅" and attention.display_tokens([""]) == ["∅"]
    assert inputs.token_labels(["", " "]) == ["∅", "␣"]


def test_the_package_palette_is_the_style_palette():
    assert PALETTE is style.PALETTE


@pytest.mark.parametrize("values, options, message", [
    ([[1.0, 2.0]], {}, r"x must be a non-empty 1-D series of numbers, got shape \(1, 2\)"),
    ([], {}, "non-empty 1-D"),
    ([1.0, 2.0], dict(length=3, per="model"), r"x must hold one value per model \(3\), got 2"),
    ([1.0, float("nan")], {}, r"x must be finite \(no NaN or infinite values\), got \[1.0, nan\]"),
    ([1.0, 0.0], dict(positive=True, why="a log axis"),
     r"x must hold positive values \(> 0\) \(a log axis\), got \[1.0, 0.0\]"),
    ([1.0, -1.0], dict(nonnegative=True), r"x must hold values >= 0, got"),
])
def test_series_says_what_was_wrong(values, options, message):
    with pytest.raises(ArgumentError, match=message):
        inputs.series("x", values, **options)


def test_series_reads_tensors_and_keeps_good_values_exactly():
    t = torch.tensor([0.1, 2.0, 3.5])
    a = inputs.series("x", t, length=3, positive=True)
    assert a.dtype == np.float64 and np.array_equal(a, t.double().numpy())
    assert np.array_equal(inputs.matrix("m", torch.eye(2)), np.eye(2))
    with pytest.raises(ArgumentError, match="2-D matrix"):
        inputs.matrix("m", [1.0, 2.0])
    with pytest.raises(GptlibError, match="one y per x"):
        inputs.paired("loss", [1, 2], [1.0])


def test_top_is_a_positive_integer_capped_at_the_vocabulary():
    assert inputs.top(50, 10) == 10 and inputs.top(3, 10) == 3
    for bad in (0, True, 2.0):
        with pytest.raises(ArgumentError, match="top must be a positive integer"):
            inputs.top(bad, 10)
