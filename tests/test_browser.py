"""The built book in a real browser: every page loads offline and cleanly, shows its math and
images, passes an accessibility check, and every chapter's interactive parts work without a kernel.

Drives Debian's Chromium (`make browser` installs it) through pytest-playwright, with every host
name but 127.0.0.1 and localhost unresolvable: a page that even tries to load something from
outside fails. Needs `make vendor` (MathJax for the book, axe-core for the checks).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import chapter_cells
from chapter_cells import TOC_CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHAPTER_BUDGET_BYTES = 3_000_000  # a chapter's HTML plus its image files

pytestmark = pytest.mark.slow


def expected_pages() -> list[str]:
    """The pages the build must write: one per toc entry, plus the root redirect, search and index."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]]
    stack = list(toc.get("chapters", [])) + list(toc.get("parts", []))
    while stack:
        entry = stack.pop(0)
        if "file" in entry:
            entries.append(entry["file"])
        stack.extend(entry.get("chapters", []) + entry.get("sections", []))
    return sorted({f"{Path(e).with_suffix('')}.html" for e in entries}
                  | {"index.html", "search.html", "genindex.html"})


PAGES = expected_pages()


# --- the browser and the server -------------------------------------------------------------------

# Chromium's launch settings are in conftest.py (`browser_type_launch_args`), shared by every browser test.


@pytest.fixture(scope="module")
def book_url(built_book: Path):
    """The built book served over HTTP on a free port of 127.0.0.1 (as a reader's browser sees it)."""
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              cwd=built_book, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first_line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://...) ..."
        port = re.search(r" port (\d+)", first_line)
        assert port, f"http.server did not start: {first_line!r}"
        yield f"http://127.0.0.1:{port.group(1)}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- one visit per page, shared by the checks -----------------------------------------------------

class Visit:
    """What one page did while it loaded and what it shows once MathJax is done."""

    def __init__(self):
        self.console_errors: list[tuple[str, str]] = []  # (message, url of the resource it is about)
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (url, why): request failures and 4xx/5xx responses
        self.font_responses: list[tuple[str, int]] = []
        self.icons: list[str] = []  # the href of each <link rel="icon">


VISIT_SCRIPT = """async () => {
    const math = document.querySelectorAll(".math").length;
    if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
    await document.fonts.ready;
    const faces = [...document.fonts].filter(f => f.family.replace(/"/g, "").startsWith("MJX"));
    return {
        math: math,
        mathjax: !!(window.MathJax && MathJax.startup),
        containers: document.querySelectorAll("mjx-container").length,
        unrendered: [...document.querySelectorAll(".math")].filter(
            m => !m.querySelector("mjx-container")).map(m => m.textContent.slice(0, 60)),
        merrors: [...document.querySelectorAll("mjx-merror")].map(m => m.textContent.slice(0, 60)),
        mathjax_fonts_loaded: faces.filter(f => f.status === "loaded").map(f => f.family),
        mathjax_fonts_failed: faces.filter(f => f.status === "error").map(f => f.family),
    };
}"""

IMAGES_SCRIPT = """() => [...document.images].map(img => ({
    src: img.currentSrc.startsWith("data:") ? img.currentSrc.slice(0, 40) + "..." : img.currentSrc,
    alt: img.getAttribute("alt"), complete: img.complete, width: img.naturalWidth}))"""

AXE_SCRIPT = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.filter(v => v.impact === "critical" || v.impact === "serious")
        .map(v => ({rule: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}));
}"""


@pytest.fixture(scope="module")
def visits(browser, book_url):
    """Each page visited once, in a fresh browser context (empty storage, as a first-time reader),
    its events recorded; the results are computed on first use."""
    cache: dict[str, dict] = {}

    def visit(name: str) -> dict:
        if name in cache:
            return cache[name]
        record = Visit()
        context = browser.new_context()
        page = context.new_page()
        page.on("console", lambda m: m.type == "error"
                and record.console_errors.append((m.text, m.location.get("url", ""))))
        page.on("pageerror", lambda e: record.page_errors.append(str(e)))
        page.on("request", lambda r: record.requests.append(r.url))
        page.on("requestfailed", lambda r: record.failed.append((r.url, str(r.failure))))

        def on_response(response):
            if response.status >= 400:
                record.failed.append((response.url, f"HTTP {response.status}"))
            if re.search(r"\.woff2?(\?|$)", response.url):
                record.font_responses.append((response.url, response.status))
        page.on("response", on_response)

        page.goto(book_url + name, wait_until="load")
        if name == "index.html":  # a meta-refresh redirect to the first page
            page.wait_for_url(re.compile(r"book/intro\.html$"))
            page.wait_for_load_state("load")
        math = page.evaluate(VISIT_SCRIPT)
        for image in page.locator("img").all():  # lazy images load once scrolled to
            if image.is_visible():
                image.scroll_into_view_if_needed()
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]').forEach("
                      "img => { if (!img.checkVisibility()) img.loading = 'eager'; })")
        page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=10_000)
        images = page.evaluate(IMAGES_SCRIPT)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(AXE_SCRIPT)
        record.icons = page.eval_on_selector_all('link[rel~="icon"]', "links => links.map(l => l.href)")
        page.wait_for_timeout(100)  # let late console messages arrive
        cache[name] = {"record": record, "math": math, "images": images, "axe": violations,
                       "url": page.url}
        context.close()
        return cache[name]

    if not AXE.exists():
        pytest.fail(f"{AXE.relative_to(ROOT)} is missing: run `make vendor` (npm ci)")
    return visit


def test_the_pages_checked_are_every_page_the_build_wrote(built_book: Path):
    written = sorted(str(p.relative_to(built_book)) for p in built_book.rglob("*.html")
                     if not p.relative_to(built_book).parts[0].startswith("_"))  # _static: templates
    assert written == PAGES


@pytest.mark.parametrize("page_name", PAGES)
def test_page_loads_without_console_or_page_errors(visits, page_name):
    record = visits(page_name)["record"]
    assert record.page_errors == [], f"uncaught errors on {page_name}"
    assert record.console_errors == [], f"console errors on {page_name}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_requests_nothing_outside_the_book(visits, page_name):
    record = visits(page_name)["record"]
    outside = [url for url in record.requests
               if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], f"{page_name} tried to load from outside the book"
    assert record.failed == [], f"failed requests on {page_name}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_declares_the_book_s_icon_and_it_loads(visits, page_name):
    """Without a declared icon Chromium asks for /favicon.ico and logs a 404 on every page."""
    record = visits(page_name)["record"]
    assert [urlsplit(url).path.rsplit("/", 1)[-1] for url in record.icons] == ["favicon.svg"], (
        f"{page_name} should declare the book's icon once")
    assert record.icons[0] in record.requests, f"{page_name} declares an icon that Chromium never requested"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_images_load_and_have_alt_text(visits, page_name):
    images = visits(page_name)["images"]
    broken = [i["src"] for i in images if not i["complete"] or i["width"] == 0]
    assert broken == [], f"broken images on {page_name}"
    missing_alt = [i["src"] for i in images if not (i["alt"] or "").strip()]
    assert missing_alt == [], f"images without alt text on {page_name}"


@pytest.mark.parametrize("page_name", PAGES)
def test_page_math_is_typeset_with_its_fonts(visits, page_name):
    visit = visits(page_name)
    math, record = visit["math"], visit["record"]
    if math["math"] == 0:
        assert math["containers"] == 0
        return
    assert math["mathjax"], f"{page_name} has math but MathJax did not load"
    assert math["unrendered"] == [], f"math left as TeX source on {page_name}"
    assert math["merrors"] == [], f"MathJax errors on {page_name}"
    assert math["containers"] >= math["math"]
    assert math["mathjax_fonts_failed"] == []
    assert math["mathjax_fonts_loaded"], f"no MathJax font loaded on {page_name}"
    assert any("/mathjax/output/chtml/fonts/woff-v2/" in url and status == 200
               for url, status in record.font_responses), record.font_responses


@pytest.mark.parametrize("page_name", PAGES)
def test_page_has_no_serious_accessibility_violations(visits, page_name):
    assert visits(page_name)["axe"] == []


def page_of(path: Path) -> str:
    """The built page of a chapter notebook, relative to the book's root (book/00_x.html)."""
    return path.relative_to(ROOT).with_suffix(".html").as_posix()


def chapters(test):
    return pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda p: p.name)(test)


def title_word(path: Path) -> str:
    """The longest word of the chapter's title (its first `# ` heading), to search for."""
    title = next(line[2:] for cell in chapter_cells.read(path).cells if cell.cell_type == "markdown"
                 for line in cell.source.splitlines() if line.startswith("# "))
    return max(re.findall(r"[A-Za-z]+", title), key=len).lower()


@chapters
def test_the_search_page_finds_the_chapter(browser, book_url, path):
    context = browser.new_context()
    page = context.new_page()
    page.goto(book_url + f"search.html?q={title_word(path)}", wait_until="load")
    page.wait_for_selector("#search-results li", timeout=10_000)
    assert page.locator(f'#search-results a[href*="{page_of(path)}"]').count() > 0
    context.close()


def test_the_search_page_finds_every_chapter_by_the_book_s_subject(browser, book_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(book_url + "search.html?q=residual", wait_until="load")
    for path in TOC_CHAPTERS:  # Sphinx lists the results one by one: wait for each chapter's
        try:
            page.locator(f'#search-results a[href*="{page_of(path)}"]').first.wait_for(
                state="attached", timeout=10_000)
        except PlaywrightTimeoutError:
            pytest.fail(f"searching 'residual' does not list {path.name}")
    context.close()


# --- the chapter pages ----------------------------------------------------------------------------

@pytest.fixture
def open_chapter(browser, book_url):
    """``open_chapter(path)``: the chapter's page, freshly loaded in a new context (nothing clicked yet)."""
    contexts = []

    def open_page(path: Path):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.goto(book_url + page_of(path), wait_until="load")
        return page

    yield open_page
    for context in contexts:
        context.close()


@chapters
def test_moving_each_interactive_figure_slider_changes_image_and_readout(open_chapter, path):
    chapter = open_chapter(path)
    figures = chapter.locator(".resbook-interactive").all()
    assert len(figures) == chapter_cells.interactive_figures(chapter_cells.read(path))
    for figure in figures:
        figure.scroll_into_view_if_needed()
        image, slider = figure.locator("img").first, figure.locator('input[type="range"]').first
        readout = figure.locator("output").first
        assert chapter.locator(f'label[for="{slider.get_attribute("id")}"]').count() == 1
        before = image.get_attribute("src"), readout.text_content(), image.get_attribute("alt")
        slider.fill(slider.get_attribute("max"))  # sets the value and fires "input"
        after = image.get_attribute("src"), readout.text_content(), image.get_attribute("alt")
        assert after[0] != before[0] and after[0].startswith("data:image/png;base64,")
        assert after[1] != before[1] and after[1].strip()
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")


@chapters
def test_exercise_solutions_are_hidden_until_clicked(open_chapter, path):
    chapter = open_chapter(path)
    solutions = chapter.locator("div.solution").all()
    assert len(solutions) == chapter_cells.solution_directives(chapter_cells.read(path))
    assert solutions, f"no exercise solution on {page_of(path)}"
    for solution in solutions:
        content = solution.locator("section").first  # what follows the title "Solution to ..."
        assert content.count() == 1 and content.is_hidden(), solution.get_attribute("id")
        solution.locator("button.toggle-button").click()
        content.wait_for(state="visible", timeout=5_000)


@chapters
def test_colab_link_opens_this_chapter_from_the_repository(open_chapter, path):
    chapter = open_chapter(path)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    owner_repo = urlsplit(config["repository"]["url"]).path.strip("/")
    notebook = "/".join(p for p in [config["repository"].get("path_to_book", "").strip("/"),
                                    path.relative_to(ROOT).as_posix()] if p)
    expected = (f"{config['launch_buttons']['colab_url'].rstrip('/')}/github/{owner_repo}/blob/"
                f"{config['repository']['branch']}/{notebook}")
    links = chapter.locator('a[href*="colab.research.google.com"]')
    assert links.count() == 1
    assert links.first.get_attribute("href") == expected


@chapters
def test_chapter_page_weight_is_within_budget(built_book: Path, path):
    html = built_book / page_of(path)
    text = html.read_text(encoding="utf-8")
    images = {(html.parent / src).resolve() for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', text)
              if not src.startswith(("data:", "http:", "https:"))}
    assert all(image.exists() for image in images), sorted(map(str, images))
    weight = html.stat().st_size + sum(image.stat().st_size for image in images)
    print(f"\n{page_of(path)}: {weight / 1e6:.2f} MB ({html.stat().st_size / 1e6:.2f} MB of HTML "
          f"+ {len(images)} image files); budget {CHAPTER_BUDGET_BYTES / 1e6:.1f} MB")
    assert weight <= CHAPTER_BUDGET_BYTES
