"""The repository address, one setting (``repository: url:`` in ``_config.yml``).

The book as built by ``make book`` names no repository, and the browser test checks that it then
shows no button or instruction that leads nowhere. Here the other case: the logic of
``book/_ext/chapter_pages.py`` for set, unset and malformed addresses, and a small book (the
book's own configuration and extensions, an introduction and one chapter that is not executed)
built with an address set, whose pages must derive every link from it: the repository button,
Binder, Colab, and the set-up cell's clone address.
"""
from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/example-org/example-book"


def _chapter_pages():
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        spec = importlib.util.spec_from_file_location("chapter_pages_under_test",
                                                      ROOT / "book" / "_ext" / "chapter_pages.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.pop(0)


pages = _chapter_pages()


# -------------------------------------------------------------------------------- logic
@pytest.mark.parametrize("given", [REPOSITORY, REPOSITORY + "/", REPOSITORY + ".git", f" {REPOSITORY} "])
def test_a_github_address_is_used_as_given(given):
    assert pages.normalise_repository(given) == (REPOSITORY, None)


@pytest.mark.parametrize("given", ["", None, "   "])
def test_no_address_means_no_repository(given):
    assert pages.normalise_repository(given) == ("", None)


@pytest.mark.parametrize("given", ["github.com/org/repo", "https://gitlab.com/org/repo",
                                   "https://github.com/org", "https://github.com/org/repo/tree/main",
                                   "git@github.com:org/repo.git"])
def test_another_address_is_refused_with_what_is_allowed(given):
    repository, problem = pages.normalise_repository(given)
    assert repository == ""
    assert repr(given) in problem and "https://github.com/ORG/REPO" in problem
    assert "leave it empty" in problem


def test_without_a_repository_no_button_or_launcher_leads_to_one():
    options = {"repository_url": "", "use_repository_button": True, "use_edit_page_button": True,
               "launch_buttons": {"notebook_interface": "jupyterlab",
                                  "binderhub_url": "https://mybinder.org",
                                  "colab_url": "https://colab.research.google.com"}}
    derived = pages.repository_theme_options(options, "")
    assert derived["use_repository_button"] is False and derived["use_edit_page_button"] is False
    assert derived["launch_buttons"] == {"notebook_interface": "jupyterlab"}
    assert options["launch_buttons"]["binderhub_url"], "the given options must not change"


def test_with_a_repository_the_buttons_and_launchers_lead_to_it():
    options = {"repository_url": REPOSITORY + ".git",
               "launch_buttons": {"binderhub_url": "https://mybinder.org",
                                  "colab_url": "https://colab.research.google.com"}}
    derived = pages.repository_theme_options(options, REPOSITORY)
    assert derived["repository_url"] == REPOSITORY and derived["use_repository_button"] is True
    assert derived["launch_buttons"] == options["launch_buttons"]


def test_the_set_up_cell_clones_the_repository():
    text = pages.setup_cell_text(REPOSITORY)
    assert f'REPO = "{REPOSITORY}.git"' in text and "@REPOSITORY@" not in text
    with pytest.raises(ValueError, match="none is set"):
        pages.setup_cell_text("")


# ------------------------------------------------------------------- a small book, built
INTRO = """# A small book

(colab-binder-setup)=
## On Colab or Binder

````{with-repository}
Run this cell first:

```{setup-cell}
```
````

````{without-repository}
This copy of the book names no public repository.
````
"""


def _small_book(folder: Path) -> tuple[Path, Path]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["repository"]["url"] = REPOSITORY
    config["execute"]["execute_notebooks"] = "off"
    config["bibtex_bibfiles"] = [str(ROOT / "book" / "references.bib")]
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {"chapter_pages": str(ROOT / "book" / "_ext")}
    sphinx["config"]["html_static_path"] = [str(ROOT / "book" / "_static")]
    (folder / "chapters").mkdir(parents=True)
    (folder / "_config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (folder / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "intro",
        "parts": [{"caption": "Chapters", "numbered": 1,
                   "chapters": [{"file": "chapters/01_small"}]}]}), encoding="utf-8")
    (folder / "intro.md").write_text(INTRO, encoding="utf-8")
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_markdown_cell("# Chapter 1. A small chapter\n\nIt prints."),
                      nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(notebook, folder / "chapters" / "01_small.ipynb")
    return folder / "_config.yml", folder / "_toc.yml"


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-book")
    config, toc = _small_book(folder)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jupyter_book), "build", str(folder), "--toc", str(toc),
                           "--config", str(config), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder / "_build" / "html"


def _links(page: str) -> dict[str, str]:
    """Text -> address of the launch menu's and the header's links."""
    found = {}
    for href, inner in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', page, flags=re.S):
        text = html.unescape(re.sub(r"<[^>]+>", " ", inner)).split()
        found[" ".join(text)] = html.unescape(href)
    return found


def test_a_chapter_page_leads_to_the_repository_binder_and_colab(small_book):
    page = (small_book / "chapters" / "01_small.html").read_text(encoding="utf-8")
    links = _links(page)
    assert links.get("Binder") == (f"https://mybinder.org/v2/gh/example-org/example-book/main"
                                   f"?urlpath=lab/tree/chapters/01_small.ipynb"), links
    assert links.get("Colab") == (f"https://colab.research.google.com/github/example-org/"
                                  f"example-book/blob/main/chapters/01_small.ipynb"), links
    assert links.get("JupyterLab (local)") == "http://localhost:8888/lab/tree/01_small.ipynb"
    assert REPOSITORY in links.values(), f"no repository button: {links}"
    note = page[page.index("run-this-chapter"):]
    note = note[:note.index("</div>\n</div>")]
    assert "Binder or Colab" in note and f"{REPOSITORY}.git" in html.unescape(
        re.sub(r"<[^>]+>", "", note)), "the run note has no set-up cell cloning the repository"


def test_the_introduction_shows_the_set_up_cell_with_the_repository(small_book):
    page = html.unescape(re.sub(r"<[^>]+>", "", (small_book / "intro.html").read_text("utf-8")))
    assert f'REPO = "{REPOSITORY}.git"' in page
    assert "names no public repository" not in page
    assert "@REPOSITORY@" not in page
