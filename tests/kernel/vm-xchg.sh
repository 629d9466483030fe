# shellcheck shell=sh
# Sourced by both PID-1 scripts of the test VM (guest-init.sh, systemd-init.sh), from their
# own directory on the host root the guest reads (run-vm.sh boots with init=<absolute path>):
# mounts run-vm.sh's writable 9p share "xchg" on /run/xchg ($X), sends stderr to guest.log
# there, and mounts the extra writable shares it lists in "shares" (lines "TAG PATH").
# The caller defines die() and names itself in $INIT_NAME for the messages.
X=/run/xchg
mkdir -p $X
# cache=none on the writable shares: what the guest writes reaches the host at once.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none xchg $X ||
    die "cannot mount the xchg share"
exec 2>>$X/guest.log
if [ -f $X/shares ]; then
    while read -r tag path; do
        [ -n "$tag" ] || continue
        mkdir -p "$path" 2>/dev/null # needed (and possible) only below a tmpfs such as /tmp
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none "$tag" "$path" ||
            echo "$INIT_NAME: mounting $tag on $path failed" >&2
    done <$X/shares
fi
