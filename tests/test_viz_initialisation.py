"""Chapter 5's residual-variance figure draws the added variance of each scheme on log axes."""
import numpy as np
import pytest

from gptlib.viz import initialisation


def test_residual_variance_figure_has_one_line_per_scheme_and_panel():
    per_block = {"plain": [1.0, 2.0, 3.0], "scaled": [0.5, 1.0, 1.5]}
    final = {"plain": [3.0, 5.0], "scaled": [1.5, 1.5]}
    fig = initialisation.residual_variance_figure(per_block, [2, 4], final,
                                                  embedding_variance=0.1, title="what to see")
    assert len(fig.data) == 4
    left, right = fig.data[0], fig.data[1]
    np.testing.assert_array_equal(left.x, [1, 2, 3])      # blocks 1..L: what each one added
    np.testing.assert_allclose(left.y, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(right.y, [3.0, 5.0])
    np.testing.assert_array_equal(right.x, [2, 4])
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert [s.y0 for s in fig.layout.shapes] == [0.1, 0.1]   # the embeddings' line, both panels
    assert fig.layout.annotations[-1].y == pytest.approx(-1.0)  # log10(0.1) on a log axis
    assert fig.layout.title.text == "what to see"


def test_residual_variance_figure_refuses_bad_series():
    per_block = {"plain": [1.0, 2.0, 3.0], "scaled": [0.5, 1.0, 1.5]}
    final = {"plain": [3.0, 5.0], "scaled": [1.5, 1.5]}
    with pytest.raises(ValueError, match="same scheme labels"):
        initialisation.residual_variance_figure(per_block, [2, 4], {"plain": [3.0, 5.0]})
    with pytest.raises(ValueError, match="one value per depth"):
        initialisation.residual_variance_figure(per_block, [2, 4, 8], final)
    with pytest.raises(ValueError, match="layer counts"):
        initialisation.residual_variance_figure(per_block, [0, 4], final)
    with pytest.raises(ValueError, match="> 0"):   # a log axis cannot show 0 or less
        initialisation.residual_variance_figure({"plain": [0.0, 1.0], "scaled": [1.0, 1.0]},
                                                [2, 4], final)
    with pytest.raises(ValueError, match="embedding_variance"):
        initialisation.residual_variance_figure(per_block, [2, 4], final, embedding_variance=0)
