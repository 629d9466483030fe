#!/usr/bin/env bash
# Builds vfio-migd with AddressSanitizer and UndefinedBehaviorSanitizer (every finding is
# fatal: -fno-sanitize-recover=all) into build-asan/ (or $BUILD_DIR) and runs the unit,
# integration, interop and fuzz-corpus suites on it; CI runs it after scripts/test.sh.
# Left out: the kernel tests (the VM boots its own kernel and initramfs, not this build),
# package_debian (a package is built in the default build type by definition) and fuzz_short
# (scripts/fuzz.sh builds its own clang tree with the sanitizers already).
#   scripts/sanitize.sh            the suites
#   scripts/sanitize.sh -R REGEX   only the ctest tests matching REGEX (and the rules above)
# A finding in a process whose exit no test checks (a daemon stopped by a test, a CLI run in
# the background) still fails the run: every report goes to a file, and any file that holds
# one is printed and counted.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR=${BUILD_DIR:-build-asan}
scripts/deps.sh
scripts/build.sh -DSANITIZE='address;undefined'
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
export ASAN_OPTIONS="log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
rc=0
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1800 -j2 \
    -E '^(kernel_|package_debian$|fuzz_short$)' "$@") || rc=$?
# A report file holds only "Suppressions used" when the suppressed leaks of a test library
# were all there was: not a finding.
found=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$reports"/* 2>/dev/null || true)
for f in $found; do
    echo "sanitize: finding in $f:" >&2
    cat "$f" >&2
done
if [ -n "$found" ]; then
    echo "sanitize: $(echo "$found" | wc -l) sanitizer report(s) above" >&2
    rc=1
fi
exit "$rc"
