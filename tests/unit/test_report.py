"""``report.html`` and ``MODEL_CARD.md``: what a fit and a comparison write, read back the
way a person would (sections, numbers, mistakes, pictures) and checked against the JSON."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import headstart
from headstart import FitOptions
from headstart._options import NO_EFFECT
from headstart._reproduce import reproduce_command
from headstart.data import Augment
from headstart.evaluate import _charts
from headstart.evaluate._card import render_model_card, source_licence, write_model_card
from headstart.evaluate._report import (
    render_compare_report,
    render_fit_report,
    write_compare_report,
    write_fit_report,
)
from headstart.evaluate._stats import mean_ci, wilson_interval

FAST = {"epochs": 2, "head_epochs": 10}
FIT_SECTIONS = ["summary", "data", "model", "curves", "confusion", "per-class", "mistakes"]
FIT_PAGE = [*FIT_SECTIONS, "reproduce"]
COMPARE_SECTIONS = ["summary", "compare", "efficiency", "curves", "data", "model", "confusion"]
COMPARE_SECTIONS += ["per-class", "mistakes", "reproduce"]
VOID = {"img", "meta", "br", "hr", "input", "link"}

# ------------------------------------------------------------------------------ parsing


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children, self.text = tag, attrs, [], []

    def all(self, tag: str | None = None, **attrs: str) -> Iterator[Node]:
        """Descendants with this tag whose attributes contain these values (class: a word)."""
        for c in self.children:
            if (tag is None or c.tag == tag) and all(
                v in (c.attrs.get(k.rstrip("_")) or "").split() for k, v in attrs.items()
            ):
                yield c
            yield from c.all(tag, **attrs)

    def content(self) -> str:
        return " ".join(" ".join([*self.text, *(c.content() for c in self.children)]).split())


class Tree(HTMLParser):
    """A minimal DOM: enough to find sections, tables, figures and attributes."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def sections(doc: Tree) -> dict[str, Node]:
    return {s.attrs["id"]: s for s in doc.root.all("section")}


def table_rows(table: Node) -> list[list[str]]:
    body = next(table.all("tbody"))
    return [[td.content() for td in tr.all("td")] for tr in body.all("tr")]


def check_page(text: str, expected: list[str]) -> Tree:
    """The report contract every page meets; returns the parsed page."""
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<script|<link|@import|url\((?!#)", text, re.I)
    doc = Tree(text)
    assert next(doc.root.all("title")).content()
    found = sections(doc)
    assert list(found) == expected
    for name, s in found.items():
        assert next(s.all("h2")).content() and len(s.content()) > 20, name
    for fig in doc.root.all("figure", class_="chart"):
        assert next(fig.all("svg"), None) is not None
        assert next(fig.all("path"), None) is not None  # it draws something
        assert next(fig.all("figcaption")).content()
    for t in doc.root.all("table"):
        assert next(t.all("thead"), None) is not None and table_rows(t), t.content()
    for node in doc.root.all():
        for key in ("src", "href"):
            value = node.attrs.get(key) or ""
            assert not value.startswith(("//", "http:", "https:", "file:")), value
        if node.tag == "img":
            assert node.attrs["src"].startswith("data:image/")
        if node.tag in ("a", "use"):
            assert (node.attrs.get("href") or "#").startswith("#")
    ids = [n.attrs["id"] for n in doc.root.all() if n.attrs.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids (charts must not collide)"
    return doc


def read_predictions(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def shown_mistakes(section: Node) -> list[tuple[str, str, float]]:
    return [
        (m.attrs["data-label"], m.attrs["data-predicted"], float(m.attrs["data-probability"]))
        for m in section.all("div", class_="mistake")
    ]


# ---------------------------------------------------------------------------------- fit


@pytest.fixture
def image_fit(tiny_images: Path, tmp_path: Path, store) -> Path:
    """A from-scratch fit (epoch curves, and a weak model, so there are mistakes)."""
    out = tmp_path / "fit"
    headstart.fit(
        tiny_images, out=out, model="test_cnn.tiny", strategy="scratch", store=store, **FAST
    )
    return out


def test_fit_report_shows_what_metrics_json_says(image_fit: Path) -> None:
    metrics = json.loads((image_fit / "metrics.json").read_text())
    preds = read_predictions(image_fit / "predictions.csv")
    doc = check_page((image_fit / "report.html").read_text(encoding="utf-8"), FIT_PAGE)
    found = sections(doc)
    test = metrics["splits"]["test"]
    lo, hi = wilson_interval(round(test["accuracy"] * test["n"]), test["n"])
    summary = found["summary"].content()
    assert f"{100 * test['accuracy']:.1f}%" in summary
    assert f"[{100 * lo:.1f}%, {100 * hi:.1f}%]" in summary
    assert metrics["model"] in summary and metrics["strategy"] in summary

    counts = table_rows(next(found["data"].all("table")))
    for row, cls in zip(counts, metrics["classes"], strict=False):
        assert row[:4] == [cls, *(str(metrics["counts"][s][cls]) for s in ("train", "val", "test"))]
    assert "none" in found["data"].content()  # no skipped inputs

    confusion = table_rows(next(found["confusion"].all("table")))
    assert [r[0] for r in confusion] == metrics["classes"]
    assert [[int(v) for v in r[1:]] for r in confusion] == test["confusion"]
    assert len(list(found["confusion"].all("figure", class_="chart"))) == 1

    per_class = table_rows(next(found["per-class"].all("table")))
    for row, (cls, r) in zip(per_class, test["per_class"].items(), strict=True):
        assert row == [
            cls,
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            str(r["support"]),
        ]

    wrong = sorted(
        (p for p in preds if p["correct"] == "0"), key=lambda p: -float(p["probability"])
    )
    expected = [(p["label"], p["predicted"], float(p["probability"])) for p in wrong[:12]]
    assert shown_mistakes(found["mistakes"]) == expected
    assert all(label != predicted for label, predicted, _ in expected)
    thumbs = list(found["mistakes"].all("img"))
    assert len(thumbs) == len(expected)

    assert len(list(found["curves"].all("figure", class_="chart"))) == 1  # epochs, no C sweep
    assert metrics["command"].startswith("headstart fit ")
    assert " ".join(metrics["command"].split()) in found["reproduce"].content()
    assert metrics["environment"]["torch"] in found["reproduce"].content()
    assert "finetune" not in found["model"].content() or metrics["strategy"] == "finetune"


def test_model_card_matches_metrics(image_fit: Path) -> None:
    metrics = json.loads((image_fit / "metrics.json").read_text())
    card = (image_fit / "MODEL_CARD.md").read_text(encoding="utf-8")
    test = metrics["splits"]["test"]
    correct = round(test["accuracy"] * test["n"])
    lo, hi = wilson_interval(correct, test["n"])
    assert f"**{100 * test['accuracy']:.1f}%** ({correct} of {test['n']} correct" in card
    assert f"{100 * lo:.1f}% to {100 * hi:.1f}%" in card
    assert f"macro-F1: {test['macro_f1']:.3f}" in card
    assert "licence of the source model: Apache-2.0" in card  # test_cnn.tiny's registry entry
    assert "`block2`" in card and "`scratch`" in card
    for cls in metrics["classes"]:
        row = f"| {cls} | {metrics['counts']['train'][cls]} | {metrics['counts']['val'][cls]} |"
        assert row in card
    for heading in ("Intended use", "Data", "Model", "Metrics", "Limitations", "How to load"):
        assert f"## {heading}" in card
    assert "headstart.load(" in card and "out of distribution" in card
    assert str(image_fit.parent / "images") not in card or "source:" in card


def test_text_report_escapes_and_shortens_texts(tiny_texts: Path, tmp_path: Path, store) -> None:
    out = tmp_path / "txt"
    headstart.fit(tiny_texts, out=out, model="test_words.tiny", store=store, **FAST)
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    check_page((out / "report.html").read_text(encoding="utf-8"), FIT_PAGE)
    assert "a list of texts" in (out / "MODEL_CARD.md").read_text()

    long = "<script>alert('x')</script> " + "word " * 80
    preds = [
        {"item": long, "label": "sport", "predicted": "food", "probability": "0.9", "correct": "0"},
        {"item": "a & b", "label": "food", "predicted": "tech", "probability": 0.6, "correct": 0},
        {"item": "fine", "label": "tech", "predicted": "tech", "probability": 0.7, "correct": 1},
    ]
    text = render_fit_report(metrics, history, preds)
    assert "<script>" not in text and "&lt;script&gt;" in text and "a &amp; b" in text
    doc = check_page(text, FIT_PAGE)
    cards = list(sections(doc)["mistakes"].all("div", class_="mistake"))
    assert [c.attrs["data-probability"] for c in cards] == ["0.9000", "0.6000"]
    shown = next(cards[0].all("div", class_="text"))
    assert shown.attrs["title"] == long and len(shown.content()) < 200
    assert not list(doc.root.all("img"))  # texts have no thumbnails
    # a logistic-regression head has no epochs: its C sweep is the chart
    assert "C (inverse regularisation strength)" in sections(doc)["curves"].content()


def _synthetic(tmp_path: Path, n_wrong: int = 20) -> tuple[dict, list[dict]]:
    """metrics.json-shaped dict and predictions over real image files (some deleted)."""
    rng = np.random.default_rng(0)
    classes = ["cat", "dog"]
    preds = []
    for i in range(n_wrong + 5):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)
        wrong = i < n_wrong
        preds.append(
            {
                "item": str(path),
                "label": "cat",
                "predicted": "dog" if wrong else "cat",
                "probability": float(rng.uniform(0.5, 1.0)),
                "correct": int(not wrong),
            }
        )
    report = {
        "n": len(preds),
        "accuracy": 5 / len(preds),
        "macro_f1": 0.3,
        "per_class": {
            c: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 5} for c in classes
        },
        "confusion": [[5, n_wrong], [0, 0]],
    }
    metrics = {
        "model": "test_cnn.tiny",
        "weights": "random",
        "strategy": "extract",
        "layer": "block2",
        "feature_dim": 32,
        "classes": classes,
        "counts": {"test": {"cat": len(preds), "dog": 0}},
        "splits": {"test": report},
        "seconds": {"total": 1.0},
        "skipped": [{"where": "x.png", "reason": "not an image"}],
        "schedule": None,
    }
    return metrics, preds


def test_mistakes_are_the_most_confident_wrong_ones(tmp_path: Path) -> None:
    metrics, preds = _synthetic(tmp_path)
    Path(preds[0]["item"]).unlink()  # a file gone since the fit: its path is shown instead
    doc = check_page(render_fit_report(metrics, [], preds), FIT_PAGE)
    shown = shown_mistakes(sections(doc)["mistakes"])
    wrong = sorted((p for p in preds if not p["correct"]), key=lambda p: -p["probability"])
    assert [s[2] for s in shown] == [round(p["probability"], 4) for p in wrong[:12]]
    assert all(label == "cat" and predicted == "dog" for label, predicted, _ in shown)
    gone = preds[0]["item"] if preds[0] in wrong[:12] else None
    if gone:
        assert f"(image not found) {gone}" in sections(doc)["mistakes"].content()
    assert "not an image" in sections(doc)["data"].content()
    assert "No training history" in sections(doc)["curves"].content()


def test_ranking_section_only_with_a_ranking(tmp_path: Path) -> None:
    metrics, preds = _synthetic(tmp_path, n_wrong=0)
    rows = [
        {
            "rank": i + 1,
            "model": m,
            "layer": "block2",
            "score": s,
            "score_se": 0.1,
            "feature_dim": 32,
            "params": 6000,
            "ms_per_input": 0.5,
            "recommended": i == 1,
        }
        for i, (m, s) in enumerate([("a.x", 1.5), ("b.y", 1.4), ("c.z", -0.2)])
    ]
    metrics["ranking"] = {
        "score": "logme",
        "rule": "one-standard-error rule",
        "n_items": 30,
        "rows": rows,
        "notes": ["a note"],
        "recommended": rows[1],
    }
    doc = check_page(render_fit_report(metrics, [], preds), [*FIT_SECTIONS, "ranking", "reproduce"])
    ranking = sections(doc)["ranking"]
    assert [r[1] for r in table_rows(next(ranking.all("table")))] == ["a.x", "b.y", "c.z"]
    picked = [
        tr for tr in next(ranking.all("tbody")).all("tr") if "pick" in (tr.attrs.get("class") or "")
    ]
    assert len(picked) == 1 and "b.y" in picked[0].content()
    assert "a note" in ranking.content()
    assert "None: all" in sections(doc)["mistakes"].content()


def test_charts_are_inline_svg_with_unique_ids() -> None:
    a = _charts.confusion_svg([[3, 1], [0, 4]], ["x", "y"])
    b = _charts.strategy_bars_svg(
        [{"label": "s", "kind": "transfer", "mean": 0.8, "lo": 0.7, "hi": 0.9}]
    )
    for svg in (a, b):
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "http" not in svg and "<?xml" not in svg and "<style" not in svg
    ids = re.findall(r'id="([^"]+)"', a + b)
    assert len(ids) == len(set(ids))
    assert ">3<" in a and ">4<" in a  # counts are text in the cells
    assert _charts.learning_curves_svg([{"stage": "head", "C": 1.0}]) is None


def test_source_licence() -> None:
    assert source_licence("test_cnn.tiny") == "Apache-2.0"
    assert source_licence("TF-IDF word 1-2 + char 2-5 n-grams, logistic regression") == "unknown"
    assert source_licence("no_such_model_anywhere") == "unknown"


# ---------------------------------------------------------------------- reproduce command


def _parse_back(command: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], FitOptions]:
    """Run the command's words through the real CLI with ``headstart.fit`` stubbed out."""
    seen: dict[str, Any] = {}

    def fake_fit(data, out, **kwargs):
        seen.update(kwargs, data=str(data), out=str(out))
        raise SystemExit(0)

    from headstart.cli import app

    monkeypatch.setattr(headstart, "fit", fake_fit)
    words = shlex.split(command, comments=True)
    assert words[:2] == ["headstart", "fit"]
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output
    data, out = seen.pop("data"), seen.pop("out")
    return [data, out], FitOptions(**seen)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "model": "test_cnn.tiny",
            "strategy": "finetune",
            "layer": "block1",
            "hidden": (64, 32),
            "dropout": 0.35,
            "unfreeze": "all",
            "lr": 3e-05,
            "epochs": 7,
            "batch_size": 8,
            "image_size": 48,
            "seed": 3,
            "augment": Augment(crop=False, flip=False, rotate=0.0),
            "strict": True,
        },
        {
            "strategy": "extract",  # head applies to extract only: the CLI refuses it elsewhere
            "text_column": "body text",
            "label_column": "y",
            "path_column": "file",
            "weights": "/w/x y.safetensors",
            "head": "mlp",
            "val": 0.2,
        },
    ],
    ids=["defaults", "image-options", "text-options"],
)
def test_reproduce_command_parses_back_to_the_same_options(
    options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = FitOptions(**options)
    command = reproduce_command("/data/my photos", opts, "/runs/o ut")
    assert "#" not in command  # everything here is settable from the CLI
    (data, out), parsed = _parse_back(command, monkeypatch)
    assert (data, out) == ("/data/my photos", "/runs/o ut")
    assert parsed == opts


def test_reproduce_command_names_what_the_cli_cannot_set(monkeypatch: pytest.MonkeyPatch) -> None:
    opts = FitOptions(
        strategy="finetune",
        head_epochs=10,
        patience=4,
        cache_dir="/tmp/c",
        epochs=2,
        augment=Augment(crop_scale=(0.5, 1.0)),
    )
    command = reproduce_command("d", opts, "o")
    assert command.endswith("# Python API only, not settable here: augment.crop_scale=(0.5, 1.0)")
    assert "cache_dir" not in command
    _, parsed = _parse_back(command, monkeypatch)
    assert (parsed.epochs, parsed.head_epochs, parsed.patience) == (2, 10, 4)
    # every option is a CLI flag, except what changes no result and what is marked API-only
    api_only = {
        name
        for cls in (FitOptions, Augment)
        for name, f in cls.__dataclass_fields__.items()
        if not f.metadata.get("cli", True)
    }
    assert api_only == {"cache_dir", "crop_scale"}
    assert set(NO_EFFECT) >= {"cache_dir"}


# ------------------------------------------------------------------------------ compare


def _shape_images(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for k, colour in enumerate([(220, 30, 30), (30, 180, 40), (40, 40, 220)]):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(10):
            img = rng.integers(150, 230, (32, 32, 3), dtype=np.uint8)
            img[8 + k * 3 : 24, 6 : 26 - k * 4] = colour
            Image.fromarray(img).save(root / f"c{k}" / f"{i}.png")
    return root


def _run(strategy: str, seed: int, shots: Any, metrics: dict, kinds: dict) -> dict:
    bump = {"all": 0.0, 2: -0.25}[shots] - 0.03 * seed
    acc = float(np.clip(metrics["splits"]["test"]["accuracy"] + bump, 0, 1))
    k = len(metrics["classes"])
    n_train = metrics["samples"]["train"] if shots == "all" else shots * k
    label = "all" if shots == "all" else f"{shots}shot"
    return {
        "strategy": strategy,
        "seed": seed,
        "shots": shots,
        "n_train": n_train,
        "accuracy": acc,
        "macro_f1": acc * 0.9,
        "seconds": 1.5 + seed,
        "reused": seed > 0,
        "dir": f"runs/{strategy}/seed{seed}-{label}",
        "kind": kinds[strategy],
    }


def _compare_json(out: Path, runs: list[dict], status: str, kinds: dict, source: Path) -> dict:
    first = json.loads((out / runs[0]["dir"] / "metrics.json").read_text())
    summary = []
    for strategy in kinds:
        for shots in (2, "all"):
            rs = [r for r in runs if r["strategy"] == strategy and r["shots"] == shots]
            summary.append(
                {
                    "strategy": strategy,
                    "kind": kinds[strategy],
                    "shots": shots,
                    "n_train": rs[0]["n_train"],
                    "runs": len(rs),
                    "accuracy": mean_ci([r["accuracy"] for r in rs]),
                    "macro_f1": mean_ci([r["macro_f1"] for r in rs]),
                    "seconds": mean_ci([r["seconds"] for r in rs]),
                }
            )
    gain = {"mean": 0.12, "lo": 0.04, "hi": 0.2, "std": 0.03, "n": 2}
    if status == "negative":
        gain = {"mean": -0.02, "lo": -0.09, "hi": 0.05, "std": 0.03, "n": 2}
    return {
        "kind": "compare",
        "headstart_version": "0.1.0",
        "source": str(source),
        "modality": "image",
        "classes": first["classes"],
        "counts": first["counts"],
        "skipped": [],
        "model": "test_cnn.tiny",
        "weights": first["weights"],
        "layer": "block2",
        "strategies": list(kinds),
        "kinds": kinds,
        "seeds": [0, 1],
        "shots": [2, "all"],
        "runs": [{k: v for k, v in r.items() if k != "kind"} for r in runs],
        "summary": summary,
        "gains": [
            {
                "strategy": "finetune",
                "shots": "all",
                "versus": "pixels",
                "gain": gain,
                "verdict": status,
                "detail": "paired over 2 seeds",
            }
        ],
        "verdict": {
            "status": status,
            "strategy": "finetune",
            "versus": "pixels",
            "gain": gain,
            "message": f"Transfer is {status} here: <b>plain</b> words.",
            "advice": ["Try another layer.", "Label more data."],
        },
        "best": {
            "strategy": "finetune",
            "seed": 0,
            "shots": "all",
            "dir": "runs/finetune/seed0-all",
        },
        "seconds": 42.0,
        "command": "headstart compare data --out cmp",
        "environment": first["environment"],
    }


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``headstart compare`` out dir built by hand: three real tiny fits (seed 0, all
    data), copied for the other seeds and shot counts, a pixels baseline in fit format."""
    root = tmp_path_factory.mktemp("compare")
    data = _shape_images(root / "images")
    out = root / "cmp"
    kinds = {
        "pixels": "baseline",
        "scratch": "scratch",
        "extract": "transfer",
        "finetune": "transfer",
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADSTART_CACHE", str(root / "cache"))
        store = headstart.FeatureStore(root / "cache")
        for strategy in ("scratch", "extract", "finetune"):
            headstart.fit(
                data,
                out=out / f"runs/{strategy}/seed0-all",
                model="test_cnn.tiny",
                strategy=strategy,
                store=store,
                **FAST,
            )
    pixels = out / "runs/pixels/seed0-all"
    shutil.copytree(out / "runs/scratch/seed0-all", pixels)
    metrics = json.loads((pixels / "metrics.json").read_text())
    metrics.update(
        model="raw pixels, logistic regression",
        strategy="pixels",
        layer=None,
        schedule=None,
        weights="none",
    )
    (pixels / "metrics.json").write_text(json.dumps(metrics))
    runs = []
    for strategy in kinds:
        base = json.loads((out / f"runs/{strategy}/seed0-all/metrics.json").read_text())
        for seed in (0, 1):
            for shots in (2, "all"):
                run = _run(strategy, seed, shots, base, kinds)
                if not (out / run["dir"]).exists():
                    shutil.copytree(out / f"runs/{strategy}/seed0-all", out / run["dir"])
                runs.append(run)
    compare = _compare_json(out, runs, "positive", kinds, data)
    (out / "compare.json").write_text(json.dumps(compare))
    return out


def test_compare_report_puts_the_verdict_first(compare_dir: Path) -> None:
    compare = json.loads((compare_dir / "compare.json").read_text())
    path = write_compare_report(compare_dir)
    assert path == compare_dir / "report.html"
    doc = check_page(path.read_text(encoding="utf-8"), COMPARE_SECTIONS)
    found = sections(doc)
    banner = next(found["summary"].all("div", class_="banner"))
    assert "positive" in banner.attrs["class"].split()
    assert "<b>plain</b>" in banner.content()  # the message is text, not markup
    assert "+12.0 pts" in banner.content()

    rows = table_rows(next(found["compare"].all("table")))
    assert [r[0] for r in rows] == compare["strategies"]
    for row in rows:
        s = next(x for x in compare["summary"] if x["strategy"] == row[0] and x["shots"] == "all")
        a = s["accuracy"]
        lo, hi = max(0.0, a["lo"]), min(1.0, a["hi"])  # an accuracy's interval stays in [0, 1]
        assert row[3] == f"{100 * a['mean']:.1f}% [{100 * lo:.1f}%, {100 * hi:.1f}%]"
        assert row[6] == str(s["runs"])
    gains = table_rows(list(found["compare"].all("table"))[1])
    assert gains[0][:4] == ["finetune", "all", "pixels", "+12.0 pts [+4.0 pts, +20.0 pts]"]
    for name in ("compare", "efficiency", "confusion"):
        assert list(found[name].all("figure", class_="chart")), name
    assert "all" in next(found["efficiency"].all("svg")).content()
    curves = list(found["curves"].all("figure", class_="chart"))
    assert len(curves) >= 3  # overlay + scratch epochs + finetune epochs (+ C sweeps)
    assert "start higher" in curves[0].content()

    best = json.loads((compare_dir / "runs/finetune/seed0-all/metrics.json").read_text())
    confusion = table_rows(next(found["confusion"].all("table")))
    assert [[int(v) for v in r[1:]] for r in confusion] == best["splits"]["test"]["confusion"]
    assert "best run: finetune, seed 0, all" in found["model"].content()
    runs = table_rows(next(found["reproduce"].all("table")))
    assert len(runs) == len(compare["runs"])
    assert "headstart compare data --out cmp" in found["reproduce"].content()


def test_compare_report_says_negative_plainly(compare_dir: Path) -> None:
    compare = json.loads((compare_dir / "compare.json").read_text())
    compare["verdict"] = {
        **compare["verdict"],
        "status": "negative",
        "message": "Transfer did not help here.",
    }
    compare["shots"] = ["all"]
    compare["summary"] = [s for s in compare["summary"] if s["shots"] == "all"]
    expected = [s for s in COMPARE_SECTIONS if s != "efficiency"]
    doc = check_page(render_compare_report(compare, compare_dir), expected)
    banner = next(sections(doc)["summary"].all("div", class_="banner"))
    assert "negative" in banner.attrs["class"].split()
    text = banner.content()
    assert "negative" in text and "Transfer did not help here." in text
    assert [li.content() for li in banner.all("li")] == compare["verdict"]["advice"]


def test_write_reports_need_their_inputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_compare_report(tmp_path)
    with pytest.raises(FileNotFoundError):
        write_fit_report(tmp_path)
    metrics, _ = _synthetic(tmp_path, n_wrong=1)
    metrics["model"] = "TF-IDF word 1-2 + char 2-5 n-grams, logistic regression"
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(tmp_path).read_text()
    assert "licence of the source model: unknown" in card
    assert render_model_card(metrics) == card
