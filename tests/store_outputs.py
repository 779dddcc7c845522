"""Authoring tool: execute a chapter and keep only the outputs nbval compares.

Usage: ``.venv/bin/python tests/store_outputs.py chapters/03_attention.ipynb [...]``

Runs the notebook top to bottom in a fresh kernel (from the ``chapters/`` folder, with
``PLOTLY_RENDERER=notebook`` as in the book build), then clears every output except those of cells
tagged ``nbval-check-output`` (whose consecutive prints it joins into one output), marks the cells
tagged ``hide-input`` as collapsed for JupyterLab (``jupyter.source_hidden``), and writes it back. Prints the wall time of each notebook.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def merge_consecutive_prints(outputs: list) -> list:
    """Join each run of consecutive stream outputs of one name into one output, as the book and
    nbval show them (a loop's prints are one block)."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


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
        tags = cell.metadata.get("tags", [])
        # JupyterLab collapses a cell's code by this metadata, as the book does by the tag: the
        # set-up cell and the solutions start folded there too.
        if "hide-input" in tags:
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        elif "source_hidden" in cell.metadata.get("jupyter", {}):
            del cell.metadata["jupyter"]["source_hidden"]
            if not cell.metadata["jupyter"]:
                del cell.metadata["jupyter"]
        if "nbval-check-output" not in tags:
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.outputs = merge_consecutive_prints(cell.outputs)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: executed in {store(p):.1f} s")
