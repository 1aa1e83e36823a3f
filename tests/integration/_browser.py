"""Headless Chromium through Selenium: look at an HTML report the way a person would.

Nothing here downloads or reaches the network. The driver is the ``chromedriver`` on PATH,
passed to Selenium explicitly so Selenium Manager is never run (and ``SE_OFFLINE`` tells it
to stay offline if it were); Chromium runs with its background networking off; every
http(s)/ws(s) request a page makes is blocked through the DevTools protocol and recorded
in the performance log, so a report that references a remote resource fails its check.

``page_facts`` measures a loaded page in one script; ``report_problems`` turns those
measurements into a list of human-readable problems (empty when the page is right), so a
failing test says everything that is wrong with the page at once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1280, 2000)
MAX_SCREENSHOT_HEIGHT = 16_000  # Chromium's own limit on one capture is a little above this
SETUP_HINT = "run ./setup.sh --dev to install it"
REMOTE_PATTERNS = ("http://*", "https://*", "ws://*", "wss://*", "ftp://*")
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "devtools:")
MARKS = "path, rect, text, line, circle, polyline, polygon, ellipse"


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromedriver_binary() -> str | None:
    found = shutil.which("chromedriver")
    if found is None and Path("/usr/bin/chromedriver").is_file():
        found = "/usr/bin/chromedriver"
    return found


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed ({SETUP_HINT})"
    if chromium_binary() is None:
        return f"chromium is not on PATH ({SETUP_HINT})"
    if chromedriver_binary() is None:
        return f"chromedriver is not on PATH ({SETUP_HINT})"
    return None


def launch():  # -> selenium.webdriver.Chrome
    """Start headless Chromium; the caller quits it (and sets ``SE_OFFLINE=true``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver_binary()), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(REMOTE_PATTERNS)})
    return driver


def open_page(driver, path: Path) -> list[dict[str, Any]]:
    """Load ``path`` (a file) at the default window size; return its console entries.

    Earlier pages' log entries are drained first, so what comes back is this page's.
    """
    driver.get_log("browser")
    driver.get_log("performance")
    driver.set_window_size(*WINDOW)
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.fonts ? document.fonts.ready : null")
    return driver.get_log("browser")


def requested_urls(driver) -> list[str]:
    """Every URL the page asked the network layer for since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


_FACTS_JS = """
const size = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
const shown = el => (el.checkVisibility ? el.checkVisibility({visibilityProperty: true})
                                        : el.offsetParent !== null);
const text = el => (el ? el.innerText || el.textContent || '' : '').trim();
const where = el => { const s = el.closest('section[id]'); return s ? s.id : '(outside)'; };
return {
  title: document.title.trim(),
  height: Math.ceil(Math.max(document.body.scrollHeight,
                             document.documentElement.scrollHeight)),
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => ({
    id: s.id, shown: shown(s), size: size(s), text: text(s).length})),
  charts: Array.from(document.querySelectorAll('figure.chart')).map(f => {
    const svg = f.querySelector('svg');
    return {section: where(f), svg: !!svg, size: svg ? size(svg) : [0, 0],
            marks: svg ? svg.querySelectorAll(arguments[0]).length : 0,
            caption: text(f.querySelector('figcaption'))};
  }),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({
    section: where(t), thead: !!t.tHead, tbody: t.tBodies.length,
    rows: Array.from(t.tBodies).reduce((n, b) => n + b.rows.length, 0),
    shown: shown(t)})),
  images: Array.from(document.images).map(i => ({
    section: where(i), src: (i.getAttribute('src') || '').slice(0, 60),
    complete: i.complete, width: i.naturalWidth})),
  remote: Array.from(document.querySelectorAll('[src], link[href], object[data]'))
    .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('data'))
    .filter(u => /^\\s*(https?:|wss?:)?\\/\\//i.test(u)),
  resources: performance.getEntriesByType('resource').map(e => e.name),
  location: location.href,
};
"""


def page_facts(driver) -> dict[str, Any]:
    """What a person would see on the loaded page, measured in the browser."""
    facts = driver.execute_script(_FACTS_JS, MARKS)
    facts["requests"] = requested_urls(driver)
    return facts


def report_problems(
    facts: dict[str, Any], console: list[dict[str, Any]], sections: tuple[str, ...]
) -> list[str]:
    """Everything wrong with a report page; empty when it meets the report contract."""
    problems = []
    if not facts["title"]:
        problems.append("the page has no title")
    problems += [f"console {e['level']}: {e['message']}" for e in console if e["level"] == "SEVERE"]
    found = {s["id"]: s for s in facts["sections"]}
    for name in sections:
        s = found.get(name)
        if s is None:
            problems.append(f"section #{name} is missing")
        elif not s["shown"] or min(s["size"]) <= 0:
            problems.append(f"section #{name} is not visible (size {s['size']})")
        elif s["text"] == 0:
            problems.append(f"section #{name} has no text")
    if not facts["charts"]:
        problems.append("no figure.chart on the page")
    for i, c in enumerate(facts["charts"]):
        label = f"chart {i} in #{c['section']}"
        if not c["svg"]:
            problems.append(f"{label} has no inline <svg>")
        elif min(c["size"]) <= 0:
            problems.append(f"{label} renders at {c['size'][0]}x{c['size'][1]} px")
        elif c["marks"] == 0:
            problems.append(f"{label} draws nothing (no path/rect/text)")
        if not c["caption"]:
            problems.append(f"{label} has no figcaption text")
    for i, t in enumerate(facts["tables"]):
        label = f"table {i} in #{t['section']}"
        if not t["thead"]:
            problems.append(f"{label} has no <thead>")
        if t["tbody"] == 0 or t["rows"] == 0:
            problems.append(f"{label} has no body rows")
        if not t["shown"]:
            problems.append(f"{label} is not visible")
    problems += [
        f"image {img['src']!r} in #{img['section']} did not load"
        for img in facts["images"]
        if not img["complete"] or img["width"] == 0
    ]
    problems += [f"remote reference in the markup: {url}" for url in facts["remote"]]
    for url in [*facts["resources"], *facts["requests"]]:
        if not url.startswith(LOCAL_SCHEMES):
            problems.append(f"network request attempted: {url}")
    return problems


def full_page_screenshot(driver, path: Path, height: int) -> Path:
    """Grow the window to the page's height, capture it, and restore the window."""
    want = min(max(height, WINDOW[1]), MAX_SCREENSHOT_HEIGHT)
    driver.set_window_size(WINDOW[0], want)
    try:
        # headless Chromium still reserves room for its (invisible) toolbar: add it back
        toolbar = want - driver.execute_script("return window.innerHeight")
        if toolbar > 0:
            driver.set_window_size(WINDOW[0], want + toolbar)
        if not driver.save_screenshot(str(path)):
            raise RuntimeError(f"Chromium could not write a screenshot to {path}")
    finally:
        driver.set_window_size(*WINDOW)
    return path


def keep_screenshot(path: Path) -> Path | None:
    """Copy a screenshot to ``$HEADSTART_SCREENSHOT_DIR`` when that is set."""
    target = os.environ.get("HEADSTART_SCREENSHOT_DIR")
    if not target:
        return None
    Path(target).mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(path, Path(target) / path.name))
