#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit, integration,
# interop): the README's second Quick start command and what CI runs.
#   scripts/test.sh            the whole suite
#   scripts/test.sh -R REGEX   only the ctest tests matching REGEX
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j2 "$@"
