"""Determinism: the same seed gives the same run, in another process and in another execution.

- Training: two separate ``python -m gptlib.train`` processes with one seed write byte-identical
  weights (a third with another seed does not), so a reader's run matches the book's on a CPU.
- Chapters: every chapter is executed twice by ``make test``, once by the book build (``make book``
  keeps the executed notebook in ``_build/jupyter_execute/``) and once by nbval, and both runs are
  compared with the outputs stored in ``chapters/``: nbval compares its own run, and
  :func:`test_book_build_reproduces_every_checked_output` compares the book build's. Two runs equal
  to one stored run are equal to each other. The outputs compared are those of the cells tagged
  ``nbval-check-output`` (the numbers the text quotes), after the same sanitising nbval applies
  (``tests/nbval_sanitize.cfg``: timings, plotly ids, memory addresses).
"""
from __future__ import annotations

import configparser
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = Path(os.environ.get("BOOK_EXECUTED", ROOT / "_build" / "jupyter_execute"))
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
TAG = "nbval-check-output"

TINY_RUN = ["--n_layer", "1", "--n_head", "2", "--d_model", "16", "--context_length", "16", "--batch_size", "4",
            "--max_steps", "6", "--warmup_steps", "1", "--eval_interval", "0", "--final_eval_windows", "8",
            "--progress", "false", "--threads", "1", "--device", "cpu", "--dropout", "0.1"]


def _train(out_dir: Path, seed: int) -> str:
    """Run the command-line trainer in a fresh process; return the SHA-256 of the weights it wrote."""
    done = subprocess.run([sys.executable, "-m", "gptlib.train", *TINY_RUN, "--seed", str(seed),
                           "--out_dir", str(out_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    weights = out_dir / "step_000006" / "model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def test_training_with_one_seed_is_bit_identical_across_processes(tmp_path):
    """Dropout is on, so the initialisation, the batches and the dropout masks all come from the seed."""
    first, second = _train(tmp_path / "a", seed=7), _train(tmp_path / "b", seed=7)
    assert first == second, "two runs with the same seed wrote different weights"
    assert _train(tmp_path / "c", seed=8) != first, "another seed should give other weights"


# ---------------------------------------------------------------------------------------------
# chapters
# ---------------------------------------------------------------------------------------------
def _sanitizers() -> list[tuple[re.Pattern, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


SANITIZERS = _sanitizers()


def _clean(text: str) -> str:
    for pattern, replacement in SANITIZERS:
        text = pattern.sub(replacement, text)
    return text


def checked_outputs(notebook: Path) -> list[tuple[int, list[str]]]:
    """``(cell index, outputs as sanitised text)`` for every code cell tagged ``nbval-check-output``.

    Compared: what the cell prints (stdout, joined, as the kernel may split one print over several
    messages), its text/plain and text/html results, and any error. Warnings on stderr are not
    results (and the book build drops them).
    """
    nb = nbformat.read(notebook, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or TAG not in cell.metadata.get("tags", []):
            continue
        printed = ""
        parts = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stdout":
                printed += out.text
            elif out.output_type in ("execute_result", "display_data"):
                for mime in ("text/plain", "text/html"):
                    if mime in out.get("data", {}):
                        parts.append(f"{mime}: {_clean(str(out.data[mime]))}")
            elif out.output_type == "error":
                parts.append(f"error: {out.ename}: {out.evalue}")
        parts = ([f"stdout: {_clean(printed)}"] if printed else []) + parts
        cells.append((index, parts))
    return cells


def test_every_chapter_checks_some_outputs():
    """Determinism is only tested where outputs are compared: every chapter must have some."""
    assert len(CHAPTERS) >= 10
    for chapter in CHAPTERS:
        assert any(parts for _, parts in checked_outputs(chapter)), f"{chapter.name} stores no checked output"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_book_build_reproduces_every_checked_output(chapter):
    executed = EXECUTED / "chapters" / chapter.name
    if not executed.is_file():
        message = f"no executed copy of {chapter.name} in {EXECUTED}: run `make book` (`make test` does)"
        if os.environ.get("BOOK_EXECUTED") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    stored, fresh = dict(checked_outputs(chapter)), dict(checked_outputs(executed))
    assert stored.keys() == fresh.keys(), "the executed copy is of another version of the chapter"
    for index, parts in stored.items():
        assert fresh[index] == parts, (f"{chapter.name}, cell {index}: the book build printed\n"
                                       f"{fresh[index]}\nbut the stored run printed\n{parts}")
