"""``headstart.compare``: baselines, seeds, shots, transfer gain and the negative verdict."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import headstart
from headstart.cli import app
from headstart.compare import (
    expand_strategies,
    parse_shots,
    resplit,
    summarise,
    take_shots,
)
from headstart.data import read_data
from headstart.evaluate import mean_ci, paired_ci, wilson_interval
from headstart.methods import list_methods


def fit_baseline(name: str, data, **options):
    return headstart.fit(data, strategy=name, **options)


FAST = {"epochs": 2, "head_epochs": 10}


# -- intervals -------------------------------------------------------------------------


def test_mean_ci_matches_hand_worked_t_interval():
    ci = mean_ci([0.80, 0.82, 0.81])
    # mean 0.81, s = 0.01, t(0.975, 2) = 4.3027, half = 4.3027 * 0.01 / sqrt(3) = 0.024841
    assert ci["mean"] == pytest.approx(0.81)
    assert ci["hi"] - ci["mean"] == pytest.approx(0.024841, abs=1e-5)
    assert ci["mean"] - ci["lo"] == pytest.approx(0.024841, abs=1e-5)
    one = mean_ci([0.7])
    assert one["lo"] == one["hi"] == 0.7 and one["n"] == 1


def test_paired_ci_and_wilson_interval():
    d = paired_ci(np.array([1, 1, 0, 1]), np.array([0, 1, 0, 0]))
    # differences 1, 0, 0, 1: mean 0.5, sd 0.57735, half = 1.95996 * 0.57735 / 2
    assert d["mean"] == pytest.approx(0.5)
    assert d["hi"] - 0.5 == pytest.approx(1.959964 * 0.5773503 / 2, abs=1e-5)
    lo, hi = wilson_interval(80, 100)
    assert (lo, hi) == pytest.approx((0.7112, 0.8666), abs=1e-4)  # textbook Wilson values
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


# -- strategies, shots and splits ----------------------------------------------------------


def test_expand_strategies_and_shots():
    assert expand_strategies("baseline,extract", "image") == ["pixels", "small_cnn", "extract"]
    assert expand_strategies(["baseline", "scratch"], "text") == ["tfidf", "scratch"]
    with pytest.raises(ValueError, match="unknown strategy 'tfidf' for image"):
        expand_strategies("tfidf", "image")
    assert parse_shots("all,5,1") == [1, 5, "all"]
    assert parse_shots([20, 5]) == [5, 20]
    assert parse_shots(None) == ["all"]
    with pytest.raises(ValueError, match="positive integers"):
        parse_shots("0,all")


def test_resplit_keeps_test_fixed_and_redraws_train_val(tiny_images: Path):
    data = read_data(tiny_images)
    a, b = resplit(data, 1, 0.15, 0.15), resplit(data, 2, 0.15, 0.15)
    test = data.split == "test"
    assert (a.split[test] == "test").all() and (b.split[test] == "test").all()
    assert set(a.split[~test]) == {"train", "val"}
    assert (a.split != b.split).any()  # another seed, another validation split
    assert (resplit(data, 1, 0.15, 0.15).split == a.split).all()  # reproducible
    given = read_data(tiny_images)
    given.split_given = given.val_given = True
    assert resplit(given, 5, 0.15, 0.15) is given


def test_take_shots_keeps_k_per_class_and_leaves_val_test_alone(tiny_images: Path):
    data = read_data(tiny_images)
    two = take_shots(data, 2, seed=0)
    for c in range(len(data.classes)):
        assert ((two.split == "train") & (two.labels == c)).sum() == 2
    for s in ("val", "test"):
        assert ((two.split == s) == (data.split == s)).all()
    assert (two.split == "unused").sum() == (data.split == "train").sum() - 6
    assert take_shots(data, "all", 0) is data
    assert (take_shots(data, 2, 1).split != two.split).any()
    many = take_shots(data, 1000, 0)  # more shots than examples: all of them
    assert ((many.split == "train") == (data.split == "train")).all()


# -- baselines ---------------------------------------------------------------------------


def test_baselines_learn_their_tiny_tasks(tiny_images: Path, tiny_texts: Path):
    images, texts = read_data(tiny_images), read_data(tiny_texts)
    assert fit_baseline("pixels", images).metrics["splits"]["test"]["accuracy"] == 1.0
    tfidf = fit_baseline("tfidf", texts)
    assert tfidf.metrics["splits"]["test"]["accuracy"] == 1.0
    assert tfidf.test_logits.shape == (len(texts.indices("test")), 3)
    assert [row["C"] for row in tfidf.history] == [0.3, 1.0, 3.0, 10.0, 30.0]
    cnn = fit_baseline("small_cnn", images, cnn_epochs=3)
    assert [r["epoch"] for r in cnn.history] == [0, 1, 2, 3]
    assert cnn.metrics["parameters"]["total"] > 100_000
    baselines = {m.name: m.modalities for m in list_methods(kind="baseline")}
    assert baselines == {
        "tfidf": ("text",),
        "pixels": ("image",),
        "small_cnn": ("image",),
        "mfcc": ("audio",),
    }
    with pytest.raises(ValueError, match="does not apply to text"):
        fit_baseline("pixels", texts)


def test_tfidf_binary_logits_pick_the_predicted_class(tmp_path: Path):
    path = tmp_path / "two.csv"
    rng = random.Random(1)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(20):
            w.writerow([f"great lovely {rng.choice(['fun', 'warm'])} {i}", "pos"])
            w.writerow([f"awful dull {rng.choice(['cold', 'flat'])} {i}", "neg"])
    data = read_data(path)
    run = fit_baseline("tfidf", data)
    y = data.labels[data.indices("test")]
    assert (run.test_logits.argmax(1) == y).all()


# -- the summary is a pure function of the run records ------------------------------------


def _records(acc: dict[str, list[float]], n_test: int = 100) -> list[dict]:
    rows = []
    for strategy, values in acc.items():
        for seed, a in enumerate(values):
            correct = [1] * round(a * n_test) + [0] * (n_test - round(a * n_test))
            rows.append(
                {
                    "strategy": strategy,
                    "seed": seed,
                    "shots": "all",
                    "n_train": 50,
                    "accuracy": a,
                    "macro_f1": a,
                    "seconds": 1.0,
                    "correct": correct,
                    "dir": f"runs/{strategy}/seed{seed}-all",
                }
            )
    return rows


def test_clear_gain_is_positive_against_the_best_non_transfer_strategy():
    acc = {
        "pixels": [0.60, 0.61, 0.62],
        "small_cnn": [0.70, 0.71, 0.69],
        "extract": [0.85, 0.86, 0.84],
    }
    rep = summarise(_records(acc), list(acc), ["all"])
    (gain,) = rep["gains"]
    assert gain["versus"] == "small_cnn"  # the better of the two baselines
    assert gain["gain"]["mean"] == pytest.approx(0.15)
    assert gain["verdict"] == "positive" and gain["gain"]["lo"] > 0
    assert rep["verdict"]["status"] == "positive"
    best = {"strategy": "extract", "seed": 1, "shots": "all", "dir": "runs/extract/seed1-all"}
    assert rep["best"] == best  # the most accurate transfer run (0.86) feeds the report


def test_gain_within_noise_or_below_zero_is_a_negative_verdict():
    noisy = {"tfidf": [0.70, 0.74, 0.72], "extract": [0.73, 0.70, 0.74]}
    rep = summarise(_records(noisy), list(noisy), ["all"])
    assert rep["verdict"]["status"] == "negative"
    assert "not better than tfidf beyond the noise" in rep["verdict"]["message"]
    assert any("finetune" in a for a in rep["verdict"]["advice"])
    worse = {"tfidf": [0.80, 0.81, 0.82], "extract": [0.70, 0.71, 0.70], "finetune": [0.75] * 3}
    rep = summarise(_records(worse), list(worse), ["all"])
    v = rep["verdict"]
    assert v["status"] == "negative" and v["strategy"] == "finetune" and v["gain"]["hi"] < 0
    assert "worse than tfidf" in v["message"]
    assert any("headstart shift" in a for a in v["advice"])
    assert not any("Fine-tune instead" in a for a in v["advice"])  # finetune already ran


def test_one_seed_uses_the_paired_test_items():
    rep = summarise(_records({"tfidf": [0.50], "extract": [0.90]}), ["tfidf", "extract"], ["all"])
    gain = rep["gains"][0]["gain"]
    assert gain["n"] == 100 and gain["lo"] > 0.3  # 40 of 100 items flip: clearly positive
    rep = summarise(_records({"tfidf": [0.50], "extract": [0.52]}), ["tfidf", "extract"], ["all"])
    assert rep["verdict"]["status"] == "negative"


def test_the_verdict_takes_the_transfer_strategy_most_surely_better():
    # finetune has the higher mean gain but a noisy one; extract is steadily better.
    acc = {"pixels": [0.78, 0.79, 0.80], "extract": [0.79, 0.80, 0.81],
           "finetune": [0.76, 0.83, 0.815]}  # fmt: skip
    rep = summarise(_records(acc), list(acc), ["all"])
    gains = {g["strategy"]: g for g in rep["gains"]}
    assert gains["finetune"]["gain"]["mean"] > gains["extract"]["gain"]["mean"]
    assert gains["finetune"]["verdict"] == "negative"
    assert rep["verdict"]["status"] == "positive" and rep["verdict"]["strategy"] == "extract"


def test_without_a_baseline_there_is_no_verdict():
    rep = summarise(_records({"extract": [0.9, 0.8]}), ["extract"], ["all"])
    assert rep["gains"] == [] and rep["verdict"]["status"] == "not compared"


# -- end to end --------------------------------------------------------------------------


def test_compare_images_seeds_shots_and_reuse(tiny_images: Path, tmp_path: Path, store):
    out = tmp_path / "cmp"
    kw = {"model": "test_cnn.tiny", "strategies": "pixels,scratch,extract", **FAST}
    result = headstart.compare(tiny_images, out, seeds=2, shots="2,all", store=store, **kw)
    rep = json.loads((out / "compare.json").read_text())
    assert rep == json.loads(json.dumps(result.report))
    assert rep["strategies"] == ["pixels", "scratch", "extract"]
    assert rep["kinds"] == {"pixels": "baseline", "scratch": "scratch", "extract": "transfer"}
    assert rep["seeds"] == [0, 1] and rep["shots"] == [2, "all"]
    assert len(rep["runs"]) == 2 * 2 * 3 and not any(r["reused"] for r in rep["runs"])
    summary = {(r["strategy"], r["shots"]): r for r in rep["summary"]}
    assert summary[("extract", 2)]["n_train"] == 2 * 3
    assert summary[("extract", "all")]["n_train"] > 6
    for run in rep["runs"]:
        folder = out / run["dir"]
        assert {p.name for p in folder.iterdir()} >= {
            "metrics.json",
            "history.json",
            "predictions.csv",
            "run.json",
        }
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["splits"]["test"]["accuracy"] == run["accuracy"]
        assert metrics["strategy"] == run["strategy"]
    # Extraction reads the cache: the 36 images pass the backbone once, whatever the seeds
    # and shot counts (scratch trains end to end and never touches the store).
    assert store.forward_passes == 36
    assert rep["verdict"]["status"] in ("positive", "negative")
    assert {g["versus"] for g in rep["gains"]} <= {"pixels", "scratch"}

    again = headstart.compare(tiny_images, out, seeds=2, shots="2,all", store=store, **kw)
    assert all(r["reused"] for r in again.report["runs"])
    assert store.forward_passes == 36
    assert again.report["summary"] == rep["summary"]
    assert again.report["seconds"] == pytest.approx(rep["seconds"])  # reused runs keep their cost
    more = headstart.compare(tiny_images, out, seeds=3, shots="2,all", store=store, **kw)
    assert sum(not r["reused"] for r in more.report["runs"]) == 2 * 3  # only seed 2 is new


def test_shuffled_labels_trigger_the_negative_verdict(tiny_texts: Path, tmp_path: Path, store):
    """Labels that carry no signal: no strategy can beat another beyond the noise, and
    compare must not claim a transfer gain."""
    rows = list(csv.DictReader(tiny_texts.open()))
    labels = [r["label"] for r in rows]
    random.Random(3).shuffle(labels)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((r["text"], y) for r, y in zip(rows, labels, strict=True))
    result = headstart.compare(
        shuffled,
        tmp_path / "cmp",
        model="test_words.tiny",
        strategies="baseline,extract",
        seeds=3,
        store=store,
        **FAST,
    )
    assert result.negative
    text = json.dumps(result.report)
    assert '"status": "negative"' in text and "Negative transfer" in text
    assert result.verdict["advice"]


def test_cli_compare_prints_the_table_and_the_verdict(tiny_texts: Path, tmp_path: Path):
    out = tmp_path / "cmp"
    args = ["compare", str(tiny_texts), "--out", str(out), "--model", "test_words.tiny"]
    args += ["--strategies", "baseline,extract", "--seeds", "2", "--epochs", "2", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tfidf" in result.output and "extract" in result.output
    rep = json.loads((out / "compare.json").read_text())
    assert rep["verdict"]["status"] in result.output
    assert rep["command"].startswith("headstart compare ")
    assert "--seeds 2" in rep["command"]
    bad = CliRunner().invoke(app, ["compare", str(tiny_texts), "--out", str(out),
                                   "--strategies", "pixels"])  # fmt: skip
    assert bad.exit_code != 0


def test_resplit_redraws_a_carved_validation_split_but_keeps_a_given_one(tmp_path: Path):
    rows = [(f"{w} text {i}", lab) for i in range(10) for w, lab in (("good", "a"), ("bad", "b"))]
    no_val, with_val = tmp_path / "no_val.csv", tmp_path / "with_val.csv"
    for path, splits in ((no_val, ("train", "test")), (with_val, ("train", "val", "test"))):
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label", "split"])
            w.writerows((t, y, splits[(i // 2) % len(splits)]) for i, (t, y) in enumerate(rows))
    carved = read_data(no_val)
    assert carved.split_given and not carved.val_given
    a, b = resplit(carved, 1, 0.15, 0.15), resplit(carved, 2, 0.15, 0.15)
    assert ((a.split == "test") == (carved.split == "test")).all()
    assert (a.split == "val").sum() == (carved.split == "val").sum()
    assert (a.split != b.split).any()
    given = read_data(with_val)
    assert given.val_given and resplit(given, 3, 0.15, 0.15) is given


def test_mean_ci_clips_to_bounds():
    wide = mean_ci([0.1, 0.9], bounds=(0, 1))  # t(0.975, 1) = 12.7: the raw interval is huge
    assert (wide["lo"], wide["hi"]) == (0.0, 1.0) and wide["mean"] == pytest.approx(0.5)
