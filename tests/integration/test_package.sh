#!/usr/bin/env bash
# The Debian package: scripts/package.sh builds it from a clean copy of the tree with
# dpkg-buildpackage and Debian's default flags, and lintian passes (no error, no unexplained
# warning: package.sh fails otherwise). Then the package is unpacked with dpkg -x and checked
# as an installed system would use it: the files where a distribution puts them, the unit's
# ExecStart= at the packaged daemon, the conffile, the sysusers and systemd maintainer
# scripts, the man pages (man -l, and man NAME from the unpacked tree), the completion; and
# the packaged daemon and CLI run from there against sim devices.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

OUTDIR=$T/out
# The unit tests ran in this suite already; the package build need not run them again. It
# builds on one CPU at a lower priority: the suite's other tests run beside it.
expect_exit 0 nice -n 10 env DEB_BUILD_OPTIONS="nocheck parallel=1" "$SRCDIR/scripts/package.sh" "$OUTDIR"
if [[ "$RC" != 0 ]]; then
    fail "the package builds and passes lintian" "$ERR"
    exit 1
fi
DEB=$(ls "$OUTDIR"/vfio-migd_"$PROJECT_VERSION"_*.deb)
assert_file_exists "$DEB" "vfio-migd_${PROJECT_VERSION}_ARCH.deb is built"
assert_eq "$PROJECT_VERSION" "$(dpkg-deb -f "$DEB" Version)" "the package's version is the project's"

ROOT=$T/root
expect_exit 0 dpkg -x "$DEB" "$ROOT"
expect_exit 0 dpkg-deb -e "$DEB" "$T/control"

# ---- the layout
for f in usr/sbin/vfio-migd usr/bin/vfio-migctl lib/systemd/system/vfio-migd.service \
    usr/lib/sysusers.d/vfio-migd.conf etc/vfio-migd/vfio-migd.conf \
    usr/share/bash-completion/completions/vfio-migctl usr/share/man/man1/vfio-migctl.1.gz \
    usr/share/man/man8/vfio-migd.8.gz usr/share/man/man5/vfio-migd.conf.5.gz \
    usr/share/doc/vfio-migd/copyright; do
    assert_file_exists "$ROOT/$f" "the package has /$f"
done
PLUGIN_DIR=$(echo "$ROOT"/usr/lib/*/vfio-migd/plugins)
check "the package has the plugin directory" test -d "$PLUGIN_DIR"
assert_file_exists "$PLUGIN_DIR/mtty.so" "the package has the mtty plugin in it"
assert_file_exists "$PLUGIN_DIR/mlx5.so" "the package has the mlx5 plugin in it"
assert_file_exists "$PLUGIN_DIR/hisi.so" "the package has the HiSilicon plugin in it"

# ---- vfio-migd-dev: the plugin ABI header, usable on its own
DEV=$(ls "$OUTDIR"/vfio-migd-dev_"$PROJECT_VERSION"_all.deb)
assert_file_exists "$DEV" "vfio-migd-dev_${PROJECT_VERSION}_all.deb is built"
DEVROOT=$T/devroot
expect_exit 0 dpkg -x "$DEV" "$DEVROOT"
assert_file_exists "$DEVROOT/usr/include/vfio-migd/plugin.h" "vfio-migd-dev has /usr/include/vfio-migd/plugin.h"
check "the packaged header compiles alone as C11, without warnings" \
    sh -c "printf '#include <vfio-migd/plugin.h>\n' | cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I '$DEVROOT/usr/include' -x c -"
check "vfio-migd does not ship the header" test ! -e "$ROOT/usr/include/vfio-migd/plugin.h"
assert_line_match "$(<"$ROOT/lib/systemd/system/vfio-migd.service")" "^ExecStart=/usr/sbin/vfio-migd$" \
    "the unit starts the packaged daemon"
assert_eq "/etc/libvirt/hooks/qemu.d/vfio-migd /etc/vfio-migd/libvirt-hook.conf /etc/vfio-migd/vfio-migd.conf" \
    "$(sort "$T/control/conffiles" | tr '\n' ' ' | sed 's/ $//')" \
    "the configuration files and the libvirt hook are conffiles"
check "the libvirt hook is installed where libvirtd runs it, executable" \
    test -x "$ROOT/etc/libvirt/hooks/qemu.d/vfio-migd"
assert_contains "$(dpkg-deb -f "$DEB" Depends)" "python3" "the package depends on python3 (the hook)"
assert_contains "$(<"$T/control/postinst")" "systemd-sysusers" "postinst creates the user and group (sysusers)"
assert_contains "$(<"$T/control/postinst")" "deb-systemd-helper enable 'vfio-migd.service'" \
    "postinst enables the unit (dh_installsystemd)"
assert_contains "$(<"$ROOT/usr/lib/sysusers.d/vfio-migd.conf")" "u vfio-migd " "the sysusers snippet makes user vfio-migd"
assert_contains "$(dpkg-deb -f "$DEB" Depends)" "libinih1" "the package depends on the libraries it links"

# ---- man pages from the package
for page in man1/vfio-migctl.1.gz man8/vfio-migd.8.gz man5/vfio-migd.conf.5.gz; do
    run env LC_ALL=C MANWIDTH=100 man -l -P cat "$ROOT/usr/share/man/$page"
    assert_eq "0" "$RC" "man -l renders $page"
    assert_contains "$OUT" "NAME" "$page has a NAME section"
done
run env LC_ALL=C MANWIDTH=100 MANPATH="$ROOT/usr/share/man" man -P cat vfio-migctl
assert_eq "0" "$RC" "man vfio-migctl works from the unpacked package"
assert_contains "$OUT" "vfio-migctl - control vfio-migd" "man vfio-migctl shows its page"
run env LC_ALL=C MANPATH="$ROOT/usr/share/man" man -P cat 5 vfio-migd.conf
assert_contains "$OUT" "/etc/vfio-migd/vfio-migd.conf" "vfio-migd.conf(5) names the packaged path"

# ---- the packaged programs, run from the unpacked tree against sim devices
VFIO_MIGD=$ROOT/usr/sbin/vfio-migd
VFIO_MIGCTL=$ROOT/usr/bin/vfio-migctl
expect_exit 0 "$VFIO_MIGD" --version
assert_eq "vfio-migd $PROJECT_VERSION" "$OUT" "the packaged daemon's version"
expect_exit 0 "$VFIO_MIGD" --config "$ROOT/etc/vfio-migd/vfio-migd.conf" --check-config
assert_contains "$(<"$ROOT/etc/vfio-migd/vfio-migd.conf")" "#workers = 64" "the shipped file: keys commented out"
assert_contains "$("$VFIO_MIGD" --help)" "/etc/vfio-migd/vfio-migd.conf" \
    "the packaged daemon's default configuration file is /etc/vfio-migd/vfio-migd.conf"
start_daemon --config "$ROOT/etc/vfio-migd/vfio-migd.conf" --plugin-dir "$PLUGIN_DIR"
expect_exit 0 jctl plugins
assert_eq "hisi mlx5 mtty" "$(jget "$OUT" 0.name) $(jget "$OUT" 1.name) $(jget "$OUT" 2.name)" \
    "the packaged daemon loads the packaged plugins (hisi, mlx5, mtty)"
expect_exit 0 jctl attach --sim model=hisi --name acc0
assert_eq "hisi 5" "$(jget "$OUT" plugin) $(jget "$OUT" migration_flags)" \
    "... and the hisi plugin's sim model"
expect_exit 0 jctl detach acc0 # the checks below expect nic0 alone
expect_exit 0 ctl health
expect_exit 0 jctl attach --sim size=64K --name nic0
expect_exit 0 jctl state nic0 stop
assert_eq "stop" "$(jget "$OUT" state)" "the packaged CLI moves a sim device to stop"
expect_exit 0 jctl state nic0
assert_eq "stop" "$(jget "$OUT" state)" "... and reads its state back"
expect_exit 0 jctl version
assert_eq "$PROJECT_VERSION" "$(jget "$OUT" daemon_version)" \
    "the packaged daemon answers version"

# ---- the packaged completion, with the packaged CLI
PATH=$ROOT/usr/bin:$PATH
# shellcheck disable=SC1091
source "$ROOT/usr/share/bash-completion/completions/vfio-migctl"
COMP_WORDS=(vfio-migctl --socket "$SOCK" show "")
COMP_CWORD=4
_vfio_migctl
assert_eq "nic0" "${COMPREPLY[*]}" "the packaged completion asks the packaged daemon"
stop_daemon
assert_eq "0" "$DAEMON_RC" "the packaged daemon exits 0 on SIGTERM"
