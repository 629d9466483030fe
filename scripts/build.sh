#!/usr/bin/env bash
# Configures and builds vfio-migd into build/ (or $BUILD_DIR). Extra arguments go to cmake's
# configure step, e.g. scripts/build.sh -DSANITIZE='address;undefined'.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >"$BUILD_DIR.configure.log" 2>&1 \
    || { cat "$BUILD_DIR.configure.log" >&2; exit 1; }
cmake --build "$BUILD_DIR" -j"$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\] (Building|Linking|Built|Generating|Running)' || true
test "${PIPESTATUS[0]}" -eq 0
