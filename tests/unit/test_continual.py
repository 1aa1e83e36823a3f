"""Continual learning: the metrics on a hand-worked matrix, a class-incremental sequence
on real digits, the bad inputs, and the bundle that carries its memory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from headstart.continual import (
    ContinualError,
    ContinualState,
    StepData,
    average_accuracy,
    backward_transfer,
    continual_metrics,
    forgetting,
    grow_head,
    learn_step,
    list_continual_methods,
    matrix_array,
    run_sequence,
    start_state,
    update_memory,
)

NAN = float("nan")

# R[i, j]: accuracy on task j after step i. Task 0 improves at step 1 (0.90 -> 0.95), then
# drops to 0.50; task 1 drops from 0.80 to 0.70.
#   ACC (after step 2)   = (0.50 + 0.70 + 0.90) / 3                       = 0.70
#   ACC after step 1     = (0.95 + 0.80) / 2                              = 0.875
#   BWT                  = ((0.50 - 0.90) + (0.70 - 0.80)) / 2            = -0.25
#   forgetting           = ((max(0.90, 0.95) - 0.50) + (0.80 - 0.70)) / 2 = 0.275
# Forgetting measures from each task's best (0.95), BWT from when it was learned (0.90):
# here they differ, which is what the test checks.
R = [[0.90, NAN, NAN], [0.95, 0.80, NAN], [0.50, 0.70, 0.90]]


def test_metrics_on_a_hand_worked_matrix():
    assert average_accuracy(R) == pytest.approx(0.70)
    assert average_accuracy(R, step=1) == pytest.approx(0.875)
    assert average_accuracy(R, step=0) == pytest.approx(0.90)
    assert backward_transfer(R) == pytest.approx(-0.25)
    assert forgetting(R) == pytest.approx(0.275)
    m = continual_metrics(R)
    assert m["acc_per_step"] == pytest.approx([0.90, 0.875, 0.70])
    # A later step that helps: task 0 from 0.5 to 0.7, BWT +0.2, forgetting -0.2 (no drop).
    assert backward_transfer([[0.5, NAN], [0.7, 0.9]]) == pytest.approx(0.2)
    assert forgetting([[0.5, NAN], [0.7, 0.9]]) == pytest.approx(-0.2)
    # One step: no old task, so no transfer and no forgetting.
    assert math.isnan(backward_transfer([[0.8]])) and math.isnan(forgetting([[0.8]]))
    with pytest.raises(ValueError, match="square"):
        average_accuracy([[0.5, 0.5]])
    with pytest.raises(ValueError, match="missing entry"):
        forgetting([[0.5, NAN], [NAN, 0.9]])


def test_memory_is_class_balanced_and_bounded():
    # Class 0 has 2 rows, classes 1 and 2 ten each; 10 places: 2 + 4 + 4.
    y = np.array([0] * 2 + [1] * 10 + [2] * 10)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    mx, my = update_memory(x[:0], y[:0], x, y, 10, seed=0)
    assert np.bincount(my).tolist() == [2, 4, 4]
    assert set(mx[:, 0].astype(int)) <= set(range(len(y)))
    assert (y[mx[:, 0].astype(int)] == my).all()  # rows stay with their labels
    # A new step with a fourth class: 10 // 4 = 2 each, the 2 spare places go in turn to
    # the classes with rows left (1 and 2; class 0 has no more): 2 + 3 + 3 + 2.
    x2, y2 = x + 100, np.full(len(y), 3)
    mx, my = update_memory(mx, my, x2, y2, 10, seed=1)
    assert np.bincount(my).tolist() == [2, 3, 3, 2]
    assert len(update_memory(mx, my, x2, y2, 0, seed=0)[1]) == 0


def test_grow_head_keeps_the_old_outputs():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(5, 3))
    grown = grow_head(head, 5)
    x = torch.randn(7, 5)
    with torch.no_grad():
        assert torch.allclose(grown(x)[:, :3], head(x))
        assert grown[1].weight[3:].abs().sum() == 0
    assert head[1].out_features == 3  # a new module: the input head is untouched


@pytest.fixture(scope="module")
def split_digits() -> list[StepData]:
    """scikit-learn's 1,797 real 8x8 digits as five class-incremental steps of two digits
    (pixels in [0, 1] as the features), 70 / 30 stratified."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    steps = []
    for k in range(0, 10, 2):
        a, b = np.isin(ytr, [k, k + 1]), np.isin(yte, [k, k + 1])
        steps.append(StepData(xtr[a], [str(v) for v in ytr[a]], xte[b], [str(v) for v in yte[b]]))
    return steps


def test_replay_forgets_less_than_naive_on_split_digits(split_digits):
    results = {m: run_sequence(split_digits, m, memory=100, seed=0) for m in ("naive", "replay")}
    (_, s_naive, naive), (_, s_replay, replay) = results["naive"], results["replay"]
    r = matrix_array(s_naive)
    assert r.shape == (5, 5) and np.isnan(r[0, 1:]).all()
    assert r[0, 0] > 0.95  # two digits after the first step: nearly perfect
    # Naive fine-tuning overwrites the old digits: the last step scores ~0 on task 0.
    assert r[4, 0] < 0.2 and naive["forgetting"] > 0.4
    assert replay["forgetting"] < naive["forgetting"] - 0.1
    assert replay["acc"] > naive["acc"] + 0.1
    assert naive["bwt"] == pytest.approx(backward_transfer(r))
    # With the task known (argmax over a step's own two digits) naive keeps far more:
    # its old rows still separate the old pairs, only the new rows' logits win overall.
    r_task = matrix_array(s_naive, task_incremental=True)
    assert (r_task[np.tril_indices(5)] >= r[np.tril_indices(5)] - 1e-12).all()
    assert naive["task_incremental"]["acc"] > naive["acc"] + 0.2
    # The memory: at most 100 rows, 10 of each of the 10 digits seen.
    assert len(s_replay.memory_y) == 100
    assert np.bincount(s_replay.memory_y).tolist() == [10] * 10
    assert s_replay.classes == [str(d) for d in range(10)]
    assert [s["method"] for s in s_replay.steps] == ["fit"] + ["replay"] * 4


def test_prototype_and_refit_are_nearly_free_and_strong(split_digits):
    for method in ("prototype", "refit"):
        _head, state, m = run_sequence(split_digits, method, memory=100, seed=0)
        assert m["acc"] > 0.8, (method, m)
        assert m["forgetting"] < 0.2, (method, m)
    # prototype: exact class means of every training row ever seen, no memory needed
    x = np.concatenate([s.x for s in split_digits])
    assert state.proto_counts.sum() == len(x)


def test_slda_is_batch_lda_whatever_the_step_order(split_digits):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    head, state, m = run_sequence(split_digits, "slda", memory=0, seed=0)
    assert len(state.memory_y) == 0  # no stored examples: running sums only
    back, state_b, _ = run_sequence(split_digits[::-1], "slda", memory=0, seed=0)
    xt = np.concatenate([s.x_test for s in split_digits])
    with torch.no_grad():
        t = torch.from_numpy(xt)
        ours = [state.classes[i] for i in head(t).argmax(1).numpy()]
        rev = [state_b.classes[i] for i in back(t).argmax(1).numpy()]
    assert ours == rev  # the same model, whatever the order of the steps
    # sklearn's LDA on every training row at once, same shrinkage, equal priors
    x = np.concatenate([s.x for s in split_digits])
    y = np.concatenate([s.labels for s in split_digits])
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.05, priors=np.full(10, 0.1))
    want = lda.fit(x, y).predict(xt)
    assert np.mean(np.array(ours) == want) > 0.99
    assert m["acc"] > 0.9


def test_every_method_is_registered_and_runs_a_step(split_digits):
    names = [m.name for m in list_continual_methods()]
    assert names[:5] == ["naive", "replay", "ewc", "lwf", "prototype"]
    for info in list_continual_methods():
        fields = info.config_cls.__dataclass_fields__
        config = info.config_cls(epochs=3) if "epochs" in fields else None
        _head, state, m = run_sequence(split_digits[:2], info.name, memory=40, config=config)
        assert matrix_array(state).shape == (2, 2), info.name
        assert 0.0 <= m["acc"] <= 1.0, info.name
        assert info.kind == "continual"


def _first_state(split_digits, memory=40):
    from headstart.train._heads import fit_logistic_head

    first = split_digits[0]
    y = np.array([int(c) for c in first.labels])
    head = fit_logistic_head(first.x, y, first.x[:0], y[:0], 2).head
    return head, start_state(head, first, memory)


def test_bad_steps_are_refused_with_one_line(split_digits):
    head, state = _first_state(split_digits)
    # digits 0 and 1 again, with 2 and 3: a class-incremental step brings only new classes
    s = split_digits[1]
    both = StepData(
        np.concatenate([split_digits[0].x, s.x]),
        [*split_digits[0].labels, *s.labels],
        s.x_test,
        s.labels_test,
    )
    with pytest.raises(ContinualError, match="'0', '1' already learned") as exc:
        learn_step(head, state, both, "replay")
    assert "\n" not in str(exc.value)
    two = split_digits[1]
    keep = [i for i, c in enumerate(two.labels) if c == "2"]
    keep_t = [i for i, c in enumerate(two.labels_test) if c == "2"]
    one = StepData(two.x[keep], ["2"] * len(keep), two.x_test[keep_t], ["2"] * len(keep_t))
    with pytest.raises(ContinualError, match="only one new class"):
        learn_step(head, state, one, "replay")
    with pytest.raises(ValueError, match="--method: unknown continual method 'sgd'"):
        learn_step(head, state, two, "sgd")
    from headstart.continual._methods import TrainConfig

    with pytest.raises(ContinualError, match="ewc takes a EwcConfig, not a TrainConfig"):
        learn_step(head, state, two, "ewc", TrainConfig())
    assert state.classes == ["0", "1"] and len(state.matrix) == 1  # refused: nothing changed


def test_state_round_trips_through_safetensors(split_digits, tmp_path: Path):
    head, state = _first_state(split_digits)
    learn_step(head, state, split_digits[1], "ewc")
    state.save(tmp_path)
    back = ContinualState.load(tmp_path)
    assert back.classes == state.classes and back.tasks == state.tasks
    assert back.matrix == state.matrix and back.steps[1]["method"] == "ewc"
    assert back.matrix_task == state.matrix_task and len(back.matrix_task) == 2
    for name in ("memory_x", "memory_y", "eval_x", "eval_y", "eval_task", "proto_sums"):
        np.testing.assert_array_equal(getattr(back, name), getattr(state, name))
    assert back.fisher.keys() == state.fisher.keys() and back.fisher


# -- the bundle: headstart.continue_ and `headstart continue` -------------------------------

VOCAB = {
    "sport": ["goal", "match", "team", "score", "player", "league", "coach", "referee"],
    "food": ["recipe", "bake", "sauce", "flavour", "oven", "garlic", "butter", "dessert"],
    "tech": ["software", "laptop", "code", "server", "chip", "network", "robot", "battery"],
    "music": ["guitar", "melody", "chorus", "drums", "singer", "album", "violin", "tempo"],
}


def _texts(path: Path, classes: tuple[str, ...], n: int = 40, seed: int = 0) -> Path:
    """``n`` rows per class of 10 words drawn from the class's 8 (test_words.tiny is a
    16-d hashed embedding: fewer words per row leave the four classes hard to tell apart)."""
    import csv
    import random

    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            for c in classes:
                w.writerow([f"{' '.join(rng.choices(VOCAB[c], k=10))} {i}", c])
    return path


@pytest.fixture
def text_bundle(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A ``fit`` bundle on sport/food texts (test_words.tiny), and new tech/music texts."""
    import headstart

    old = _texts(tmp_path / "old.csv", ("sport", "food"))
    new = _texts(tmp_path / "new.csv", ("tech", "music"), seed=1)
    bundle = tmp_path / "bundle"
    headstart.fit(old, out=bundle, model="test_words.tiny")
    return bundle, old, new


@pytest.fixture
def cli_error(monkeypatch, capsys):
    """``cli_error(*args)``: the real entry point exits 2 with one line on stderr."""
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


def test_continue_writes_a_bundle_that_carries_its_memory(text_bundle, tmp_path: Path):
    import json

    import headstart

    bundle, old, new = text_bundle
    before = sorted(p.name for p in bundle.iterdir())
    out = tmp_path / "more"
    r = headstart.continue_(bundle, new, out, method="refit", memory=12)
    assert sorted(p.name for p in bundle.iterdir()) == before  # the input bundle: untouched
    rep = json.loads((out / "continual.json").read_text())
    assert rep["classes"] == ["food", "sport", "music", "tech"]
    assert rep["tasks"] == [["food", "sport"], ["music", "tech"]]
    assert rep["memory"] == {"size": 12, "rows": 12}
    assert rep["old_data"] == str(old)
    assert len(rep["matrix"]) == 2 and rep["matrix"][0][1] is None
    assert rep["acc"] == pytest.approx(average_accuracy(matrix_array(r.state)))
    assert rep["forgetting"] == pytest.approx(forgetting(matrix_array(r.state)))
    assert rep["bwt"] == pytest.approx(backward_transfer(matrix_array(r.state)))
    assert rep["acc"] > 0.75, rep["matrix"]
    ti = rep["task_incremental"]
    assert ti["acc"] == pytest.approx(average_accuracy(matrix_array(r.state, True)))
    assert ti["acc"] >= rep["acc"] - 1e-12
    assert rep["command"].startswith("headstart continue")
    chart = (out / "continual.svg").read_text()
    assert chart.startswith("<svg") and chart.count("<rect") == 3  # the lower triangle
    # Offline, from the folder alone (the old data gone): the same model, old and new
    # classes predicted.
    old.unlink()
    loaded = headstart.load(out)
    assert loaded.classes == rep["classes"]
    probes = [" ".join(VOCAB[c]) for c in ("sport", "food", "music", "tech")]
    np.testing.assert_allclose(
        loaded.predict_proba(probes), r.predictor.predict_proba(probes), atol=1e-6
    )
    assert loaded.predict(probes) == ["sport", "food", "music", "tech"]
    state = ContinualState.load(out)
    assert len(state.memory_y) == 12 and sorted(np.bincount(state.memory_y)) == [3, 3, 3, 3]
    assert set(state.eval_task) == {0, 1} and len(state.eval_task) == len(state.eval_y)
    # A second step needs no old data: the memory and every step's test rows travel with
    # the bundle (the old data is gone). The two new classes: `new` relabelled.
    step2 = tmp_path / "step2.csv"
    step2.write_text(
        new.read_text().replace(",tech", ",gadgets").replace(",music", ",songs"), "utf-8"
    )
    r2 = headstart.continue_(out, step2, tmp_path / "step2", method="replay")
    assert r2.report["tasks"][:2] == rep["tasks"] and len(r2.report["matrix"]) == 3
    assert r2.report["matrix"][0][0] == rep["matrix"][0][0]
    assert r2.report["old_data"] is None and r2.report["memory"]["size"] == 12


def test_naive_forgets_and_prototype_does_not_on_a_bundle(text_bundle, tmp_path: Path):
    import headstart

    bundle, _, new = text_bundle
    naive = headstart.continue_(bundle, new, tmp_path / "n", method="naive", options={"epochs": 60})
    proto = headstart.continue_(bundle, new, tmp_path / "p", method="prototype")
    assert naive.report["forgetting"] > proto.report["forgetting"]
    assert proto.report["acc"] >= 0.9
    assert headstart.load(tmp_path / "p").config["head"]["type"] == "prototype"


def test_bad_continue_inputs_are_one_line(
    text_bundle, tiny_images: Path, tmp_path: Path, cli_error
):
    import headstart
    from headstart._io import OutputError

    bundle, old, new = text_bundle
    overlap = _texts(tmp_path / "overlap.csv", ("sport", "tech"))
    err = cli_error("continue", str(bundle), str(overlap), "--out", str(tmp_path / "o"))
    assert "'sport' already learned" in err and "only new classes" in err
    err = cli_error("continue", str(bundle), str(tiny_images), "--out", str(tmp_path / "o"))
    assert "holds image data but the bundle" in err and "takes text" in err
    single = _texts(tmp_path / "single.csv", ("tech",))
    assert "only one class" in cli_error(
        "continue", str(bundle), str(single), "--out", str(tmp_path / "o")
    )
    assert "holds the input data" in cli_error(
        "continue", str(bundle), str(new), "--out", str(bundle)
    )
    assert "unknown continual method 'sgd'" in cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o"), "--method", "sgd"
    )
    assert "does not apply to --method replay (an option of ewc)" in cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o"), "--ewc-lambda", "5"
    )
    assert "--lr" in cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o"), "--lr", "-1"
    )
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(OutputError):
        headstart.continue_(bundle, new, mine)
    assert (mine / "notes.txt").read_text() == "mine"
    old.unlink()
    assert "pass --old-data" in cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o")
    )
    assert not (tmp_path / "o").exists()


def test_a_prototype_bundle_takes_the_methods_that_need_no_linear_layer(tmp_path, cli_error):
    import headstart

    old = _texts(tmp_path / "old.csv", ("sport", "food"))
    new = _texts(tmp_path / "new.csv", ("tech", "music"), seed=1)
    bundle = tmp_path / "proto"
    headstart.fit(old, out=bundle, model="test_words.tiny", strategy="prototype", val=0.0)
    err = cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o"), "--method", "naive"
    )
    assert "no linear output layer to grow" in err and "slda" in err
    r = headstart.continue_(bundle, new, tmp_path / "s", method="slda")
    assert headstart.load(tmp_path / "s").classes == ["food", "sport", "music", "tech"]
    assert r.report["acc"] > 0.75


# -- domain-incremental: the same classes, a new domain each step ---------------------------


@pytest.fixture(scope="module")
def rotated_digits() -> list[StepData]:
    """scikit-learn's real 8x8 digits as three domain-incremental steps: disjoint thirds of
    the images, the k-th third turned by k quarter turns (0, 90, 180 degrees, exact on the
    pixel grid); each step scored on every test image at its own angle."""
    x, y = load_digits(return_X_y=True)
    img = (x / 16.0).astype(np.float32).reshape(-1, 8, 8)
    itr, ite = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=y)
    parts = np.array_split(np.random.default_rng(0).permutation(itr), 3)
    steps = []
    for k, part in enumerate(parts):
        xa = np.rot90(img[part], k, axes=(1, 2)).reshape(len(part), -1)
        xt = np.rot90(img[ite], k, axes=(1, 2)).reshape(len(ite), -1)
        steps.append(
            StepData(xa.copy(), [str(v) for v in y[part]], xt.copy(), [str(v) for v in y[ite]])
        )
    return steps


def test_a_domain_step_keeps_the_head_and_scores_each_domain(rotated_digits):
    from headstart.continual._sequence import head_accuracy

    results = {
        m: run_sequence(rotated_digits, m, memory=60, seed=0, scenario="domain")
        for m in ("naive", "replay", "slda")
    }
    head, state, m = results["replay"]
    assert state.classes == [str(d) for d in range(10)]  # no class added
    assert state.tasks == [state.classes] * 3
    assert head[-1].out_features == 10
    assert [s.get("scenario") for s in state.steps[1:]] == ["domain", "domain"]
    # The last row is the last head's accuracy on each domain's test rows, hand-scored.
    r = matrix_array(state)
    y = np.array([int(c) for c in rotated_digits[0].labels_test])
    want = [head_accuracy(head, s.x_test, y) for s in rotated_digits]
    np.testing.assert_allclose(r[2], want)
    assert m["acc"] == pytest.approx(np.mean(want))
    assert m["bwt"] == pytest.approx(((r[2, 0] - r[0, 0]) + (r[2, 1] - r[1, 1])) / 2)
    # Upright digits are learned well first; naive training on quarter-turned digits
    # overwrites them, replay keeps more of them.
    naive = results["naive"][2]
    assert r[0, 0] > 0.9
    assert naive["forgetting"] > m["forgetting"] + 0.05
    assert m["acc"] > naive["acc"]
    # The memory: 60 rows over 3 steps x 10 digits, 2 in each (step, digit) cell.
    assert np.bincount(state.memory_task).tolist() == [20, 20, 20]
    cells = np.bincount(state.memory_task * 10 + state.memory_y, minlength=30)
    assert cells.tolist() == [2] * 30
    # slda: exact statistics of every domain seen; the joint LDA on all three at once.
    assert results["slda"][2]["acc"] > naive["acc"]


def test_domain_and_class_steps_refuse_the_other_kind_in_one_line(rotated_digits, split_digits):
    head, state = _first_state(split_digits)  # knows digits 0 and 1
    with pytest.raises(ContinualError, match="not among the classes the model knows") as exc:
        learn_step(head, state, split_digits[1], "replay", scenario="domain")
    assert "--scenario class" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ContinualError, match="--scenario domain"):
        learn_step(head, state, split_digits[0], "replay")  # the same classes, class step
    zero = split_digits[0]
    keep = [i for i, c in enumerate(zero.labels) if c == "0"]
    keep_t = [i for i, c in enumerate(zero.labels_test) if c == "0"]
    one = StepData(zero.x[keep], ["0"] * len(keep), zero.x_test[keep_t], ["0"] * len(keep_t))
    with pytest.raises(ContinualError, match="domain-incremental step: only one class"):
        learn_step(head, state, one, "replay", scenario="domain")
    with pytest.raises(ContinualError, match="--scenario 'new': choose one of class, task"):
        learn_step(head, state, zero, "replay", scenario="new")
    assert state.classes == ["0", "1"] and len(state.matrix) == 1  # refused: nothing changed
    # the same classes as a domain step: accepted, the head keeps its two outputs
    grown = learn_step(head, state, zero, "naive", scenario="domain")
    assert grown[-1].out_features == 2 and state.tasks == [["0", "1"], ["0", "1"]]


def test_a_state_saved_before_memory_task_gets_it_from_its_tasks(split_digits, tmp_path: Path):
    import dataclasses

    head, state = _first_state(split_digits)
    learn_step(head, state, split_digits[1], "replay")
    old = dataclasses.replace(state, memory_task=np.zeros(0, dtype=np.int64))
    np.testing.assert_array_equal(old.memory_task, (state.memory_y >= 2).astype(int))
    state.save(tmp_path)
    np.testing.assert_array_equal(ContinualState.load(tmp_path).memory_task, state.memory_task)


def test_choice_sentence_says_when_the_frozen_feature_methods_win():
    from headstart.continual._report import choice_sentence

    rep = {"method": "naive", "acc": 0.2, "frozen_alternatives": {"prototype": 0.7, "slda": 0.9}}
    text = choice_sentence(rep)
    assert "slda reaches ACC 0.900" in text and "rerun the step with --method slda" in text
    assert "prototype" in text and "refit" in text  # the rule names the cheap methods
    rep = {"method": "replay", "acc": 0.95, "frozen_alternatives": {"prototype": 0.7, "slda": 0.9}}
    assert "replay (ACC 0.950) is as good or better" in choice_sentence(rep)
    # domain-incremental: pooled class means and a refit on the memory are not the answer
    rep = {**rep, "scenario": "domain-incremental"}
    assert "slda" in choice_sentence(rep) and "lose to plain fine-tuning" in choice_sentence(rep)


def test_a_domain_step_on_a_bundle_writes_the_report(
    text_bundle, tmp_path: Path, cli_error, monkeypatch
):
    import json

    import headstart
    from headstart.cli import main

    bundle, _, _ = text_bundle
    again = _texts(tmp_path / "again.csv", ("sport", "food"), seed=5)  # known classes, new rows
    err = cli_error("continue", str(bundle), str(again), "--out", str(tmp_path / "o"))
    assert "already learned" in err and "--scenario domain" in err
    new = _texts(tmp_path / "new2.csv", ("tech", "music"), seed=1)
    err = cli_error(
        "continue", str(bundle), str(new), "--out", str(tmp_path / "o"), "--scenario", "domain"
    )
    assert "not among the classes the model knows" in err
    assert "does not apply to --method prototype" in cli_error(
        "continue",
        str(bundle),
        str(again),
        "-o",
        str(tmp_path / "o"),
        "--method",
        "prototype",
        "--epochs",
        "3",
    )
    out = tmp_path / "dom"
    monkeypatch.setattr(
        "sys.argv",
        [
            "headstart",
            "continue",
            str(bundle),
            str(again),
            "--out",
            str(out),
            "--scenario",
            "domain",
            "--method",
            "replay",
            "--epochs",
            "5",
            "-q",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert not exc.value.code
    rep = json.loads((out / "continual.json").read_text())
    assert rep["scenario"] == "domain-incremental" and rep["classes"] == ["food", "sport"]
    assert rep["tasks"] == [["food", "sport"], ["food", "sport"]]
    assert rep["config"]["epochs"] == 5 and "--scenario domain" in rep["command"]
    assert "task_incremental" not in rep
    assert set(rep["frozen_alternatives"]) == {"prototype", "slda"}
    assert headstart.load(out).classes == ["food", "sport"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 1 and "Continual learning" in html and "forgetting" in html
    assert "prototype" in html and ("rerun the step" in html or "as good or better" in html)
    # the task scenario: the headline scored with the task known
    more = _texts(tmp_path / "more.csv", ("tech", "music"), seed=2)
    r = headstart.continue_(bundle, more, tmp_path / "task", method="refit", scenario="task")
    assert r.report["acc"] == pytest.approx(average_accuracy(matrix_array(r.state, True)))
    assert r.report["class_incremental"]["acc"] == pytest.approx(
        average_accuracy(matrix_array(r.state))
    )
