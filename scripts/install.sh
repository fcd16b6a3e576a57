#!/usr/bin/env bash
# One-command set-up. Installs the CPU build of torch first (so botorch's unpinned torch
# requirement is already met and pip never pulls a multi-GB CUDA build), then the project with
# its dev extras, then badcrossbar (the circuit-solver reference) without its plotting-only
# pycairo dependency. Works on Python >= 3.10 with pip; elsewhere torch==2.13.0 comes from PyPI's
# CPU index if you set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
PY="${PYTHON:-python3}"
"$PY" -m pip install --quiet "torch==2.13.0"
"$PY" -m pip install --quiet -e ".[dev]"
"$PY" -m pip install --quiet --no-deps "badcrossbar==1.1.0"
