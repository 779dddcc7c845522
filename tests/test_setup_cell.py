"""book/setup_cell.ipy, the cell a reader runs first on Binder or Colab.

Both branches run here in IPython, as a reader's kernel would run them:

* in a clone (Binder, or a local checkout) it must not clone or install anything: it prepares the
  offline data and makes ``gptlib`` importable from the chapters folder;
* in an empty folder (Colab) it clones the repository, moves into its chapters folder, installs
  the few packages Colab lacks, prepares the data and imports ``gptlib`` from the clone. Here the
  repository is this one, cloned from disk instead of GitHub, and ``GPTLIB_DATA`` points at the
  prepared data so that nothing is downloaded.

The cell names the repository it clones as ``@REPOSITORY@``: the book fills in ``repository: url:``
of ``_config.yml`` where it shows the cell (``book/_ext/chapter_pages.py``), and shows it only when
that address is set (``tests/test_repository_setting.py``).
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CELL = ROOT / "book" / "setup_cell.ipy"
CHECK = ("import gptlib, gptlib.assets as a; print('GPTLIB', gptlib.__file__); "
         "a.require(a.GPT2_RANKS); print('CWD', os.getcwd())")


def run_cell(cell: Path, cwd: Path, ipython_dir: Path, env=None) -> subprocess.CompletedProcess:
    """Run ``cell`` in a fresh IPython (with its own IPython folder: the reader's history and
    profile are not touched)."""
    env = {**(env or os.environ), "IPYTHONDIR": str(ipython_dir)}
    return subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--quick", "--colors=NoColor", "-c",
         f"%run -i {cell}\n{CHECK}"],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_in_a_clone_it_prepares_the_data_and_imports_gptlib(tmp_path):
    result = run_cell(CELL, ROOT / "chapters", tmp_path / "ipython")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Cloning" not in result.stdout + result.stderr
    assert f"GPTLIB {ROOT / 'gptlib' / '__init__.py'}" in result.stdout, result.stdout
    assert "ok " in result.stdout, result.stdout  # gptlib.assets prepare checked the data files


def test_in_an_empty_folder_it_clones_the_book_and_works_from_its_chapters(tmp_path):
    text = CELL.read_text()
    assert 'REPO = "@REPOSITORY@.git"' in text, "the cell must clone the book's repository"
    local = tmp_path / "cell.ipy"
    local.write_text(text.replace('REPO = "@REPOSITORY@.git"', f'REPO = "{ROOT}"'))
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    env = {**os.environ, "GPTLIB_DATA": str(ROOT / "data"), "PIP_NO_INDEX": "1"}
    result = run_cell(local, content, tmp_path / "ipython", env)
    assert result.returncode == 0, result.stdout + result.stderr
    clone = content / "book"
    assert (clone / "gptlib" / "__init__.py").is_file()
    assert f"GPTLIB {clone / 'gptlib' / '__init__.py'}" in result.stdout, result.stdout
    assert f"CWD {clone / 'chapters'}" in result.stdout, result.stdout
