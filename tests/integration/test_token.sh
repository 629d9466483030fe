#!/usr/bin/env bash
# The token of a migration need not be on the command line (issue 11 item 6: `ps` shows every
# process's arguments to every user): `vfio-migctl migrate --token-file PATH` reads it from a
# file, `--token-file -` from standard input, between two real daemons (S the source, D the
# destination). A file's trailing newline is not part of the token; a missing, empty or
# over-long file, or both --token and --token-file, is refused by the CLI before it calls the
# daemon; a wrong token from a file is refused by the destination as any wrong token is. And
# `show` says busy ("migration") while a migration holds a device.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

start_named_daemon S
start_named_daemon D
MIG_TIMEOUT=120 # bound of one `migrate --wait`: a hang detector

# incoming GROUP: PrepareIncoming on D; sets ADDR and TOKEN
incoming() {
    expect_exit 0 njctl D incoming "$1" --listen 127.0.0.1:0
    ADDR=$(jf "$OUT" address)
    TOKEN=$(jf "$OUT" token)
}

# migrate GROUP ARGS...: migrate --wait on S, bounded; OUT, ERR, RC as run()
migrate() {
    local group=$1
    shift
    run timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json --timeout 10 \
        migrate "$group" --to "$ADDR" --wait "$@"
}

# ---- from a file (with its newline, mode 0600 as a careful user keeps it)

mkgroup S a 1000 size=64K
mkgroup D a - size=64K
incoming a
# While a migration holds a device, show says so (issue 11 item 6).
assert_eq "true migration" "$(jf "$(njctl D show a_0)" busy busy_operation | tr '\n' ' ' | sed 's/ $//')" \
    "show: a device an incoming migration holds is busy with 'migration'"
(umask 077 && printf '%s\n' "$TOKEN" >"$T/token")
migrate a --token-file "$T/token"
assert_eq "0 completed" "$RC $(jf "$OUT" state)" "--token-file: the migration completed"
assert_eq "$(jf "$(njctl S show a_0)" properties.digest)" "$(jf "$(njctl D show a_0)" properties.digest)" \
    "--token-file: the content arrived"
assert_eq "false" "$(jf "$(njctl S show a_0)" busy)" "show: the migration over, the device is free"

# ---- from standard input

mkgroup S b 2000 size=64K
mkgroup D b - size=64K
incoming b
RC=0
printf '%s\n' "$TOKEN" | timeout -k 2 "$MIG_TIMEOUT" "$VFIO_MIGCTL" --socket "$S_SOCK" --json \
    --timeout 10 migrate b --to "$ADDR" --token-file - --wait >"$T/.out" 2>"$T/.err" || RC=$?
assert_eq "0 completed" "$RC $(jf "$(<"$T/.out")" state)" "--token-file -: the migration completed"

# ---- refusals of the CLI: nothing reaches the daemons

mkgroup S c 3000 size=64K
mkgroup D c - size=64K
incoming c
JOBS_BEFORE=$(jf "$(njctl S jobs)" "#")
migrate c --token "$TOKEN" --token-file "$T/token"
assert_eq 2 "$RC" "--token and --token-file: a usage error"
assert_contains "$ERR" "--token and --token-file are exclusive" "  ... that says so"
migrate c --token-file "$T/missing"
assert_eq 1 "$RC" "a missing token file: exit 1"
assert_contains "$ERR" "cannot open the token file '$T/missing': No such file or directory" "  ... named"
printf '\n \n' >"$T/empty"
migrate c --token-file "$T/empty"
assert_eq 1 "$RC" "a token file of blanks: exit 1"
assert_contains "$ERR" "'$T/empty' holds no token" "  ... named"
head -c 1000 /dev/zero | tr '\0' 'a' >"$T/long"
migrate c --token-file "$T/long"
assert_eq 1 "$RC" "a token file of 1000 bytes: exit 1"
assert_contains "$ERR" "holds more than 256 bytes: not a token" "  ... named"
migrate c
assert_eq 2 "$RC" "neither --token nor --token-file: a usage error"
assert_eq "$JOBS_BEFORE" "$(jf "$(njctl S jobs)" "#")" "no refusal of the CLI started a job"

# ---- a wrong token from a file: the destination refuses it, as on the command line

printf '%s\n' "${TOKEN//?/0}" >"$T/wrong"
migrate c --token-file "$T/wrong"
assert_eq 1 "$RC" "a wrong token from a file: the migration fails"
assert_eq "running" "$(jf "$(njctl S show c_0)" state)" "  ... and the source device runs on"
