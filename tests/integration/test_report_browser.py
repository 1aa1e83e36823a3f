"""The HTML report as a person sees it: rendered by real headless Chromium.

A real tiny fit (image, text) and a real tiny comparison write their ``report.html``;
Chromium opens each from disk and the test checks what a reader would notice: console
errors, missing or hidden sections, charts that render at zero size or draw nothing,
empty tables, broken images, and any attempt to fetch something from the network (the
report must be self-contained). A full-page screenshot of each report is saved in the
test's temporary folder and, when ``HEADSTART_SCREENSHOT_DIR`` is set, copied there.

Skips only where Chromium, chromedriver or selenium are missing (``./setup.sh --dev``
installs them). The whole file takes 25-45 s on two busy cores, mostly the comparison.
"""

from __future__ import annotations

import _socket
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import headstart

from . import _browser

pytestmark = pytest.mark.slow

FIT_SECTIONS = (
    "summary",
    "data",
    "model",
    "curves",
    "confusion",
    "per-class",
    "mistakes",
    "reproduce",
)
COMPARE_SECTIONS = (*FIT_SECTIONS, "compare", "efficiency")
FAST = {"epochs": 2, "head_epochs": 10}
# every kind of strategy, but not the small_cnn baseline: it alone takes ~40 s here
COMPARE_STRATEGIES = "pixels,scratch,extract,finetune"


def _loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else None
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module", autouse=True)
def offline(offline: Path) -> Iterator[Path]:
    """The integration suite's no-network guard, letting through loopback only: Selenium
    drives chromedriver over HTTP on localhost."""
    guarded = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if _loopback(address):
            return _socket.socket.connect(self, address)
        return guarded(self, address)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        yield offline


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the whole session, quit at the end."""
    reason = _browser.unavailable()
    if reason:
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
        driver = _browser.launch()
        try:
            yield driver
        finally:
            driver.quit()


def _look_at(browser, page: Path, sections: tuple[str, ...], shot: Path) -> dict:
    """Open ``page``, assert it meets the report contract, and screenshot it."""
    assert page.is_file(), f"{page} was not written"
    console = _browser.open_page(browser, page)
    facts = _browser.page_facts(browser)
    _browser.full_page_screenshot(browser, shot, facts["height"])
    _browser.keep_screenshot(shot)
    problems = _browser.report_problems(facts, console, sections)
    assert not problems, f"{page} as Chromium renders it:\n  " + "\n  ".join(problems)
    assert shot.stat().st_size > 10_000  # a real picture, not a blank page
    return facts


# -- the harness itself, on hand-written pages --------------------------------------

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>.hidden {{ display: none }}</style></head><body>{body}</body></html>"""
_PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _sample_section(name: str) -> str:
    return f"""<section id="{name}"><h2>{name}</h2>
<figure class="chart"><svg width="240" height="120" viewBox="0 0 240 120">
<rect x="10" y="10" width="60" height="100" fill="#36c"/><text x="80" y="60">{name}</text>
</svg><figcaption>What {name} shows.</figcaption></figure>
<table><thead><tr><th>class</th><th>F1</th></tr></thead>
<tbody><tr><td>a</td><td>0.9</td></tr></tbody></table>
<img src="{_PIXEL}" alt="one pixel" width="16" height="16"></section>"""


def test_harness_passes_a_self_contained_page(browser, tmp_path: Path) -> None:
    page = tmp_path / "good.html"
    body = "".join(_sample_section(s) for s in FIT_SECTIONS)
    page.write_text(_PAGE.format(title="Sample report", body=body), encoding="utf-8")
    console = _browser.open_page(browser, page)
    facts = _browser.page_facts(browser)
    assert _browser.report_problems(facts, console, FIT_SECTIONS) == []
    assert len(facts["charts"]) == len(facts["tables"]) == len(FIT_SECTIONS)
    assert {s["id"] for s in facts["sections"]} == set(FIT_SECTIONS)


def test_harness_sees_what_a_reader_would(browser, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    body = (
        '<section id="summary"><p>ok</p>'
        '<figure class="chart"><svg width="0" height="0"><rect width="1" height="1"/></svg>'
        "<figcaption>zero-size</figcaption></figure>"
        '<figure class="chart"><svg width="100" height="50"></svg><figcaption></figcaption>'
        "</figure>"
        "<table><thead><tr><th>x</th></tr></thead><tbody></tbody></table>"
        '<img src="missing.png" alt="gone">'
        '<img src="https://example.invalid/logo.png" alt="remote">'
        "<script>console.error('boom')</script></section>"
        '<section id="data" class="hidden"><p>hidden</p></section>'
        '<section id="model"></section>'
    )
    page.write_text(_PAGE.format(title="", body=body), encoding="utf-8")
    console = _browser.open_page(browser, page)
    problems = _browser.report_problems(
        _browser.page_facts(browser), console, ("summary", "data", "model", "curves")
    )
    text = "\n".join(problems)
    for expected in (
        "the page has no title",
        "boom",
        "section #data is not visible",
        "section #model is not visible",  # empty: zero height
        "section #curves is missing",
        "chart 0 in #summary renders at 0",
        "chart 1 in #summary draws nothing",
        "chart 1 in #summary has no figcaption",
        "table 0 in #summary has no body rows",
        "image 'missing.png' in #summary did not load",
        "remote reference in the markup: https://example.invalid/logo.png",
        "network request attempted: https://example.invalid/logo.png",
    ):
        assert expected in text, f"{expected!r} not among:\n{text}"


# -- the real reports ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("modality", "model", "fixture"),
    [("image", "test_cnn.tiny", "tiny_images"), ("text", "test_words.tiny", "tiny_texts")],
    ids=["image", "text"],
)
def test_fit_report_renders(
    browser, modality: str, model: str, fixture: str, request, tmp_path: Path, store
) -> None:
    source = request.getfixturevalue(fixture)
    out = tmp_path / "m"
    headstart.fit(source, out=out, model=model, strategy="finetune", store=store, **FAST)
    facts = _look_at(
        browser, out / "report.html", FIT_SECTIONS, tmp_path / f"report-fit-{modality}.png"
    )
    assert facts["charts"] and facts["tables"]
    if modality == "image":  # thumbnails of the examples, inline as data: URIs
        assert facts["images"], "the image report shows no example image"


def test_compare_report_renders(browser, tiny_images: Path, tmp_path: Path, store) -> None:
    out = tmp_path / "cmp"
    headstart.compare(
        tiny_images,
        out=out,
        model="test_cnn.tiny",
        strategies=COMPARE_STRATEGIES,
        seeds=2,
        shots="2,all",
        store=store,
        **FAST,
    )
    facts = _look_at(
        browser, out / "report.html", COMPARE_SECTIONS, tmp_path / "report-compare.png"
    )
    in_compare = [c for c in facts["charts"] if c["section"] in ("compare", "efficiency")]
    assert in_compare, "the compare report draws no chart in #compare or #efficiency"
