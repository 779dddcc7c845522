"""Build the student edition: every chapter with its exercise solutions replaced by stubs.

In the book's notebooks an exercise's answer cell carries the tag ``solution``, and its answer sits
between the lines ``# BEGIN SOLUTION`` and ``# END SOLUTION``. In the student edition that region
becomes one line ``name = ...  # your answer here`` per top-level name the solution defines
(assignments and ``def``/``class``), so the check cell that follows reports "not answered yet"
instead of crashing. Outputs are cleared.

Usage: ``python -m gptlib.exercises.student OUT_DIR [NOTEBOOK ...]`` (default: every chapter).
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
REPO_ROOT = Path(__file__).resolve().parents[2]


def bound_names(target: ast.expr) -> list[str]:
    """The names an assignment target binds: ``x`` and ``a, (b, *c)`` bind names, but
    ``x[i] = ...`` and ``x.attr = ...`` only change an object that already exists (and the names
    inside them, ``x``, ``i``, ``torch`` ..., are only read)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return bound_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in bound_names(element)]
    return []


def defined_names(code: str) -> list[str]:
    """Top-level names a solution defines (assigns or ``def``/``class``), in order of first
    definition."""
    names: list[str] = []
    for node in ast.parse(code).body:
        targets = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            targets = [node.name]
        elif isinstance(node, ast.Assign):
            targets = [name for t in node.targets for name in bound_names(t)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = bound_names(node.target)
        names += [n for n in targets if n not in names]
    return names


def stub_source(source: str) -> str:
    """Replace each BEGIN/END SOLUTION region of a cell's source with ``name = ...`` stubs."""
    pattern = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n(.*?)^[ \t]*{re.escape(END)}[^\n]*$",
                         re.DOTALL | re.MULTILINE)

    def replace(match: re.Match) -> str:
        indent, body = match.group(1), match.group(2)
        import textwrap
        names = defined_names(textwrap.dedent(body))
        if not names:
            raise ValueError(f"a solution region defines no name to stub:\n{body}")
        return "\n".join(f"{indent}{n} = ...  # your answer here" for n in names)

    new, count = pattern.subn(replace, source)
    if count == 0:
        raise ValueError(f"a cell tagged 'solution' has no '{BEGIN}' ... '{END}' region:\n{source[:200]}")
    return new


def student_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy of ``nb`` with solutions stubbed and outputs cleared; also the number of stubs."""
    nb = nbformat.from_dict(nb)
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if "solution" in cell.get("metadata", {}).get("tags", []):
            cell.source = stub_source(cell.source)
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "hide-input"]
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)  # the reader's answer: open
            n += 1
    return nb, n


def build(out_dir: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Write the student edition of ``notebooks`` (default: ``chapters/*.ipynb``) into ``out_dir``."""
    notebooks = notebooks or sorted((REPO_ROOT / "chapters").glob("[0-9]*.ipynb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb, n = student_notebook(nbformat.read(path, as_version=4))
        target = out_dir / path.name
        nbformat.write(nb, target)
        print(f"{target}: {n} exercise(s) stubbed")
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]] or None)
