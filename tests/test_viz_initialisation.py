"""Chapter 5's residual-variance figure draws both panels from the series it is given."""
import numpy as np
import pytest

from gptlib.viz import initialisation


def test_residual_variance_figure_has_one_line_per_scheme_and_panel():
    per_block = {"plain": [1.0, 2.0, 3.0], "scaled": [1.0, 1.5, 2.0]}
    final = {"plain": [3.0, 5.0], "scaled": [2.0, 2.0]}
    fig = initialisation.residual_variance_figure(per_block, [2, 4], final)
    assert len(fig.data) == 4
    left, right = fig.data[0], fig.data[1]
    np.testing.assert_array_equal(left.x, [0, 1, 2])
    np.testing.assert_allclose(right.y, [3.0, 5.0])
    np.testing.assert_array_equal(right.x, [2, 4])
    with pytest.raises(ValueError, match="same scheme labels"):
        initialisation.residual_variance_figure(per_block, [2, 4], {"plain": [3.0, 5.0]})
    with pytest.raises(ValueError, match="one value per depth"):
        initialisation.residual_variance_figure(per_block, [2, 4, 8], final)
    with pytest.raises(ValueError, match="layer counts"):
        initialisation.residual_variance_figure(per_block, [0, 4], final)
