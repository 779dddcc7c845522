"""Every internal link of the built book resolves: the file exists and so does the anchor.

Reads every HTML page under ``_build/html`` and follows each ``href``/``src`` that stays inside
the book (links to other sites are not fetched: nothing outside localhost is reachable here). A
link with ``#anchor`` must land on an element with that ``id`` (or ``name``) in the target page.
Also checks that no page loads a script or stylesheet from another site, so the book works offline.

``make test`` builds the book before it runs the tests. Run alone, the test is skipped if there is
no built book, unless ``CI`` or ``BOOK_HTML`` (another built book to test) is set: then a missing
book is a failure.
"""
from __future__ import annotations

import os
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
LINK_ATTRIBUTES = {"a": "href", "link": "href", "script": "src", "img": "src", "iframe": "src",
                   "source": "src"}
# Folders of the build that are not pages a reader navigates (sources, assets, screenshots).
NOT_PAGES = ("_static", "_sources", "_images", "reports")


class PageParser(HTMLParser):
    """Collects the ids/names a page defines and the links it makes (with their line)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[tuple[str, str, int]] = []  # (tag, url, line)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.anchors.add(attrs[key])
        attribute = LINK_ATTRIBUTES.get(tag)
        if attribute and attrs.get(attribute) is not None:
            self.links.append((tag if tag != "link" else f"link[{attrs.get('rel')}]",
                               attrs[attribute], self.getpos()[0]))

    handle_startendtag = handle_starttag


@lru_cache(maxsize=None)
def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0] in NOT_PAGES)


@pytest.fixture(scope="module")
def book_pages() -> list[Path]:
    if not (HTML / "index.html").is_file():
        message = f"no built book in {HTML}: run `make book` (or `make test`, which builds it first)"
        if os.environ.get("BOOK_HTML") or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    found = pages()
    assert len(found) > 3, f"only {len(found)} pages in {HTML}"
    return found


def is_external(url: str) -> bool:
    parsed = urlparse(url)
    return bool(parsed.scheme and parsed.scheme not in ("file",)) or url.startswith("//")


def broken_links(page: Path) -> list[str]:
    """Internal links of ``page`` whose file or anchor does not exist, as readable lines."""
    problems = []
    for tag, url, line in parse(page).links:
        if not url or is_external(url) or url.startswith(("javascript:", "data:")):
            continue
        target_url, fragment = urldefrag(url)
        path_part = unquote(urlparse(target_url).path)
        if not path_part:
            target = page
        else:
            target = (page.parent / path_part).resolve()
            if target.is_dir():
                target = target / "index.html"
        where = f"{page.relative_to(HTML)}:{line} <{tag}> {url}"
        if not target.is_file():
            problems.append(f"{where}: no such file")
            continue
        if fragment and target.suffix == ".html":
            anchor = unquote(fragment)
            if anchor not in parse(target).anchors:
                problems.append(f"{where}: no #{anchor} in {target.name}")
    return problems


def test_internal_links_and_anchors_resolve(book_pages):
    problems = [p for page in book_pages for p in broken_links(page)]
    assert not problems, f"{len(problems)} broken links:\n" + "\n".join(problems[:40])


def test_no_script_or_stylesheet_from_another_site(book_pages):
    """The book must read offline: every script and stylesheet a page loads is the book's own.
    (Links a reader clicks, such as Binder or the papers, may point anywhere.)"""
    outside = []
    for page in book_pages:
        for tag, url, line in parse(page).links:
            loads = tag == "script" or tag.startswith("link[") and "stylesheet" in tag
            if loads and is_external(url):
                outside.append(f"{page.relative_to(HTML)}:{line} <{tag}> {url}")
    assert not outside, "pages load files from other sites:\n" + "\n".join(outside[:20])


def test_every_toc_page_is_linked_from_the_home_page(book_pages):
    """The sidebar of the first page reaches every chapter and back-matter page."""
    import yaml

    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] for part in toc.get("parts", []) for entry in (part.get("chapters") or [])]
    root_page = HTML / f"{toc['root']}.html"
    linked = {(root_page.parent / unquote(urldefrag(url)[0])).resolve()
              for tag, url, _ in parse(root_page).links if tag == "a" and not is_external(url)}
    missing = [f for f in files if (HTML / f"{f}.html").resolve() not in linked]
    assert not missing, f"not in the navigation of {root_page.name}: {missing}"


# plotly.js is not in any page: the book serves one copy (book/_ext/plotly_static.py). A page
# holds its text and its figures' data; more than this means a figure stores far more points than
# a reader can see (aggregate it, store uint8).
MAX_PAGE_BYTES = 1_500_000
MAX_BOOK_BYTES = 20_000_000  # the whole built HTML: pages, _static (plotly.js, MathJax), sources
PLOTLY_JS_BANNER = "* plotly.js v"
FIGURE_CALL = "Plotly.newPlot("


def test_pages_are_a_reasonable_size(book_pages):
    sizes = sorted(((p.stat().st_size, p) for p in book_pages), reverse=True)
    too_big = [f"{p.relative_to(HTML)}: {size / 1e6:.2f} MB" for size, p in sizes
               if size > MAX_PAGE_BYTES]
    assert not too_big, f"pages over {MAX_PAGE_BYTES / 1e6:.1f} MB: {too_big}"


def test_the_whole_book_is_a_reasonable_size(book_pages):
    files = [p for p in HTML.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    largest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:5]
    assert total <= MAX_BOOK_BYTES, (
        f"the built HTML is {total / 1e6:.1f} MB, over {MAX_BOOK_BYTES / 1e6:.0f} MB; largest: "
        + ", ".join(f"{p.relative_to(HTML)} {p.stat().st_size / 1e6:.1f} MB" for p in largest))


def test_no_source_maps_are_shipped(book_pages):
    """The theme's source maps (3.4 MB, for debugging the theme) are left out of the book, and no
    script or style sheet points at one."""
    maps = [str(p.relative_to(HTML)) for p in (HTML / "_static").rglob("*.map")]
    assert not maps, f"source maps in the built book: {maps[:5]}"
    pointing = [str(p.relative_to(HTML)) for p in (HTML / "_static").rglob("*")
                if p.suffix in (".js", ".css") and "sourceMappingURL="
                in p.read_text(encoding="utf-8", errors="replace")]
    assert not pointing, f"files that point at a missing source map: {pointing[:5]}"


def _plotly_static():
    import importlib.util

    spec = importlib.util.spec_from_file_location("plotly_static",
                                                  ROOT / "book" / "_ext" / "plotly_static.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_page_inlines_plotly_js(book_pages):
    inlined = [str(p.relative_to(HTML)) for p in book_pages
               if PLOTLY_JS_BANNER in p.read_text(encoding="utf-8", errors="replace")]
    assert not inlined, f"pages with their own copy of plotly.js: {inlined}"


def test_pages_with_figures_load_the_books_plotly_js_first(book_pages):
    """Every page that draws a figure loads _static/plotly-*.min.js in its <head>, before any
    figure's code, and that file is the pinned plotly's own (same SHA-256)."""
    import hashlib

    static = _plotly_static()
    served = HTML / "_static" / static.STATIC_NAME
    assert served.is_file(), f"no {served.relative_to(HTML)} in the built book"
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    assert digest == static.PLOTLY_JS_SHA256, f"{served.name} has SHA-256 {digest}"
    assert served.read_bytes() == static.installed_plotly_js().read_bytes()
    problems, with_figures = [], 0
    for page in book_pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        if FIGURE_CALL not in text:
            continue
        with_figures += 1
        scripts = [url for tag, url, _ in parse(page).links
                   if tag == "script" and static.STATIC_NAME in url]
        head = text[:text.find("</head>")]
        if len(scripts) != 1 or static.STATIC_NAME not in head:
            problems.append(f"{page.relative_to(HTML)}: plotly.js scripts {scripts} (in <head>: "
                            f"{static.STATIC_NAME in head})")
        elif (page.parent / urlparse(scripts[0]).path).resolve() != served.resolve():
            problems.append(f"{page.relative_to(HTML)} loads {scripts[0]}, not {served.name}")
    assert with_figures >= 1, "no page draws a plotly figure"
    assert not problems, "\n".join(problems)
