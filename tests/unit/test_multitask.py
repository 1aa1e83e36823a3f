"""Multi-task heads: Δm and PCGrad by hand, masked labels, and real digits."""

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
    with pytest.raises(MultiTaskError, match="--weighting: unknown 'gradnorm'"):
        fit_multitask(np.zeros((4, 2)), np.zeros((4, 1)), [2], weighting="gradnorm")


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


def test_fit_multi_writes_a_model_that_predicts_every_task(table, tmp_path, capsys, monkeypatch):
    import json

    from headstart.cli import main
    from headstart.multitask import fit_multi, load_multitask

    out = tmp_path / "mt"
    r = fit_multi(table, ["topic", "group"], out, model="test_words.tiny", epochs=30, hidden=32)
    rep = r.report
    assert rep["classes"] == [["food", "music", "sport", "tech"], ["home", "leisure", "work"]]
    assert rep["missing_labels"] == {"topic": 0, "group": 40}
    assert rep["rows"] == {"train": 96, "test": 24}
    assert rep["delta_m"] == pytest.approx(
        delta_m(list(rep["multi_task"].values()), list(rep["single_task"].values()))
    )
    loaded = load_multitask(out)
    probes = [" ".join(VOCAB[c]) for c in ("sport", "food")]
    got = loaded.predict(probes)
    want = r.predictor.predict_proba(probes)
    np.testing.assert_allclose(loaded.predict_proba(probes)[0], want[0], atol=1e-6)
    assert set(got[0]) == {"topic", "group"} and 0 < got[0]["topic"]["probability"] <= 1
    monkeypatch.setattr("sys.argv", ["headstart", "predict-multi", str(out), *probes, "--json"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["tasks"]["topic"]["label"] for row in rows] == [g["topic"]["label"] for g in got]


def test_fit_multi_bad_input_is_one_line(table, tmp_path, cli_error):
    one = tmp_path / "one.csv"
    one.write_text("text,a,b\nx y,p,q\nz w,r,q\n")
    err = cli_error("fit-multi", str(one), "--label-column", "a,b", "--out", str(tmp_path / "o"))
    assert "task 'b': only one class ('q')" in err and "one.csv" in err
    err = cli_error(
        "fit-multi", str(table), "--label-column", "topic,nope", "--out", str(tmp_path / "o")
    )
    assert "no column 'nope'" in err
    err = cli_error(
        "fit-multi", str(table), "--label-column", "topic", "--out", str(tmp_path / "o")
    )
    assert "two or more label columns" in err
