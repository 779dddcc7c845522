"""The built book in a real browser: what a reader sees with no kernel and no network.

Serves ``_build/html`` on localhost, opens every page of the table of contents in headless
Chromium (Debian's package, driven by Playwright; Playwright never downloads a browser) with every
request that leaves localhost answered by an empty response, and checks on each chapter page:

* no JavaScript error, and no failed request for a file of the book, beyond ``ALLOWED_ERRORS``;
* math is typeset by the book's own MathJax: no raw TeX left, no MathJax error;
* every plotly figure has drawn its SVG, and one real mouse interaction changes it: a slider
  step, a dropdown (or button) choice, or else hovering shows a data label (a table, which has
  no control, must instead show all its cells within the figure);
* exercise solutions and hidden set-up code start collapsed and open on click;
* code blocks have a copy button that copies the code;
* the launch menu and the "Run this chapter yourself" note lead only where they can: this book
  names no repository (``repository: url:`` in ``_config.yml`` is empty), so the menu offers
  "JupyterLab (local)" alone, with no repository button, no Binder and no Colab, and the note
  shows no set-up cell (``tests/test_repository_setting.py`` builds a small book with a
  repository and checks those);
* what cells display reads as in JupyterLab: Markdown a cell displays is rendered (the
  assumptions ledger of chapters 9 and 10 is a table, no raw pipes are left), and consecutive
  prints of a cell are one block (the training logs of chapters 2 and 3);
* nothing is cut off at a 1280-pixel window: with every collapsed block opened, no code or
  output block is wider than its box (the failure names each block and prints its long lines);
* plotly.js is the book's one copy, served from ``_static`` and fetched once however many
  chapters a reader opens (the browser's cache), and every figure draws with the network cut off.

Screenshots of each chapter (top of the page, every figure after its interaction, an opened
solution) go to ``_build/screenshots/book/``.

``make test`` builds the book before it runs the tests. Run alone, the test is skipped if there is
no built book, unless ``CI`` or ``BOOK_HTML`` (another built book to test) is set: then a missing
book is a failure.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from static_server import serve_folder

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
TOC = ROOT / "book" / "_toc.yml"
SCREENSHOTS = HTML.parent / "screenshots" / "book"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium"))
# Host names resolve to nothing: no request can leave localhost, even where no route answers it.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
VIEWPORT = {"width": 1280, "height": 900}

# JavaScript errors a page may show without failing the test, as (regular expression, why it is
# harmless and cannot be fixed in the book itself). It is empty: the known noise of Jupyter Book 1
# pages is fixed at its source instead. sphinx-thebe's script added twice ("Identifier
# 'THEBE_JS_URL' has already been declared") is de-duplicated by book/_ext/chapter_pages.py; "Got
# invalid theme mode" (empty localStorage, as for a first-time reader) by `default_mode` in
# _config.yml; CDN requests by serving MathJax from the book and dropping the ipywidgets loaders.
ALLOWED_ERRORS: list[tuple[str, str]] = []


def toc_pages() -> tuple[list[str], list[str]]:
    """(every page in the table of contents, the chapter pages) as document names, in order."""
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    chapters = [p for p in pages if p.startswith("chapters/")]
    return pages, chapters


PAGES, CHAPTERS = toc_pages()
# (path, HTTP status) of every request the test server answered.
SERVED: list[tuple[str, int]] = []


def _need_book() -> None:
    if (HTML / "index.html").is_file():
        return
    message = f"no built book in {HTML}: run `make book` (or `make test`, which builds it first)"
    if os.environ.get("BOOK_HTML") or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server():
    _need_book()

    with serve_folder(HTML, on_request=lambda path, status: SERVED.append((path, status))) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    if not CHROMIUM.is_file():
        message = (f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
                   f"`make test` does it)")
        if os.environ.get("BOOK_HTML") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """One page opened in a fresh browser context, with everything it logged."""

    def __init__(self, browser, server: str, docname: str):
        self.server = server
        self.docname = docname
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.rstrip("/"))
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("requestfailed", lambda r: self._local(r.url) and self.errors.append(
            f"request failed: {r.url} ({r.failure})"))

    def _local(self, url: str) -> bool:
        return url.startswith(self.server)

    def _route(self, route):
        url = route.request.url
        if self._local(url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.fulfill(status=200, body="")

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _response(self, response):
        if self._local(response.url) and response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def open(self):
        self.page.goto(self.server + self.docname + ".html", wait_until="load")
        self.page.wait_for_function("() => document.readyState === 'complete'")
        return self.page

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors
                if not any(re.search(pattern, e.split(": ", 1)[-1]) for pattern, _ in ALLOWED_ERRORS)]

    def close(self):
        self.context.close()


@pytest.fixture
def open_page(browser, server):
    opened = []

    def _open(docname: str) -> Page:
        page = Page(browser, server, docname)
        opened.append(page)
        page.open()
        return page

    yield _open
    for page in opened:
        page.close()


def slug(docname: str) -> str:
    return docname.replace("/", "_")


def screenshot(target, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# ------------------------------------------------------------------------------------- math
def wait_for_math(page, docname: str) -> None:
    try:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=15_000)
    except Exception:
        pytest.fail(f"{docname}: the page has math but MathJax did not start (is mathjax_path "
                    f"in _config.yml pointing at book/_static/mathjax?)")
    page.evaluate("() => MathJax.startup.promise")


def check_math(page, docname: str) -> int:
    """Every math element is typeset and no raw TeX is left in the text. Returns how many."""
    n_math = page.locator("span.math, div.math").count()
    if n_math:
        wait_for_math(page, docname)
    report = page.evaluate("""() => {
        const math = [...document.querySelectorAll('span.math, div.math')];
        const raw = math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80));
        const errors = [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80));
        const main = document.querySelector('main') || document.body;
        const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
        const leftover = [];
        const tex = /(\\\\\\(|\\\\\\[|\\$\\$|\\\\begin\\{|\\\\frac\\{)/;
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const p = n.parentElement;
            if (p.closest('pre, code, script, style, .highlight, mjx-container, mjx-assistive-mml, .plotly-graph-div')) continue;
            if (tex.test(n.textContent)) leftover.push(n.textContent.trim().slice(0, 80));
        }
        return {raw, errors, leftover};
    }""")
    assert not report["raw"], f"{docname}: math left untypeset: {report['raw'][:5]}"
    assert not report["errors"], f"{docname}: MathJax could not typeset: {report['errors'][:5]}"
    assert not report["leftover"], f"{docname}: raw TeX in the text: {report['leftover'][:5]}"
    return n_math


# ---------------------------------------------------------------------------------- figures
FIGURE_STATE = """gd => {
    // What the reader sees of the plot itself, without its controls (sliders, menus, hover).
    const clone = gd.cloneNode(true);
    clone.querySelectorAll('.menulayer, .slider-container, .hoverlayer, .modebar-container')
         .forEach(e => e.remove());
    return clone.innerHTML;
}"""


def interact_slider(page, figure) -> str:
    rail = figure.locator(".slider-container .slider-rail-touch-rect").first
    box = rail.bounding_box()
    n_steps = figure.evaluate("gd => gd.layout.sliders[0].steps.length")
    active = figure.evaluate("gd => gd.layout.sliders[0].active || 0")
    target = 0 if active == n_steps - 1 else n_steps - 1
    x = box["x"] + box["width"] * (0.02 + 0.96 * target / max(n_steps - 1, 1))
    page.mouse.click(x, box["y"] + box["height"] / 2)
    return f"slider step {active} -> {target}"


def interact_menu(page, figure) -> str:
    kind = figure.evaluate("gd => gd.layout.updatemenus[0].type || 'dropdown'")
    if kind == "buttons":
        buttons = figure.locator(".updatemenu-container .updatemenu-button")
        active = figure.evaluate("gd => gd.layout.updatemenus[0].active ?? 0")
        target = 1 if active != 1 and buttons.count() > 1 else 0
        buttons.nth(target).click()
        return f"button {active} -> {target}"
    figure.locator(".updatemenu-container .updatemenu-header").first.click()
    options = figure.locator(".updatemenu-container .updatemenu-dropdown-button")
    options.first.wait_for(state="visible", timeout=5_000)
    active = figure.evaluate("gd => gd.layout.updatemenus[0].active ?? 0")
    target = 1 if active != 1 else 0
    options.nth(target).click()
    return f"dropdown option {active} -> {target}"


# Where on the screen the figure's data are: for each trace with x and y values on cartesian axes,
# its middle, first and last points (and the middle of their bars), then the middle of the plot
# area (a heatmap, an image).
HOVER_TARGETS = """gd => {
    const box = gd.getBoundingClientRect(), size = gd._fullLayout._size;
    const targets = [];
    for (const trace of gd._fullData || []) {
        const xa = gd._fullLayout[(trace.xaxis || 'x').replace('x', 'xaxis')];
        const ya = gd._fullLayout[(trace.yaxis || 'y').replace('y', 'yaxis')];
        if (!xa || !ya || !trace.x || !trace.y || !trace.x.length || trace.visible !== true) continue;
        const x0 = xa.d2p(0), y0 = ya.d2p(0);  // the baseline of a bar, where finite
        for (const k of [Math.floor(trace.x.length / 2), 0, trace.x.length - 1]) {
            const px = xa.d2p(trace.x[k]), py = ya.d2p(trace.y[k]);
            if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
            const points = [[px, py]];  // a marker, a line's vertex
            if (Number.isFinite(y0)) points.push([px, (py + y0) / 2]);  // inside a vertical bar
            if (Number.isFinite(x0)) points.push([(px + x0) / 2, py]);  // inside a horizontal bar
            for (const [x, y] of points) targets.push([box.left + xa._offset + x, box.top + ya._offset + y]);
        }
    }
    targets.push([box.left + size.l + size.w / 2, box.top + size.t + size.h / 2]);
    return targets;
}"""


def interact_hover(page, figure) -> bool:
    """Hover over data points; True when plotly shows a data label."""
    for x, y in figure.evaluate(HOVER_TARGETS):
        page.mouse.move(x - 3, y - 3)
        page.mouse.move(x, y, steps=3)
        try:
            figure.locator(".hoverlayer .hovertext").first.wait_for(state="attached", timeout=1_000)
            return True
        except Exception:
            continue
    return False


TABLE_CELLS = """gd => {
    const box = gd.getBoundingClientRect(), size = gd._fullLayout._size;
    const bottom = box.top + size.t + size.h;
    const cells = [...gd.querySelectorAll('.table .cell-text')];
    return {n: cells.length, height: gd._fullLayout.height,
            hidden: cells.filter(c => c.getBoundingClientRect().bottom > bottom + 1)
                         .map(c => c.textContent).slice(0, 6)};
}"""


def check_table(figure, docname: str, number: int) -> None:
    """A plotly table has no control to try: it must show its cells, all of them, without the
    reader having to scroll inside a box that is too short."""
    cells = figure.evaluate(TABLE_CELLS)
    assert cells["n"] > 0, f"{docname}: table figure {number} shows no cells"
    assert not cells["hidden"], (
        f"{docname}: table figure {number} is cut off: cells {cells['hidden']} lie below its "
        f"{cells['height']} px height; make the figure taller")


# The legend and every colour bar of a figure, as screen rectangles, and the pairs that overlap
# (by more than a pixel each way): a colour bar drawn on a legend hides both.
LEGEND_ON_COLORBAR = """gd => {
    const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const legends = [...gd.querySelectorAll('g.legend')].map(box);
    const bars = [...gd.querySelectorAll('g.colorbar')].filter(e => e.getBBox().width > 0).map(box);
    const overlaps = [];
    for (const l of legends) for (const b of bars)
        if (Math.min(l[2], b[2]) - Math.max(l[0], b[0]) > 1 && Math.min(l[3], b[3]) - Math.max(l[1], b[1]) > 1)
            overlaps.push({legend: l.map(Math.round), colorbar: b.map(Math.round)});
    return overlaps;
}"""


def check_legend_clear_of_colorbars(figure, docname: str, number: int, when: str) -> None:
    overlaps = figure.evaluate(LEGEND_ON_COLORBAR)
    assert not overlaps, (f"{docname}: figure {number}'s legend lies on its colour bar {when} "
                          f"(screen boxes {overlaps[0]}); move one of them")


def check_figures(page, docname: str) -> int:
    figures = page.locator(".plotly-graph-div")
    n = figures.count()
    for i in range(n):
        figure = figures.nth(i)
        figure.scroll_into_view_if_needed()
        figure.locator("svg.main-svg").first.wait_for(state="attached", timeout=15_000)
        has_data = figure.evaluate("gd => Array.isArray(gd.data) && gd.data.length > 0")
        assert has_data, f"{docname}: figure {i + 1} has no data"
        before = figure.evaluate(FIGURE_STATE)
        check_legend_clear_of_colorbars(figure, docname, i + 1, "as it loads")
        controls = figure.evaluate("""gd => ({
            sliders: (gd.layout.sliders || []).filter(s => s.visible !== false && (s.steps || []).length > 1).length,
            menus: (gd.layout.updatemenus || []).filter(m => m.visible !== false && (m.buttons || []).length > 1).length})""")
        if figure.evaluate("gd => gd._fullData.every(t => t.type === 'table')"):
            check_table(figure, docname, i + 1)
            what = None
        elif controls["sliders"]:
            what = interact_slider(page, figure)
        elif controls["menus"]:
            what = interact_menu(page, figure)
        else:
            assert interact_hover(page, figure), (
                f"{docname}: figure {i + 1} has no slider or menu, and hovering over it shows no "
                f"data label")
            what = None
        if what is not None:
            try:
                page.wait_for_function(f"([gd, before]) => ({FIGURE_STATE})(gd) !== before",
                                       arg=[figure.element_handle(), before], timeout=5_000)
            except Exception:
                pytest.fail(f"{docname}: figure {i + 1} did not change after {what}")
        page.wait_for_timeout(300)  # let a transition settle before the picture
        if what is not None:
            check_legend_clear_of_colorbars(figure, docname, i + 1, f"after {what}")
        screenshot(figure, f"{slug(docname)}-figure{i + 1}")
    return n


# ------------------------------------------------------------------------------- toggles
def check_toggles(page, docname: str) -> int:
    """Hidden code starts collapsed: the set-up cell (the first code cell) and the solutions; a
    solution opens on click."""
    hidden = page.locator("details.hide")
    open_at_start = [i for i in range(hidden.count()) if hidden.nth(i).evaluate("d => d.open")]
    assert not open_at_start, f"{docname}: hidden code cells open at load: {open_at_start}"
    first_cell = page.locator("div.cell").first
    assert first_cell.locator("details.hide").count() == 1, (
        f"{docname}: the first code cell (the set-up) is not hidden: tag it hide-input")
    solutions = page.locator(".cell.tag_solution details.hide")
    n = solutions.count()
    assert n >= 1, f"{docname}: no exercise solution (a code cell tagged solution and hide-input)"
    for i in range(n):
        solution = solutions.nth(i)
        code = solution.locator(".cell_input pre").first
        assert not code.is_visible(), f"{docname}: solution {i + 1} is visible before a click"
        summary = solution.locator("summary")
        assert "Show solution" in summary.inner_text(), f"{docname}: solution toggle mislabelled"
        summary.scroll_into_view_if_needed()
        summary.click()
        code.wait_for(state="visible", timeout=5_000)
        if i == 0:
            page.wait_for_timeout(500)  # the toggle fades in
            screenshot(page, f"{slug(docname)}-solution")
    return n


def check_exercises(page, docname: str) -> int:
    exercises = page.locator(".exercise")
    n = exercises.count()
    assert n >= 1, f"{docname}: no exercise rendered (sphinx-exercise `{{exercise}}` block)"
    titles = [exercises.nth(i).locator(".admonition-title").first.inner_text() for i in range(n)]
    chapter = page.locator("h1 .section-number").first.inner_text().strip().rstrip(".")
    bad = [t for t in titles if not t.startswith(f"Exercise {chapter}.")]
    assert not bad, f"{docname}: exercises not numbered {chapter}.k: {bad}"
    return n


def check_copy_button(page, docname: str) -> None:
    block = page.locator(".cell:not(.tag_hide-input) .cell_input div.highlight").first
    block.scroll_into_view_if_needed()
    block.hover()
    button = block.locator("button.copybtn")
    assert button.count() == 1, f"{docname}: code block without a copy button"
    button.click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    code = block.locator("pre").inner_text()
    assert copied.strip() == code.strip(), f"{docname}: the copy button copied {copied[:60]!r}"


def check_launch_menu(page, docname: str) -> None:
    """With no repository set, nothing leads to one: the launch menu holds only JupyterLab on
    this computer, there is no repository button, and the run note has no set-up cell."""
    notebook = docname + ".ipynb"
    links = page.evaluate("""() => [...document.querySelectorAll('.dropdown-launch-buttons a')]
                                     .map(a => [a.textContent.trim(), a.href])""")
    found = {text: href for text, href in links}
    assert list(found) == ["JupyterLab (local)"], f"{docname}: launch menu {found}"
    assert found["JupyterLab (local)"] == f"http://localhost:8888/lab/tree/{Path(notebook).name}"
    header = page.evaluate("""() => [...document.querySelectorAll('.article-header-buttons a')]
                                      .map(a => a.href)""")
    assert not [h for h in header if "github.com" in h or "mybinder" in h or "colab" in h], (
        f"{docname}: header buttons lead to a repository that is not set: {header}")
    note = page.locator(".admonition.run-this-chapter")
    assert note.count() == 1, f"{docname}: no 'Run this chapter yourself' note"
    body = note.locator("p").nth(1)
    assert not body.is_visible(), f"{docname}: the run note should start collapsed"
    note.locator(".admonition-title").click()
    body.wait_for(state="visible", timeout=5_000)
    text = note.inner_text()
    assert "make lab" in text, f"{docname}: the run note does not say `make lab`: {text!r}"
    assert note.locator("pre").count() == 0 and "Binder" not in text and "Colab" not in text, (
        f"{docname}: the run note points to Binder/Colab, but the book has no repository")


def check_cell_markdown(page, docname: str) -> None:
    """Markdown a cell displays is rendered, not printed: no raw pipe table in any output; the
    assumptions ledger of chapters 9 and 10 is a table."""
    raw = page.evaluate("""() => [...document.querySelectorAll('.cell_output')]
        .map(o => o.innerText).filter(t => /^\\s*\\|[\\s:|-]*---[\\s:|-]*\\|\\s*$/m.test(t))
        .map(t => t.slice(0, 120))""")
    assert not raw, f"{docname}: Markdown printed raw instead of rendered: {raw[:3]}"
    if docname.endswith(("09_wafer", "10_mapping")):
        headers = page.evaluate("""() => [...document.querySelectorAll('.cell_output table')]
            .map(t => [...t.querySelectorAll('th')].map(h => h.innerText.trim()).join(' '))""")
        assert any(h.startswith("name value") for h in headers), (
            f"{docname}: the assumptions ledger is not a table (tables in outputs: {headers})")


def check_merged_streams(page, docname: str) -> None:
    """Consecutive prints of a cell are one block: no two stream blocks side by side; a training
    log (chapters 2 and 3) is one block of many steps, whether printed (a stream) or shown as
    one display that grows while the cell runs (a text/plain output)."""
    split = page.evaluate("""() => [...document.querySelectorAll('.cell_output > .output.stream')]
        .filter(o => o.nextElementSibling && o.nextElementSibling.matches('.output.stream'))
        .map(o => o.innerText.slice(0, 80))""")
    assert not split, f"{docname}: a cell's prints are split into several blocks: {split[:3]}"
    if docname.endswith(("02_embeddings", "03_attention")):
        steps = page.evaluate("""() => Math.max(0, ...[...document.querySelectorAll(
            '.cell_output > .output.stream, .cell_output > .output.text_plain')]
            .map(o => (o.innerText.match(/^\\s*step\\s+\\d+/gm) || []).length))""")
        assert steps >= 3, f"{docname}: no training log printed as one block (most steps in one: {steps})"


# Everything a reader can open (hidden cells, solutions, the run note and other dropdowns), then
# every code and output block: `pre` of code, text outputs, HTML outputs (figures), tables.
OPEN_EVERYTHING = """() => {
    document.querySelectorAll('details').forEach(d => d.open = true);
    document.querySelectorAll('.toggle-button[aria-expanded="false"]')
        .forEach(b => (b.closest('.admonition-title') || b).click());
}"""
CUT_OFF = """() => {
    const blocks = document.querySelectorAll(
        'main div.highlight > pre, main .cell_output .output.text_html, ' +
        'main .cell_output .pst-scrollable-table-container');
    const out = [];
    for (const block of blocks) {
        if (!block.offsetParent || block.scrollWidth <= block.clientWidth) continue;
        const cell = block.closest('.cell');
        const kind = block.matches('pre') ? (block.closest('.cell_output') ? 'output' : 'code')
                   : block.matches('.text_html') ? 'HTML output' : 'table';
        const heading = (() => {
            let h = null;
            for (const e of document.querySelectorAll('main h1, main h2, main h3'))
                if (e.compareDocumentPosition(block) & Node.DOCUMENT_POSITION_FOLLOWING) h = e;
            return h ? h.innerText.replace(/[#\u00b6]/g, '').trim() : '';
        })();
        let lines = [];
        if (block.matches('pre')) {
            const style = getComputedStyle(block);
            const probe = document.createElement('span');
            probe.textContent = 'M'.repeat(100);
            block.appendChild(probe);
            const charWidth = probe.getBoundingClientRect().width / 100;
            probe.remove();
            const room = block.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const fits = Math.floor(room / charWidth);
            lines = block.innerText.split('\\n').filter(l => l.length > fits)
                         .map(l => `${l.length} > ${fits} chars: ${l}`);
        }
        out.push({kind, heading, cell: cell ? [...document.querySelectorAll('.cell')].indexOf(cell) + 1 : 0,
                  scroll: block.scrollWidth, client: block.clientWidth, lines});
    }
    return out;
}"""


def cut_off_blocks(page) -> list[dict]:
    page.evaluate(OPEN_EVERYTHING)
    page.wait_for_timeout(500)
    return page.evaluate(CUT_OFF)


def describe_cut_off(blocks: list[dict]) -> str:
    lines = []
    for b in blocks:
        where = f"cell {b['cell']}" if b["cell"] else "text"
        lines.append(f"  {b['kind']} block, {where} in section {b['heading']!r}: "
                     f"{b['scroll']} px wide in a {b['client']} px box")
        lines.extend(f"      {line}" for line in b["lines"][:6])
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- tests
def test_table_of_contents_has_chapters():
    assert CHAPTERS, f"{TOC} lists no chapter"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_page(open_page, docname):
    _need_book()
    assert (HTML / f"{docname}.html").is_file(), f"{docname} is in the toc but was not built"
    opened = open_page(docname)
    page = opened.page
    screenshot(page, slug(docname))
    check_math(page, docname)
    check_figures(page, docname)
    check_exercises(page, docname)
    check_toggles(page, docname)
    check_copy_button(page, docname)
    check_launch_menu(page, docname)
    check_cell_markdown(page, docname)
    check_merged_streams(page, docname)
    errors = opened.unexpected_errors()
    assert not errors, f"{docname}: JavaScript errors or failed requests: {errors}"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_code_and_outputs_fit_at_1280_px(open_page, docname):
    """No code or output block is wider than its box (its end hidden behind a scroll bar)."""
    _need_book()
    opened = open_page(docname)
    blocks = cut_off_blocks(opened.page)
    print(f"{docname}: {len(blocks)} cut-off blocks at {VIEWPORT['width']} px")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (SCREENSHOTS / "cut-off.txt").open("a", encoding="utf-8") as log:
        log.write(f"{docname}: {len(blocks)} cut-off blocks\n{describe_cut_off(blocks)}\n")
    assert not blocks, (f"{docname}: {len(blocks)} code/output blocks are cut off at "
                        f"{VIEWPORT['width']} px:\n{describe_cut_off(blocks)}")


@pytest.mark.parametrize("docname", [p for p in PAGES if p not in CHAPTERS])
def test_other_page(open_page, docname):
    _need_book()
    opened = open_page(docname)
    screenshot(opened.page, slug(docname))
    check_math(opened.page, docname)
    errors = opened.unexpected_errors()
    assert not errors, f"{docname}: JavaScript errors or failed requests: {errors}"


def test_intro_leads_nowhere_without_a_repository(open_page):
    """With no repository set, the introduction says to run the chapters locally and shows no
    set-up cell for Colab or Binder."""
    _need_book()
    opened = open_page("book/intro")
    section = opened.page.locator("section#on-colab-or-binder")
    assert section.count() == 1, "the introduction lost its 'On Colab or Binder' section"
    text = section.inner_text()
    assert "names no public repository" in text and "make lab" in text, text
    assert section.locator("pre").count() == 0, "a set-up cell that clones no repository"
    assert "@REPOSITORY@" not in opened.page.content()


def test_plotly_js_is_the_books_own_and_fetched_once(browser, server):
    """Every chapter page with a figure loads the same _static/plotly-*.min.js; a reader who
    opens every chapter fetches it once (later pages take it from the browser's cache, or get a
    304 Not Modified), and the figures of each page draw."""
    _need_book()
    # No request routing here: Playwright turns the browser's cache off in a context that routes.
    # The network stays cut off by the browser's host resolver (CHROMIUM_ARGS).
    context = browser.new_context(viewport=VIEWPORT)
    outside: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: r.url.startswith((server, "data:", "blob:"))
            or outside.append(r.url))
    first = len(SERVED)
    sources = set()
    try:
        for docname in CHAPTERS:
            page.goto(server + docname + ".html", wait_until="load")
            srcs = page.evaluate("() => [...document.scripts].map(s => s.src).filter(s => /plotly/.test(s))")
            if page.locator(".plotly-graph-div").count():
                assert len(srcs) == 1, f"{docname}: plotly.js scripts {srcs}"
                assert page.evaluate("() => typeof Plotly === 'object' && !!Plotly.version"), docname
                page.locator(".plotly-graph-div svg.main-svg").first.wait_for(state="attached",
                                                                               timeout=15_000)
            sources.update(srcs)
    finally:
        context.close()
    assert sources, "no chapter page loads plotly.js"
    assert len(sources) == 1, f"chapters load different copies of plotly.js: {sources}"
    (source,) = sources
    assert source.startswith(server + "_static/plotly-"), source
    path = "/" + source[len(server):]
    served = [status for p, status in SERVED[first:] if p == path]
    full = [status for status in served if status == 200]
    assert len(full) == 1, (f"plotly.js was sent {len(full)} times to a reader who opened "
                            f"{len(CHAPTERS)} chapters (answers: {served})")
    assert not [u for u in outside if "plotly" in u], outside


def test_math_is_served_by_the_book(open_page):
    """MathJax comes from the book's own _static folder, so formulas typeset offline."""
    _need_book()
    opened = open_page("book/notation")
    n = check_math(opened.page, "book/notation")
    assert n > 0, "the notation page has no math"
    sources = opened.page.evaluate("() => [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s))")
    assert sources and all(s.startswith(opened.server) for s in sources), sources
    assert not [u for u in opened.outside if "mathjax" in u.lower()], opened.outside
