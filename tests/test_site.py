"""The results site (`make site`) in a real browser: built from the tracked `figures/demo/` and a results
folder holding one executed training notebook (the other groups' notebooks absent, as on a clone
before `make demo`), then every HTML page opened in headless Chromium from ``file://`` and through a
local HTTP server. `make site-check` (also part of `make test-browser`).

Oracles: the browser's console and page errors, every ``<img>``'s decoded size (``naturalWidth``), the
requests the browser makes (none may leave the machine), and the built files themselves (every
internal link names an existing file, every fragment an element id on that page)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))  # Debian's package (make test-browser)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files"]
TIMEOUT_MS = int(os.environ.get("BROWSER_TIMEOUT_MS", 60_000))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    import nbformat

    from rightfocus import site as site_module

    tmp = tmp_path_factory.mktemp("site")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('trained voc-main')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained voc-main\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# mg_train, group voc-main"), cell]
    nb_path = tmp / "results" / "demo" / "notebooks" / "mg_train-voc-main.ipynb"
    nb_path.parent.mkdir(parents=True)
    nbformat.write(nb, nb_path)
    index = site_module.build(REPO, tmp / "site", REPO / "figures" / "demo", tmp / "results", "demo",
                              staging=tmp / "src")
    assert index.exists()
    return index.parent


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html" and "assets" not in p.parts)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


@functools.cache
def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text())
    return parser


def test_site_has_the_pages(site):
    names = {p.relative_to(site).as_posix() for p in _pages(site)}
    for needed in ("index.html", "papers/mg.html", "papers/aim.html", "api.html", "changelog.html",
                   "records/index.html", "notebooks/mg_train-voc-main.html", "troubleshooting.html"):
        assert needed in names, needed
    mg = (site / "papers" / "mg.html").read_text()
    assert "mg_train-voc-main.html" in mg and "not executed yet" in mg
    assert "No executed notebooks under" in (site / "papers" / "aim.html").read_text()
    assert "rightfocus.guide.Guide" in (site / "api.html").read_text() or "Guide" in (site / "api.html").read_text()


def test_every_internal_link_resolves(site):
    bad = []
    for page in _pages(site):
        for href in _refs(page).links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//") or href.startswith("mailto:"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append(f"{page.relative_to(site)}: {href} -> missing {target}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _refs(target).ids:
                bad.append(f"{page.relative_to(site)}: {href} -> no id {parts.fragment!r} in {target.name}")
    assert not bad, "\n".join(bad[:40])


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run `make site-check` (installs Debian's chromium) or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


_IMAGES = """() => Array.from(document.images).map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}))"""


@pytest.mark.parametrize("how", ["file", "http"])
def test_every_page_loads_offline_without_errors_and_its_images_resolve(site, server, browser, how):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    remote: list[str] = []
    local = ("file://", server, "data:", "blob:", "about:")
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} ({r.failure})"))
    page.on("request", lambda r: None if r.url.startswith(local) else remote.append(r.url))
    checked_images = 0
    for html in _pages(site):
        rel = html.relative_to(site).as_posix()
        url = html.as_uri() if how == "file" else f"{server}/{rel}"
        before = len(errors)
        page.goto(url, wait_until="load")
        page.wait_for_load_state("networkidle")
        images = page.evaluate(_IMAGES)
        checked_images += len(images)
        broken = [i["src"] for i in images if not i["ok"]]
        assert not broken, f"{rel}: images that do not load: {broken}"
        assert len(errors) == before, f"{rel}: " + "; ".join(errors[before:])
    assert not remote, f"requests leaving the machine: {sorted(set(remote))[:10]}"
    assert checked_images > 50  # the paper pages' figures were among them
    page.close()
