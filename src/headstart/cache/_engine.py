"""Extraction engines: what runs the frozen backbone over a dataset, chosen by measurement.

* ``torch``: eager PyTorch, ``torch.inference_mode``, image batches channels-last (the
  fp32 reference every other engine is checked against);
* ``onnx``: ONNX Runtime on an exported graph of the (cut) backbone. The graph is written
  once into the feature-cache entry (``ROOT/<fp[:2]>/<fp>/backbone.onnx``), so it is keyed
  exactly as the features are: a backbone with other weights, preprocessing or cut point
  gets its own graph. The session uses ``torch.get_num_threads()`` intra-op threads;
* ``bf16``: eager PyTorch under ``torch.autocast("cpu", dtype=torch.bfloat16)``, offered
  only where the CPU multiplies bf16 natively (``amx_bf16`` or ``avx512_bf16`` in
  ``/proc/cpuinfo``); elsewhere it is emulated and slow, so it is never assumed.

``auto`` (the default) measures: the first :data:`PARITY_ITEMS` items of the first batch
run through ``torch`` (the reference) and then through every other candidate, which must
pass the **parity check**: for every row, the cosine similarity of its features with the
fp32 reference's is at least :data:`PARITY_COSINE`, i.e.
``min_i <a_i, b_i> / (|a_i| |b_i|) >= 0.999`` (a relative error ``|a_i - b_i| / |b_i|`` of
at most about 0.045 when the norms agree; ONNX Runtime measures about 1e-7 below 1, bf16
about 4e-5 to 3e-4). Each of these runs is done twice and the second timed (the first
call of an engine is its slowest). Engines within :data:`PROBE_CLOSE` of the fastest rate
on those few items then each run :data:`PROBE_ROUNDS` full batch in turn, timed, and the
fastest extracts the rest; every full probe batch is real work (its features are kept).
A forced engine (``--engine onnx``) is still checked; one that fails, cannot be exported
or, for ``bf16``, has no native support falls back to ``torch`` with a note. Jobs under
:data:`PROBE_MIN_ITEMS` items skip the probe and run on ``torch`` unless the graph is
already cached (an export costs seconds that a small job does not win back).

The probe's verdict is kept next to the graph (``engine.json``: the engine chosen, each
candidate's parity and rate), keyed by the machine (CPU name and flags, threads) and the
torch and ONNX Runtime versions. A later extraction with the same backbone on the same
machine reuses it and skips the probe (and a forced engine that passed there skips its
check); another machine, thread count or version probes again. Delete the file to
re-measure (the machine's load may have changed).

The feature cache's key does **not** depend on the engine: the parity check bounds how far
an engine's features may be from the reference's, so they are the same features for every
use downstream (the heads fit on them reach the same accuracy, measured in
``bench/throughput.py``), and a cache filled by one engine serves every other.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart._io import atomic_write_bytes, atomic_write_json
from headstart.zoo._backbone import Backbone

ENGINES = ("auto", "torch", "onnx", "bf16")
PARITY_COSINE = 0.999
PROBE_ROUNDS = 1
PROBE_CLOSE = 0.5
PARITY_ITEMS = 8
PROBE_MIN_ITEMS = 512
GRAPH_NAME = "backbone.onnx"
VERDICT_NAME = "engine.json"

Runner = Callable[[Any], np.ndarray]


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (the platform's name elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def native_bf16(flags: Iterable[str] | None = None) -> bool:
    """Whether the CPU has native bf16 arithmetic (AMX or AVX-512 BF16)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"--engine {name}: choose one of: {', '.join(ENGINES)}")
    return name


def parity(features: np.ndarray, reference: np.ndarray) -> float:
    """The smallest row-wise cosine similarity of ``features`` with ``reference`` (both
    ``(N, D)``): ``min_i <a_i, b_i> / (|a_i| |b_i|)``; rows that are zero in both count 1."""
    a = features.astype(np.float64)
    b = reference.astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.abs(a).sum(1) == 0) & (np.abs(b).sum(1) == 0)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    cos = np.where(both_zero, 1.0, cos)
    return float(cos.min()) if len(cos) else 1.0


def torch_runner(backbone: Backbone) -> Runner:
    def run(inputs: Any) -> np.ndarray:
        with torch.inference_mode():
            return backbone(inputs).float().numpy()

    return run


def bf16_runner(backbone: Backbone) -> Runner:
    def run(inputs: Any) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return backbone(inputs).float().numpy()

    return run


def onnx_runner(
    backbone: Backbone, inputs: Any, graph: Path | None, threads: int | None = None
) -> Runner:
    """An ONNX Runtime session on the backbone's graph: read from ``graph`` when it exists,
    else exported (with ``inputs``, a collated batch, as the example) and written there."""
    from headstart.bundle._export import graph_inputs, module_graph
    from headstart.bundle._runtime import to_feeds

    data = None
    if graph is not None and graph.is_file():
        data = graph.read_bytes()
    if data is None:
        example, dynamic = graph_inputs(inputs)
        data = module_graph(backbone, example, dynamic, "features", backbone.spec.name)
        if graph is not None:
            with contextlib.suppress(OSError):  # a read-only cache: export again next time
                atomic_write_bytes(graph, data)
    session = _session(data, threads or torch.get_num_threads())
    names = [i.name for i in session.get_inputs()]

    def run(batch: Any) -> np.ndarray:
        return np.asarray(session.run(None, to_feeds(batch, names))[0], dtype=np.float32)

    return run


_SESSIONS: dict[tuple[str, int], Any] = {}
SESSIONS_KEPT = 4


def _session(data: bytes, threads: int) -> Any:
    """An ONNX Runtime session on the graph ``data``, kept for the process (the
    :data:`SESSIONS_KEPT` most recent, keyed by the graph's SHA-256 and the thread count):
    building one and its first run (memory arenas, kernel selection) cost about 0.5 s for
    Lite0, which a second extraction with the same backbone (another split, another
    command of one session) need not pay again. Spinning is off: the decode thread needs
    the core an idle intra-op thread would spin on (measured a few percent faster on 2
    cores, ``bench/throughput.py``)."""
    import hashlib

    from headstart.bundle._runtime import onnx_session

    key = (hashlib.sha256(data).hexdigest(), threads)
    session = _SESSIONS.pop(key, None)
    if session is None:
        session = onnx_session(data, threads, spinning=False)
    _SESSIONS[key] = session  # most recent last
    while len(_SESSIONS) > SESSIONS_KEPT:
        _SESSIONS.pop(next(iter(_SESSIONS)))
    return session


@dataclass
class EngineReport:
    """What an extraction ran on: the engine asked for and the one used, each candidate's
    parity (smallest row cosine with the fp32 reference) and probe rate (items/s, best
    round), notes (fallbacks and why), the seconds the probe spent on its sample (beyond
    real work), and whether a cached verdict was reused instead."""

    requested: str
    used: str = "torch"
    parity: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe_seconds: float = 0.0
    reused: bool = False
    onnx_threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "used": self.used,
            "parity_cosine": self.parity,
            "probe_items_per_s": self.rates,
            "tolerance": {"min_row_cosine": PARITY_COSINE},
            "notes": self.notes,
            "probe_seconds": self.probe_seconds,
            "verdict_reused": self.reused,
            "onnx_threads": self.onnx_threads,
            "cpu": cpu_name(),
            "native_bf16": native_bf16(),
            "threads": torch.get_num_threads(),
        }


def candidates(requested: str, n_items: int, graph: Path | None) -> tuple[list[str], list[str]]:
    """The engines to try besides ``torch`` for ``requested`` on ``n_items``, and notes."""
    check_engine(requested)
    notes: list[str] = []
    if requested == "torch":
        return [], notes
    if requested == "auto":
        small = n_items < PROBE_MIN_ITEMS and not (graph is not None and graph.is_file())
        if small:
            return [], notes
        return ["onnx", *(["bf16"] if native_bf16() else [])], notes
    if requested == "bf16" and not native_bf16():
        notes.append("bf16: this CPU has no native bf16 (amx_bf16 / avx512_bf16); ran torch")
        return [], notes
    return [requested], notes


def _timed(run: Runner, inputs: Any, n: int) -> tuple[np.ndarray, float]:
    """``run(inputs)`` and its rate in items per second."""
    t = time.perf_counter()
    out = run(inputs)
    return out, n / max(time.perf_counter() - t, 1e-9)


def head_rows(inputs: Any, k: int) -> tuple[Any, int]:
    """The first ``k`` items of a collated batch and their number; the whole batch when
    its parts cannot be cut by rows (word ids with offsets)."""
    if isinstance(inputs, torch.Tensor):
        return inputs[:k], min(k, len(inputs))
    n = {int(v.shape[0]) for v in inputs.values()} if isinstance(inputs, dict) else set()
    if len(n) == 1 and "offsets" not in inputs:
        return {key: v[:k] for key, v in inputs.items()}, min(k, n.pop())
    return inputs, Backbone.batch_size(inputs)


def verdict_key() -> dict[str, Any]:
    """What a probe's verdict depends on besides the backbone (which keys the entry)."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    m = machine()
    return {
        "cpu": m["cpu"],
        "flags": m["flags"],
        "threads": m["torch_threads"],
        "torch": torch.__version__,
        "onnxruntime": ort_version,
    }


def read_verdict(graph: Path | None) -> dict[str, Any] | None:
    """The verdict kept next to ``graph`` when it was made on this machine, else ``None``."""
    if graph is None:
        return None
    try:
        verdict = json.loads((graph.parent / VERDICT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(verdict, dict) or verdict.get("key") != verdict_key():
        return None
    return verdict


def write_verdict(graph: Path | None, report: EngineReport) -> None:
    if graph is None:
        return
    verdict = {
        "key": verdict_key(),
        "used": report.used,
        "parity": report.parity,
        "rates": report.rates,
        "onnx_threads": report.onnx_threads,
    }
    with contextlib.suppress(OSError):  # a read-only cache: probe again next time
        atomic_write_json(graph.parent / VERDICT_NAME, verdict)


def _make_runner(
    name: str, backbone: Backbone, inputs: Any, graph: Path | None, threads: int | None = None
) -> Runner:
    if name == "onnx":
        return onnx_runner(backbone, inputs, graph, threads)
    return bf16_runner(backbone) if name == "bf16" else torch_runner(backbone)


def _from_verdict(
    backbone: Backbone, requested: str, inputs: Any, graph: Path | None, report: EngineReport
) -> Runner | None:
    """The runner a cached verdict names for ``requested`` (``None``: probe instead)."""
    verdict = read_verdict(graph)
    if verdict is None:
        return None
    name = verdict.get("used") if requested == "auto" else requested
    passed = name == "torch" or verdict.get("parity", {}).get(name, 0.0) >= PARITY_COSINE
    usable = name in ENGINES[1:] and (name != "onnx" or (graph is not None and graph.is_file()))
    if not (passed and usable) or (name == "bf16" and not native_bf16()):
        return None
    try:
        threads = verdict.get("onnx_threads") if name == "onnx" else None
        run = _make_runner(str(name), backbone, inputs, graph, threads)
    except Exception:  # the graph no longer loads: measure again
        return None
    report.used, report.reused = str(name), True
    report.onnx_threads = verdict.get("onnx_threads") if name == "onnx" else None
    report.parity = dict(verdict.get("parity", {}))
    report.rates = dict(verdict.get("rates", {}))
    report.notes.append(f"{name}: chosen by the probe verdict kept in {VERDICT_NAME}")
    return run


def _probe(
    name: str,
    backbone: Backbone,
    inputs: Any,
    graph: Path | None,
    sample: Any,
    k: int,
    report: EngineReport,
) -> tuple[Runner, np.ndarray, float]:
    """Engine ``name``'s runner, its output on ``sample`` and its rate (second call timed).
    ONNX Runtime is tried at torch's thread count and, when that is more, at one thread:
    on cores that other work keeps busy, one thread that never waits for a descheduled
    sibling measured faster (``bench/throughput.py``); the faster one is kept."""
    threads = torch.get_num_threads()
    best: tuple[Runner, np.ndarray, float] | None = None
    for t in [threads, 1][: 2 if name == "onnx" and threads > 1 else 1]:
        if t != threads and not (graph is not None and graph.is_file()):
            break  # the graph is not kept: a second export would cost more than it saves
        run = _make_runner(name, backbone, inputs, graph, t if name == "onnx" else None)
        run(sample)
        got, rate = _timed(run, sample, k)
        if best is None or rate > best[2]:
            best = (run, got, rate)
            if name == "onnx":
                report.onnx_threads = t
    assert best is not None
    return best


def run_engines(
    backbone: Backbone,
    batches: Iterator[tuple[list[int], Any]],
    requested: str,
    n_items: int,
    graph: Path | None,
    report: EngineReport,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(indices, features)`` for every batch of ``batches``, run on the engine that
    ``requested`` resolves to (module docstring); ``report`` is filled in as it goes."""
    runners: dict[str, Runner] = {"torch": torch_runner(backbone)}
    tries, notes = candidates(requested, n_items, graph)
    report.notes += notes
    first = next(batches, None)
    if first is None:
        return
    if requested != "torch":
        reused = _from_verdict(backbone, requested, first[1], graph, report)
        if reused is not None:
            yield first[0], reused(first[1])
            for idx, inputs in batches:
                yield idx, reused(inputs)
            return
    started = time.perf_counter()
    if tries:
        sample, k = head_rows(first[1], PARITY_ITEMS)
        ref = runners["torch"](sample)  # the first call warms up; the second is timed
        ref, report.rates["torch"] = _timed(runners["torch"], sample, k)
        for name in tries:
            try:
                run, got, rate = _probe(name, backbone, first[1], graph, sample, k, report)
            except Exception as exc:  # an export or runtime failure: that engine is out
                report.notes.append(f"{name}: failed ({str(exc).splitlines()[0][:200]}); not used")
                continue
            report.parity[name] = cos = parity(got, ref)
            if cos >= PARITY_COSINE:
                runners[name], report.rates[name] = run, rate
            else:
                report.notes.append(
                    f"{name}: parity check failed (row cosine {cos:.6f} < {PARITY_COSINE}); "
                    "not used"
                )
    report.probe_seconds = time.perf_counter() - started
    if requested != "auto":
        report.used = requested if requested in runners else "torch"
        if report.used != requested and not report.notes:
            report.notes.append(f"{requested}: not usable here; ran torch")
    else:
        fastest = max(report.rates.values(), default=0.0)
        close = [n for n in runners if report.rates.get(n, fastest) >= PROBE_CLOSE * fastest]
        report.used = max(close, key=lambda n: report.rates.get(n, 0.0))
        if len(close) > 1:  # too close to call on a few items: a full batch each, in turn
            pending: list[tuple[list[int], Any]] = [first]
            for _ in range(PROBE_ROUNDS):
                for name in close:
                    nxt = pending.pop() if pending else next(batches, None)
                    if nxt is None:
                        break
                    out, report.rates[name] = _timed(runners[name], nxt[1], len(nxt[0]))
                    yield nxt[0], out
            first = None
            report.used = max(close, key=report.rates.__getitem__)
        if tries:
            write_verdict(graph, report)
    chosen = runners[report.used]
    if first is not None:
        yield first[0], chosen(first[1])
    for idx, inputs in batches:
        yield idx, chosen(inputs)


def graph_path(entry: Path | None) -> Path | None:
    return None if entry is None else entry / GRAPH_NAME


def machine() -> dict[str, Any]:
    """The CPU this runs on, for benchmark records: name, cores, torch's capability and
    the flags that matter for these engines."""
    keep = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile")
    return {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        "flags": sorted(f for f in cpu_flags() if f in keep),
        "native_bf16": native_bf16(),
    }


__all__ = [
    "ENGINES",
    "PARITY_COSINE",
    "VERDICT_NAME",
    "EngineReport",
    "cpu_flags",
    "machine",
    "native_bf16",
    "parity",
    "run_engines",
]
