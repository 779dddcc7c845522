"""Sphinx extension for the book's chapter pages (the notebooks under ``chapters/``).

* **Numbers.** A chapter notebook opens with ``# Chapter N. Title``. The page shows ``N. Title``:
  the words "Chapter N." are taken out of the title and N becomes the page's section number, so
  headings, figures and exercises are numbered ``N.1, N.2, ...`` and "Exercise 3.2" in the book is
  the "Exercise 3.2" that the checker prints, even while some chapters are not written yet.
  Two chapters with the same number, or numbers out of order in the table of contents, are a
  build warning (an error under ``-W``).
* **Solutions.** The toggle of a code cell tagged ``solution`` says "Show solution".
* **Offline pages.** Plotly's per-figure MathJax tag (a CDN) is removed: the page has MathJax.
  ipywidgets, which need a kernel, are replaced by a note, and their CDN scripts are not loaded.
* **The repository, one setting.** ``repository: url:`` in ``_config.yml`` is the book's public
  GitHub repository, or empty. Everything that leads to it is derived from it: the repository
  button, the Binder and Colab entries of each chapter's launch menu, and the clone address in the
  set-up cell (``book/setup_cell.ipy``, where ``@REPOSITORY@`` stands for it). When it is empty
  the book shows none of them, and no instruction that needs them; the "JupyterLab (local)" entry
  and ``make lab`` stay. The ``with-repository`` and ``without-repository`` directives keep a
  page's text in step (their content is shown only in one case), and ``setup-cell`` shows the
  set-up cell with the address filled in.
* **One block per run of prints.** Consecutive stream outputs of a cell (the lines of a training
  log) are shown as one block, in their place among the cell's other outputs. (myst-nb's own
  ``nb_merge_streams`` gathers all of a cell's prints into its first one, moving a print that
  follows a figure above it, and changes the executed notebook it saves; this replaces it.)
* **Running the chapter.** Before its first code cell, every chapter page has a collapsed note
  saying how to run it: ``make lab`` locally and, when the book has a repository, Binder and Colab
  with the set-up cell (the same cell the introduction shows). The launch menu gets a
  "JupyterLab (local)" entry.
* **No source maps.** The theme ships source maps of its bundled scripts and styles (``*.map``,
  about 3.4 MB, mostly Font Awesome's and the pydata theme's), which only a developer debugging the
  theme reads. They are removed from the built HTML, with the comments that point at them.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.environment.collectors.toctree import TocTreeCollector
from sphinx.util import logging

logger = logging.getLogger(__name__)

CHAPTER_TITLE = re.compile(r"^\s*Chapter\s+(\d+)\s*[.:]\s*")
CHAPTERS_FOLDER = "chapters/"
SETUP_CELL = Path(__file__).resolve().parent.parent / "setup_cell.ipy"
# `make lab` runs JupyterLab on the chapters folder, on Jupyter's default port.
LOCAL_LAB_URL = "http://localhost:8888/lab/tree/{notebook}"
# Where the set-up cell names the repository it clones.
REPOSITORY_MARK = "@REPOSITORY@"
# Binder and Colab open notebooks from a GitHub repository: https://github.com/ORG/REPO.
GITHUB_REPOSITORY = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")
# The launch menu entries that need the repository (sphinx-book-theme's `launch_buttons` keys).
REMOTE_LAUNCHERS = ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url",
                    "jupyterlite_url", "thebe")


def is_chapter(env: BuildEnvironment, docname: str) -> bool:
    return docname.startswith(CHAPTERS_FOLDER) and str(env.doc2path(docname)).endswith(".ipynb")


# --------------------------------------------------------------------------------- numbers
def take_number_from_title(app: Sphinx, doctree: nodes.document) -> None:
    """``Chapter 3. Attention`` -> title ``Attention``; remember 3 for the numbering."""
    env = app.env
    docname = env.docname
    env.chapter_numbers = getattr(env, "chapter_numbers", {})
    env.chapter_numbers.pop(docname, None)
    if not is_chapter(env, docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    title = section[0]
    first = title[0] if len(title) else None
    match = CHAPTER_TITLE.match(first.astext()) if isinstance(first, nodes.Text) else None
    if match is None:
        return
    rest = first.astext()[match.end():]
    if not rest and len(title) == 1:
        logger.warning(f"{docname}: the title is only 'Chapter {match.group(1)}': give it a name",
                       location=docname)
        return
    title.replace(first, nodes.Text(rest))
    env.chapter_numbers[docname] = int(match.group(1))


def purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "chapter_numbers", {}).pop(docname, None)


def _renumber(number, chapter: int):
    return (chapter,) + tuple(number[1:]) if number else number


def use_chapter_numbers(assign_section_numbers):
    """Wrap Sphinx's section numbering so that each chapter's number is the one in its title."""

    def assign(self, env: BuildEnvironment) -> list[str]:
        changed = assign_section_numbers(self, env)
        numbers = getattr(env, "chapter_numbers", {})
        for docname, chapter in numbers.items():
            secnums = env.toc_secnumbers.get(docname)
            if not secnums or not secnums.get("") or secnums[""][0] == chapter:
                continue
            env.toc_secnumbers[docname] = {k: _renumber(v, chapter) for k, v in secnums.items()}
            for node in env.tocs[docname].findall(nodes.reference):
                if node.get("secnumber"):
                    node["secnumber"] = list(_renumber(node["secnumber"], chapter))
            title = env.titles.get(docname)
            if title is not None and title.get("secnumber"):
                title["secnumber"] = list(_renumber(title["secnumber"], chapter))
            changed.append(docname)
        return changed

    assign.wrapped_for_chapter_numbers = True
    return assign


def check_chapter_order(app: Sphinx, env: BuildEnvironment) -> None:
    """Chapter numbers must be unique and rise along the table of contents."""
    numbers = getattr(env, "chapter_numbers", {})
    ordered = [d for d in _toc_order(env) if d in numbers]
    seen: dict[int, str] = {}
    previous = 0
    for docname in ordered:
        n = numbers[docname]
        if n in seen:
            logger.warning(f"{docname} and {seen[n]} are both 'Chapter {n}'", location=docname)
        elif n < previous:
            logger.warning(f"{docname} is 'Chapter {n}' but comes after chapter {previous} in the "
                           f"table of contents", location=docname)
        seen[n] = docname
        previous = max(previous, n)


def _toc_order(env: BuildEnvironment) -> list[str]:
    """Documents in reading order (depth first through the toctrees from the root)."""
    out: list[str] = []

    def walk(doc: str) -> None:
        if doc in out:
            return
        out.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(env.config.root_doc)
    return out


# ------------------------------------------------------------------------------- solutions
def label_solution_toggles(app: Sphinx, doctree: nodes.document) -> None:
    for node in doctree.findall(nodes.container):
        if node.get("nb_element") != "cell_code" or not node.get("hide_mode"):
            continue
        tags = (node.get("cell_metadata") or {}).get("tags", [])
        if "solution" in tags:
            node["prompt_show"] = "Show solution"
            node["prompt_hide"] = "Hide solution"


# ----------------------------------------------------------------------------- figures
# plotly's `notebook` renderer puts this tag in front of every figure. The page already loads
# MathJax from the book itself: offline the tag is a failed request, online a second MathJax.
PLOTLY_MATHJAX_CDN = re.compile(r'<script src="https://cdn[^"]*/mathjax/[^"]*"></script>')


def remove_plotly_mathjax_cdn(app: Sphinx, doctree: nodes.document) -> None:
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "html" in node.get("format", "") and PLOTLY_MATHJAX_CDN.search(text):
            cleaned = PLOTLY_MATHJAX_CDN.sub("", text)
            node.replace_self(nodes.raw("", cleaned, format=node["format"], classes=node["classes"]))


# ------------------------------------------------------------------------------- prints
_CARRIAGE_RETURN = re.compile(r"[^\n]*\r(?=[^\n])")  # a line a progress bar overwrote


def merge_consecutive_streams(outputs: list) -> list:
    """``outputs`` with each run of consecutive stream outputs of one name (stdout, stderr)
    joined into one, in place of the run; other outputs keep their place. The outputs given are
    not changed (the executed notebook saved in ``_build/jupyter_execute`` keeps them as run)."""
    from nbformat import NotebookNode

    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")):
            merged[-1] = NotebookNode({**previous, "text": _text(previous) + _text(output)})
        else:
            merged.append(output)
    return [NotebookNode({**o, "text": _CARRIAGE_RETURN.sub("", _text(o))})
            if o.get("output_type") == "stream" else o for o in merged]


def _text(output) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else text


def use_merge_consecutive_streams(app: Sphinx, config) -> None:
    """Make myst-nb's ``nb_merge_streams`` call :func:`merge_consecutive_streams`."""
    try:
        from myst_nb.core import render
    except ImportError:
        return
    if not callable(getattr(render, "coalesce_streams", None)):
        logger.warning("myst-nb no longer has myst_nb.core.render.coalesce_streams: consecutive "
                       "prints are not merged as book/_ext/chapter_pages.py expects; update it")
        return
    render.coalesce_streams = merge_consecutive_streams


# ----------------------------------------------------------------------------- widgets
# ipywidgets need a kernel: in the static book their controls would show but do nothing, and
# myst-nb would load require.js and the widget manager from a CDN on every page that has one.
# Each widget has a plotly counterpart with its own slider or menu (chapters/CONVENTIONS.md), so
# the book shows a note where a widget was, and loads none of the widget scripts.
WIDGET_VIEW = '<script type="application/vnd.jupyter.widget-view+json">'
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
WIDGET_NOTE = ("A live control (an ipywidgets widget) appears here when you run this chapter in "
               "Jupyter; the text around it says which figure of the book stands in for it.")


def replace_widget_views(app: Sphinx, doctree: nodes.document) -> None:
    for node in list(doctree.findall(nodes.raw)):
        if "html" in node.get("format", "") and WIDGET_VIEW in node.astext():
            note = nodes.paragraph(classes=["widget-note"])
            note += nodes.emphasis(text=WIDGET_NOTE)
            node.replace_self(note)


def is_widget_script(app: Sphinx, script) -> bool:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", None) or ""
    return (attributes.get("type") == WIDGET_STATE_TYPE
            or filename in (getattr(app.config, "nb_ipywidgets_js", None) or {}))


# ----------------------------------------------------------------------- running a chapter
def setup_cell_text(repository: str) -> str:
    """The set-up cell a reader runs first on Colab or Binder, cloning ``repository``
    (``https://github.com/ORG/REPO``)."""
    if not repository:
        raise ValueError("the set-up cell clones the book's repository: none is set "
                         "(repository: url: in _config.yml)")
    text = SETUP_CELL.read_text(encoding="utf-8").rstrip("\n")
    if REPOSITORY_MARK not in text:
        raise ValueError(f"{SETUP_CELL.name} must name the repository it clones as "
                         f"{REPOSITORY_MARK} (the build fills in repository: url: of _config.yml)")
    return text.replace(REPOSITORY_MARK, repository)


# --------------------------------------------------------------------------- the repository
def normalise_repository(url: str | None) -> tuple[str, str | None]:
    """(the repository address as the book uses it, a problem with it or None).

    ``""`` and ``None`` mean no repository. A GitHub address loses a trailing ``/`` or ``.git``;
    anything else is refused (Binder and Colab open notebooks from GitHub)."""
    url = (url or "").strip()
    if not url:
        return "", None
    match = GITHUB_REPOSITORY.match(url)
    if match is None:
        return "", (f"repository: url: in _config.yml is {url!r}: give the book's public GitHub "
                    f"repository as https://github.com/ORG/REPO (Binder and Colab open "
                    f"notebooks from GitHub), or leave it empty for a book with no Binder, Colab "
                    f"or repository buttons")
    return f"https://github.com/{match.group(1)}/{match.group(2)}", None


def repository_theme_options(theme_options: dict, repository: str) -> dict:
    """sphinx-book-theme's options for ``repository`` (``""``: none): with one, the repository
    button and the launch entries of ``_config.yml``; without one, neither."""
    options = dict(theme_options)
    options["repository_url"] = repository
    options["use_repository_button"] = bool(repository)
    if not repository:
        options["use_edit_page_button"] = False
        options["use_issues_button"] = False
        launch = dict(options.get("launch_buttons") or {})
        for key in REMOTE_LAUNCHERS:
            launch.pop(key, None)
        options["launch_buttons"] = launch
    return options


def apply_repository(app: Sphinx, config) -> None:
    """Derive every link to the repository from ``repository: url:`` (config-inited)."""
    theme_options = config.html_theme_options or {}
    repository, problem = normalise_repository(theme_options.get("repository_url"))
    if problem:
        logger.warning(problem)
    if repository:
        setup_cell_text(repository)  # the cell must be able to clone it
    config.book_repository = repository
    config.html_theme_options = repository_theme_options(theme_options, repository)


class WithRepository(Directive):
    """Content shown only when the book has a repository (Binder, Colab, cloning)."""

    has_content = True
    shown_when = True

    def run(self):
        env = self.state.document.settings.env
        if bool(env.config.book_repository) != self.shown_when:
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


class WithoutRepository(WithRepository):
    """Content shown only when the book has no repository."""

    shown_when = False


class SetupCell(Directive):
    """The set-up cell, cloning the book's repository (a build warning if there is none)."""

    def run(self):
        env = self.state.document.settings.env
        env.note_dependency(str(SETUP_CELL))
        repository = env.config.book_repository
        if not repository:
            return [self.state.document.reporter.warning(
                "the set-up cell needs the book's repository (repository: url: in _config.yml): "
                "put it inside a with-repository block", line=self.lineno)]
        text = setup_cell_text(repository)
        return [nodes.literal_block(text, text, language="ipython")]


def add_run_note(app: Sphinx, doctree: nodes.document) -> None:
    """Put a collapsed "Run this chapter yourself" note before the chapter's first code cell."""
    env = app.env
    if not is_chapter(env, env.docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    env.note_dependency(str(SETUP_CELL))  # re-read the chapter when the cell changes
    notebook = env.docname[len(CHAPTERS_FOLDER):] + ".ipynb"
    note = nodes.admonition(classes=["tip", "dropdown", "run-this-chapter"])
    note += nodes.title(text="Run this chapter yourself")
    repository = app.config.book_repository
    local = nodes.paragraph()
    local += nodes.Text("On your computer: ")
    local += nodes.literal(text="make lab")
    local += nodes.Text(f" (in the book's folder) opens the chapters in JupyterLab; open {notebook}.")
    if repository:
        local += nodes.Text(" On Binder or Colab (the rocket menu at the top of the page): run this "
                            "cell first, once per session. It fetches the book's code and data; "
                            "everything after it runs as it does locally.")
    note += local
    if repository:
        text = setup_cell_text(repository)
        note += nodes.literal_block(text, text, language="ipython")
    # Just before the first code cell (after the chapter's opening paragraphs), else at the end.
    first_cell = next((n for n in section.findall(nodes.container)
                       if n.get("nb_element") == "cell_code"), None)
    if first_cell is not None:
        first_cell.parent.insert(first_cell.parent.index(first_cell), note)
    else:
        section += note


def add_local_lab_button(app: Sphinx, pagename: str, templatename: str, context: dict,
                         doctree) -> None:
    """Add "JupyterLab (local)" to the launch menu that sphinx-book-theme builds."""
    if not is_chapter(app.env, pagename):
        return
    buttons = context.setdefault("header_buttons", [])
    group = next((g for g in buttons if g.get("label") == "launch-buttons"), None)
    if group is None:  # no Binder or Colab: the theme made no launch menu
        group = {"type": "group", "tooltip": "Launch interactive content", "icon": "fas fa-rocket",
                 "buttons": [], "label": "launch-buttons"}
        # where the theme puts it: after the download and full-screen buttons
        buttons.append(group)
    notebook = pagename[len(CHAPTERS_FOLDER):] + ".ipynb"
    group["buttons"].insert(0, {
        "type": "link",
        "text": "JupyterLab (local)",
        "tooltip": "Open in JupyterLab on this computer (start it with `make lab`)",
        "icon": "fas fa-laptop-code",
        "url": LOCAL_LAB_URL.format(notebook=notebook),
    })


def tidy_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop the ipywidgets scripts, and keep one copy of each other script: sphinx-thebe 0.3.1 adds
    its inline `const THEBE_JS_URL = ...` twice under Sphinx 7.2+, and the second copy is a
    JavaScript error on every page."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        if is_widget_script(app, script):
            continue
        key = (getattr(script, "filename", str(script)) or "",
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def wrap_section_numbering(app: Sphinx, config) -> None:
    """Renumber last: after Sphinx, sphinx-multitoc-numbering (which patches Sphinx's collector)
    and sphinx-external-toc (whose collector subclass renumbers again) have numbered the pages."""
    try:
        from sphinx_external_toc.collectors import TocTreeCollectorWithStyles as collector
    except ImportError:
        collector = TocTreeCollector
    if not getattr(collector.assign_section_numbers, "wrapped_for_chapter_numbers", False):
        collector.assign_section_numbers = use_chapter_numbers(collector.assign_section_numbers)


# --------------------------------------------------------------------------- source maps
SOURCE_MAP_COMMENT = re.compile(r"^\s*(//# sourceMappingURL=|/\*# sourceMappingURL=).*$\n?", re.M)


def remove_source_maps(app: Sphinx, exception: Exception | None) -> None:
    """Delete ``_static/**/*.map`` from the built HTML, and the ``sourceMappingURL`` comment of
    the script or style sheet each belonged to (a browser's developer tools would otherwise ask
    for the missing file)."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for source_map in sorted(static.rglob("*.map")):
        bundle = source_map.with_suffix("")  # fontawesome.js.map -> fontawesome.js
        if bundle.is_file():
            text = bundle.read_text(encoding="utf-8", errors="surrogateescape")
            stripped = SOURCE_MAP_COMMENT.sub("", text)
            if stripped != text:
                bundle.write_text(stripped, encoding="utf-8", errors="surrogateescape")
        source_map.unlink()


def setup(app: Sphinx) -> dict:
    # Set from `repository: url:` by apply_repository; a change re-reads every page.
    app.add_config_value("book_repository", "", "env", types=[str])
    app.add_directive("with-repository", WithRepository)
    app.add_directive("without-repository", WithoutRepository)
    app.add_directive("setup-cell", SetupCell)
    app.connect("config-inited", wrap_section_numbering)
    app.connect("config-inited", apply_repository)
    app.connect("config-inited", use_merge_consecutive_streams)
    app.connect("doctree-read", remove_plotly_mathjax_cdn)
    app.connect("doctree-read", replace_widget_views)
    # Before Sphinx's title collector (priority 500) reads the title.
    app.connect("doctree-read", take_number_from_title, priority=400)
    app.connect("doctree-read", label_solution_toggles)
    app.connect("doctree-read", add_run_note, priority=450)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-check-consistency", check_chapter_order)
    # After sphinx-book-theme has built the launch menu (priority 501).
    app.connect("html-page-context", add_local_lab_button, priority=502)
    app.connect("html-page-context", tidy_scripts, priority=900)
    app.connect("build-finished", remove_source_maps)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True,
            "env_version": 1}
