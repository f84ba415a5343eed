#!/usr/bin/env bash
# Builds the CUDA tests and benchmarks for the GPU machine and collects them in
# gpu-bundle/ (git-ignored), as README.md's "GPU runs" describes: Hopper code (sm_90), Boost.Test,
# OpenBLAS/LAPACK and cudart linked statically, libgfortran shipped alongside.
#
#   scripts/gpu/make_bundle.sh            # configure + build build-gpu/, fill gpu-bundle/
#   CUDA_ARCH=90 BUILD_DIR=/abs/build BUNDLE_DIR=/abs/bundle JOBS=2 NO_STRIP=1 SKIP_BUILD=1 \
#       WITH_CPU_TESTS=1 scripts/gpu/make_bundle.sh
#
# By default only the CUDA targets are built and bundled (test_NN_fast and
# bench_NN_fast of every chapter that has them; the CPU tests are CI's job);
# WITH_CPU_TESTS=1 adds the CPU test executables and the CLI. Device code is
# built with -lineinfo, so compute-sanitizer reports name source lines.
#
# Then the device run (README, "GPU run"): the `device` tool's run with
#   carry: ["gpu-bundle"], command: bash gpu-bundle/run_on_gpu.sh, timeout_s 570
# (the driver keeps to its own 500 s deadline and always prints its summary).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-gpu}
BUNDLE=${BUNDLE_DIR:-$ROOT/gpu-bundle}
ARCH=${CUDA_ARCH:-90}
JOBS=${JOBS:-$(nproc)}
MAX_MIB=60  # the device run carries at most 64 MiB in all

if [ -n "${SKIP_BUILD:-}" ]; then
    echo "== SKIP_BUILD set: bundling what $BUILD already holds"
else
echo "== configure $BUILD (sm_$ARCH, static deps)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_FLAGS=-lineinfo \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DIDATTN_STATIC_DEPS=ON -DIDATTN_PYTHON=OFF -DIDATTN_NOTEBOOKS=OFF

echo "== build"
# The CUDA test and benchmark executables of every chapter that has them; with
# WITH_CPU_TESTS=1 everything left after -DIDATTN_PYTHON=OFF (libraries, the CLI
# that some CPU tests run, every test and benchmark executable).
if [ -n "${WITH_CPU_TESTS:-}" ]; then
    cmake --build "$BUILD" -j "$JOBS"
else
    targets=()
    for dir in "$ROOT"/tests/[0-9][0-9]-*/; do
        compgen -G "$dir/fast_*.cpp" >/dev/null && targets+=("test_$(basename "$dir" | cut -c1-2)_fast")
    done
    for dir in "$ROOT"/bench/[0-9][0-9]-*/; do
        [ -f "$dir/bench_fast.cu" ] && targets+=("bench_$(basename "$dir" | cut -c1-2)_fast")
    done
    echo "   targets: ${targets[*]}"
    cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
fi
fi

echo "== collect into $BUNDLE"
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/py"
pattern='test_*_fast'
[ -n "${WITH_CPU_TESTS:-}" ] && pattern='test_*'
mapfile -t tests < <(find "$BUILD/tests" -maxdepth 3 -type f -name "$pattern" -perm -u+x | sort)
mapfile -t benches < <(find "$BUILD/bench" -maxdepth 3 -type f -name 'bench_*_fast' -perm -u+x | sort)
if [ "${#tests[@]}" -eq 0 ]; then echo "no test executables under $BUILD/tests" >&2; exit 1; fi
cp "${tests[@]}" "$BUNDLE/"
[ "${#benches[@]}" -gt 0 ] && cp "${benches[@]}" "$BUNDLE/"
cli=""
if [ -n "${WITH_CPU_TESTS:-}" ] && [ -x "$BUILD/idattn" ]; then cli="$BUILD/idattn"; cp "$cli" "$BUNDLE/"; fi
cp "$ROOT/scripts/gpu/run_on_gpu.sh" "$BUNDLE/"
# Python scripts of the benchmarks (e.g. the SDPA comparison), by chapter.
for py in "$ROOT"/bench/[0-9][0-9]-*/*.py; do
    [ -e "$py" ] || continue
    chapter=$(basename "$(dirname "$py")")
    mkdir -p "$BUNDLE/py/$chapter"
    cp "$py" "$BUNDLE/py/$chapter/"
done

# Shared libraries the GPU machine lacks: libgfortran (OpenBLAS's Fortran
# runtime) and its libquadmath, taken from where the binaries resolve them.
for lib in libgfortran.so.5 libquadmath.so.0; do
    # (awk reads to the end: an early `exit` would SIGPIPE ldd and fail the pipeline under pipefail)
    path=$(ldd "${tests[@]}" 2>/dev/null | awk -v l="$lib" '$1 == l && $3 ~ /^\// && !p {print $3; p = 1}')
    if [ -z "$path" ]; then
        path=$(/sbin/ldconfig -p | awk -v l="$lib" '$1 == l && !p {print $NF; p = 1}')
    fi
    if [ -n "$path" ]; then cp -L "$path" "$BUNDLE/$lib"; else echo "warning: $lib not found here" >&2; fi
done

# libzip (the .npz reader/writer: Debian has no static libzip, so it is linked
# shared) with its libbz2 and libcrypto, where a bundled binary needs them (one
# that never reads or writes an .npz does not: test_01_fast, for one). zlib,
# which libzip also needs, is on every system.
bundled=("${tests[@]}" "${benches[@]}" ${cli:+"$cli"})
for lib in libzip.so.4 libbz2.so.1.0 libcrypto.so.3; do
    path=$(ldd "${bundled[@]}" 2>/dev/null | awk -v l="$lib" '$1 == l && $3 ~ /^\// && !p {print $3; p = 1}')
    if [ -n "$path" ]; then cp -L "$path" "$BUNDLE/$lib"; fi
done

# What the binaries will look for there. Expected on the GPU machine: the C
# and C++ runtimes, zlib, the driver (libcuda) and CUDA 13's cuBLAS/cuFFT;
# anything else must be in the bundle.
echo "== ldd check"
allowed='^(/[^ ]*/)?(linux-vdso|ld-linux|libc\.|libm\.|libstdc\+\+|libgcc_s|libpthread|libdl\.|librt\.|libz\.so\.1|libcuda\.|libcublas|libcublasLt|libcufft|libgfortran|libquadmath|libzip\.so\.4|libbz2\.so\.1\.0|libcrypto\.so\.3)'
bad=0
for exe in "$BUNDLE"/test_* "$BUNDLE"/bench_* ${cli:+"$BUNDLE/idattn"}; do
    [ -e "$exe" ] || continue
    deps=$(LD_LIBRARY_PATH="$BUNDLE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$exe" | sed 's/^[[:space:]]*//')
    while read -r name _ path _; do
        [ -z "$name" ] && continue
        if [ "$path" = "not" ]; then
            echo "  $(basename "$exe"): $name NOT FOUND"; bad=1
        elif ! [[ "$name" =~ $allowed ]]; then
            echo "  $(basename "$exe"): depends on $name ($path), which the GPU machine may lack"; bad=1
        fi
    done <<< "$deps"
    if grep -q 'libboost\|libopenblas\|liblapack\|libcudart' <<< "$deps"; then
        echo "  $(basename "$exe"): links Boost/OpenBLAS/LAPACK/cudart dynamically; IDATTN_STATIC_DEPS did not take"; bad=1
    fi
done
[ "$bad" -eq 0 ] && echo "  every dependency is either bundled or expected on the GPU machine"

if [ -z "${NO_STRIP:-}" ]; then
    # Host symbols only: the device code (fatbin) stays intact.
    strip "$BUNDLE"/test_* "$BUNDLE"/bench_* ${cli:+"$BUNDLE/idattn"} 2>/dev/null || true
fi

{
    echo "bundle made: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (working tree differs from the commit)')"
    echo "cuda arch: sm_$ARCH"
    nvcc_bin=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
    echo "nvcc: $("${nvcc_bin:-nvcc}" --version 2>/dev/null | tail -1 || true)"
    echo "cmake flags: -DCMAKE_CUDA_FLAGS=-lineinfo -DCMAKE_CUDA_ARCHITECTURES=$ARCH -DIDATTN_STATIC_DEPS=ON -DIDATTN_PYTHON=OFF -DIDATTN_NOTEBOOKS=OFF"
    echo "cli path baked into the tests: ${cli:-none}"
    echo "source dir baked into the tests: $ROOT"
} > "$BUNDLE/BUNDLE_INFO"

size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "== $BUNDLE: $(find "$BUNDLE" -maxdepth 1 -mindepth 1 | wc -l) entries, $((size_kib / 1024)) MiB"
ls -l "$BUNDLE"
cat "$BUNDLE/BUNDLE_INFO"
if [ "$size_kib" -gt $((MAX_MIB * 1024)) ]; then
    # Every binary carries its own copy of the static OpenBLAS (about 25 MiB), so
    # the folder is large but compresses well: pack it, and leave a launcher that
    # unpacks it on the GPU machine and runs the real run_on_gpu.sh from there.
    echo "== over $MAX_MIB MiB: packing into $BUNDLE/bundle.tar.xz (xz -9, 64 MiB window)"
    stage="$BUNDLE.staging"
    rm -rf "$stage"
    mv "$BUNDLE" "$stage"
    mkdir -p "$BUNDLE"
    tar -C "$stage" -cf - . | xz -9 -T"$JOBS" > "$BUNDLE/bundle.tar.xz"
    cp "$stage/BUNDLE_INFO" "$BUNDLE/"
    rm -rf "$stage"
    cat > "$BUNDLE/run_on_gpu.sh" <<'LAUNCHER'
#!/usr/bin/env bash
# Launcher written by scripts/gpu/make_bundle.sh: unpacks bundle.tar.xz next to
# itself and runs the bundle's own run_on_gpu.sh (same options and environment).
# Without xz it unpacks with Python's lzma module.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$here/unpacked"
mkdir -p "$here/unpacked"
if command -v xz >/dev/null; then
    xz -dc "$here/bundle.tar.xz" | tar -C "$here/unpacked" -xf -
else
    echo "xz not found: unpacking with python3's lzma"
    python3 -c 'import lzma, sys, tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])' \
        "$here/bundle.tar.xz" "$here/unpacked"
fi
exec "$here/unpacked/run_on_gpu.sh" "$@"
LAUNCHER
    chmod +x "$BUNDLE/run_on_gpu.sh"
    size_kib=$(du -sk "$BUNDLE" | cut -f1)
    echo "== packed: $((size_kib / 1024)) MiB"
    if [ "$size_kib" -gt $((MAX_MIB * 1024)) ]; then
        echo "error: the packed bundle is still over $MAX_MIB MiB; the device run carries 64 MiB at most" >&2
        exit 1
    fi
fi
[ "$bad" -eq 0 ] || { echo "error: see the ldd check above" >&2; exit 1; }
