"""How the chapters are stored, as a reader opening them in JupyterLab depends on it.

A cell the book shows folded (tag ``hide-input``: the set-up cell, the solutions) must start
folded in JupyterLab too, which reads ``metadata.jupyter.source_hidden``; ``tests/store_outputs.py``
sets it when it stores a chapter, and this test catches a chapter stored another way.
"""
from pathlib import Path

import nbformat
import pytest

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_cells_folded_in_the_book_start_folded_in_jupyterlab(path):
    nb = nbformat.read(path, as_version=4)
    unfolded = [cell.get("id", i) for i, cell in enumerate(nb.cells)
                if "hide-input" in cell.metadata.get("tags", [])
                and not cell.metadata.get("jupyter", {}).get("source_hidden")]
    assert not unfolded, (f"{path.name}: hide-input cells {unfolded} lack "
                          f"metadata.jupyter.source_hidden; store the chapter with "
                          f"tests/store_outputs.py")
