"""Authoring tool: execute a chapter and keep only the outputs nbval compares.

Usage: ``.venv/bin/python tests/store_outputs.py chapters/03_attention.ipynb [...]``

Runs the notebook top to bottom in a fresh kernel (from the ``chapters/`` folder, with
``PLOTLY_RENDERER=notebook`` as in the book build), then clears every output except those of cells
tagged ``nbval-check-output``, and writes it back. Prints the wall time of each notebook.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def store(path: str) -> float:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("PLOTLY_RENDERER", "notebook")
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "nbval-check-output" not in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: executed in {store(p):.1f} s")
