#!/usr/bin/env bash
# The project's two entry points, for a fresh Debian 12 / Ubuntu machine (root or sudo):
#
#   bash scripts/run.sh main   install what is missing, build, run the whole derivation
#                              (references, fast kernels where a GPU exists, the
#                              equivalence table, the plots) into out/derive/
#   bash scripts/run.sh test   install what is missing, build, run every test: CPU and
#                              CUDA tests (skipped with the reason without a GPU), the
#                              equation trace, the Python module, the notebooks; then the
#                              CPU tests again under AddressSanitizer + UBSan
#
# Environment: BUILD_DIR (default build), JOBS (default nproc), IDATTN_SKIP_INSTALL=1 to
# skip the package check, IDATTN_SKIP_SANITIZE=1 to skip the sanitizer pass (not in CI).
set -euo pipefail

mode=${1:-}
case "$mode" in
  main|test) ;;
  *) echo "usage: bash scripts/run.sh main|test" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}  # tests run in parallel; keep BLAS single-threaded

# Debian's interpreter has numpy; the python3 first on PATH may not.
py=/usr/bin/python3

packages=(cmake g++ ninja-build ccache pkg-config libxtensor-dev libxtensor-blas-dev libopenblas-dev
          liblapack-dev libboost-test-dev libfftw3-dev libzip-dev pybind11-dev python3-dev python3-numpy
          python3-matplotlib jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat
          python3-torch)

install_missing() {
  [ "${IDATTN_SKIP_INSTALL:-0}" = 1 ] && return 0
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { echo "== packages: all present"; return 0; }
  echo "== installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_and_build() {  # dir, extra cmake args...
  local dir=$1; shift
  echo "== configure $dir $*"
  cmake -S . -B "$dir" -G Ninja -DPython_EXECUTABLE=$py "$@" > "$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; exit 1; }
  grep -E "idattn:" "$dir.configure.log" || true
  echo "== build $dir ($jobs jobs)"
  cmake --build "$dir" -j "$jobs"
}

install_missing
mkdir -p "$(dirname "$build")"
configure_and_build "$build"

if [ "$mode" = main ]; then
  echo "== the derivation (out/derive)"
  PYTHONPATH="$root/$build/python" MPLBACKEND=Agg "$py" scripts/derive.py --out out/derive
  exit $?
fi

echo "== tests ($build)"
(cd "$build" && ctest -j "$jobs" --output-on-failure --timeout 900)
# CTest lists skipped tests without their output: say why they were skipped.
if grep -qh "^SKIPPED" "$build/Testing/Temporary/LastTest.log" 2>/dev/null; then
  echo "== skipped test executables and why:"
  grep -h "^SKIPPED" "$build/Testing/Temporary/LastTest.log" | sort -u | sed 's/^/   /'
fi

if [ "${IDATTN_SKIP_SANITIZE:-0}" != 1 ]; then
  san="${build}-asan"
  configure_and_build "$san" -DIDATTN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  echo "== CPU tests under AddressSanitizer + UndefinedBehaviorSanitizer ($san)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  (cd "$san" && ctest -j "$jobs" -L cpu --output-on-failure --timeout 900)
fi
echo "== all tests passed"
