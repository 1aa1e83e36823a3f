"""``fit --resume`` after ``kill -9``: the run continues from its last epoch checkpoint and
ends with the same weights as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from headstart._fit import checkpoint_dir

EPOCHS = 40  # long enough to be killed midway; each epoch is milliseconds


def _command(data: Path, out: Path, *extra: str) -> list[str]:
    exe = str(Path(sys.executable).with_name("headstart"))
    return [
        exe,
        "fit",
        str(data),
        "--out",
        str(out),
        "--model",
        "test_words.tiny",
        "--strategy",
        "finetune",
        "--unfreeze",
        "all",
        "--epochs",
        str(EPOCHS),
        "--patience",
        str(EPOCHS),
        "--head-epochs",
        "5",
        "--lr",
        "0.003",
        *extra,
    ]


def _epoch_of(ckpt: Path) -> int:
    try:
        return int(json.loads((ckpt / "state.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_resume_after_kill_gives_the_weights_of_an_uninterrupted_run(tiny_texts, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_command(tiny_texts, reference, "-q"), check=True, env=env, capture_output=True)

    out = tmp_path / "model"
    ckpt = checkpoint_dir(out)
    proc = subprocess.Popen(_command(tiny_texts, out, "-q"), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _epoch_of(ckpt) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _epoch_of(ckpt)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 3 <= killed_at < EPOCHS and not out.exists()

    done = subprocess.run(
        _command(tiny_texts, out, "--resume"), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and f"after epoch {killed_at}" in done.stderr, done.stdout
    assert not ckpt.exists()  # the finished run removes its checkpoint
    assert [p.name for p in tmp_path.iterdir() if ".headstart-tmp-" in p.name] == []

    ours, theirs = (
        load_file(str(out / "model.safetensors")),
        load_file(str(reference / "model.safetensors")),
    )
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert (ours[k] == theirs[k]).all(), k
    h_ours = json.loads((out / "history.json").read_text())
    h_ref = json.loads((reference / "history.json").read_text())

    def same(rows: list[dict]) -> list[dict]:  # everything but the wall time
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert same(h_ours) == same(h_ref)
    assert sum(r["stage"] == "finetune" for r in h_ours) == EPOCHS + 1  # epoch 0 included
