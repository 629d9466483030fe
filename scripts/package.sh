#!/usr/bin/env bash
# Builds vfio-migd's Debian package the Debian way, from a clean tree: the files git knows (as
# they are in the work tree now, untracked new files included, no build directories) are
# copied to a temporary directory, packaging/debian becomes its debian/, and
# dpkg-buildpackage -us -uc -b builds it there with Debian's default build flags; lintian then
# checks the result (no error, no warning that packaging/debian does not explain).
#   scripts/package.sh [OUTDIR]   the .deb, .buildinfo and .changes go to OUTDIR (default: the
#                                 repository's top directory); then: apt install ./vfio-migd_*.deb
# DEB_BUILD_OPTIONS=nocheck skips the unit tests the package build otherwise runs.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
out=$(realpath -m "${1:-$top}")
scripts/deps.sh

version=$(sed -n 's/^project(vfio-migd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "$version" != "$deb_version" ]; then
    echo "package: CMakeLists.txt says version $version but packaging/debian/changelog says" \
        "$deb_version; add an entry: dch -c packaging/debian/changelog -v $version" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/vfio-migd-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/vfio-migd-$version
mkdir -p "$src" "$out"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files that exist now (a deleted file is left out).
    git ls-files -z --cached --others --exclude-standard --deduplicate |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf - | tar -xf - -C "$src"
else
    tar --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -r packaging/debian "$src/debian"

echo "package: building vfio-migd $version in $src (log: $tmp/build.log)" >&2
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
    tail -n 60 "$tmp/build.log" >&2
    echo "package: dpkg-buildpackage failed" >&2
    exit 1
fi
changes=$(ls "$tmp"/vfio-migd_"$version"_*.changes)
# --fail-on warning: every warning left must be overridden with its reason in packaging/debian.
if ! lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" >"$tmp/lintian.log" 2>&1; then
    cat "$tmp/lintian.log" >&2
    echo "package: lintian found errors or unexplained warnings" >&2
    exit 1
fi
cat "$tmp/lintian.log" >&2
for f in "$tmp"/*.deb "$tmp"/*.buildinfo "$changes"; do
    mv "$f" "$out/"
done
ls "$out"/vfio-migd_"$version"_*.deb
