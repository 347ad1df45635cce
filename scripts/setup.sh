#!/usr/bin/env bash
# scripts/setup.sh — make this checkout ready to build, run and test.
#
# Idempotent: a second run on a ready machine installs nothing and rebuilds
# only what changed.  Steps:
#   1. system packages (Debian/Ubuntu, as root): cmake, a C compiler, make,
#      OpenBLAS headers, the Python venv module and headers — each installed
#      only when it is missing;
#   2. a project-local virtual environment .venv with requirements.txt;
#   3. the `ember` package built and installed into .venv (skipped when the
#      sources have not changed since the last install);
#   4. the CMake tree in build/ (C library, extension, C tests), configured
#      with .venv's Python.
#
# Options:  --no-build   skip step 4 (scripts/test.sh configures build/ itself)
# Env:      PYTHON=python3.x   interpreter for the venv (default: python3, >= 3.10)
#           JOBS=N             parallel build jobs (default: 2)
#           XCS_CMAKE_ARGS     extra arguments for the build/ configure step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
JOBS="${JOBS:-2}"
DO_BUILD=1
for arg in "$@"; do
  case "$arg" in
    --no-build) DO_BUILD=0 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# ------------------------------------------------------------------ 1. system
# Each check asks for the capability, not the package name, so a machine that
# has the tool from elsewhere (pyenv's Python, a hand-built cmake) does nothing.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
if ! dpkg -s libopenblas-dev >/dev/null 2>&1 &&
   ! ls /usr/include/cblas.h /usr/include/*/cblas.h /usr/include/openblas/cblas.h >/dev/null 2>&1; then
  missing+=(libopenblas-dev)
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  missing+=(python3 python3-venv python3-dev)
else
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  "$PYTHON" - >/dev/null 2>&1 <<'EOF' || missing+=(python3-dev)
import os, sysconfig
raise SystemExit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
EOF
fi
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup.sh: missing system packages: ${missing[*]}" >&2
    echo "          install them (e.g. sudo apt-get install ${missing[*]}) and rerun" >&2
    exit 1
  fi
fi

"$PYTHON" - <<'EOF'
import sys
if sys.version_info < (3, 10):
    raise SystemExit(f"setup.sh: Python >= 3.10 is needed, {sys.executable} is {sys.version.split()[0]}")
EOF

# ------------------------------------------------------------------ 2. venv
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
if ! "$VPY" -c 'import sys; assert sys.version_info >= (3, 10)' >/dev/null 2>&1; then
  log "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

# A stamp of requirements.txt skips pip entirely when nothing changed.
hash_files() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }
REQ_STAMP="$VENV/.xcs-requirements"
req_hash="$(hash_files requirements.txt)"
if [[ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$req_hash" ]]; then
  log "installing requirements.txt into .venv"
  "$VPY" -m pip install --disable-pip-version-check -q -r requirements.txt
  echo "$req_hash" >"$REQ_STAMP"
fi

# ------------------------------------------------------------------ 3. package
# Reinstall when any input of the build changed (sources, CMake files,
# pyproject.toml) or when the installed package cannot be imported.
PKG_STAMP="$VENV/.xcs-package"
pkg_inputs() {
  find CMakeLists.txt pyproject.toml src bindings -type f \
       ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort
}
pkg_hash="$(pkg_inputs | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f pyproject.toml ]]; then
  echo "setup.sh: pyproject.toml is missing; cannot install the ember package" >&2
  exit 1
fi
if [[ "$(cat "$PKG_STAMP" 2>/dev/null)" != "$pkg_hash" ]] ||
   ! (cd / && "$VPY" -c 'import ember.xcs') >/dev/null 2>&1; then
  log "building and installing the ember package into .venv"
  rm -f "$PKG_STAMP"
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    "$VPY" -m pip install --disable-pip-version-check -q --no-build-isolation .
  (cd / && "$VPY" -c 'import ember.xcs') || {
    echo "setup.sh: the installed package does not import" >&2; exit 1; }
  echo "$pkg_hash" >"$PKG_STAMP"
fi

# ------------------------------------------------------------------ 4. build/
if ((DO_BUILD)); then
  log "configuring and building build/"
  # shellcheck disable=SC2086
  cmake -S . -B build -DPython3_EXECUTABLE="$VPY" -DXCS_PYTHON=ON ${XCS_CMAKE_ARGS:-}
  cmake --build build -j "$JOBS"
fi
log "ready: .venv with Python $("$VPY" -c 'import sys; print(sys.version.split()[0])') and ember installed$( ((DO_BUILD)) && echo ', build/ built')"
