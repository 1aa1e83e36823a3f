"""Benchmark: audio (the third modality) on synthetic speech made offline with espeak-ng.

One set of clips: the 10 command words (yes, no, up, down, left, right, on, off, stop,
go) spoken by 8 English espeak-ng voices (US, New York, RP, southern England, Scotland,
Lancashire, West Midlands, Caribbean) at 2 speeds (130, 180 words per minute) and 3
pitches: 480 clips, 16 kHz, led by 0-150 ms of silence, white noise at ``--snr`` dB (10
by default; each seed draws new noise and a new split). Three tasks on them:

* ``keywords``: the word (10 classes), stratified 60/20/20 split per seed;
* ``accent``: the voice (8 classes, any word), stratified 60/20/20 split per seed;
* ``cross-voice``: the word, trained on the 4 US/England voices (train/val 80/20 per
  seed) and tested on the 4 others (Scotland, Lancashire, West Midlands, Caribbean);
  then ``headstart.adapt`` (method auto, label-free choice) from the training voices to
  the unlabelled test voices.

Methods, in the same run, interleaved per seed, on the same files and splits:

* headstart ``mfcc`` (the baseline: 140 MFCC statistics, logistic regression with C
  chosen on validation), ``extract`` (the default audio backbone,
  ``speech_embedding.openwakeword``: frozen, mean and max of its 96-d windows; logistic
  head, C on validation) and ``extract ge2e`` (the GE2E speaker encoder,
  ``ge2e.resemblyzer``, 256-d); for cross-voice also ``adapt`` (default backbone).
  Fine-tuning GE2E is not run here: on 2 shared cores one epoch over the 290 training
  clips costs minutes, which does not fit the benchmark's 15;
* the reference a user would write by hand: **librosa** MFCCs (20, with deltas; mean and
  std over frames: 80 numbers) and the **pyopen-wakeword** features read through its own
  streaming API (every 96-d window that overlaps the clip, mean and max pooled), each
  with scikit-learn's ``StandardScaler`` + ``LogisticRegression`` (default C=1) fitted on
  train+val. librosa is not a headstart dependency: install it into a separate folder
  (``--librosa-site``; the reference MFCC is skipped when absent)::

    .venv/bin/pip install --target /tmp/librosa-site librosa==0.10.2.post1

Accuracy is the test-split mean over seeds with a 95% Student-t interval. Throughput is
feature extraction in clips per second on the keywords task (headstart ``extract``: its
cold-cache ``extract_features`` time, the other tasks reuse the feature cache; headstart
``mfcc``: its whole fit, it caches nothing; the references: their feature loop over all
480 files, timed once per seed and reused by the three tasks).

    nice .venv/bin/python bench/audio.py            # writes bench/results/audio.json/.md
    nice .venv/bin/python bench/audio.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
TRAIN_VOICES = ("en-us", "en-us-nyc", "en-gb-x-rp", "en-gb")
TEST_VOICES = ("en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
SPEEDS, PITCHES = (130, 180), (35, 50, 65)
RATE = 16000
TASKS = ("keywords", "accent", "cross-voice")
HS_METHODS = {  # name: (strategy, model)
    "mfcc": ("mfcc", None),
    "extract": ("extract", "speech_embedding.openwakeword"),
    "extract ge2e": ("extract", "ge2e.resemblyzer"),
}
DISPLAY = {
    "mfcc": "headstart mfcc (baseline)",
    "extract": "headstart extract, speech embedding (default)",
    "extract ge2e": "headstart extract, GE2E",
    "adapt (auto)": "headstart adapt (auto)",
    "adapt: source_only": "headstart adapt: its source-only model",
}
REFERENCES = ("librosa MFCC + sklearn LR", "pyopen-wakeword + sklearn LR")


# -- data ---------------------------------------------------------------------------------
def synthesise_all(words, voices, speeds, pitches) -> dict[tuple, np.ndarray]:
    """Clean 16 kHz clips of every word x voice x speed x pitch (espeak-ng, 2 at a time)."""
    from headstart.data._audio import resample
    from headstart.datasets import synthesise

    keys = [(w, v, s, p) for w in words for v in voices for s in speeds for p in pitches]

    def one(key):
        audio = synthesise(*key)
        return resample(audio.samples, audio.rate, RATE)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(keys, pool.map(one, keys), strict=True))


def write_seed(clean: dict[tuple, np.ndarray], folder: Path, snr: float, seed: int) -> list:
    """Noisy WAVs of ``clean`` under ``folder``: rows ``(path, word, voice)``."""
    import soundfile as sf

    from headstart.datasets import add_noise

    rng = np.random.default_rng(seed)
    rows = []
    for (word, voice, speed, pitch), x in clean.items():
        x = np.concatenate([np.zeros(int(rng.integers(0, RATE * 15 // 100))), x])
        x = add_noise(x, snr, rng, RATE)
        path = folder / voice / f"{word}_s{speed}_p{pitch}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.clip(x, -1, 1), RATE, subtype="PCM_16")
        rows.append((str(path), word, voice))
    return rows


def stratified(labels: list[str], fractions: tuple[float, ...], names, seed: int) -> list[str]:
    """A split name per row: within each label, shuffled, cut at ``fractions``."""
    rng = np.random.default_rng(seed)
    out = [""] * len(labels)
    for label in sorted(set(labels)):
        idx = rng.permutation([i for i, y in enumerate(labels) if y == label])
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for name, part in zip(names, np.split(idx, cuts), strict=True):
            for i in part:
                out[i] = name
    return out


def manifests(rows: list, folder: Path, seed: int) -> dict[str, Path]:
    """``keywords``, ``accent`` and ``cross-voice`` manifests (path, label, split), plus
    ``target`` (the test voices, for adapt)."""
    words = [r[1] for r in rows]
    voices = [r[2] for r in rows]
    tasks = {
        "keywords": (words, stratified(words, (0.6, 0.2, 0.2), ("train", "val", "test"), seed)),
        "accent": (voices, stratified(voices, (0.6, 0.2, 0.2), ("train", "val", "test"), seed)),
    }
    source = [i for i, v in enumerate(voices) if v in TRAIN_VOICES]
    inner = stratified([words[i] for i in source], (0.8, 0.2), ("train", "val"), seed)
    split = ["test"] * len(rows)
    for i, s in zip(source, inner, strict=True):
        split[i] = s
    tasks["cross-voice"] = (words, split)
    out = {}
    for name, (labels, splits) in tasks.items():
        out[name] = _write_csv(folder / f"{name}.csv", rows, labels, splits)
    keep = [i for i in range(len(rows)) if split[i] != "test"]
    out["source"] = _write_csv(
        folder / "source.csv", [rows[i] for i in keep], [words[i] for i in keep],
        [split[i] for i in keep],
    )  # fmt: skip
    test = [i for i in range(len(rows)) if split[i] == "test"]
    out["target"] = _write_csv(
        folder / "target.csv", [rows[i] for i in test], [words[i] for i in test], None
    )
    return out


def _write_csv(path: Path, rows: list, labels: list[str], splits: list[str] | None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", *(["split"] if splits else [])])
        for i, row in enumerate(rows):
            w.writerow([row[0], labels[i], *([splits[i]] if splits else [])])
    return path


# -- the hand-written references -----------------------------------------------------------
def librosa_features(paths: list[str]) -> np.ndarray:
    """librosa: 20 MFCCs and their deltas, mean and std over frames (80 numbers)."""
    import librosa

    out = []
    for p in paths:
        y, _ = librosa.load(p, sr=RATE)
        m = librosa.feature.mfcc(y=y, sr=RATE, n_mfcc=20)
        d = librosa.feature.delta(m)
        out.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
    return np.asarray(out, dtype=np.float32)


def wakeword_features(paths: list[str]) -> np.ndarray:
    """pyopen-wakeword's own streaming features, the clips fed as one stream with 1 s of
    silence before each: every 96-d window overlapping the clip (a window spans 775 ms, a
    new one every 80 ms), mean and max pooled (192 numbers)."""
    import soundfile as sf
    from pyopen_wakeword.openwakeword import OpenWakeWordFeatures

    features = OpenWakeWordFeatures.from_builtin()
    gap = np.zeros(RATE, dtype=np.int16)
    out = []
    for p in paths:
        pcm, _ = sf.read(p, dtype="int16")
        chunk = np.concatenate([gap, pcm]).tobytes()
        emb = np.concatenate([e.reshape(-1, 96) for e in features.process_streaming(chunk)])
        emb = emb[-(int(np.ceil(len(pcm) / 1280)) + 9) :]
        out.append(np.concatenate([emb.mean(0), emb.max(0)]))
    return np.asarray(out, dtype=np.float32)


def sklearn_accuracy(x: np.ndarray, y: list[str], split: list[str], seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    split = np.asarray(split)
    fit = split != "test"
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    clf.fit(x[fit], y[fit])
    return float((clf.predict(x[~fit]) == y[~fit]).mean())


def read_manifest(path: Path) -> tuple[list[str], list[str], list[str]]:
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["path"] for r in rows], [r["label"] for r in rows], [r["split"] for r in rows]


# -- the run -------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    import headstart
    from headstart.cache._store import FeatureStore

    if args.librosa_site and Path(args.librosa_site).is_dir():
        sys.path.append(args.librosa_site)  # after the project's own packages
    try:
        import librosa  # noqa: F401

        refs = list(REFERENCES)
    except ImportError:
        refs = [REFERENCES[1]]
        print("librosa not found (--librosa-site): the librosa reference is skipped")

    words, train_v, test_v = WORDS, TRAIN_VOICES, TEST_VOICES
    speeds, pitches = SPEEDS, PITCHES
    if args.quick:
        words, train_v, test_v = WORDS[:4], train_v[:2], test_v[:2]
        speeds, pitches = (160,), (40, 60)
    voices = (*train_v, *test_v)
    started = time.perf_counter()
    clean = synthesise_all(words, voices, speeds, pitches)
    synth_s = time.perf_counter() - started
    print(f"{len(clean)} clean clips synthesised in {synth_s:.0f} s")

    runs: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="hs-audio-bench-"))
    for seed in range(args.seeds):
        folder = work / f"seed{seed}"
        rows = write_seed(clean, folder / "audio", args.snr, seed)
        files = manifests(rows, folder, seed)
        store = FeatureStore(str(folder / "cache"))
        paths = [r[0] for r in rows]
        ref_x: dict[str, np.ndarray] = {}
        ref_s: dict[str, float] = {}
        for ref, fn in zip(REFERENCES, (librosa_features, wakeword_features), strict=True):
            if ref in refs:
                t = time.perf_counter()
                ref_x[ref] = fn(paths)
                ref_s[ref] = time.perf_counter() - t
        for task in TASKS:
            tpaths, labels, split = read_manifest(files[task])
            order = {p: i for i, p in enumerate(paths)}
            for method in (*HS_METHODS, *refs):
                t = time.perf_counter()
                row: dict[str, Any] = {"task": task, "method": method, "seed": seed}
                if method in HS_METHODS:
                    strategy, model = HS_METHODS[method]
                    res = headstart.fit(
                        files[task], strategy=strategy, model=model, seed=seed, store=store
                    )
                    row["accuracy"] = res.metrics["splits"]["test"]["accuracy"]
                    secs = res.metrics["seconds"]  # features: cold cache on the first task only
                    first = task == TASKS[0]
                    row["extract_s"] = (
                        secs.get("extract_features", secs["total"]) if first else None
                    )
                    row["n_test"] = res.metrics["splits"]["test"]["n"]
                else:
                    x = ref_x[method][[order[p] for p in tpaths]]
                    row["accuracy"] = sklearn_accuracy(x, labels, split, seed)
                    row["extract_s"] = ref_s[method] if task == TASKS[0] else None
                    row["n_test"] = split.count("test")
                row["seconds"] = time.perf_counter() - t
                row["clips"] = len(tpaths)
                runs.append(row)
                print(f"seed {seed} {task:11s} {method:28s} {row['accuracy']:.3f}")
            if task == "cross-voice":
                t = time.perf_counter()
                ad = headstart.adapt(files["source"], files["target"], seed=seed, store=store)
                cands = {
                    c["method"]: c["target_accuracy"]["accuracy"] for c in ad.report["candidates"]
                }
                runs.append(
                    {
                        "task": task,
                        "method": f"adapt (auto: {ad.chosen})",
                        "seed": seed,
                        "accuracy": cands[ad.chosen],
                        "chosen": ad.chosen,
                        "candidates": cands,
                        "seconds": time.perf_counter() - t,
                    }
                )
                print(f"seed {seed} {task:11s} adapt -> {ad.chosen}: {cands[ad.chosen]:.3f}")
    shutil.rmtree(work, ignore_errors=True)  # the clips and the feature caches
    return {
        "kind": "bench-audio",
        "date": dt.date.today().isoformat(),
        "command": "nice .venv/bin/python bench/audio.py" + (" --quick" if args.quick else ""),
        "snr_db": args.snr,
        "seeds": args.seeds,
        "words": list(words),
        "train_voices": list(train_v),
        "test_voices": list(test_v),
        "speeds": list(speeds),
        "pitches": list(pitches),
        "clips": len(clean),
        "synthesis_seconds": synth_s,
        "wall_seconds": time.perf_counter() - started,
        "references": refs,
        "runs": runs,
        "environment": _environment(),
    }


def _environment() -> dict[str, Any]:
    import torch

    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    env["torch_threads"] = torch.get_num_threads()
    for mod in ("headstart", "librosa", "sklearn", "soundfile"):
        with contextlib.suppress(ImportError, AttributeError):
            env[mod] = __import__(mod).__version__
    return env


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    from headstart.evaluate._stats import mean_ci

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in report["runs"]:
        if r["method"].startswith("adapt"):  # adapt's own source-only model, for the gain
            acc = r["candidates"]["source_only"]
            base = {**r, "method": "adapt: source_only", "accuracy": acc, "seconds": None}
            groups.setdefault((r["task"], base["method"]), []).append(base)
        method = "adapt (auto)" if r["method"].startswith("adapt") else r["method"]
        groups.setdefault((r["task"], method), []).append(r)
    rows = []
    for (task, method), rs in groups.items():
        ci = mean_ci([r["accuracy"] for r in rs], bounds=(0.0, 1.0))
        ext = [r["clips"] / r["extract_s"] for r in rs if r.get("extract_s")]
        row = {"task": task, "method": method, "accuracy": ci}
        secs = [r["seconds"] for r in rs if r["seconds"] is not None]
        row["seconds"] = float(np.mean(secs)) if secs else None
        row["clips_per_s"] = float(np.mean(ext)) if ext else None
        if method == "adapt (auto)":
            row["chosen"] = [r["chosen"] for r in rs]
        rows.append(row)
    return {**report, "summary": rows}


def markdown(report: dict[str, Any]) -> str:
    n_voices = len(report["train_voices"]) + len(report["test_voices"])
    lines = [
        f"Audio benchmark, {report['date']}, {report['wall_seconds'] / 60:.1f} min "
        f"(synthesis {report['synthesis_seconds']:.0f} s), {report['clips']} espeak-ng clips "
        f"({len(report['words'])} words x {n_voices}"
        f" voices x {len(report['speeds'])} speeds x {len(report['pitches'])} pitches), noise "
        f"at {report['snr_db']:g} dB SNR, {report['seeds']} seeds, "
        f"{report['environment']['torch_threads']} torch threads.",
        "",
        f"`{report['command']}`",
        "",
        "| task | method | accuracy (95% CI) | s per run | features, clips/s |",
        "|---|---|---:|---:|---:|",
    ]
    for r in report["summary"]:
        a = r["accuracy"]
        rate = f"{r['clips_per_s']:.0f}" if r["clips_per_s"] else ""
        name = DISPLAY.get(r["method"], r["method"])
        if "chosen" in r:
            name += f" ({', '.join(sorted(set(r['chosen'])))})"
        lines.append(
            f"| {r['task']} | {name} | {a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] "
            f"| {'' if r['seconds'] is None else format(r['seconds'], '.1f')} | {rate} |"
        )
    lines += [
        "",
        "s per run: wall time of one fit (headstart: feature extraction included on the first "
        "task, keywords; the other tasks read the feature cache, except mfcc, which caches "
        "nothing); for the references the classifier only: their feature loop over all clips "
        "is timed once per seed and gives the clips/s column.",
        "",
        f"cross-voice: train {', '.join(report['train_voices'])}; "
        f"test {', '.join(report['test_voices'])}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--snr", type=float, default=10.0, help="noise, dB SNR")
    parser.add_argument("--quick", action="store_true", help="4 words, 4 voices: a smoke run")
    parser.add_argument("--librosa-site", default="/tmp/librosa-site")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "audio"))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    if args.render:
        report = json.loads(Path(args.out).with_suffix(".json").read_text(encoding="utf-8"))
        report = summarise({k: v for k, v in report.items() if k != "summary"})
    else:
        report = summarise(run(args))
    out = Path(args.out)
    if args.quick:  # a smoke run: not a result
        out = Path(tempfile.gettempdir()) / "audio_quick"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
