#!/usr/bin/env bash
# check_units — vfio-migd.service (as the build writes it from packaging/systemd/
# vfio-migd.service.in) and packaging/systemd/vfio-migd.socket, as systemd 252 reads them, so
# that no change can weaken the service quietly:
#   - `systemd-analyze verify` accepts both units, with nothing to say;
#   - LimitNOFILE= holds the fd store and connections: at least FileDescriptorStoreMax + 4096;
#   - `systemd-analyze security --offline=true` scores the service at most MAX_EXPOSURE (3.0),
#     and docs/operations.md states that very score and names every setting the analysis
#     still marks open (its "✗" lines), with the reason it stays open.
# ExecStart= must name an existing binary for verify: the copy checked here points at the
# built daemon ($VFIO_MIGD) instead of the installed one, nothing else changes. Needs
# systemd-analyze (package systemd, scripts/deps.sh); systemd need not be running.
set -euo pipefail

: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${VFIO_MIGD:?VFIO_MIGD must name the vfio-migd binary}"
: "${BUILDDIR:?BUILDDIR must name the build directory (it holds the generated vfio-migd.service)}"
MAX_EXPOSURE=3.0
DOC=$SRCDIR/docs/operations.md
T=$(mktemp -d "${TMPDIR:-/tmp}/vfio-migd-units.XXXXXX")
trap 'rm -rf "$T"' EXIT
FAILED=0
fail() {
    printf 'not ok - %s\n' "$1"
    shift
    printf '#   %s\n' "$@"
    FAILED=1
}
ok() { printf 'ok - %s\n' "$1"; }

command -v systemd-analyze >/dev/null || {
    echo "systemd-analyze is missing: run scripts/deps.sh (package systemd)" >&2
    exit 1
}
cp "$BUILDDIR/vfio-migd.service" "$SRCDIR/packaging/systemd/vfio-migd.socket" "$T/"
sed -i -E "s|^ExecStart=/[^ ]*/vfio-migd$|ExecStart=$VFIO_MIGD|" "$T/vfio-migd.service"
grep -qx "ExecStart=$VFIO_MIGD" "$T/vfio-migd.service" ||
    fail "the service starts the installed vfio-migd, with no argument" \
        "$(grep ^ExecStart "$BUILDDIR/vfio-migd.service")"

# ---- verify
cd "$T"
if out=$(systemd-analyze verify --man=no ./vfio-migd.socket ./vfio-migd.service 2>&1) && [[ -z "$out" ]]; then
    ok "systemd-analyze verify accepts both units"
else
    fail "systemd-analyze verify accepts both units" "${out:-exit status $?}"
fi

# ---- fds: the stored ones and the connections (issue 11 item 3: the default 1024 ran out)
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$T/vfio-migd.service")
store=$(sed -n 's/^FileDescriptorStoreMax=\([0-9]*\)$/\1/p' "$T/vfio-migd.service")
if [[ -n "$nofile" && -n "$store" ]] && ((nofile >= store + 4096)); then
    ok "LimitNOFILE=$nofile leaves room for connections beside the fd store ($store)"
else
    fail "LimitNOFILE= is one number, at least FileDescriptorStoreMax + 4096" \
        "LimitNOFILE=${nofile:-unset or not one number}, FileDescriptorStoreMax=${store:-unset}"
fi

# ---- the exposure score
report=$(systemd-analyze security --offline=true ./vfio-migd.service 2>&1) || true
score=$(sed -n 's/.*Overall exposure level for vfio-migd.service: \([0-9.]*\).*/\1/p' <<<"$report")
if [[ -z "$score" ]]; then
    fail "systemd-analyze security gives a score" "$report"
    exit 1
fi
if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    ok "exposure $score <= $MAX_EXPOSURE"
else
    fail "exposure $score <= $MAX_EXPOSURE" "$(grep '✗' <<<"$report")"
fi
if grep -q "systemd-analyze security --offline=true.*: \*\*$score\*\*" "$DOC"; then
    ok "docs/operations.md states the score, $score"
else
    fail "docs/operations.md states the score, $score" \
        "expected a line with 'systemd-analyze security --offline=true ...: **$score**'"
fi
while IFS= read -r setting; do
    # A '|' inside a table cell is written '\|'.
    if grep -qF -- "| \`${setting//|/\\|}\` |" "$DOC"; then
        ok "docs/operations.md says why $setting stays open"
    else
        fail "docs/operations.md says why $setting stays open" "no table row '| \`$setting\` | ... |'"
    fi
done < <(sed -n 's/^✗ \([^ ]*\) .*/\1/p' <<<"$report")
exit "$FAILED"
