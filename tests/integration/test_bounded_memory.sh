#!/usr/bin/env bash
# Memory is bounded for every client (issue 11 item 4). A WatchEvents reader that does not read
# (`vfio-migctl watch` under SIGSTOP) is disconnected once it is [api] watch_queue_max events
# behind, with a status that says why, instead of making the daemon queue every event for
# ever; [api] max_watchers bounds the streams; a request larger than the daemon takes is
# refused without being buffered whole. The checks compare counts and memory bounds, never
# times: the daemon's RSS (VmRSS, VmHWM of /proc/PID/status) is read at states (all slow
# readers disconnected), and its bound does not depend on how long anything ran.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

WATCHERS=4
QUEUE=8
# The daemon fixes glibc's mmap threshold itself (daemon/main.c): with the dynamic one, the
# freed buffers of the saves below stayed in the worker's arena and the RSS climbed to about
# 85 MiB over 200 saves whatever the watchers did. So the RSS bound below checks that too.
# One worker: every worker thread that runs a save would add a glibc arena of its own.
start_daemon --workers 1 --max-watchers "$WATCHERS" --watch-queue-max "$QUEUE"
rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

expect_exit 0 ctl attach --sim size=4K --name d0
expect_exit 0 ctl group create g d0
expect_exit 0 ctl attach --sim size=4K --name d1
# An incoming migration that waits for ever keeps a watch of every job open.
expect_exit 0 jctl incoming g --listen 127.0.0.1:0
MID=$(jget "$OUT" id)
one_save() { ctl save d1 "$ALLOW_DIR/s.sav" >/dev/null 2>&1 && rm -f "$ALLOW_DIR/s.sav"; }
for _ in $(seq 20); do one_save; done
RSS0=$(rss_kib "$DAEMON_PID" VmRSS)

# ==== the watcher limit
declare -a WPIDS=()
for k in $(seq "$WATCHERS"); do
    "$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 watch >"$T/w$k.out" 2>"$T/w$k.err" &
    WPIDS+=($!)
    wait_state "watcher $k: its first event is printed" test -s "$T/w$k.out"
done
expect_exit 1 ctl --timeout 0 watch
assert_contains "$ERR" "$WATCHERS watchers already follow migrations, the limit is $WATCHERS" "a watcher beyond the limit: refused, naming the limit"
assert_contains "$ERR" "raise [api] max_watchers (--max-watchers N" "  ... and how to raise it"
assert_contains "$ERR" "(RESOURCE_EXHAUSTED)" "  ... as RESOURCE_EXHAUSTED"
# With --json, the refusal is the one document on stdout: the stream is refused when it
# opens, before watch lists (and prints) the migrations that are active.
expect_exit 1 jctl --timeout 0 watch
assert_eq "RESOURCE_EXHAUSTED" "$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["code"])' <<<"$OUT" 2>&1)" \
    "  ... --json: exactly one JSON document, the error"
expect_exit 1 jctl --timeout 0 watch "$MID"
assert_eq "RESOURCE_EXHAUSTED" "$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["code"])' <<<"$OUT" 2>&1)" \
    "  ... also when watching one migration"

# ==== readers that do not read: disconnected, not queued for ever
kill -STOP "${WPIDS[@]}"
mark=$(log_mark)
n_dropped() { tail -n +$((mark + 1)) "$T/daemon.log" | grep -c -F "A WatchEvents reader fell" || true; }
saves=0
while (($(n_dropped) < WATCHERS && saves < 1000)); do
    one_save
    saves=$((saves + 1))
done
assert_eq "$WATCHERS" "$(n_dropped)" "every paused watcher is disconnected once $QUEUE events wait for it"
assert_contains "$(tail -n +$((mark + 1)) "$T/daemon.log")" "behind, over [api] watch_queue_max=$QUEUE: disconnected." "  ... and the log says why"
# More saves: no reader is left to queue for, whatever runs from now on.
for _ in $(seq 40); do one_save; done
RSS1=$(rss_kib "$DAEMON_PID" VmRSS)
echo "# RSS $RSS0 KiB before the paused watchers, $RSS1 KiB after $((saves + 40)) saves"
# What the queues may hold: WATCHERS x QUEUE events of well under 4 KiB, and gRPC's buffers.
# ldd's output whole, then the match: `ldd | grep -q` under pipefail fails when grep quits at
# the match before ldd has written its last line (SIGPIPE), and the bound was then checked
# under ASan (a clean-clone CI run, 2026-12-06).
if [[ "$(ldd "$VFIO_MIGD" 2>/dev/null || true)" == *libasan* ]]; then
    # ASan keeps freed memory in its quarantine (256 MiB by default) and grows its shadow with
    # it: the RSS then measures the sanitizer. The default build's run checks the bound; here
    # every other check of this test still runs under the sanitizers.
    echo "# not checked under ASan: the RSS bound (grew $((RSS1 - RSS0)) KiB)"
else
    assert_le "$((RSS1 - RSS0))" 8192 "the daemon's RSS grew by at most 8 MiB ($((RSS1 - RSS0)) KiB)"
fi
kill -CONT "${WPIDS[@]}"
for k in $(seq "$WATCHERS"); do
    expect_ended "${WPIDS[$((k - 1))]}" 1 "paused watcher $k, resumed"
    assert_contains "$(cat "$T/w$k.err")" "watch reader too slow: $((QUEUE + 1)) events queued, the limit is $QUEUE; read faster, or watch one job" "  ... its status says why (RESOURCE_EXHAUSTED)"
    assert_contains "$(cat "$T/w$k.err")" "(RESOURCE_EXHAUSTED)" "  ... as RESOURCE_EXHAUSTED"
done
WPIDS=()
# The disconnected streams no longer count against the limit.
"$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 watch "$MID" >"$T/wn.out" 2>"$T/wn.err" &
WN=$!
wait_state "a new watcher is admitted once the slow ones are gone" test -s "$T/wn.out"
kill -INT "$WN"
expect_ended "$WN" 1 "  ... and ends on SIGINT"

# ==== a watch of every job follows more than 64 jobs (a fixed table stopped at the 64th)
"$VFIO_MIGCTL" --socket "$SOCK" --timeout 0 --json watch >"$T/all.out" 2>"$T/all.err" &
WA=$!
wait_state "the watch of every job began" test -s "$T/all.out"
for _ in $(seq 70); do one_save; done
ends() { grep -c '"kind": *"end"' "$T/all.out" || true; }
have_ends() { (($(ends) >= 70)); }
wait_state "the watch of every job reports the end of each of 70 saves" have_ends
kill -INT "$WA"
expect_ended "$WA" 1 "  ... and ends on SIGINT"

# ==== a request larger than the daemon takes: refused, and not buffered whole
expect_exit 0 "$PY" "$SRCDIR/tests/integration/big_request.py" "$SOCK" $((100 * 1024))
assert_contains "$OUT" "RESOURCE_EXHAUSTED" "a 100 KiB request: RESOURCE_EXHAUSTED"
assert_contains "$OUT" "vs. 65536" "  ... naming the limit, 65536 bytes"
HWM0=$(rss_kib "$DAEMON_PID" VmHWM)
expect_exit 0 "$PY" "$SRCDIR/tests/integration/big_request.py" "$SOCK" $((256 * 1024 * 1024))
assert_contains "$OUT" "RESOURCE_EXHAUSTED" "a 256 MiB request: RESOURCE_EXHAUSTED"
HWM1=$(rss_kib "$DAEMON_PID" VmHWM)
echo "# VmHWM $HWM0 KiB before the 256 MiB request, $HWM1 KiB after"
assert_le "$((HWM1 - HWM0))" $((64 * 1024)) "the daemon's peak RSS grew by at most 64 MiB, not the request's 256 MiB"
expect_exit 0 ctl show d0
pass "the daemon still answers"
# The CLI does not send what the daemon would refuse in gRPC's words: it names the limit.
expect_error RESOURCE_EXHAUSTED jctl show "$(head -c 70000 /dev/zero | tr '\0' a)"
assert_contains "$ERR" "the GetDevice request is 70004 bytes, more than the 65536 bytes the daemon takes: shorten its arguments" \
    "a CLI request over the daemon's limit: refused by the CLI, naming the limit and what to do"
expect_exit 0 ctl cancel "$MID"
