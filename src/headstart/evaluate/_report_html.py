"""HTML building blocks for the reports: one self-contained page (inline CSS, no script, no
external resource), sections, cards, tables and chart figures.

Text is escaped unless it is wrapped in :class:`Html` (markup built by these helpers).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;
--good:#047857;--good-bg:#ecfdf5;--bad:#b45309;--bad-bg:#fffbeb;--bad-line:#f59e0b}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);line-height:1.5;font-size:15px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.hero{background:linear-gradient(135deg,#0f172a,#1e3a8a);color:#fff;padding:28px 0 24px}
.wrap{max-width:1080px;margin:0 auto;padding:0 24px}
.hero .kicker{text-transform:uppercase;letter-spacing:.08em;font-size:12px;opacity:.75;margin:0}
.hero h1{font-size:24px;margin:4px 0 18px;font-weight:650}
.headline{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-end}
.big{font-size:56px;font-weight:700;line-height:1;font-variant-numeric:tabular-nums}
.big small{display:block;font-size:13px;font-weight:400;opacity:.8;margin-top:6px}
.stats{display:flex;flex-wrap:wrap;gap:10px}
.stat{background:rgba(255,255,255,.1);border-radius:10px;padding:8px 14px;min-width:120px}
.stat b{display:block;font-size:18px;font-variant-numeric:tabular-nums}
.stat span{font-size:12px;opacity:.8}
nav.toc{position:sticky;top:0;z-index:1;background:rgba(255,255,255,.92);
border-bottom:1px solid var(--line);backdrop-filter:blur(6px)}
nav.toc .wrap{display:flex;flex-wrap:wrap;gap:4px 18px;padding-top:10px;padding-bottom:10px}
nav.toc a{color:var(--muted);text-decoration:none;font-size:13px}
nav.toc a:hover{color:var(--accent)}
main{padding:8px 0 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:14px;
padding:20px 24px;margin:20px 0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
section h2{font-size:18px;margin:0 0 4px}
section h2 .about{font-weight:400;color:var(--muted);font-size:15px}
section h3{font-size:14px;margin:18px 0 6px;color:var(--muted);text-transform:uppercase;
letter-spacing:.05em}
.lead{color:var(--muted);margin:0 0 14px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:16px;font-weight:600;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-size:13px;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line);
white-space:nowrap}
tbody tr:nth-child(even){background:#fafafa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}
figure.chart{margin:12px 0;text-align:center}
figure.chart svg{width:100%;height:auto}
figure.chart svg *{stroke-linejoin:round;stroke-linecap:butt}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
.banner{border-radius:12px;padding:16px 18px;border:1px solid;margin-bottom:14px}
.banner.positive{background:var(--good-bg);border-color:#6ee7b7;color:#064e3b}
.banner.negative{background:var(--bad-bg);border-color:var(--bad-line);color:#78350f}
.banner .tag{display:inline-block;font-weight:700;text-transform:uppercase;font-size:12px;
letter-spacing:.06em;border-radius:999px;padding:2px 10px;margin-right:8px;color:#fff}
.banner.positive .tag{background:var(--good)}
.banner.negative .tag{background:var(--bad)}
.banner p{margin:6px 0 0;font-size:16px}
.banner ul{margin:8px 0 0 0;padding-left:20px}
.mistakes{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.mistake{border:1px solid var(--line);border-radius:10px;padding:10px;display:flex;gap:10px}
.mistake img{width:64px;height:64px;object-fit:cover;border-radius:6px;flex:none;
background:#eee}
.mistake .text{font-size:13px;overflow-wrap:anywhere}
.mistake .meta{font-size:12px;color:var(--muted)}
.mistake .path{font-size:11px;color:var(--muted);overflow-wrap:anywhere}
.bad{color:#b91c1c;font-weight:600}
.good{color:var(--good);font-weight:600}
.examples{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.examples img{width:48px;height:48px;object-fit:cover;border-radius:5px}
.chip{display:inline-block;background:#eef2ff;color:#3730a3;border-radius:999px;
padding:1px 9px;font-size:12px;margin:0 4px 4px 0}
.pick{background:#eff6ff}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#0f172a;color:#e2e8f0;border-radius:10px;padding:12px 14px;overflow-x:auto;
white-space:pre-wrap;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 30px}
@media (max-width:640px){.big{font-size:42px}section{padding:16px}}
@media print{nav.toc{display:none}section{break-inside:avoid;box-shadow:none}
.hero{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


class Html(str):
    """Markup that is already safe: inserted as is, never escaped again."""


def esc(value: Any) -> str:
    """``value`` as HTML text (escaped), unless it already is :class:`Html`."""
    if isinstance(value, Html):
        return value
    return html.escape("" if value is None else str(value), quote=True)


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(esc(p) for p in parts))


def tag(name: str, body: Any = "", **attrs: Any) -> Html:
    """``<name attrs>body</name>``; ``class_`` stands for ``class``; ``None`` drops one."""
    text = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None
    )
    return Html(f"<{name}{text}>{esc(body)}</{name}>")


def pct(value: Any, digits: int = 1) -> str:
    """``0.8734`` -> ``"87.3%"``; missing or non-finite -> ``"n/a"``."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{100 * float(value):.{digits}f}%"


def interval(lo: Any, hi: Any, digits: int = 1) -> str:
    if lo is None or hi is None or not math.isfinite(float(lo)) or not math.isfinite(float(hi)):
        return "n/a"
    return f"[{pct(lo, digits)}, {pct(hi, digits)}]"


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{digits}f}" if math.isfinite(float(value)) else "n/a"


def secs(value: Any) -> str:
    """Seconds, readably: ``0.04 s``, ``12.3 s``, ``4 min 05 s``."""
    if value is None:
        return "n/a"
    v = float(value)
    if v < 60:
        return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
    return f"{int(v // 60)} min {int(v % 60):02d} s"


def table(
    headers: Sequence[Any], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()
) -> Html:
    """A ``<table>`` with a ``<thead>`` and a ``<tbody>``; ``numeric`` column indexes are
    right-aligned. Cells are escaped unless :class:`Html`; a row that is an :class:`Html`
    ``<tr>`` is inserted whole."""
    cls = [("num" if i in numeric else None) for i in range(len(headers))]
    head = join(tag("th", h, class_=c) for h, c in zip(headers, cls, strict=True))
    body = join(
        r
        if isinstance(r, Html)
        else tag("tr", join(tag("td", v, class_=c) for v, c in zip(r, cls, strict=True)))
        for r in rows
    )
    return tag(
        "div",
        tag("table", join([tag("thead", tag("tr", head)), tag("tbody", body)])),
        class_="scroll",
    )


def figure(svg: str, caption: Any) -> Html:
    """A chart: ``<figure class="chart">`` around inline SVG and its caption."""
    return tag("figure", join([Html(svg), tag("figcaption", caption)]), class_="chart")


def cards(items: Sequence[tuple[Any, Any]]) -> Html:
    """Label / value tiles in a responsive grid."""
    return tag(
        "div",
        join(
            tag(
                "div",
                join([tag("div", k, class_="label"), tag("div", v, class_="value")]),
                class_="card",
            )
            for k, v in items
        ),
        class_="grid",
    )


def section(id_: str, title: str, body: Any, lead: Any = None, about: str = "") -> Html:
    """A ``<section id=...>`` card; ``about`` is a muted note after the title."""
    heading = join([title, tag("span", f" · {about}", class_="about")]) if about else title
    parts = [tag("h2", heading)]
    if lead:
        parts.append(tag("p", lead, class_="lead"))
    parts.append(body)
    return tag("section", join(parts), id=id_)


def stat(value: Any, label: Any) -> Html:
    return tag("div", join([tag("b", value), tag("span", label)]), class_="stat")


def hero(kicker: str, title: str, big: Any, big_note: Any, stats: Sequence[Html]) -> Html:
    """The page header: a kicker, a title, the headline number and a row of stats."""
    headline = join(
        [
            tag("div", join([esc(big), tag("small", big_note)]), class_="big"),
            tag("div", join(stats), class_="stats"),
        ]
    )
    body = join(
        [
            tag("p", kicker, class_="kicker"),
            tag("h1", title),
            tag("div", headline, class_="headline"),
        ]
    )
    return tag("header", tag("div", body, class_="wrap"), class_="hero")


def unique_chart_ids(text: str) -> str:
    """Number each inline chart's id prefix (``c<hash>-``, see ``_charts``) by its place on
    the page, so two identical charts on one page do not share ids."""
    parts = text.split("<svg ")
    for i in range(1, len(parts)):
        found = re.search(r'id="(c[0-9a-f]{8})-', parts[i])
        if found:
            parts[i] = parts[i].replace(f"{found.group(1)}-", f"{found.group(1)}{i}-")
    return "<svg ".join(parts)


def page(title: str, header: Html, sections: Sequence[tuple[str, str, Html]], footer: str) -> str:
    """The whole document: ``sections`` are ``(id, menu label, section html)``."""
    toc = join(tag("a", label, href=f"#{id_}") for id_, label, _ in sections)
    return unique_chart_ids(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{header}\n{tag('nav', tag('div', toc, class_='wrap'), class_='toc')}\n"
        f'<main class="wrap">\n{"".join(s for _, _, s in sections)}\n</main>\n'
        f"<footer>{esc(footer)}</footer>\n</body>\n</html>\n"
    )


__all__ = [
    "Html",
    "cards",
    "esc",
    "figure",
    "hero",
    "interval",
    "join",
    "num",
    "page",
    "pct",
    "secs",
    "section",
    "stat",
    "table",
    "tag",
]
