#!/usr/bin/env bash
# No silent substitution (issue 10 item 4): a number out of range is refused with its range,
# never truncated or replaced (`incoming --listen 127.0.0.1:99999` listened on port 34463, and
# `:65536` on a random one), and an empty value is refused, never taken for the default.
#   1. every option that takes a value, of every command and subcommand (read from their own
#      --help, so a new option is covered without editing this file), refuses '' (exit 2);
#   2. a table of the numeric options and arguments, each just past its range (exit 2 from the
#      CLI, or INVALID_ARGUMENT from the daemon), with the range in the message;
#   3. after all of it the daemon holds no migration and no device moved.
# tests/interop/test_interop.py sends the same numbers through the API without the CLI.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_daemon
expect_exit 0 jctl attach --sim 'size=64K' --name d0
expect_exit 0 jctl group create vm d0
BEFORE=$(jnorm "$(jctl devices)")
TOKEN=$(printf '%064d' 0)

# ---- 1. empty values, over every command's options

# options_of CMD...: the options of CMD that take a value, from its --help ("--opt VALUE")
options_of() {
    "$VFIO_MIGCTL" "$@" --help | grep -o -- '--[a-z][a-z-]* [A-Za-z_]' | sed 's/ .*//' | sort -u
}

commands=$("$VFIO_MIGCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
assert_contains "$commands" "migrate" "the command list is read from --help"
checked=0
for cmd in $commands; do
    subs=("")
    case $cmd in
    group) subs=(create delete show list state reset) ;;
    region) subs=(read write) ;;
    esac
    for sub in "${subs[@]}"; do
        words=("$cmd")
        [[ -n "$sub" ]] && words+=("$sub")
        for opt in $(options_of "${words[@]}"); do
            [[ "$opt" == --socket || "$opt" == --timeout ]] && continue # global: below
            run ctl "${words[@]}" "$opt" ''
            if [[ "$RC" == 2 && "$ERR" == *"$opt: an empty value is refused"* ]]; then
                pass "${words[*]} $opt '': refused as empty"
            else
                fail "${words[*]} $opt '': refused as empty" "exit $RC" "
stderr: $(_show "$ERR")"
            fi
            checked=$((checked + 1))
        done
    done
done
assert_le 10 "$checked" "empty values: every option with a value was tried ($checked)"
expect_exit 2 "$VFIO_MIGCTL" --socket '' devices
assert_contains "$ERR" "--socket needs a path" "--socket '': refused"
expect_exit 2 ctl --timeout '' devices
assert_contains "$ERR" "is not a number of seconds" "--timeout '': refused"

# ---- 2. numbers just past their ranges

# too_big EXIT NEEDLE ARGS...: `ARGS` exits EXIT and says NEEDLE (the range)
too_big() {
    local code=$1 needle=$2
    shift 2
    expect_exit "$code" ctl "$@"
    assert_contains "$ERR" "$needle" "  ... says the range: $needle"
}

PORT_LISTEN="is not a number from 0 to 65535"
PORT_PEER="is not a number from 1 to 65535"
MS="from 0 (the daemon's default) to 86400000 (a day)"
for port in 99999 65536 -1 +80 ' 80' 8o 0x50 ''; do
    too_big 1 "$PORT_LISTEN" incoming vm --listen "127.0.0.1:$port"
done
too_big 1 "$PORT_LISTEN" incoming vm --listen "[::1]:65536"
for port in 99999 65536 0 -1; do
    too_big 1 "$PORT_PEER" migrate vm --to "127.0.0.1:$port" --token "$TOKEN"
done
too_big 1 "$PORT_PEER" migrate vm --to "[::1]:99999" --token "$TOKEN"
too_big 2 "$MS" incoming vm --listen 127.0.0.1:0 --timeout-ms 86400001
for opt in --max-precopy-ms --downtime-ms --peer-timeout-ms; do
    too_big 2 "$MS" migrate vm --to 127.0.0.1:1 --token "$TOKEN" "$opt" 86400001
    too_big 2 "$MS" migrate vm --to 127.0.0.1:1 --token "$TOKEN" "$opt" -1
done
for opt in --bandwidth --stopcopy-bandwidth; do
    too_big 2 "from 0 (the daemon's default) to 1024G" migrate vm --to 127.0.0.1:1 \
        --token "$TOKEN" "$opt" 1025G
    too_big 2 "to 1024G" migrate-set m1 "$opt" 1025G
done
too_big 2 "to 4096" region read d0 0 0 4097
too_big 2 "not a number of seconds" --timeout -1 devices
too_big 1 "not one of the four legal sets" path stop running --flags 0
too_big 1 "0 to 60000" attach --sim 'latency_ms=60001' --name d9
too_big 1 "64" attach --sim 'size=63' --name d9
too_big 1 "1 to 4095" attach --sim 'fail_arc=running->running_p2p,fail_errno=4096' --name d9

# ---- 3. nothing happened

expect_exit 0 jctl jobs
assert_eq "0" "$(jget "$OUT" '#')" "no migration was started or prepared"
assert_eq "$BEFORE" "$(jnorm "$(jctl devices)")" "no device changed"
