"""The student edition: every exercise check must fail on the stub and pass on the book's solution,
and the stubs must break nothing else in the chapter.

For each chapter, the student edition (solutions replaced by ``name = ...`` stubs) is executed
with errors allowed; the check cell right after each answer cell must raise ``ExerciseError``
saying the answer is missing. On the book's own notebook the same check cell's stored output is a
confirmation, which nbval re-checks against a fresh run of the chapter.
"""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gptlib.exercises.student import student_notebook

CHAPTERS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("[0-9]*.ipynb"))


def exercise_cells(nb):
    """Pairs (answer cell index, check cell index) of a notebook."""
    pairs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            assert i + 1 < len(nb.cells) and nb.cells[i + 1].cell_type == "code", \
                f"cell {i}: an answer cell must be followed by its check cell"
            pairs.append((i, i + 1))
    return pairs


def test_every_chapter_has_at_least_three_exercises():
    assert CHAPTERS, "no chapters found"
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        assert len(exercise_cells(nb)) >= 3, f"{path.name} has fewer than 3 exercises"


# `make test` hands each test file to one worker: chapters 6-10 (the longest student editions)
# run from tests/test_student_edition_late.py, so that two workers share the chapters.
FIRST_HALF = [p for p in CHAPTERS if int(p.name[:2]) <= 5]


@pytest.mark.parametrize("path", FIRST_HALF, ids=lambda p: p.stem)
def test_checks_pass_on_the_solution_and_fail_on_the_stub(path):
    check_student_edition(path)


def check_student_edition(path):
    """Run the student edition of the chapter at ``path`` and check its exercise cells."""
    book = nbformat.read(path, as_version=4)
    pairs = exercise_cells(book)
    for _, check in pairs:  # the book's stored output (compared again by nbval) is a confirmation
        cell = book.cells[check]
        assert "nbval-check-output" in cell.metadata.get("tags", []), f"{path.name} cell {check} untagged"
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "Well done" in text, f"{path.name} cell {check}: stored output is not a confirmation"

    student, n_stubs = student_notebook(book)
    assert n_stubs == len(pairs)
    env_path = str(path.parent)
    os.environ.setdefault("PLOTLY_RENDERER", "notebook")
    NotebookClient(student, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": env_path}}).execute()
    for answer, check in pairs:
        errors = [o for o in student.cells[check].outputs if o.output_type == "error"]
        assert errors, f"{path.name}: the check in cell {check} accepted the unanswered stub"
        assert errors[0].ename == "ExerciseError", \
            f"{path.name} cell {check}: stub gave {errors[0].ename}, not a helpful ExerciseError"
        assert "not answered yet" in errors[0].evalue
    # A reader who has answered nothing yet can still run the whole chapter: the stubs break no
    # other cell (a stub that rebinds a name the chapter uses, `torch = ...`, would).
    checks = {check for _, check in pairs}
    elsewhere = [(i, o.ename, o.evalue[:120]) for i, cell in enumerate(student.cells)
                 if i not in checks and cell.cell_type == "code"
                 for o in cell.outputs if o.output_type == "error"]
    assert not elsewhere, f"{path.name}: with every exercise unanswered, other cells fail: {elsewhere}"
