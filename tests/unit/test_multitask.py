"""Multi-task heads: Δm, PCGrad and GradNorm by hand, masked labels, real digits, and the
multi-task bundle through fit / fit-multi / predict / evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from headstart.multitask import (
    MultiTaskError,
    compare_multitask,
    delta_m,
    encode_tasks,
    fit_multitask,
    gradnorm_loss,
    masked_accuracy,
    masked_ce,
    pcgrad_combine,
    relative_gains,
)


def test_delta_m_by_hand():
    # task a: 0.90 vs 0.80 single -> +0.10 / 0.80 = +0.125
    # task b: 0.60 vs 0.75 single -> -0.15 / 0.75 = -0.200
    # delta_m = (0.125 - 0.200) / 2 = -0.0375: sharing hurt on average, task b lost
    assert relative_gains([0.9, 0.6], [0.8, 0.75]) == pytest.approx([0.125, -0.2])
    assert delta_m([0.9, 0.6], [0.8, 0.75]) == pytest.approx(-0.0375)
    # b a loss (lower is better): 0.60 against 0.75 is a gain of +0.2 -> (0.125 + 0.2) / 2
    assert delta_m([0.9, 0.6], [0.8, 0.75], [True, False]) == pytest.approx(0.1625)
    with pytest.raises(ValueError, match="one score per task"):
        delta_m([0.9], [0.8, 0.7])
    assert masked_accuracy([1, 0, 2, 2], [1, -1, 2, 0]) == pytest.approx(2 / 3)


def test_pcgrad_by_hand():
    rng = np.random.default_rng(0)
    # g1 = (1, 0), g2 = (-1, 1) conflict (dot -1):
    #   g1 - (-1 / 2) g2 = (0.5, 0.5);  g2 - (-1 / 1) g1 = (0, 1);  sum (0.5, 1.5)
    g = pcgrad_combine([torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])], rng)
    assert g.tolist() == pytest.approx([0.5, 1.5])
    # no conflict: the plain sum
    g = pcgrad_combine([torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])], rng)
    assert g.tolist() == pytest.approx([2.0, 1.0])


def test_gradnorm_by_hand():
    # w = (1, 1); gradient norms g = (2, 1); losses now (0.5, 0.5), at the start (1, 0.5):
    #   L/L0 = (0.5, 1), mean 0.75 -> r = (2/3, 4/3); G = w g = (2, 1), mean 1.5
    #   alpha 1: targets 1.5 r = (1, 2); L_grad = |2 - 1| + |1 - 2| = 2
    #   dL/dw = sign(G - target) g = (+2, -1): task 1 (trains faster) loses weight
    w = torch.ones(2, requires_grad=True)
    g, now, start = torch.tensor([2.0, 1.0]), torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.5])
    loss = gradnorm_loss(w, g, now, start, alpha=1.0)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert w.grad.tolist() == pytest.approx([2.0, -1.0])
    # alpha 0: every target is the mean norm 1.5 -> |2 - 1.5| + |1 - 1.5| = 1
    assert gradnorm_loss(torch.ones(2), g, now, start, alpha=0.0).item() == pytest.approx(1.0)


def test_missing_labels_contribute_nothing():
    logits = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, -1, 2, -1])
    masked_ce(logits, y).backward()
    assert logits.grad[[1, 3]].abs().sum() == 0 and logits.grad[[0, 2]].abs().sum() > 0
    none = torch.randn(2, 3, requires_grad=True)
    assert masked_ce(none, torch.tensor([-1, -1])).item() == 0.0


def test_task_columns_are_checked():
    y, classes = encode_tasks({"colour": ["red", "", "blue"], "size": ["s", "m", None]})
    assert y.tolist() == [[1, 1], [-1, 0], [0, -1]] and classes == [["blue", "red"], ["m", "s"]]
    with pytest.raises(MultiTaskError, match="task 'size': only one class \\('s'\\)"):
        encode_tasks({"colour": ["red", "blue"], "size": ["s", "s"]})
    with pytest.raises(MultiTaskError, match="--weighting: unknown 'nope'"):
        fit_multitask(np.zeros((4, 2)), np.zeros((4, 1)), [2], weighting="nope")


@pytest.fixture(scope="module")
def digits_tasks():
    """Real 8x8 digits with three tasks: the digit, its parity, and whether it is >= 5;
    half the parity labels removed (masked)."""
    x, d = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    y = np.stack([d, d % 2, (d >= 5).astype(int)], axis=1)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=d)
    ytr = ytr.copy()
    ytr[::2, 1] = -1
    return xtr, ytr, xte, yte


def test_every_weighting_learns_every_task_on_digits(digits_tasks):
    xtr, ytr, xte, yte = digits_tasks
    rep = compare_multitask(
        xtr, ytr, xte, yte, [10, 2, 2], ["digit", "parity", "high"], hidden=64, epochs=15
    )
    assert rep["single_task"]["digit"] > 0.9
    for w, row in rep["multi_task"].items():
        acc = row["accuracy"]
        assert acc["digit"] > 0.85 and acc["parity"] > 0.85 and acc["high"] > 0.85, (w, acc)
        want = delta_m(list(acc.values()), list(rep["single_task"].values()))
        assert row["delta_m"] == pytest.approx(want)
        assert row["negative_transfer"] == [n for n, g in row["relative_gain"].items() if g < 0]
    fit = fit_multitask(xtr, ytr, [10, 2, 2], weighting="uncertainty", hidden=64, epochs=5)
    assert fit.model.log_vars.abs().sum() > 0  # the task weights were learnt
    assert any("train_task:task1" in r for r in fit.history)
    plain = fit_multitask(xtr, ytr, [10, 2, 2], weighting="equal", hidden=64, epochs=2)
    assert plain.model.log_vars.abs().sum() == 0
    assert plain.model.task_weights.tolist() == [1.0, 1.0, 1.0]
    gn = fit_multitask(xtr, ytr, [10, 2, 2], weighting="gradnorm", hidden=64, epochs=3)
    w = gn.model.task_weights.detach()
    assert w.sum().item() == pytest.approx(3.0, abs=1e-4)  # renormalised to T
    assert (w - 1).abs().max() > 1e-3 and any("train_gradnorm" in r for r in gn.history)


VOCAB = {
    "sport": ["goal", "match", "team", "score", "player", "league", "coach", "referee"],
    "food": ["recipe", "bake", "sauce", "flavour", "oven", "garlic", "butter", "dessert"],
    "tech": ["software", "laptop", "code", "server", "chip", "network", "robot", "battery"],
    "music": ["guitar", "melody", "chorus", "drums", "singer", "album", "violin", "tempo"],
}
GROUP = {"sport": "leisure", "music": "leisure", "food": "home", "tech": "work"}


@pytest.fixture
def table(tmp_path):
    """``text,topic,group``: 4 topics x 30 rows, the coarse group missing in every 3rd."""
    import csv
    import random

    rng = random.Random(0)
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "topic", "group"])
        for i in range(30):
            for c, words in VOCAB.items():
                w.writerow(
                    [
                        " ".join(rng.choices(words, k=10)) + f" {i}",
                        c,
                        "" if i % 3 == 0 else GROUP[c],
                    ]
                )
    return path


@pytest.fixture
def cli_error(monkeypatch, capsys):
    from headstart.cli import main

    def run(*args: str) -> str:
        monkeypatch.setattr("sys.argv", ["headstart", *args])
        with pytest.raises(SystemExit) as exc:
            main()
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and "Traceback" not in err, err
        assert len(err.splitlines()) == 1, err
        return err

    return run


def _cli(monkeypatch, capsys, *args: str) -> str:
    from headstart.cli import main

    monkeypatch.setattr("sys.argv", ["headstart", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    captured = capsys.readouterr()
    assert exc.value.code == 0, captured.err
    return captured.out


def test_fit_label_columns_writes_a_multitask_bundle(table, tmp_path, capsys, monkeypatch):
    """`headstart fit DATA --label-column topic,group`: a bundle of kind multitask that
    `predict --json` and `evaluate` read, metrics.json and report.html per task."""
    import json

    import headstart
    from headstart.multitask import load_multitask

    out = tmp_path / "mt"
    opts = ["--model", "test_words.tiny", "--epochs", "30", "--hidden", "32", "--test", "0.2"]
    _cli(
        monkeypatch,
        capsys,
        "fit",
        str(table),
        "--label-column",
        "topic,group",
        "--out",
        str(out),
        *opts,
    )
    config = json.loads((out / "headstart.json").read_text())
    assert config["kind"] == "multitask" and config["head"]["hidden"] == 32
    assert config["tasks"] == [
        {"name": "topic", "classes": ["food", "music", "sport", "tech"]},
        {"name": "group", "classes": ["home", "leisure", "work"]},
    ]
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["missing_labels"] == {"topic": 0, "group": 40}
    assert rep["rows"] == {"train": 96, "test": 24}
    for t in ("topic", "group"):
        pt = rep["per_task"][t]
        single, multi = pt["single_task"]["accuracy"], pt["multi_task"]["accuracy"]
        assert (single, multi) == (rep["single_task"][t], rep["multi_task"][t])
        assert pt["relative_gain"] == pytest.approx((multi - single) / single)
        assert pt["negative_transfer"] == (multi < single)
    # every test row has a topic; the group is missing in every third row (masked)
    assert rep["per_task"]["topic"]["multi_task"]["n"] == 24
    assert 0 < rep["per_task"]["group"]["multi_task"]["n"] < 24
    assert rep["delta_m"] == pytest.approx(
        delta_m(list(rep["multi_task"].values()), list(rep["single_task"].values()))
    )
    html = (out / "report.html").read_text()
    assert "Single-task vs multi-task" in html and "Task group" in html
    assert f"{rep['delta_m']:+.4f}" in html
    # round trip offline: headstart.load gives a MultiTaskPredictor; predict --json agrees
    loaded = headstart.load(out)
    assert isinstance(loaded, headstart.MultiTaskPredictor)
    probes = [" ".join(VOCAB[c]) for c in ("sport", "food")]
    got = loaded.predict(probes)
    assert [g["topic"]["label"] for g in got] == ["sport", "food"]
    np.testing.assert_allclose(
        loaded.predict_proba(probes)[1], load_multitask(out).predict_proba(probes)[1], atol=1e-6
    )
    rows = json.loads(_cli(monkeypatch, capsys, "predict", str(out), *probes, "--json"))
    assert [r["input"] for r in rows] == probes
    assert [r["tasks"] for r in rows] == got
    ev = json.loads(_cli(monkeypatch, capsys, "evaluate", str(out), str(table), "--json"))
    assert set(ev["tasks"]) == {"topic", "group"} and ev["tasks"]["group"]["n"] == 80
    assert ev["tasks"]["topic"]["n"] == 120 and ev["tasks"]["topic"]["accuracy"] > 0.5


def test_fit_multi_several_datasets_one_head_each(tiny_images, tiny_texts, tmp_path):
    """`fit-multi A B`: two image folders, one task each, labels of the other task
    missing; folders of different modalities are a one-line error."""
    import shutil

    from headstart.multitask import fit_multi

    rounded = tmp_path / "roundness"
    for cls, group in (("circle", "round"), ("square", "angular"), ("stripes", "angular")):
        (rounded / group).mkdir(parents=True, exist_ok=True)
        for f in sorted((tiny_images / cls).glob("*.png"))[:8]:
            shutil.copy(f, rounded / group / f"{cls}_{f.name}")
    r = fit_multi(
        [tiny_images, rounded], out=tmp_path / "mt", model="test_cnn.tiny", epochs=20, hidden=16
    )
    rep = r.report
    assert rep["tasks"] == ["images", "roundness"]
    assert rep["classes"] == [["circle", "square", "stripes"], ["angular", "round"]]
    assert rep["missing_labels"] == {"images": 24, "roundness": 36}
    assert rep["rows"]["train"] + rep["rows"]["test"] == 60
    got = r.predictor.predict([str(next((tiny_images / "circle").glob("*.png")))])
    assert set(got[0]) == {"images", "roundness"}
    with pytest.raises(MultiTaskError, match="of one modality"):
        fit_multi([tiny_images, tiny_texts], out=tmp_path / "bad", model="test_cnn.tiny")


def test_multitask_bundle_hand_edits_are_bundle_errors(table, tmp_path, cli_error):
    import json

    import headstart
    from headstart._errors import BundleError
    from headstart.multitask import fit_multi

    out = tmp_path / "mt"
    fit_multi(table, "topic,group", out, model="test_words.tiny", epochs=2, hidden=8)
    cfg = out / "headstart.json"
    good = json.loads(cfg.read_text())

    def edited(change) -> str:
        config = json.loads(json.dumps(good))
        change(config)
        cfg.write_text(json.dumps(config))
        with pytest.raises(BundleError) as exc:
            headstart.load(out)
        return str(exc.value)

    err = edited(lambda c: c["tasks"][1]["classes"].pop())
    assert str(cfg) in err and "'tasks'" in err and "[2, 8]" in err
    err = edited(lambda c: c["tasks"][0].pop("name"))
    assert "key 'tasks[0].name'" in err
    err = edited(lambda c: c["head"].update(hidden=9))
    assert "key 'head'" in err
    err = edited(lambda c: c.pop("tasks"))
    assert "key 'tasks': missing" in err
    cfg.write_text(json.dumps(good))
    with pytest.raises(BundleError, match="a multi-task bundle"):
        headstart.load_bundle(out)  # continue, export, add-class take single-task bundles
    assert "a multi-task bundle" in cli_error("export", str(out))
    err = cli_error("predict", str(out), "some text", "--runtime", "onnx")
    assert "a multi-task bundle" in err


def test_multitask_report_by_hand():
    from headstart.multitask._report import render_multitask_report, verdict

    def report(acc: float, n: int) -> dict:
        return {"n": n, "accuracy": acc, "macro_f1": acc, "per_class": {}, "confusion": []}

    # a: 0.80 alone, 0.90 shared -> +10.0 pts, gain +0.125; b: 0.75 -> 0.60, -15.0 pts, -0.2
    metrics = {
        "tasks": ["a", "b"],
        "per_task": {
            "a": {
                "classes": ["x", "y"],
                "train_labels": 10,
                "single_task": report(0.8, 0),
                "multi_task": report(0.9, 0),
                "relative_gain": 0.125,
                "negative_transfer": False,
            },
            "b": {
                "classes": ["x", "y"],
                "train_labels": 5,
                "single_task": report(0.75, 0),
                "multi_task": report(0.6, 0),
                "relative_gain": -0.2,
                "negative_transfer": True,
            },
        },
        "negative_transfer": ["b"],
        "delta_m": -0.0375,
        "weighting": "equal",
        "model": "m",
        "layer": "l",
        "rows": {"train": 10, "test": 4},
        "data": ["d.csv"],
        "seed": 0,
    }
    status, sentence = verdict(metrics)
    assert status == "negative" and "b scored lower" in sentence and "-0.0375" in sentence
    html = render_multitask_report(metrics)
    for text in ("+10.0 pts", "-15.0 pts", "+0.1250", "-0.2000", "negative transfer", "-0.0375"):
        assert text in html, text


def test_fit_multi_bad_input_is_one_line(table, tmp_path, cli_error):
    one = tmp_path / "one.csv"
    one.write_text("text,a,b\nx y,p,q\nz w,r,q\n")
    err = cli_error("fit", str(one), "--label-column", "a,b", "--out", str(tmp_path / "o"))
    assert "task 'b': only one class ('q')" in err and "one.csv" in err
    err = cli_error("fit-multi", str(one), "--label-column", "a,b", "--out", str(tmp_path / "o"))
    assert "task 'b': only one class ('q')" in err
    err = cli_error(
        "fit-multi", str(table), "--label-column", "topic,nope", "--out", str(tmp_path / "o")
    )
    assert "no column 'nope'" in err
    err = cli_error(
        "fit-multi", str(table), "--label-column", "topic", "--out", str(tmp_path / "o")
    )
    assert "two or more label columns" in err
    err = cli_error(
        "fit",
        str(table),
        "--label-column",
        "topic,group",
        "--strategy",
        "finetune",
        "--out",
        str(tmp_path / "o"),
    )
    assert "--strategy extract only" in err
    err = cli_error(
        "fit",
        str(table),
        "--weighting",
        "pcgrad",
        "--label-column",
        "topic",
        "--out",
        str(tmp_path / "o"),
    )
    assert "--weighting applies to a multi-task fit" in err


def test_every_weighting_is_listed_by_headstart_methods():
    import json

    from typer.testing import CliRunner

    from headstart.cli._app import app
    from headstart.multitask import WEIGHTINGS

    shown = json.loads(CliRunner().invoke(app, ["methods", "--json"]).stdout)
    rows = [r for r in shown if r["kind"] == "multitask"]
    assert [r["name"] for r in rows] == list(WEIGHTINGS)
    assert all("gradnorm_alpha" in r["options"] and "hidden" in r["options"] for r in rows)
