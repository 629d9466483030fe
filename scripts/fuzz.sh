#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer (clang, -DFUZZ=ON) in its own build directory and
# runs each for a fixed time over a copy of its corpus in the tree (tests/fuzz/corpus/<target>/;
# what the fuzzer finds goes to a temporary directory, never into the tree). Fails when a
# target crashes or breaks a property; the input that did is kept in BUILD_DIR/artifacts/ and
# its path printed (commit it to the target's corpus with the fix).
#   scripts/fuzz.sh [-b BUILD_DIR] [-t SECONDS] [-j JOBS] [-k KEEP_DIR] [TARGET...]
#     -b  build directory (default build-fuzz)       -t  seconds per target (default 10)
#     -j  targets run at once (default 1)           -k  keep the grown corpora and logs here
# One line of JSON per target: {"target":..., "seconds":..., "execs":..., "corpus":..., "ok":...}
# CI runs it through ctest (test fuzz_short); a longer run: scripts/fuzz.sh -t 600 -j 2.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=build-fuzz seconds=10 jobs=1 keep=
while getopts b:t:j:k: o; do
    case $o in
    b) build=$OPTARG ;; t) seconds=$OPTARG ;; j) jobs=$OPTARG ;; k) keep=$OPTARG ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ] || [ ! -e "$("$cc" -print-runtime-dir)/libclang_rt.fuzzer-x86_64.a" ]; then
    echo "fuzz: clang with libFuzzer is missing; scripts/deps.sh installs it (clang, libclang-rt-14-dev)" >&2
    exit 1
fi

mkdir -p "$build"
cmake -S "$src" -B "$build" -DFUZZ=ON -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^FUZZ_TARGETS:INTERNAL=//p' "$build/CMakeCache.txt" | tr ';' '\n')
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$build/build.log" 2>&1 \
    || { cat "$build/build.log" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_one() {
    local t=$1 dir=$work/$1 rc=0 execs
    mkdir -p "$dir/corpus" "$build/artifacts"
    # New inputs go to the first directory (the copy); the tree's corpus is read only.
    "$build/$t" "$dir/corpus" "$src/tests/fuzz/corpus/$t" -max_total_time="$seconds" \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" -close_fd_mask=1 \
        >"$dir/log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
    printf '{"target":"%s","seconds":%s,"execs":%s,"corpus":%s,"ok":%s}\n' "$t" "$seconds" \
        "${execs:-0}" "$(find "$dir/corpus" "$src/tests/fuzz/corpus/$t" -type f | wc -l)" \
        "$([ $rc -eq 0 ] && echo true || echo false)"
    if [ $rc -ne 0 ]; then
        grep -m1 -B2 -A12 -E 'property broken|ERROR: (Address|Undefined|libFuzzer)|runtime error' \
            "$dir/log" >&2 || tail -n 40 "$dir/log" >&2
        echo "fuzz: $t failed; the input: $(sed -n 's/.*Test unit written to //p' "$dir/log")" >&2
    fi
    echo $rc >"$dir/rc"
}
for t in "${targets[@]}"; do
    run_one "$t" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait
failed=0
for t in "${targets[@]}"; do
    [ "$(cat "$work/$t/rc" 2>/dev/null)" = 0 ] || failed=1
done
if [ -n "$keep" ]; then
    mkdir -p "$keep" && cp -r "$work"/. "$keep"/
fi
exit $failed
