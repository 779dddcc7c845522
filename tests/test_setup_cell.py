"""book/setup_cell.ipy, the cell a reader runs first on Binder or Colab.

Where the repository is already there (Binder, or a local clone), the cell must not clone or
install anything: it prepares the offline data and makes ``gptlib`` importable from the chapters
folder. (The Colab branch clones the repository named in ``_config.yml``; the book build checks
that the two agree.)
"""
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CELL = ROOT / "book" / "setup_cell.ipy"


def test_in_a_clone_it_prepares_the_data_and_imports_gptlib():
    check = "import gptlib, gptlib.assets as a; print('GPTLIB', gptlib.__file__); a.require(a.GPT2_RANKS)"
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--quick", "--colors=NoColor", "-c",
         f"%run -i {CELL}\n{check}"],
        cwd=ROOT / "chapters", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "git clone" not in result.stdout and "Cloning" not in result.stderr
    assert f"GPTLIB {ROOT / 'gptlib' / '__init__.py'}" in result.stdout, result.stdout
    assert "ok " in result.stdout, result.stdout  # gptlib.assets prepare checked the data files


def test_the_colab_branch_clones_the_configured_repository():
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    assert f"git clone --quiet --depth 1 {repo}.git" in CELL.read_text()
