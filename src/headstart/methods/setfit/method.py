"""``setfit``: the encoder is fine-tuned on sentence pairs built from every labelled
example (train and validation), with the cosine-similarity loss on the one loop
(:mod:`headstart.fewshot._contrastive`); a logistic head is then fitted on the tuned
embeddings of the same examples, its C chosen by stratified k-fold on them
(:func:`headstart.train.fit_logistic_head` with ``cv=True``)."""

from __future__ import annotations

import time

import numpy as np

from headstart.cache._store import extract
from headstart.fewshot._contrastive import fit_contrastive_inplace
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.prototype.method import frozen_model
from headstart.methods.setfit.config import SetfitConfig
from headstart.train._heads import fit_logistic_head
from headstart.train._schedule import Schedule, Stage


class Setfit(Method):
    config: SetfitConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        c, data = self.config, ctx.data
        backbone = ctx.backbone()
        labelled = np.concatenate([data.indices("train"), data.indices("val")])
        texts = [data.items[i] for i in labelled]
        y = data.labels[labelled]
        t = time.perf_counter()
        stage, history = fit_contrastive_inplace(
            backbone,
            texts,
            y,
            c.pair_iterations,
            c.pair_epochs,
            c.pair_lr,
            c.pair_batch_size,
            ctx.options.seed,
        )
        ctx.timings["train_contrastive"] = time.perf_counter() - t
        t = time.perf_counter()
        feats = {
            s: extract(backbone, data.take(s)[0], data.modality, description=f"embedding {s}")
            for s in ("train", "val")
        }  # the test split is scored by fit() through the finished model
        x = np.concatenate([feats["train"], feats["val"]])
        fitted = fit_logistic_head(  # C by k-fold over every labelled example
            x, y, x[:0], y[:0], len(data.classes), ctx.options.seed, cv=True
        )
        head = fitted.head
        ctx.timings["train_head"] = time.perf_counter() - t
        # the report's C-sweep chart reads val_acc: here it is the k-fold held-out accuracy
        history += [{"val_acc": r.get("cv_acc", r["train_acc"]), **r} for r in fitted.history]
        model = frozen_model(backbone, head)
        head_stage = Stage("head", (), 0.0, (), 1, 1, on_features=True, augment=False)
        trainable = {
            "contrastive": sum(p.numel() for p in backbone.parameters()),
            "head": sum(p.numel() for p in head.parameters()),
        }
        schedule = Schedule((stage, head_stage))
        return MethodResult(model, history, head_logits(head, feats), schedule, trainable)
