"""A fit's outputs for the reports: reading the files of a fit folder, picking the most
confident mistakes, and showing an item (an inline thumbnail, or escaped, shortened text)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from headstart.data._audio import AUDIO_EXTENSIONS
from headstart.data._items import IMAGE_EXTENSIONS
from headstart.evaluate._report_html import Html, esc, join, tag

TEXT_CHARS = 160  # a text item longer than this is cut, the full text in its tooltip


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Rows of ``predictions.csv`` (``item, label, predicted, probability, correct``) with
    ``probability`` a float and ``correct`` a bool; ``[]`` when the file is missing."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return [normalise(row) for row in csv.DictReader(f)]


def normalise(row: Mapping[str, Any]) -> dict[str, Any]:
    """One prediction row with typed ``probability`` (float) and ``correct`` (bool)."""
    correct = row.get("correct")
    if isinstance(correct, str):
        correct = correct.strip().lower() in ("1", "true", "yes")
    return {
        "item": str(row["item"]),
        "label": str(row["label"]),
        "predicted": str(row["predicted"]),
        "probability": float(row["probability"]),
        "correct": bool(correct),
    }


def confident_mistakes(
    predictions: Sequence[Mapping[str, Any]], limit: int = 12
) -> list[dict[str, Any]]:
    """The wrong predictions, most confident first, at most ``limit``."""
    wrong = [normalise(r) for r in predictions if not normalise(r)["correct"]]
    return sorted(wrong, key=lambda r: -r["probability"])[:limit]


def is_image_items(items: Sequence[str]) -> bool:
    """Whether ``items`` are files shown as thumbnails (every one ends in an image or an
    audio extension: audio is shown as its spectrogram)."""
    shown = IMAGE_EXTENSIONS | AUDIO_EXTENSIONS
    return bool(items) and all(Path(i).suffix.lower() in shown for i in items)


def spectrogram_uri(path: str, size: int = 64) -> str | None:
    """A small PNG of the log-mel spectrogram (40 bands, 16 kHz; time left to right, low
    frequencies at the bottom, 60 dB of range) of the audio file at ``path`` as a
    ``data:`` URI; ``None`` if unreadable."""
    import numpy as np
    from PIL import Image

    from headstart.data._audio import log_mel, read_audio, resample

    try:
        audio = read_audio(path)
    except (OSError, ValueError, RuntimeError):
        return None
    mel = log_mel(resample(audio.samples, audio.rate, 16000), 16000).T[::-1]
    top = float(mel.max())
    scaled = np.clip((mel - (top - np.log(1e6))) / np.log(1e6), 0, 1)  # 60 dB below the peak
    img = Image.fromarray((255 * (1 - scaled)).astype(np.uint8)).resize((size * 4, size * 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail_uri(path: str, size: int = 64) -> str | None:
    """A small JPEG of the image at ``path`` (for an audio file its spectrogram, see
    :func:`spectrogram_uri`) as a ``data:`` URI; ``None`` if unreadable."""
    from PIL import Image, ImageOps

    if Path(path).suffix.lower() in AUDIO_EXTENSIONS:
        return spectrogram_uri(path, size)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((size * 2, size * 2))  # 2x for sharp display on high-DPI screens
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=82)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def shorten(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def item_html(item: str, image: bool, size: int = 64) -> Html:
    """An image item as an inline thumbnail (its path if the file is gone); a text item
    escaped and shortened, the full text in a tooltip."""
    if image:
        uri = thumbnail_uri(item, size)
        if uri is None:
            return tag("div", f"(image not found) {item}", class_="path")
        return Html(f'<img src="{uri}" alt="{esc(Path(item).name)}" title="{esc(item)}">')
    return tag("div", shorten(item), class_="text", title=item if len(item) > TEXT_CHARS else None)


def mistake_card(row: Mapping[str, Any], image: bool) -> Html:
    """One wrong prediction: the item, its true label, the prediction and its confidence."""
    meta = [
        tag("div", join(["true ", tag("span", row["label"], class_="good")])),
        tag("div", join(["predicted ", tag("span", row["predicted"], class_="bad")])),
        tag("div", f"confidence {100 * row['probability']:.1f}%", class_="meta"),
    ]
    if image:
        meta.append(tag("div", Path(row["item"]).name, class_="path"))
    body = [item_html(row["item"], image), tag("div", join(meta))]
    return tag(
        "div",
        join(body),
        class_="mistake",
        data_label=row["label"],
        data_predicted=row["predicted"],
        data_probability=f"{row['probability']:.4f}",
    )


def examples_by_class(
    predictions: Sequence[Mapping[str, Any]], classes: Sequence[str], per_class: int = 6
) -> dict[str, list[str]]:
    """Up to ``per_class`` test items of each true class, in file order."""
    out: dict[str, list[str]] = {c: [] for c in classes}
    for r in predictions:
        bucket = out.setdefault(str(r["label"]), [])
        if len(bucket) < per_class:
            bucket.append(str(r["item"]))
    return out


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else default


def read_fit_outputs(
    run_dir: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """``(metrics, history, predictions, source)`` of a folder written by ``fit``."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / "metrics.json")
    if metrics is None:
        raise FileNotFoundError(f"no metrics.json in {run_dir}")
    history = read_json(run_dir / "history.json", [])
    bundle = read_json(run_dir / "headstart.json", {})
    source = (bundle.get("fit") or {}).get("source")
    return metrics, history, read_predictions(run_dir / "predictions.csv"), source


__all__ = [
    "confident_mistakes",
    "examples_by_class",
    "is_image_items",
    "item_html",
    "mistake_card",
    "normalise",
    "read_fit_outputs",
    "read_json",
    "read_predictions",
    "spectrogram_uri",
    "thumbnail_uri",
]
