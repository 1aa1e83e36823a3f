"""Schedules, optimizer groups, early stopping, and the heads fitted on features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

import headstart
from headstart.surgery import TransferModel, make_head
from headstart.train import (
    EarlyStopping,
    Schedule,
    Stage,
    feature_head_schedule,
    finetune_schedule,
    fit_feature_head,
    fit_logistic_head,
    param_groups,
    prepare_stage_inplace,
    scratch_schedule,
)

BLOCKS = ("stem", "block1", "block2", "block3")


# -- schedules ----------------------------------------------------------------------------


def test_finetune_schedule_decays_towards_the_input() -> None:
    sched = finetune_schedule(
        BLOCKS, unfreeze=3, head_lr=1e-3, lr=1e-4, decay=0.5, head_epochs=7, epochs=4, patience=2
    )
    head, tune = sched.stages
    assert head.on_features and not head.augment
    assert head.trainable == () and head.lr == 1e-3 and head.max_epochs == 7
    assert tune.trainable == ("block3", "block2", "block1")
    assert not tune.on_features and tune.max_epochs == 4 and tune.patience == 2
    assert tune.block_lr("block3") == pytest.approx(1e-4)
    assert tune.block_lr("block2") == pytest.approx(5e-5)
    assert tune.block_lr("block1") == pytest.approx(2.5e-5)
    lrs = [tune.block_lr(b) for b in tune.trainable]
    assert lrs == sorted(lrs, reverse=True)


def test_finetune_schedule_unfreeze_zero_and_all() -> None:
    only_head = finetune_schedule(BLOCKS, unfreeze=0)
    assert [s.name for s in only_head.stages] == ["head"]
    everything = finetune_schedule(BLOCKS, unfreeze="all", lr=1e-3, decay=0.1)
    tune = everything.stages[1]
    assert set(tune.trainable) == set(BLOCKS)
    assert tune.block_lr("stem") == pytest.approx(1e-6)
    assert finetune_schedule(BLOCKS, unfreeze=10).stages[1].trainable == BLOCKS[::-1]


def test_scratch_and_feature_head_schedules() -> None:
    (stage,) = scratch_schedule(BLOCKS, lr=3e-3, epochs=5).stages
    assert stage.trainable == BLOCKS and stage.lr == 3e-3 and stage.max_epochs == 5
    assert all(stage.block_lr(b) == 3e-3 for b in BLOCKS)
    (head,) = feature_head_schedule(lr=0.01, epochs=9).stages
    assert head.on_features and head.trainable == () and head.max_epochs == 9


def test_schedule_round_trip_through_json() -> None:
    for sched in (
        finetune_schedule(BLOCKS, unfreeze="all"),
        scratch_schedule(BLOCKS),
        feature_head_schedule(),
    ):
        back = Schedule.from_dict(json.loads(json.dumps(sched.to_dict())))
        assert back == sched
        assert back.stages[-1].block_lr(BLOCKS[0]) == sched.stages[-1].block_lr(BLOCKS[0])


def test_param_groups_learning_rates() -> None:
    bb = headstart.create_backbone("test_cnn.tiny")
    model = TransferModel(bb, make_head(32, 3))
    stage = finetune_schedule(bb.block_names, unfreeze=2, lr=1e-3, decay=0.5).stages[1]
    prepare_stage_inplace(model, stage)
    groups = param_groups(model, stage)
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("head", pytest.approx(1e-3)),
        ("block1", pytest.approx(5e-4)),
        ("block2", pytest.approx(1e-3)),
    ]
    grouped = {id(p) for g in groups for p in g["params"]}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert grouped == trainable
    assert not any(p.requires_grad for p in bb.stages[0].parameters())
    # the groups drive a real optimizer
    opt = torch.optim.AdamW(groups)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]


# -- early stopping -----------------------------------------------------------------------


def test_early_stopping_restores_the_best_weights() -> None:
    model = nn.Linear(2, 2)
    stopper = EarlyStopping(patience=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert stopper.update(0.5, 1.0, model) is False
    with torch.no_grad():
        model.weight.fill_(2.0)
    assert stopper.update(0.7, 0.9, model) is False  # best: weight 2
    with torch.no_grad():
        model.weight.fill_(3.0)
    assert stopper.update(0.7, 0.95, model) is False  # same accuracy, worse loss
    with torch.no_grad():
        model.weight.fill_(4.0)
    assert stopper.update(0.6, 0.5, model) is True  # two epochs without improvement
    assert stopper.best_epoch == 2
    stopper.restore(model)
    assert torch.equal(model.weight, torch.full((2, 2), 2.0))


def test_early_stopping_breaks_accuracy_ties_by_loss() -> None:
    model = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=5)
    stopper.update(0.5, 1.0, model)
    with torch.no_grad():
        model.bias.fill_(7.0)
    stopper.update(0.5, 0.8, model)
    with torch.no_grad():
        model.bias.fill_(-1.0)
    stopper.restore(model)
    assert stopper.best_epoch == 2
    assert float(model.bias.detach()) == 7.0


# -- heads on features --------------------------------------------------------------------


def _blobs(n_classes: int, n: int = 60, dim: int = 5, seed: int = 0):
    """Gaussian blobs around fixed class centres (``seed`` draws the samples)."""
    centres = np.random.default_rng(100).normal(0, 2.0, (n_classes, dim))
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = (centres[y] + rng.normal(0, 1.0, (n, dim)) + 10.0).astype(np.float32)
    return x, y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_head_matches_sklearn(n_classes: int) -> None:
    x, y = _blobs(n_classes)
    xv, yv = _blobs(n_classes, n=20, seed=1)
    fit = fit_logistic_head(x, y, xv, yv, n_classes, seed=0, cs=(0.3,), standardize=True)
    head, history = fit.head, fit.history
    assert [row["chosen"] for row in history] == [True]
    mean, std = x.mean(0), x.std(0)
    clf = LogisticRegression(C=0.3, max_iter=2000, random_state=0).fit((x - mean) / std, y)
    xt, _ = _blobs(n_classes, n=40, seed=2)
    head.eval()
    with torch.no_grad():
        logits = head(torch.from_numpy(xt)).numpy()
    ref = clf.predict_proba((xt - mean) / std)
    np.testing.assert_array_equal(logits.argmax(1), clf.predict((xt - mean) / std))
    np.testing.assert_allclose(
        torch.softmax(torch.from_numpy(logits), 1).numpy(), ref, rtol=1e-4, atol=1e-5
    )
    assert len(set(clf.predict((xt - mean) / std))) > 1  # a non-trivial comparison


def test_logistic_head_chooses_c_on_validation() -> None:
    x, y = _blobs(3)
    xv, yv = _blobs(3, n=30, seed=1)
    fit = fit_logistic_head(x, y, xv, yv, 3, cs=(0.001, 1.0))
    history = fit.history
    assert [row["C"] for row in history] == [0.001, 1.0]
    best = max(history, key=lambda r: r["val_acc"])
    assert [r["chosen"] for r in history].count(True) == 1
    assert next(r for r in history if r["chosen"])["val_acc"] == best["val_acc"]
    assert fit.selection.by == "validation" and not fit.selection.refit
    assert fit.selection.score == best["val_acc"]
    assert fit.selection.n_fit == len(y)


def test_logistic_head_cross_validates_and_refits_on_every_label() -> None:
    """With ``cv`` the score per C is the mean over stratified folds of train + val, and
    the refit head has seen the validation labels: a class that only the validation
    split holds is predicted after the refit, never without it."""
    x, y = _blobs(3, n=60)
    xv, yv = _blobs(3, n=30, seed=1)
    x, y = x[y != 2], y[y != 2]  # class 2 only in the validation split
    fit = fit_logistic_head(x, y, xv, yv, 3, cs=(0.01, 1.0), cv=True, refit=True)
    sel = fit.selection
    assert sel.by == "cross-validation" and sel.refit and sel.n_fit == 70
    assert sel.folds == 5 and sel.label == "5-fold cross-validated accuracy"
    assert all("cv_acc" in r for r in fit.history)
    assert sel.score == max(r["cv_acc"] for r in fit.history)
    fit.head.eval()
    with torch.no_grad():
        pred = fit.head(torch.from_numpy(xv)).argmax(1).numpy()
    assert 2 in set(pred)
    no_refit = fit_logistic_head(x, y, xv, yv, 3, cs=(0.01, 1.0), cv=True)
    with torch.no_grad():
        assert 2 not in set(no_refit.head.eval()(torch.from_numpy(xv)).argmax(1).numpy())


def test_logistic_head_breaks_ties_toward_the_weakest_regularisation() -> None:
    x, y = _blobs(2, n=40)  # well separated: every C scores 1.0 on validation
    xv, yv = _blobs(2, n=20, seed=1)
    fit = fit_logistic_head(x, y, xv, yv, 2, cs=(0.1, 1.0, 10.0))
    assert [r["val_acc"] for r in fit.history] == [1.0, 1.0, 1.0]
    assert fit.selection.chosen == {"C": 10.0}


def test_auto_selection_cross_validates_only_small_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from headstart.train import _heads

    x, y = _blobs(3, n=60)
    xv, yv = _blobs(3, n=30, seed=1)
    assert fit_logistic_head(x, y, xv, yv, 3, cs=(1.0,), cv="auto").selection.by == (
        "cross-validation"
    )
    monkeypatch.setattr(_heads, "CV_MAX_EXAMPLES", 50)
    assert fit_logistic_head(x, y, xv, yv, 3, cs=(1.0,), cv="auto").selection.by == "validation"


def test_logistic_head_with_a_class_absent_from_training() -> None:
    x, y = _blobs(2)
    y = np.where(y == 1, 2, 0)  # classes 0 and 2 of 3
    fit = fit_logistic_head(x, y, x[:0], y[:0], 3, cs=(1.0,))
    head = fit.head
    assert fit.selection.by == "training"
    head.eval()
    with torch.no_grad():
        pred = head(torch.from_numpy(x)).argmax(1).numpy()
    assert 1 not in set(pred)
    assert (pred == y).mean() > 0.8


def test_feature_head_learns_and_restores_the_best_epoch(seed: int) -> None:
    x, y = _blobs(3, n=90)
    xv, yv = _blobs(3, n=30, seed=1)
    head = make_head(5, 3, hidden=(16,))
    head[0] = head[0].fit(x)
    stage = Stage("head", lr=1e-2, max_epochs=40, patience=5, on_features=True)
    history = fit_feature_head(head, stage, x, y, xv, yv, seed=seed)
    best = [r for r in history if r["best"]]
    assert len(best) == 1
    head.eval()
    with torch.no_grad():
        acc = float((head(torch.from_numpy(xv)).argmax(1).numpy() == yv).mean())
    assert acc == pytest.approx(best[0]["val_acc"])
    assert acc > 0.6


def test_fit_stage_zips_streams_and_logs_each_loss_term(seed: int) -> None:
    """Two streams (labelled source, unlabelled target, cycled), an objective with two
    named terms: the loop sums them and the history logs each one per epoch."""
    from headstart.train import (
        Callback,
        History,
        StepOutput,
        TensorStream,
        fit_stage,
    )

    x, y = _blobs(3, n=60)
    xt, _ = _blobs(3, n=20, seed=3)
    seen_target = []

    def objective(model, batches):
        src, tgt = batches["source"], batches["target"]
        assert tgt.target is None and len(tgt.index) <= 8
        seen_target.extend(tgt.index.tolist())
        logits = model(src.inputs)
        ce = nn.functional.cross_entropy(logits, src.target)
        # a second term: pull the target's mean output towards the source's
        align = (model(tgt.inputs).mean(0) - logits.mean(0)).pow(2).sum()
        return StepOutput({"ce": ce, "align": 0.1 * align}, logits, src.target)

    class Count(Callback):
        batches = 0

        def on_train_batch_end(self, state, logs):
            Count.batches += 1

    model = make_head(5, 3, hidden=(8,))
    history = History()
    stage = Stage("adapt", lr=1e-2, max_epochs=3, patience=10)
    fit_stage(
        model,
        stage,
        {
            "source": TensorStream(torch.from_numpy(x), torch.from_numpy(y).long(), 16),
            "target": TensorStream(torch.from_numpy(xt), None, 8),
        },
        objective,
        [history, Count()],
        seed=seed,
        evaluate_start=False,
    )
    rows = history.rows
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["train_loss"] == pytest.approx(r["train_ce"] + r["train_align"])
        assert r["train_align"] > 0
    assert Count.batches == 3 * 4  # 60 source rows in batches of 16: the source sets the epoch
    assert set(seen_target) == set(range(20))  # the target stream is cycled through
    assert rows[-1]["train_ce"] < rows[0]["train_ce"]


def test_mlp_head_refits_on_train_and_val_for_the_best_epoch_count() -> None:
    from headstart.train._heads import fit_head_on_features

    x, y = _blobs(3, n=90)
    xv, yv = _blobs(3, n=30, seed=1)
    head = make_head(5, 3, hidden=(16,))
    stage = Stage("head", lr=1e-2, max_epochs=30, patience=4, on_features=True)
    fit = fit_head_on_features(head, stage, x, y, xv, yv, seed=0, refit=True)
    first = [r for r in fit.history if not r.get("refit")]
    again = [r for r in fit.history if r.get("refit")]
    best = next(r for r in first if r.get("best"))
    assert fit.selection.chosen == {"epochs": best["epoch"]}
    assert fit.selection.score == best["val_acc"] and fit.selection.refit
    assert len(again) == best["epoch"] and fit.selection.n_fit == 120
    # the refit head standardises with train + validation statistics
    both = np.concatenate([x, xv])
    np.testing.assert_allclose(head[0].mean.numpy(), both.mean(0), rtol=1e-5)


def test_refit_is_the_warm_path_model_the_folds_scored() -> None:
    """The refit walks the same warm-started C path as the sweep, up to the chosen C: with
    an iteration budget that stops lbfgs short, a cold fit at that C is another model."""
    from sklearn.linear_model import LogisticRegression

    from headstart.train._heads import logistic_c_sweep

    x, y = _blobs(3, n=60)
    xv, yv = _blobs(3, n=30, seed=1)
    cs = (0.01, 0.1, 1.0, 10.0)
    with pytest.warns(Warning):  # lbfgs at 5 iterations does not converge: that is the point
        clf, _, sel = logistic_c_sweep(x, y, xv, yv, cs, max_iter=5, cv=True, refit=True)
        xa, ya = np.concatenate([x, xv]), np.concatenate([y, yv])
        warm = LogisticRegression(max_iter=5, warm_start=True, random_state=0)
        for c in [c for c in cs if c <= sel.chosen["C"]]:
            warm.set_params(C=c).fit(xa, ya)
        cold = LogisticRegression(C=sel.chosen["C"], max_iter=5, random_state=0).fit(xa, ya)
    assert np.allclose(clf.coef_, warm.coef_)
    assert not np.allclose(clf.coef_, cold.coef_, atol=1e-3)
