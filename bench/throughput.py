"""Throughput of feature extraction: images/s and texts/s per engine, side by side with a
naive eager loop and plain ONNX Runtime, against the machine's roofline.

For every offline backbone (EfficientNet-Lite0/1/2, MobileNetV2 when installed, MiniLM,
GloVe) at its default input size and at 112 px (images), over the same items (Fashion-MNIST
PNGs; Rotten Tomatoes snippets), each contender extracts every item from its files,
decode included; the contenders run **interleaved** (one of each per round, the order
rotated), ``--rounds`` times, and the median round is quoted, with its ratio to ONNX
Runtime's in the same round (the machine is shared, so ratios are steadier than rates):

* ``naive``: decode and preprocess in the loop, then the network under ``torch.no_grad()``,
  NCHW tensors and weights as loaded (what a first script does);
* ``ort``: plain ONNX Runtime (default session options) on the same exported graph, fed
  by the same decode loop (the anchor a user can pip-install);
* ``hs-torch``, ``hs-onnx``, ``hs-bf16`` (native bf16 CPUs only), ``hs-auto``: headstart's
  ``FeatureStore.features`` with ``engine=...`` on an empty cache (decode on a background
  thread, shards written; the graph is exported before the first round, as it is cached
  after a first run). ``hs-auto`` includes its probe.

Roofline: the measured GEMM peak (``torch.matmul`` of 2048 x 2048 matrices, best of 5;
fp32 and bf16) divided by the network's FLOPs per item (``torch.utils.flop_counter``;
texts at the benchmark's mean token count). Also: feature parity of each engine with the
fp32 reference over every item (smallest row cosine, largest ``|a - b| / max|b|``) and the
test accuracy of ``headstart fit`` (logistic head) on features from each engine; ONNX
Runtime's intra-op threads and spinning; peak resident memory of a cold extraction at
500 / 5,000 / 50,000 images (a separate process each); the time of an epoch of
headstart's fine-tuning stage of Lite0 (top two blocks), its frozen lower blocks run every
step or computed once, in fp32 and under bf16 autocast, interleaved, from the same
weights, with the validation loss each reaches.

Writes ``OUT/throughput.json`` and ``OUT/throughput.md`` (atomically).

    nice .venv/bin/python bench/throughput.py           # every backbone
    nice .venv/bin/python bench/throughput.py --models efficientnet_lite0.in1k \
        minilm_l6.sbert_all_v2                          # the README's table
    .venv/bin/python bench/throughput.py --quick        # a smoke run (Lite0, MiniLM)
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

IMAGE_MODELS = (
    "efficientnet_lite0.in1k",
    "efficientnet_lite1.in1k",
    "efficientnet_lite2.in1k",
    "mobilenetv2_100.tv_in1k",
)
TEXT_MODELS = ("minilm_l6.sbert_all_v2", "glove_6b.50d")
SMALL = 112
RSS_SIZES = (500, 5_000, 50_000)


def gemm_peak(dtype: Any, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of ``torch.matmul`` on ``n x n`` matrices (``2 n^3`` FLOPs each)."""
    import torch

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def bf16_peak(repeats: int = 5) -> float:
    """The bf16 GEMM peak; on a CPU without native bf16 (emulated: about 0.3 GFLOP/s on
    AVX2, so a 2048^2 product takes a minute) it is measured on 256^2 matrices, once."""
    import torch

    from headstart.cache._engine import native_bf16

    if native_bf16():
        return gemm_peak(torch.bfloat16, repeats=repeats)
    return gemm_peak(torch.bfloat16, n=256, repeats=1)


def flops_per_item(backbone: Any, inputs: Any) -> float:
    """FLOPs of one forward pass per item of the collated batch ``inputs``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        backbone(inputs)
    return counter.get_total_flops() / backbone.batch_size(inputs)


def naive_runner(backbone: Any, modality: str) -> Callable[[list[Any]], None]:
    """Decode, preprocess, forward under ``no_grad``, all in the loop; NCHW images."""
    import torch

    from headstart.data._loader import load_items

    model = copy.deepcopy(backbone).eval()
    if modality == "image":
        model = model.to(memory_format=torch.contiguous_format)

    def forward(x: Any) -> Any:
        if modality != "image":
            return model(x)
        for stage in model.stages:
            x = stage(x)
        return model.pool(x)

    def run(chunk: list[Any]) -> None:
        with torch.no_grad():
            forward(model.collate(load_items(chunk, modality)))

    return run


def ort_runner(graph: bytes, backbone: Any, modality: str) -> Callable[[list[Any]], None]:
    """Plain ONNX Runtime (default options) fed by the same decode loop."""
    import onnxruntime as ort

    from headstart.bundle._runtime import to_feeds
    from headstart.data._loader import load_items

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(chunk: list[Any]) -> None:
        session.run(None, to_feeds(backbone.collate(load_items(chunk, modality)), names))

    return run


def _loop(run: Callable[[list[Any]], None], items: list[Any], batch: int) -> None:
    for lo in range(0, len(items), batch):
        run(items[lo : lo + batch])


def measure_model(
    name: str, size: int | None, items: list[Any], modality: str, rounds: int, batch: int
) -> dict[str, Any]:
    """One backbone at one input size: every contender, interleaved; see the docstring."""
    import torch

    from headstart.cache import FeatureStore
    from headstart.cache._engine import GRAPH_NAME, native_bf16
    from headstart.data._loader import load_items

    backbone = _backbone(name, size)
    keys = [f"k{i}" for i in range(len(items))]
    tmp = Path(tempfile.mkdtemp(prefix="headstart-bench-tp-"))
    row: dict[str, Any] = {"model": name, "modality": modality, "items": len(items)}
    if modality == "image":
        row["input_size"] = backbone.spec.preprocess.input_size
    try:
        first = backbone.collate(load_items(items[:batch], modality))
        row["flops_per_item"] = flops_per_item(backbone, first)
        if isinstance(first, dict) and "attention_mask" in first:
            row["mean_tokens"] = float(first["attention_mask"].sum(1).float().mean())
        # export once (as a first run would), then every headstart engine shares the graph
        warm = FeatureStore(tmp / "hs", engine="onnx")
        t = time.perf_counter()
        warm.features(backbone, items[:batch], keys[:batch], modality, batch_size=batch)
        row["export_seconds"] = time.perf_counter() - t
        row["onnx_engine_note"] = warm.engine_report.notes
        entry = warm.entry_dir(backbone)
        graph = entry / GRAPH_NAME
        for shard in entry.glob("shard-*.npz"):
            shard.unlink()
        cold = FeatureStore(tmp / "hs", engine="auto")
        t = time.perf_counter()
        cold.features(backbone, items, keys, modality, batch_size=batch)
        row["auto_cold"] = {
            "items_per_s": len(items) / (time.perf_counter() - t),
            **cold.engine_report.to_dict(),
        }
        engines = ["torch", "onnx", *(["bf16"] if native_bf16() else []), "auto"]
        contenders: dict[str, Callable[[], Any]] = {
            "naive": lambda: _loop(naive_runner(backbone, modality), items, batch)
        }
        if graph.is_file():
            ort_run = ort_runner(graph.read_bytes(), backbone, modality)
            contenders["ort"] = lambda: _loop(ort_run, items, batch)
        reports: dict[str, Any] = {}

        def hs(engine: str) -> Callable[[], Any]:
            def run() -> None:
                for shard in entry.glob("shard-*.npz"):
                    shard.unlink()
                store = FeatureStore(tmp / "hs", engine=engine)
                store.features(backbone, items, keys, modality, batch_size=batch)
                reports[engine] = store.engine_report.to_dict()

            return run

        for e in engines:
            contenders[f"hs-{e}"] = hs(e)
        rates: dict[str, list[float]] = {c: [] for c in contenders}
        names = list(contenders)
        gemm: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for r in range(rounds):
            # the roofline in the same round: the machine's load moves the GEMM peak too
            gemm["fp32"].append(gemm_peak(torch.float32, repeats=3))
            gemm["bf16"].append(bf16_peak(repeats=3))
            order = names[r % len(names) :] + names[: r % len(names)]
            for c in order:
                t = time.perf_counter()
                contenders[c]()
                rates[c].append(len(items) / (time.perf_counter() - t))
            print(
                f"  {name} {row.get('input_size', '')} round {r}: "
                + ", ".join(f"{c} {rates[c][-1]:.1f}" for c in names),
                flush=True,
            )
        row["rates"] = rates
        row["gemm_gflops_rounds"] = gemm
        per_item = row["flops_per_item"] / 1e9
        row["roofline_fraction"] = {  # median per round of rate / (GEMM peak / FLOPs)
            c: float(np.median(np.array(v) * per_item / np.array(gemm["fp32"])))
            for c, v in rates.items()
        }
        row["median"] = {c: float(np.median(v)) for c, v in rates.items()}
        if "ort" in rates:
            row["ratio_to_ort"] = {
                c: float(np.median(np.array(v) / np.array(rates["ort"]))) for c, v in rates.items()
            }
        row["engine_reports"] = reports
        row["threads"] = torch.get_num_threads()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def measure_threads(graph: bytes, inputs: np.ndarray, repeats: int = 3) -> list[dict[str, Any]]:
    """ONNX Runtime network-only rate (items/s, best of ``repeats``) by intra-op threads
    and spinning, interleaved."""
    import onnxruntime as ort

    settings = [(1, True), (2, True), (2, False), (4, True)]
    sessions = {}
    for threads, spin in settings:
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.log_severity_level = 3
        if not spin:
            o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[(threads, spin)] = ort.InferenceSession(
            graph, o, providers=["CPUExecutionProvider"]
        )
    best = dict.fromkeys(sessions, 0.0)
    for _ in range(repeats):
        for key, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {s.get_inputs()[0].name: inputs})
            best[key] = max(best[key], len(inputs) / (time.perf_counter() - t))
    return [{"threads": k[0], "spinning": k[1], "items_per_s": v} for k, v in best.items()]


def measure_accuracy(
    task: Path, model: str, size: int | None, engines: list[str]
) -> dict[str, Any]:
    """``headstart fit`` (extract, logistic head) on features from each engine: test
    accuracy, and each engine's feature parity with the torch engine's on every item."""
    import headstart
    from headstart.cache._engine import parity

    tmp = Path(tempfile.mkdtemp(prefix="headstart-bench-acc-"))
    out: dict[str, Any] = {
        "model": model,
        "input_size": size,
        "task": str(task.name),
        "engines": {},
    }
    feats: dict[str, np.ndarray] = {}
    try:
        for e in engines:
            res = headstart.fit(
                task, model=model, image_size=size, engine=e, cache_dir=str(tmp / e)
            )
            shards = sorted((tmp / e).glob("*/*/shard-*.npz"))
            keys = np.concatenate([np.load(s)["keys"] for s in shards])
            f = np.concatenate([np.load(s)["features"] for s in shards])
            feats[e] = f[np.argsort(keys)]
            out["engines"][e] = {
                "test_accuracy": res.metrics["splits"]["test"]["accuracy"],
                "used": (res.metrics.get("extraction") or {}).get("used"),
                "items": len(keys),
            }
        ref = feats["torch"]
        for e, f in feats.items():
            scale = float(np.abs(ref).max()) or 1.0
            out["engines"][e]["min_row_cosine"] = parity(f, ref)
            out["engines"][e]["max_abs_diff_rel"] = float(np.abs(f - ref).max() / scale)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def measure_finetune(
    images: list[str], model: str, size: int, rounds: int, epochs: int = 2
) -> dict[str, Any]:
    """Seconds per epoch of headstart's fine-tuning stage (``run_stage``: the top two
    blocks and the head trained, AdamW, no augmentation, validation each epoch) on
    ``images`` (three quarters train, a quarter validation), ``epochs`` epochs, in four
    settings, interleaved ``rounds`` times from the same weights: the frozen lower blocks
    run every step (``plain``) or computed once (``cached``), in fp32 or under bf16
    autocast (emulated where the CPU has no native bf16). Seconds per epoch include the
    caching (spread over the epochs) and the validation; the last epoch's validation loss
    shows whether the settings train the same."""
    import torch

    from headstart.data._transforms import NO_AUGMENT
    from headstart.surgery._model import TransferModel, make_head
    from headstart.train import Stage, run_stage
    from headstart.train._precision import choose_precision

    base = _backbone(model, size)
    classes = sorted({Path(p).parent.name for p in images})
    y = np.array([classes.index(Path(p).parent.name) for p in images])
    cut = len(images) * 3 // 4
    train, val = (images[:cut], y[:cut]), (images[cut:], y[cut:])
    top = tuple(reversed(base.block_names[-2:]))
    stage = Stage("finetune", top, 1e-4, (), epochs, epochs + 1, augment=False)
    from headstart.cache._engine import native_bf16

    # emulated bf16 (no native support) measured 20x slower than fp32 on the plain path
    # at 64 px (84 s against 4.1 s per epoch): it is only measured where it is native
    precisions = ("fp32", "bf16") if native_bf16() else ("fp32",)
    settings = [(c, p) for c in ("plain", "cached") for p in precisions]
    seconds: dict[str, list[float]] = {f"{c}-{p}": [] for c, p in settings}
    val_loss: dict[str, float] = {}
    for r in range(rounds):
        order = settings[r % len(settings) :] + settings[: r % len(settings)]
        for cache, precision in order:
            torch.manual_seed(0)
            net = TransferModel(copy.deepcopy(base), make_head(base.feature_dim, len(classes)))
            t = time.perf_counter()
            rows = run_stage(
                net,
                stage,
                train,
                val,
                "image",
                NO_AUGMENT,
                32,
                precision=choose_precision(precision),
                cache_prefix=cache == "cached",
            )
            key = f"{cache}-{precision}"
            seconds[key].append((time.perf_counter() - t) / epochs)
            val_loss.setdefault(key, rows[-1]["val_loss"])
        print(f"  finetune round {r}: " + str({k: v[-1] for k, v in seconds.items()}), flush=True)
    med = {k: float(np.median(v)) for k, v in seconds.items()}
    return {
        "model": model,
        "input_size": size,
        "images": {"train": cut, "val": len(images) - cut},
        "epochs": epochs,
        "trained": list(top),
        "seconds_per_epoch": seconds,
        "median_seconds": med,
        "speedup_vs_plain_fp32": {
            k: float(np.median(np.array(seconds["plain-fp32"]) / np.array(v)))
            for k, v in seconds.items()
        },
        "last_val_loss": val_loss,
        "auto_precision": choose_precision("auto").to_dict(),
        "bf16": "measured" if native_bf16() else "not measured: no native bf16 on this CPU",
    }


def _backbone(name: str, size: int | None) -> Any:
    """The packaged backbone ``name`` (``size`` px inputs for an image model), headless."""
    import dataclasses

    from headstart.zoo._registry import create_backbone, get_spec

    spec = get_spec(name)
    if size is not None:
        pre = dataclasses.replace(spec.preprocess, input_size=size)
        spec = dataclasses.replace(spec, preprocess=pre)
    backbone = create_backbone(spec, pretrained=True)
    backbone.pop_source_head_inplace()
    return backbone.eval()


def _status_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def rss_child(n: int, folder: Path, size: int, model: str) -> dict[str, Any]:
    """(In a fresh process) a cold extraction of the first ``n`` images of ``folder``
    (engine auto): resident memory once the model is loaded, and the peak during the
    extraction, in MiB. The peak is the kernel's high-water mark (``VmHWM``), reset to the
    current RSS just before extracting (``/proc/self/clear_refs``); ``getrusage``'s
    ``ru_maxrss`` would not do: it keeps the parent's peak across ``fork`` + ``exec``."""
    from headstart._progress import set_quiet
    from headstart.cache import FeatureStore

    set_quiet(True)
    items = sorted(str(p) for p in folder.rglob("*.png"))[:n]
    backbone = _backbone(model, size)
    backbone.feature_dim  # noqa: B018 (its probe forward pass allocates; not extraction)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mib("VmRSS")
    tmp = tempfile.mkdtemp(prefix="headstart-bench-rss-")
    t = time.perf_counter()
    store = FeatureStore(tmp, engine="auto")
    feats = store.features(backbone, items, items, "image", batch_size=64)
    seconds = time.perf_counter() - t
    peak = _status_mib("VmHWM")
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "items": len(items),
        "model": model,
        "input_size": size,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "result_mib": feats.nbytes / 2**20,
        "seconds": seconds,
        "engine": store.engine_report.used if store.engine_report else None,
    }


def measure_rss(folder: Path, sizes: tuple[int, ...], size: int, model: str) -> list[dict]:
    rows = []
    for n in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--rss-child",
            str(n),
            "--rss-folder",
            str(folder),
            "--rss-size",
            str(size),
            "--rss-model",
            model,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  rss {rows[-1]}", flush=True)
    return rows


def _f(x: Any, fmt: str = ".0f") -> str:
    return "" if x is None else format(x, fmt)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    peak32, peak16 = report["gemm_gflops"]["fp32"], report["gemm_gflops"]["bf16"]
    lines = [
        "# Feature-extraction throughput",
        "",
        f"`{report['command']}` on {m['cpu']}, {m['cores']} cores, torch capability "
        f"{m['torch_capability']}, flags {', '.join(m['flags'])}; {report['date']}. "
        f"GEMM peak (torch.matmul 2048^2) at the start: fp32 {peak32:.0f} GFLOP/s, bf16 "
        f"{peak16:.0f} GFLOP/s; the rooflines below use the peak measured in each round "
        "(median), and the roofline fraction is the median per round of auto's rate over "
        "that round's roofline. "
        f"Median of {report['rounds']} interleaved rounds, items per second, decode included; "
        "in brackets: the median per-round ratio to plain ONNX Runtime. "
        + (
            "Other work on the machine was paused while this ran"
            if report.get("quiet")
            else "The machine was shared with other work while this ran"
        )
        + (
            " (load average "
            + "/".join(f"{x:.1f}" for x in report["load_average_start"])
            + " at the start)."
            if report.get("load_average_start")
            else "."
        ),
        "",
    ]
    contenders = ["naive", "ort", "hs-torch", "hs-onnx", "hs-bf16", "hs-auto"]
    present = [c for c in contenders if any(c in r["median"] for r in report["models"])]
    lines.append(
        "| model | px | GFLOP/item | "
        + " | ".join(present)
        + " | auto chose | auto cold (probe s) | fp32 roofline | bf16 roofline | "
        "auto / fp32 roofline |"
    )
    lines.append("|---" * (len(present) + 8) + "|")
    for r in report["models"]:
        gf = r["flops_per_item"] / 1e9
        rounds_gemm = r.get("gemm_gflops_rounds") or {"fp32": [peak32], "bf16": [peak16]}
        roof32 = float(np.median(rounds_gemm["fp32"])) / gf
        roof16 = float(np.median(rounds_gemm["bf16"])) / gf
        cells = []
        for c in present:
            v = r["median"].get(c)
            ratio = r.get("ratio_to_ort", {}).get(c)
            ran = r["engine_reports"].get(c[3:], {}).get("used") if c.startswith("hs-") else None
            fell = ran is not None and c != "hs-auto" and ran != c[3:]
            cells.append(
                ""
                if v is None
                else f"{v:.0f}"
                + (f" ({ratio:.2f})" if ratio else "")
                + (f" [ran {ran}]" if fell else "")
            )
        fraction = r.get("roofline_fraction", {}).get(
            "hs-auto", r["median"].get("hs-auto", 0.0) / roof32
        )
        rep = r["engine_reports"].get("auto", {})
        chose = rep.get("used", "")
        if rep.get("onnx_threads") and chose == "onnx":
            chose += f", {rep['onnx_threads']} thread" + ("s" if rep["onnx_threads"] > 1 else "")
        cold = r.get("auto_cold", {})
        cold_cell = f"{cold['items_per_s']:.0f} ({cold['probe_seconds']:.1f})" if cold else ""
        lines.append(
            f"| {r['model']} | {r.get('input_size', '')} | {gf:.3f} | "
            + " | ".join(cells)
            + f" | {chose} | {cold_cell} | {roof32:.0f} | {roof16:.0f} | {fraction:.0%} |"
        )
    if report.get("accuracy"):
        lines += [
            "",
            "## Parity and downstream accuracy (headstart fit, logistic head)",
            "",
            "| model | px | task | engine | engine used | min row cosine vs torch | "
            "max abs diff / max abs | test accuracy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a in report["accuracy"]:
            for e, v in a["engines"].items():
                lines.append(
                    f"| {a['model']} | {_f(a['input_size'], 'd')} | {a['task']} | {e} | "
                    f"{v['used']} | "
                    f"{v['min_row_cosine']:.6f} | {v['max_abs_diff_rel']:.1e} | "
                    f"{v['test_accuracy']:.3f} |"
                )
    if report.get("threads"):
        lines += [
            "",
            "## ONNX Runtime threads (Lite0, 224 px, network only, best of 3)",
            "",
            "| intra-op threads | spinning | images/s |",
            "|---|---|---|",
        ]
        lines += [
            f"| {t['threads']} | {t['spinning']} | {t['items_per_s']:.0f} |"
            for t in report["threads"]
        ]
    ft = report.get("finetune") or {}
    if ft.get("median_seconds") and "plain-fp32" in ft["median_seconds"]:
        med, sp, loss = ft["median_seconds"], ft["speedup_vs_plain_fp32"], ft["last_val_loss"]
        auto = ft.get("auto_precision", {})
        lines += [
            "",
            f"## Fine-tuning stage, {ft['model']} at {ft['input_size']} px: "
            f"{', '.join(ft['trained'])} trained, {ft['images']['train']} train / "
            f"{ft['images']['val']} validation images, {ft['epochs']} epochs, no augmentation "
            "(median of interleaved rounds)",
            "",
            "| frozen lower blocks | precision | seconds per epoch | vs plain fp32 | "
            "last validation loss |",
            "|---|---|---|---|---|",
        ]
        for k in med:
            cache, precision = k.split("-")
            what = "computed once (cached)" if cache == "cached" else "run every step"
            lines.append(f"| {what} | {precision} | {med[k]:.2f} | {sp[k]:.2f}x | {loss[k]:.4f} |")
        lines += [
            "",
            f"`--precision auto` here: {auto.get('used')} ({auto.get('reason')}). "
            f"bf16: {ft.get('bf16', 'measured')}.",
        ]
    elif ft.get("skipped"):
        lines += ["", f"Fine-tuning: skipped ({ft['skipped']})."]
    if report.get("rss"):
        lines += [
            "",
            "## Peak memory of a cold extraction (fresh process each)",
            "",
            "| images | model, px | engine | RSS before (MiB) | peak RSS (MiB) | "
            "result array (MiB) | peak - before - result (MiB) | seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["rss"]:
            extra = r["peak_rss_mib"] - r["rss_before_mib"] - r["result_mib"]
            lines.append(
                f"| {r['items']:,} | {r['model']}, {r['input_size']} | {r['engine']} | "
                f"{r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} | {r['result_mib']:.0f} | "
                f"{extra:.0f} | {r['seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--images", type=int, default=192, help="images per contender run")
    parser.add_argument("--texts", type=int, default=512, help="texts per contender run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="smoke run: Lite0 and MiniLM")
    parser.add_argument("--models", nargs="+", help="backbones to measure (default: all)")
    parser.add_argument(
        "--rss-sizes",
        type=int,
        nargs="+",
        help="dataset sizes for peak memory (default: " + ", ".join(map(str, RSS_SIZES)) + ")",
    )
    parser.add_argument("--finetune-images", type=int, default=128)
    parser.add_argument("--finetune-size", type=int, default=224)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rss-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        print(json.dumps(rss_child(args.rss_child, args.rss_folder, args.rss_size, args.rss_model)))
        return
    import torch

    import headstart
    from headstart._io import atomic_write_json, atomic_write_text
    from headstart._progress import set_quiet
    from headstart.cache._engine import machine, native_bf16
    from headstart.datasets import fashion_mnist_folder, rotten_tomatoes_csv
    from headstart.zoo._registry import get_spec

    set_quiet(True)
    started = time.perf_counter()
    image_models = IMAGE_MODELS[:1] if args.quick else IMAGE_MODELS
    text_models = TEXT_MODELS[:1] if args.quick else TEXT_MODELS
    if args.models:
        unknown = set(args.models) - set(IMAGE_MODELS) - set(TEXT_MODELS)
        if unknown:
            parser.error(f"--models: unknown {', '.join(sorted(unknown))}")
        image_models = tuple(m for m in IMAGE_MODELS if m in args.models)
        text_models = tuple(m for m in TEXT_MODELS if m in args.models)
    rss_sizes = tuple(args.rss_sizes or (RSS_SIZES[:2] if args.quick else RSS_SIZES))
    if args.quick:
        args.images, args.texts, args.rounds, args.finetune_images = 64, 128, 2, 32
    report: dict[str, Any] = {
        "benchmark": "throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/throughput.py", *sys.argv[1:]]),
        "machine": machine(),
        "load_average_start": os.getloadavg(),
        "quiet": Path("/tmp/helper/QUIET").exists(),
        "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "headstart": headstart.__version__},
        "rounds": args.rounds,
        "batch": args.batch,
        "gemm_gflops": {"fp32": gemm_peak(torch.float32), "bf16": bf16_peak()},
        "models": [],
    }
    import onnxruntime

    report["versions"]["onnxruntime"] = onnxruntime.__version__
    args.out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every section: a cut-off run keeps what it measured
        report["seconds"] = time.perf_counter() - started
        report["load_average_last"] = os.getloadavg()
        atomic_write_json(args.out / "throughput.json", report)
        atomic_write_text(args.out / "throughput.md", markdown(report))

    print(json.dumps(report["machine"]), report["gemm_gflops"], flush=True)
    with tempfile.TemporaryDirectory(prefix="headstart-bench-throughput-") as tmp:
        tmp_path = Path(tmp)
        os.environ["HEADSTART_CACHE"] = str(tmp_path / "cache")
        per_class = max(1, args.images // 10)
        fashion = fashion_mnist_folder(tmp_path / "fashion", per_class, 50)
        images = sorted(str(p) for p in (fashion / "train").rglob("*.png"))[: args.images]
        texts_csv = rotten_tomatoes_csv(tmp_path / "rt.csv", train=args.texts, test=250)
        import csv

        with texts_csv.open(newline="", encoding="utf-8") as f:
            texts = [r["text"] for r in csv.DictReader(f)][: args.texts]
        for name in image_models:
            try:
                default = get_spec(name).preprocess.input_size
            except Exception as exc:  # not installed (MobileNetV2 is optional)
                print(f"  {name}: skipped ({exc})", flush=True)
                continue
            for size in (default, SMALL):
                try:
                    row = measure_model(name, size, images, "image", args.rounds, args.batch)
                except Exception as exc:
                    print(f"  {name} {size}: failed ({exc})", flush=True)
                    continue
                report["models"].append(row)
                save()
        for name in text_models:
            try:
                report["models"].append(
                    measure_model(name, None, texts, "text", args.rounds, args.batch)
                )
            except Exception as exc:
                print(f"  {name}: failed ({exc})", flush=True)
            save()
        lite0 = _backbone(IMAGE_MODELS[0], None)
        from headstart.bundle._export import graph_inputs, module_graph
        from headstart.data._loader import load_items

        x = lite0.collate(load_items(images[:32], "image"))
        example, dynamic = graph_inputs(x[:4])
        graph = module_graph(lite0, example, dynamic, "features", "lite0")
        report["threads"] = measure_threads(graph, x.numpy())
        save()
        ft = sorted(str(p) for p in (fashion / "train").rglob("*.png"))
        rng = np.random.default_rng(0)
        ft = [ft[i] for i in rng.permutation(len(ft))[: args.finetune_images]]
        report["finetune"] = measure_finetune(
            ft, IMAGE_MODELS[0], args.finetune_size, max(2, args.rounds - 1)
        )
        save()
        engines = ["torch", "onnx", *(["bf16"] if native_bf16() else [])]
        report["accuracy"] = [measure_accuracy(fashion, IMAGE_MODELS[0], SMALL, engines)]
        rt = rotten_tomatoes_csv(tmp_path / "rt_acc.csv", train=300, test=300, seed=1)
        report["accuracy"].append(measure_accuracy(rt, TEXT_MODELS[0], None, engines))
        save()
        big = fashion_mnist_folder(tmp_path / "fashion_big", max(rss_sizes) // 10, 1)
        report["rss"] = []
        for n in rss_sizes:  # smallest first; saved after each
            report["rss"] += measure_rss(big / "train", (n,), 32, IMAGE_MODELS[0])
            save()
    save()
    print(markdown(report))


if __name__ == "__main__":
    main()
