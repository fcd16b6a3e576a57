#!/usr/bin/env bash
# One-command set-up. Installs the CPU build of torch first (so botorch's unpinned torch
# requirement is already met and pip never pulls a multi-GB CUDA build), then the project with
# its dev extras, then badcrossbar (the circuit-solver reference) without its plotting-only
# pycairo dependency. Works on Python >= 3.10 with pip; elsewhere torch==2.13.0 comes from PyPI's
# CPU index if you set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
#
# On Debian/Ubuntu it first installs the system libraries the Qt "xcb" platform plugin needs to
# open the GUI on a desktop (a fresh machine lacks some: the GUI then stops with "Could not load
# the Qt platform plugin xcb"): with apt-get when run as root, else it prints the command to
# run. The tests do not need them (they run Qt offscreen), so this step never fails the set-up;
# XBAR_SKIP_SYSTEM_PACKAGES=1 skips it. The same step installs hdf5-tools (h5clear), against which a
# test checks the data file's crash recovery. What a real bench needs besides (a VISA library, the
# Digilent WaveForms runtime) is in the README's "Running on a real bench" section.
set -euo pipefail
PY="${PYTHON:-python3}"

# The shared libraries of PyQt6's Qt6/plugins/platforms/libqxcb.so and libQt6XcbQpa.so.6 on
# Debian 12 (`ldd` on both; libxcb-cursor0 is required since Qt 6.5), as Debian packages.
QT_XCB_PACKAGES=(
    libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0
    libxcb-xkb1 libx11-xcb1 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3
    # h5clear (HDF5's tool): tests/test_datastore.py checks the data file's crash recovery
    # against it byte for byte (skipped with the reason where it is absent)
    hdf5-tools
)

install_qt_system_libraries() {
    if [ "${XBAR_SKIP_SYSTEM_PACKAGES:-0}" = "1" ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
        echo "note: no apt-get here: for the GUI on a desktop, install the X11/xcb libraries" \
            "of Qt 6 (xcb-cursor, xcb-icccm, xcb-keysyms, ...) with your system's packages" >&2
        return 0
    fi
    local missing=() pkg
    for pkg in "${QT_XCB_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "note: the GUI needs these system libraries; install them with:" >&2
        echo "  sudo apt-get install ${missing[*]}" >&2
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 \
             && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }
    then
        echo "installed (Qt xcb libraries for the GUI, HDF5 tools): ${missing[*]}"
    else
        echo "note: could not install ${missing[*]} with apt-get (offline?); the GUI needs" \
            "them on a desktop, the tests do not" >&2
    fi
}

install_qt_system_libraries
"$PY" -m pip install --quiet "torch==2.13.0"
"$PY" -m pip install --quiet -e ".[dev]"
"$PY" -m pip install --quiet --no-deps "badcrossbar==1.1.0"
