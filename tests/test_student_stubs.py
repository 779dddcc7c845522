"""The student edition's stubs: only the names a solution binds become ``name = ...``."""
import pytest

from gptlib.exercises.student import defined_names, stub_source


@pytest.mark.parametrize("code,names", [
    ("x = 1", ["x"]),
    ("a, (b, *c) = 1, (2, 3)", ["a", "b", "c"]),
    ("def f(x):\n    return x\nclass K:\n    pass", ["f", "K"]),
    ("n: int = 3\nn += 1", ["n"]),
    # indexed and attribute assignments change an existing object: nothing is bound, and the
    # names read inside them (torch, len, ids ...) must never be stubbed
    ("one_hot = torch.zeros(len(ids), V)\none_hot[torch.arange(len(ids)), ids] = 1.0", ["one_hot"]),
    ("model.config.dropout = 0.1\ny = model(x)", ["y"]),
])
def test_defined_names(code, names):
    assert defined_names(code) == names


def test_stub_keeps_what_is_outside_the_solution():
    source = "import torch\n# BEGIN SOLUTION\nv = torch.ones(3)\nv[0] = 2\n# END SOLUTION\nprint(v)"
    assert stub_source(source) == "import torch\nv = ...  # your answer here\nprint(v)"


def test_a_solution_that_binds_nothing_is_refused():
    with pytest.raises(ValueError, match="defines no name"):
        stub_source("# BEGIN SOLUTION\nx[0] = 1\n# END SOLUTION")
