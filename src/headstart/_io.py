"""Atomic file writes: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_modes(root: Path) -> None:
    """Give ``root`` (a file, or a folder and everything in it) the permissions a plain
    ``open()`` / ``mkdir()`` would have: ``mkstemp`` / ``mkdtemp`` make them private."""
    mask = _umask()
    paths = [root, *root.rglob("*")] if root.is_dir() else [root]
    for p in paths:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _publish_modes(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


MARKER = ".headstart-output"  # in every folder headstart writes: it may be replaced
TMP_TAG = ".headstart-tmp-"  # temporary folders: ``.<name>.headstart-tmp-<pid>-<random>``
# What marked a folder as a headstart output in 0.1, before the marker: file -> its keys.
_LEGACY = {
    "headstart.json": ("format", "headstart_version"),
    "compare.json": ("kind",),
    "run.json": ("key",),
}


class OutputError(ValueError):
    """``out`` cannot be written without destroying something the user owns."""


def is_headstart_output(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` is a folder headstart wrote (and may therefore replace): it holds
    the marker file, or one of the files that marked outputs of version 0.1."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    for name, keys in _LEGACY.items():
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and all(k in config for k in keys):
            return True
    return False


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out(out: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Refuse, before any work starts, an output folder whose writing would destroy what
    the user owns: an existing file, a non-empty folder headstart did not write, a folder
    that is, contains or lies inside one of ``inputs`` (data folders or files). Also refuse
    one whose parent cannot be written. Returns ``out`` as a :class:`Path`."""
    out = Path(out)
    real = Path(os.path.realpath(out))
    for item in inputs:
        src = Path(os.path.realpath(item))
        if _within(src, real):
            raise OutputError(f"--out {out}: it holds the input data {item}; choose a new folder")
        if src.is_dir() and _within(real, src):
            raise OutputError(
                f"--out {out}: it lies inside the input data folder {item} (it would be read "
                "as data next time); choose a folder outside it"
            )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"--out {out}: a file is there; choose a new folder")
    if out.is_dir() and any(out.iterdir()) and not is_headstart_output(out):
        raise OutputError(
            f"--out {out}: the folder exists and was not written by headstart; "
            "choose a new or empty folder (nothing was changed)"
        )
    parent = real.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: cannot write in {parent}")
    return out


def clean_stale_temps(parent: Path) -> list[Path]:
    """Remove temporary folders that killed headstart processes left in ``parent`` (their
    process id no longer runs on this machine); returns what was removed."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for p in parent.iterdir():
        if not (p.name.startswith(".") and TMP_TAG in p.name and p.is_dir()):
            continue
        try:
            pid = int(p.name.split(TMP_TAG, 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system cannot."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing an older headstart output.

    The swap is atomic where the system allows (Linux): at every instant ``final`` is
    either the old folder or the new one. Elsewhere the old folder is renamed aside first.
    """
    final = Path(final)
    tmp = Path(tmp)
    (tmp / MARKER).touch()
    _publish_modes(tmp)
    if final.is_dir() and not final.is_symlink():
        if any(final.iterdir()) and not is_headstart_output(final):
            raise OutputError(f"{final}: not a headstart output; it was left untouched")
        if _exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
            return
        old = final.with_name(f".{final.name}{TMP_TAG}{os.getpid()}-old")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    elif final.exists() or final.is_symlink():
        raise OutputError(f"{final}: a file is there; it was left untouched")
    else:
        os.replace(tmp, final)


@contextmanager
def atomic_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a folder atomically: yields an empty temporary sibling of ``final``; when the
    block ends without error it replaces ``final`` (:func:`replace_dir`), otherwise it is
    removed. Temporary folders of killed runs next to ``final`` are cleaned first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{TMP_TAG}{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
        replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
