"""The chapters in a real JupyterLab, run from its interface as a reader runs them.

Starts JupyterLab as ``make lab`` does (this environment's ``jupyter lab``, with the extensions
that requirements.txt installs, plotly's own renderer and no book-build settings) on a loopback
port, on a copy of ``chapters/`` in a temporary folder. Its settings, workspaces, runtime and data
folders, the kernels' IPython folder and even its home folder are temporary too, so nothing in
the checkout and nothing of the reader's own Jupyter set-up is read or written (the test fails if
anything lands in that home folder). The one setting given is "never fetch Jupyter's news" (a
prompt that would cover the page).

Each chapter is opened in headless Chromium (Debian's, driven by Playwright; every request that
leaves localhost is answered by an empty response), run with Run > Run All Cells, and checked for
what a reader sees:

* every code cell ran (it shows an execution count) and no cell shows an error or anything
  written to stderr;
* every plotly figure drew (plotly's SVG, with data) and no output lacks a renderer;
* every widget rendered (no "Error displaying widget");
* the live widgets redraw when a control changes: the tokenizer's text box (chapter 1), the
  attention explorer's layer and head (chapter 3), the sampling playground's seed, temperature
  and prompt (chapter 7).

Screenshots at 1280 px (the top of each chapter after the run, its first figure, its widgets) go to
``_build/screenshots/jupyterlab/``. Run alone, the test is skipped when Chromium or Playwright is
missing, unless ``CI`` or ``BOOK_HTML`` is set (as under ``make test``): then it fails.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "_build" / "screenshots" / "jupyterlab"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
# Environment variables of the book build and of `make test` that `make lab` does not set.
NOT_IN_LAB = ("PLOTLY_RENDERER", "IPYTHONDIR", "BOOK_HTML", "BOOK_EXECUTED", "PYTHONHASHSEED",
              "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PATH",
              "JUPYTER_CONFIG_PATH", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR")
RUN_TIMEOUT_S = 600  # one chapter, all cells (the longest takes about a minute)


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BOOK_HTML"))


def _missing(message: str):
    if _required():
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


class Lab:
    """A JupyterLab server on a copy of the chapters, in a temporary home of its own."""

    def __init__(self, home: Path):
        self.home = home
        self.notebooks = home / "chapters"
        shutil.copytree(ROOT / "chapters", self.notebooks,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        jupyter = Path(sys.executable).with_name("jupyter")
        if not jupyter.is_file():
            _missing(f"no {jupyter}: run `make setup`")
        folders = {name: home / name for name in ("config", "data", "runtime", "settings",
                                                  "workspaces", "ipython", "home")}
        self.fake_home = folders["home"]
        for folder in folders.values():
            folder.mkdir()
        news = folders["settings"] / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True)
        (news / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = {k: v for k, v in os.environ.items() if k not in NOT_IN_LAB}
        env.update(JUPYTER_CONFIG_DIR=str(folders["config"]), JUPYTER_DATA_DIR=str(folders["data"]),
                   JUPYTER_RUNTIME_DIR=str(folders["runtime"]),
                   JUPYTERLAB_SETTINGS_DIR=str(folders["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(folders["workspaces"]),
                   IPYTHONDIR=str(folders["ipython"]), HOME=str(self.fake_home))
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        command = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.notebooks}"]
        if os.geteuid() == 0:  # CI runs as root, which Jupyter refuses without this
            command.append("--allow-root")
        self.log = (home / "lab.log").open("w")
        self.process = subprocess.Popen(command, cwd=self.notebooks, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_until_up()

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join((self.home / "lab.log").read_text(errors="replace").splitlines()[-n:])

    def close_sessions(self) -> None:
        """Shut down every kernel (one chapter's kernel must not hold memory for the next)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        try:
            self.close_sessions()
            self.api("shutdown", method="POST")
            self.process.wait(timeout=30)
        except Exception:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()
    # Everything JupyterLab and its kernels write goes to the folders the test gives them; the
    # home folder they were given (where a reader's own settings would be) stays empty, but for
    # npm's debug log of `npm prefix --global`, which jupyter-lsp runs to look for servers.
    written = [p.relative_to(server.fake_home) for p in server.fake_home.rglob("*") if p.is_file()]
    written = sorted(str(p) for p in written if p.parts[:2] != (".npm", "_logs"))
    assert not written, f"JupyterLab wrote into the home folder (a reader's own files): {written[:10]}"


@pytest.fixture(scope="module")
def browser(lab):
    if not CHROMIUM.is_file():
        _missing(f"{CHROMIUM} is missing: install Debian's chromium (`make test` does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (requirements-test.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def screenshot(target, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# ------------------------------------------------------------------------------ running
KERNEL_IDLE = """() => [...document.querySelectorAll('.jp-StatusBar-Item')]
                     .some(e => /\\|\\s*Idle\\s*$/.test(e.textContent.trim()))"""
PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                   .map(e => e.textContent.trim())"""


def open_notebook(page, lab: Lab, notebook: Path) -> int:
    """Open ``notebook`` in its own workspace; wait for every cell and an idle kernel."""
    n_cells = len(nbformat.read(notebook, as_version=4).cells)
    page.goto(f"{lab.base}/lab/workspaces/{notebook.stem}/tree/{notebook.name}?token={lab.token}")
    page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length "
                           f"=== {n_cells}", timeout=120_000)
    page.wait_for_function(KERNEL_IDLE, timeout=180_000, polling=500)
    return n_cells


FOLDED = "() => document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPlaceholder').length"


def expand_folded_code(page, notebook: Path) -> int:
    """The cells the book folds (tag ``hide-input``) start folded here too, from their
    ``metadata.jupyter.source_hidden``; check that, then open them all (View > Expand All Code)
    so that every cell's prompt and source can be read. Returns how many were folded."""
    hidden = sum("hide-input" in cell.metadata.get("tags", [])
                 for cell in nbformat.read(notebook, as_version=4).cells)
    folded = page.evaluate(FOLDED)
    assert folded >= hidden, (f"{notebook.name}: {hidden} cells are folded in the book but only "
                              f"{folded} start folded in JupyterLab")
    page.locator(".lm-MenuBar-item", has_text="View").first.click()
    page.locator('li[data-command="notebook:show-all-cell-code"]').click()
    page.wait_for_function(f"() => ({FOLDED})() === 0", timeout=30_000)
    return folded


def run_all(page, notebook: Path) -> float:
    """Run > Run All Cells, then wait until the kernel is idle with every code cell numbered."""
    start = time.monotonic()
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('li[data-command="runmenu:run-all"]').click()
    page.wait_for_function(f"() => ({PROMPTS})().some(p => p.includes('*'))", timeout=30_000)
    try:
        page.wait_for_function(
            f"() => ({KERNEL_IDLE})() && !({PROMPTS})().some(p => p.includes('*'))",
            timeout=RUN_TIMEOUT_S * 1000, polling=1000)
    except Exception:
        pytest.fail(f"{notebook.name}: still running after {RUN_TIMEOUT_S} s")
    return time.monotonic() - start


CELL_REPORT = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map((cell, i) => ({
    index: i,
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
    source: (cell.querySelector('.cm-content') || {}).textContent?.slice(0, 70) || '',
    stderr: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
              .map(o => o.textContent.trim().slice(0, 400)),
    missing: [...cell.querySelectorAll('.jp-OutputArea-output')]
              .map(o => o.textContent).filter(t => /No renderer could be found|Error displaying widget/.test(t))
              .map(t => t.trim().slice(0, 200)),
}))"""


def check_cells(page, notebook: Path) -> list[dict]:
    cells = page.evaluate(CELL_REPORT)
    not_run = [c for c in cells if c["code"] and not any(ch.isdigit() for ch in c["prompt"])]
    errors = [c for c in cells if c["stderr"]]
    broken = [c for c in cells if c["missing"]]
    problems = []
    for c in errors:
        problems.append(f"cell {c['index']} ({c['source']!r}) shows an error or stderr: "
                        f"{c['stderr'][0]}")
    for c in broken:
        problems.append(f"cell {c['index']} ({c['source']!r}): {c['missing'][0]}")
    for c in not_run[:5]:
        problems.append(f"cell {c['index']} ({c['source']!r}) did not run (prompt {c['prompt']!r})")
    assert not problems, f"{notebook.name}:\n" + "\n".join(problems)
    return cells


FIGURE_DRAWN = """gd => !!gd.querySelector('svg.main-svg') && Array.isArray(gd.data) && gd.data.length > 0
                        && gd.getBoundingClientRect().height > 50"""


def check_figures(page, notebook: Path) -> int:
    figures = page.locator(".jp-Notebook .jp-OutputArea .js-plotly-plot")
    n = figures.count()
    undrawn = []
    for i in range(n):
        figure = figures.nth(i)
        figure.scroll_into_view_if_needed()
        try:
            page.wait_for_function(f"gd => ({FIGURE_DRAWN})(gd)", arg=figure.element_handle(),
                                   timeout=10_000)
        except Exception:
            undrawn.append(i + 1)
        if i == 0:
            page.wait_for_timeout(300)
            screenshot(page, f"{notebook.stem}-figure1")
    assert not undrawn, f"{notebook.name}: plotly figures {undrawn} of {n} did not draw"
    return n


def check_widgets(page, notebook: Path) -> int:
    """Every widget a cell displays rendered (the "Error displaying widget" fallback is caught by
    :func:`check_cells`) and takes room on the page. Returns how many cells display one."""
    heights = page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jupyter-widgets')]
        .filter(w => !w.parentElement.closest('.jupyter-widgets'))
        .map(w => w.getBoundingClientRect().height)""")
    flat = [i + 1 for i, h in enumerate(heights) if h <= 0]
    assert not flat, f"{notebook.name}: widgets {flat} of {len(heights)} rendered with no height"
    return len(heights)


# ------------------------------------------------------------------------- live widgets
def widget_output(page, has: str):
    """The output area of the widget that holds the control labelled ``has``."""
    area = page.locator(".jp-OutputArea-output", has=page.locator(
        f".widget-label:text-is('{has}')")).first
    assert area.count() == 1, f"no widget with a control labelled {has!r}"
    area.scroll_into_view_if_needed()
    return area


PLOT_STATE = """area => [...area.querySelectorAll('.js-plotly-plot')].map(gd => {
    const clone = gd.cloneNode(true);
    clone.querySelectorAll('.hoverlayer, .modebar-container').forEach(e => e.remove());
    return clone.innerHTML; }).join('|') + '#' +
    [...area.querySelectorAll('.widget-html-content, .jp-OutputArea-output pre')]
        .map(e => e.textContent).join('|')"""


def wait_for_redraw(page, area, before: str, what: str) -> str:
    try:
        page.wait_for_function(f"([area, before]) => ({PLOT_STATE})(area) !== before "
                               f"&& area.querySelector('.js-plotly-plot svg.main-svg')",
                               arg=[area.element_handle(), before], timeout=60_000, polling=250)
    except Exception:
        pytest.fail(f"the widget did not redraw after {what}")
    page.wait_for_timeout(500)
    return area.evaluate(PLOT_STATE)


def set_slider(page, area, label: str, value: str) -> None:
    """Type a value into a slider's readout, as a reader can, and press Enter."""
    readout = area.locator(".widget-slider", has=page.locator(
        f".widget-label:text-is('{label}')")).locator(".widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def live_tokenizer(page, notebook: Path) -> None:
    area = widget_output(page, "Text:")
    before = area.evaluate(PLOT_STATE)
    box = area.locator(".widget-text input").first
    box.fill("Wafer-scale engines stream weights")
    after = wait_for_redraw(page, area, before, "typing in the tokenizer's text box")
    assert "engines" in after, "the redrawn chips do not show the typed text"
    screenshot(area, f"{notebook.stem}-widget-tokenizer")


def live_attention(page, notebook: Path) -> None:
    area = widget_output(page, "Layer")
    state = area.evaluate(PLOT_STATE)
    for label in ("Layer", "Head"):
        select = area.locator(".widget-dropdown", has=page.locator(
            f".widget-label:text-is('{label}')")).locator("select").first
        options = select.locator("option").all_inner_texts()
        assert len(options) > 1, f"the attention explorer's {label} has one choice: {options}"
        select.select_option(index=1)
        state = wait_for_redraw(page, area, state, f"choosing {options[1]!r} in {label}")
    screenshot(area, f"{notebook.stem}-widget-attention")


def live_sampling(page, notebook: Path) -> None:
    area = widget_output(page, "seed")
    state = area.evaluate(PLOT_STATE)
    set_slider(page, area, "seed", "7")
    state = wait_for_redraw(page, area, state, "setting the seed to 7")
    set_slider(page, area, "temperature", "1.5")
    state = wait_for_redraw(page, area, state, "setting the temperature to 1.5")
    prompt = area.locator(".widget-textarea textarea").first
    prompt.fill("JULIET:\n")
    prompt.blur()
    wait_for_redraw(page, area, state, "a new prompt")
    screenshot(area, f"{notebook.stem}-widget-sampling")


LIVE_WIDGETS = {"01_tokens": live_tokenizer, "03_attention": live_attention,
                "07_sampling": live_sampling}


# ---------------------------------------------------------------------------------- tests
def test_every_chapter_is_tested():
    assert len(CHAPTERS) >= 10, f"only {len(CHAPTERS)} chapters found"
    assert set(LIVE_WIDGETS) <= {c.stem for c in CHAPTERS}, "a live widget's chapter is missing"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_in_jupyterlab(lab, browser, notebook):
    copy = lab.notebooks / notebook.name
    context = browser.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    outside: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith((lab.base, "data:", "blob:")):
            r.continue_()
        else:
            outside.append(url)
            r.fulfill(status=200, body="")

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        open_notebook(page, lab, copy)
        expand_folded_code(page, copy)
        seconds = run_all(page, copy)
        page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer')"
                      ".forEach(e => e.scrollTop = 0)")
        page.locator(".jp-Notebook .jp-Cell").first.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)  # offscreen cells are painted only once in view
        screenshot(page, f"{notebook.stem}-top")
        check_cells(page, copy)
        n_figures = check_figures(page, copy)
        n_widgets = check_widgets(page, copy)
        if notebook.stem in LIVE_WIDGETS:
            assert n_widgets >= 1, f"{notebook.name}: its live widget did not render"
            LIVE_WIDGETS[notebook.stem](page, copy)
        assert not errors, f"{notebook.name}: JavaScript errors: {errors[:5]}"
        result = f"{notebook.stem}: ran in {seconds:.0f} s, {n_figures} figures, {n_widgets} widgets"
        print(result)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with (SCREENSHOTS / "results.txt").open("a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} passed {result}\n")
    finally:
        context.close()
        lab.close_sessions()
