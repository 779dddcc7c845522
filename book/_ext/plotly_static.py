"""plotly.js served once by the book, instead of once inside every chapter page.

Two halves, one for each side of the build:

* **In the kernels that execute the chapters** (``make book`` points them at an IPython start-up
  file that calls :func:`use_book_renderer`): figures are shown with the ``book_static`` renderer,
  whose output is the figure's ``<div>`` and the call that draws it, without plotly.js itself
  (plotly's ``notebook`` renderer without the copy of plotly.js it displays once per notebook).
  The chapters do not change: ``fig.show()`` and a figure as a cell's last expression both use the
  default renderer. In JupyterLab nothing of this runs, so plotly's own renderer draws the figures
  there.
* **In Sphinx** (an extension of the book): the build copies plotly.js from the installed plotly
  package into ``_static/`` after checking its SHA-256 against the pinned plotly's, and every page
  that has a figure loads that one file from its ``<head>``, before any figure's code runs. The
  browser caches it across chapters, nothing comes from a CDN, and no figure depends on which
  cell of the page shows plotly first (that cell may be collapsed or removed).

A page that still carries an inlined copy of plotly.js (a chapter executed with another renderer,
for instance an old execution cache) is a build warning, an error under ``-W``.
"""
from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path

RENDERER = "book_static"
# plotly==7.1.0 (requirements.txt) ships plotly.js 4.1.1; the build refuses any other file.
PLOTLY_VERSION = "7.1.0"
PLOTLY_JS_VERSION = "4.1.1"
PLOTLY_JS_SHA256 = "3b6e15d45dbb7fca5bd2094291e961ddc5472cd887009e6009a56dab668d721f"
STATIC_NAME = f"plotly-{PLOTLY_JS_VERSION}.min.js"
# What plotly's own HTML sets before loading plotly.js: typeset figure labels with the page's
# MathJax (the book's own copy) rather than plotly's.
PLOTLY_CONFIG_JS = "window.PlotlyConfig = {MathJaxConfig: 'local'};"
# The call in a figure's output that needs plotly.js, and the banner of an inlined copy of it.
FIGURE_MARK = "Plotly.newPlot("
INLINED_MARK = "* plotly.js v"


# ------------------------------------------------------------------------------ the kernels
def use_book_renderer() -> None:
    """Register the ``book_static`` renderer and make it the default in this kernel.

    It is plotly's ``notebook`` renderer less its one-time "activation", which displays plotly.js
    (4.8 MB) in the output of the first cell that shows a figure: each figure's HTML is exactly
    what ``notebook`` gives (so the outputs the tests compare, stored with ``notebook``, are
    unchanged), and it draws with the ``Plotly`` that the book's page has loaded."""
    import plotly.io as pio
    from plotly.io.base_renderers import HtmlRenderer

    pio.renderers[RENDERER] = HtmlRenderer(connected=False, full_html=False, global_init=False,
                                           include_plotlyjs=False)
    pio.renderers.default = RENDERER


# -------------------------------------------------------------------------------- Sphinx
class PlotlyJsError(Exception):
    pass


def installed_plotly_js() -> Path:
    """plotly.min.js of the installed plotly package, checked against the pinned SHA-256."""
    import plotly

    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise PlotlyJsError(f"the installed plotly {plotly.__version__} has no {path}: "
                            f"reinstall it (`make setup`)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PLOTLY_JS_SHA256:
        raise PlotlyJsError(
            f"{path} (plotly {plotly.__version__}) has SHA-256 {digest}, not {PLOTLY_JS_SHA256}, "
            f"the plotly.js {PLOTLY_JS_VERSION} of plotly=={PLOTLY_VERSION} that requirements.txt "
            f"pins. Reinstall the pinned plotly (`make setup`); if you changed the pin on purpose, "
            f"update PLOTLY_VERSION, PLOTLY_JS_VERSION and PLOTLY_JS_SHA256 in {__file__}.")
    return path


def copy_plotly_js(app) -> None:
    if app.builder.format != "html":
        return
    from sphinx.errors import ExtensionError

    try:
        source = installed_plotly_js()
    except PlotlyJsError as error:
        raise ExtensionError(str(error)) from None
    target = Path(app.outdir) / "_static" / STATIC_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def page_has_figures(doctree) -> tuple[bool, bool]:
    """(the page draws a plotly figure, the page inlines a copy of plotly.js)."""
    from docutils import nodes

    figures = inlined = False
    for node in doctree.findall(nodes.raw):
        if "html" not in node.get("format", ""):
            continue
        text = node.astext()
        figures = figures or FIGURE_MARK in text
        inlined = inlined or INLINED_MARK in text
    return figures, inlined


def load_plotly_js(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Load the book's plotly.js in the <head> of every page that draws a figure."""
    if doctree is None:
        return
    figures, inlined = page_has_figures(doctree)
    if inlined:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            f"{pagename} inlines a copy of plotly.js: its chapter was executed with another plotly "
            f"renderer than the book's ({RENDERER}). Run `make clean` and build again with "
            f"`make book`, which points the kernels at that renderer.", location=pagename)
    if figures:
        # Plain (blocking) scripts in <head>: plotly.js is defined before any figure's code runs.
        app.add_js_file(None, body=PLOTLY_CONFIG_JS, priority=400)
        app.add_js_file(STATIC_NAME, priority=401)


def write_kernel_startup(ipython_dir: Path) -> Path:
    """Write the IPython profile of the kernels that ``make book`` starts with
    ``IPYTHONDIR=ipython_dir``: a start-up file that calls :func:`use_book_renderer`, and a kernel
    configuration that keeps the kernels' own log to errors (ipykernel warns on every start that
    its loopback connection is not encrypted, which says nothing about the chapter). What a
    chapter itself writes to stderr is not affected. Returns the start-up file's path."""
    profile = Path(ipython_dir) / "profile_default"
    startup = profile / "startup" / "00-book-plotly.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(
        "# Written by `make book`: the book build's kernels log only errors of their own.\n"
        "c.IPKernelApp.log_level = 'ERROR'\n", encoding="utf-8")
    startup.write_text(
        "# Written by `make book`: the kernels that execute the chapters for the book show figures\n"
        "# with the book's plotly renderer, so the pages load the book's one copy of plotly.js.\n"
        "def _book_renderer(path):\n"
        "    import importlib.util\n"
        "    spec = importlib.util.spec_from_file_location('book_plotly_static', path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    module.use_book_renderer()\n"
        f"_book_renderer({str(Path(__file__).resolve())!r})\n"
        "del _book_renderer\n", encoding="utf-8")
    return startup


def setup(app) -> dict:
    app.connect("builder-inited", copy_plotly_js)
    app.connect("html-page-context", load_plotly_js)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "write-kernel-startup":
        sys.exit(f"usage: python {Path(__file__).name} write-kernel-startup IPYTHON_DIR")
    print(f"kernels with IPYTHONDIR={sys.argv[2]} use the book's plotly renderer: "
          f"{write_kernel_startup(Path(sys.argv[2]))}")
