#!/usr/bin/env bash
# The libvirt hook (packaging/libvirt/vfio-migd), called the way libvirtd calls a qemu hook:
# `vfio-migd DOMAIN OPERATION SUBOP EXTRA`, the domain XML (tests/libvirt/*.xml) on stdin, the
# exit status and stderr as libvirt reads them, stdout as the new XML at migrate. Against a
# real daemon whose sim devices claim PCI addresses (sim option pci=): ready, not ready,
# unreachable, compatible, incompatible and remapped, strict and default.
# shellcheck disable=SC2119 # helpers called without arguments on purpose
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

HOOK=$SRCDIR/packaging/libvirt/vfio-migd
XMLS=$SRCDIR/tests/libvirt
export VFIO_MIGD_HOOK_CONF=$T/hook.conf

conf() { # conf [strict] : the hook's configuration, pointing at this test's daemon
    printf 'socket = %s\nvfio_migctl = %s\nstrict = %s\nlog = %s\n' \
        "$SOCK" "$VFIO_MIGCTL" "${1:-no}" "$T/hook.log" >"$VFIO_MIGD_HOOK_CONF"
}
hook() { # hook OP SUBOP EXTRA < XML
    timeout -k 2 "$CTL_TIMEOUT" "$HOOK" guest1 "$@"
}
attach() { # attach NAME PCI [OPTIONS]
    expect_exit 0 jctl attach --sim "pci=$2,size=4K${3:+,$3}" --name "$1"
}
# The source address of hostdev N (0-based) of the XML in $OUT, as DDDD:BB:SS.F.
source_address() {
    "$PY" - "$1" "$OUT" <<'EOF'
import sys, xml.etree.ElementTree as ET
a = ET.fromstring(sys.argv[2]).findall("devices/hostdev[@type='pci']/source/address")[int(sys.argv[1])]
print("%04x:%02x:%02x.%x" % tuple(int(a.get(k), 0) for k in ("domain", "bus", "slot", "function")))
EOF
}

# with_metadata XML ELEMENT: the domain XML with ELEMENT in its <metadata>, as `virsh metadata
# NS --key vfio-migd --set ELEMENT` stores what libvirt-annotate prints (in the namespace).
with_metadata() {
    "$PY" - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
NS = "https://github.com/vfio-migd/vfio-migd/libvirt/1"
ET.register_namespace("vfio-migd", NS)
root = ET.parse(sys.argv[1]).getroot()
el = ET.fromstring(sys.argv[2])
for e in el.iter():
    e.tag = "{%s}%s" % (NS, e.tag)
md = ET.Element("metadata"); md.append(el); root.insert(2, md)
print(ET.tostring(root, encoding="unicode"))
EOF
}

conf no
start_daemon

# ---- operations the hook has nothing to do at: exit 0 at once, nothing printed
for op in "start begin -" "started begin -" "stopped end -" "release end migrated" \
    "restore begin -" "reconnect begin -" "attach begin -"; do
    # shellcheck disable=SC2086 # the operation's three words
    expect_exit 0 hook $op <"$XMLS/domain-two-vfs.xml"
    assert_eq "" "$OUT$ERR" "$op: prints nothing"
done

# ---- prepare
attach vf0 0000:3b:00.2
attach vf1 3B:00.3
expect_exit 0 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_eq "" "$OUT$ERR" "prepare, both devices ready: silent"
conf yes
expect_exit 0 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_eq "" "$OUT$ERR" "strict prepare, both devices ready: silent"

expect_exit 0 jctl state vf1 stop
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "0000:3b:00.3 (vfio-migd device vf1) is in stop, not running (vfio-migctl reset vf1)" \
    "strict prepare refuses a device not running, naming it and the fix"
assert_not_contains "$ERR" "0000:3b:00.2" "a ready device is not named"
conf no
expect_exit 0 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "warning: 0000:3b:00.3 (vfio-migd device vf1) is in stop" \
    "default prepare only warns about a device not running"
assert_contains "$(<"$T/hook.log")" "guest1: prepare: warning: 0000:3b:00.3" "the warning is in the hook's log"
expect_exit 0 jctl reset vf1

expect_exit 0 jctl detach vf1
attach vf1 0000:3b:00.3 migratable=0
conf yes
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "0000:3b:00.3 (vfio-migd device vf1) has no VFIO migration support" \
    "strict prepare refuses a device without migration support"
expect_exit 0 jctl detach vf1
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "0000:3b:00.3: not attached to vfio-migd (vfio-migctl attach --pci 0000:3b:00.3)" \
    "strict prepare refuses a device the daemon does not hold, with the command that fixes it"

# ---- the daemon cannot be reached: strict refuses, default warns
printf 'socket = %s\nvfio_migctl = %s\nstrict = yes\n' "$T/nobody.sock" "$VFIO_MIGCTL" >"$VFIO_MIGD_HOOK_CONF"
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "refused: cannot ask vfio-migd (" "strict: an unreachable daemon refuses"
assert_contains "$ERR" "systemctl start vfio-migd" "the refusal says how to start the daemon"
sed -i 's/strict = yes/strict = no/' "$VFIO_MIGD_HOOK_CONF"
expect_exit 0 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_eq "" "$OUT" "default: an unreachable daemon leaves the incoming XML unchanged"
assert_contains "$ERR" "warning: cannot ask vfio-migd (" "default: an unreachable daemon is a warning"
echo "strict = maybe" >"$VFIO_MIGD_HOOK_CONF"
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "strict must be yes or no, not 'maybe'" "a bad configuration value is named"

# ---- migrate (destination): compatible devices at the source's addresses
conf no
attach vf1 0000:3b:00.3
expect_exit 0 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_eq "" "$OUT" "migrate, compatible devices at the same addresses: XML unchanged (no output)"
assert_eq "" "$ERR" "migrate, compatible: nothing on stderr"

# remapped: the device at 3b:00.3 here has another size (its descriptor's size differs)
expect_exit 0 jctl detach vf1
expect_exit 0 jctl attach --sim pci=0000:3b:00.3,size=8K --name big
attach spare 0000:5e:00.1
expect_exit 0 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_eq "0000:3b:00.2" "$(source_address 0)" "remap: the compatible device keeps its address"
assert_eq "0000:5e:00.1" "$(source_address 1)" "remap: the incompatible one is placed on the compatible free device"
assert_contains "$ERR" "size: '4096' here '8192'" "remap: the log names the field that did not match"
assert_contains "$OUT" "<vfio-migd:devices" "remap: the metadata keeps its namespace prefix"
assert_contains "$OUT" "<alias name=\"hostdev1\"" "remap: the rest of the domain is printed"
check "remap: stdout is well-formed XML" \
    "$PY" -c 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.argv[1])' "$OUT"

# a free device that is not ready is not chosen; nor one already taken by this domain
expect_exit 0 jctl state spare stop
expect_exit 1 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_contains "$ERR" "0000:3b:00.3: 0000:3b:00.3 here size: '4096' here '8192'" \
    "incompatible, nothing to remap to: refused naming the device and the field"
assert_contains "$ERR" "no ready, compatible, unused device of kind 'generic'" "the refusal says none was free"
assert_eq "" "$OUT" "a refusal prints no XML"
expect_exit 0 jctl reset spare

# the source's address is missing here: placed on a compatible free device, and a device one
# hostdev took is not given to the next one
expect_exit 0 jctl detach vf0
expect_exit 1 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_contains "$ERR" "0000:3b:00.2: placed on 0000:5e:00.1" "a missing address is placed on a free device"
assert_contains "$ERR" "refused: 0000:3b:00.3: 0000:3b:00.3 here size" \
    "the device the first hostdev took is not given to the second"
attach spare2 0000:5e:00.2
expect_exit 0 hook migrate begin - <"$XMLS/incoming-annotated.xml"
assert_eq "0000:5e:00.1 0000:5e:00.2" "$(source_address 0) $(source_address 1)" \
    "missing and incompatible: each hostdev on its own compatible device"
expect_exit 0 jctl detach spare2

# ---- annotate: this host's descriptors, read back by migrate
expect_exit 0 jctl detach big
attach vf0 0000:3b:00.2
attach vf1 0000:3b:00.3
expect_exit 0 "$HOOK" --annotate <"$XMLS/domain-two-vfs.xml"
ANN=$OUT
assert_contains "$ANN" 'address="0000:3b:00.3" id="vf1" backend="sim" migration_flags="7" kind="generic"' \
    "annotate describes each hostdev's device"
assert_contains "$ANN" '<compat name="size" value="4096" rule="equal"/>' "annotate carries the descriptor"
with_metadata "$XMLS/domain-two-vfs.xml" "$ANN" >"$T/annotated.xml"
expect_exit 0 jctl detach vf1
expect_exit 0 jctl detach spare
expect_exit 0 jctl attach --sim pci=0000:3b:00.3,size=8K --name big
expect_exit 1 hook migrate begin - <"$T/annotated.xml"
assert_contains "$ERR" "size: '4096' here '8192'" "an annotation written by annotate is checked at migrate"
expect_exit 0 jctl detach big
expect_exit 1 "$HOOK" --annotate <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "0000:3b:00.3: not attached to vfio-migd" "annotate names a device the daemon does not hold"

# ---- vfio-migctl libvirt-annotate itself: the XML it takes and refuses
expect_exit 0 jctl attach --sim pci=0000:3b:00.3,size=4K --name vf1
expect_exit 0 jctl libvirt-annotate "$XMLS/domain-two-vfs.xml"
assert_eq "0000:3b:00.2 0000:3b:00.3" "$(jf "$OUT" hostdevs.0) $(jf "$OUT" hostdevs.1)" \
    "libvirt-annotate --json: the domain's PCI hostdevs"
assert_contains "$(jf "$OUT" metadata)" 'id="vf1"' "  ... and the element"
assert_eq "false" "$(jf "$OUT" stored)" "  ... stored nowhere without --domain"
expect_exit 1 ctl libvirt-annotate <<<'<domain><devices><hostdev type="pci"'
assert_contains "$ERR" "the domain XML is not XML:" "libvirt-annotate: XML that does not parse"
expect_exit 1 ctl libvirt-annotate <<<'<network><name>x</name></network>'
assert_contains "$ERR" "its root is not <domain>" "libvirt-annotate: XML that is no domain"
expect_exit 1 ctl libvirt-annotate <<<"<domain><devices><hostdev type='pci'><source><address domain='0x0' bus='0x3b' slot='0x20' function='0x0'/></source></hostdev></devices></domain>"
assert_contains "$ERR" "not a PCI address (domain <= 0xffff, bus <= 0xff, slot <= 0x1f" \
    "libvirt-annotate: a slot out of range"
expect_exit 1 ctl libvirt-annotate <<<'<domain><devices><disk/></devices></domain>'
assert_contains "$ERR" "has no PCI <hostdev>: nothing to annotate" "libvirt-annotate: no hostdev"
expect_exit 2 ctl libvirt-annotate --connect qemu:///system
assert_contains "$ERR" "--connect applies with --domain only" "libvirt-annotate: --connect alone"
expect_exit 1 ctl libvirt-annotate "$T"
assert_contains "$ERR" "Is a directory" "libvirt-annotate: a directory for FILE"
expect_exit 0 jctl detach vf0
expect_exit 0 jctl detach vf1

# ---- a plugin's prerequisites and rules (the vendor test plugin: fw at_least, psid equal,
# note info; prerequisite: bound to vendor_vfio): prepare names the failed prerequisite and
# its fix; migrate judges by the plugin's rules, as the daemon does (vfio-migctl check)
mkdir -p "$T/plugins"
ln -s "$BUILDDIR/test-plugins/vendor.so" "$T/plugins/vendor.so"
start_named_daemon V --plugin-dir "$T/plugins"
SOCK=$V_SOCK conf yes
VEND=pci_id=1234:abcd,size=96
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.2,$VEND,driver=vfio-pci,label=22.36.1010/MT_0359" --name vf0
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.3,$VEND,driver=vendor_vfio,label=22.36.1010/MT_0359" --name vf1
expect_exit 1 hook prepare begin - <"$XMLS/domain-two-vfs.xml"
assert_contains "$ERR" "0000:3b:00.2 (vfio-migd device vf0) fails its plugin's prerequisites: bound to vendor_vfio:" \
    "strict prepare refuses a device whose plugin prerequisite fails"
assert_contains "$ERR" "(fix: vfio-migctl bind 0000:3b:00.2)" "  ... with the plugin's fix"
assert_not_contains "$ERR" "0000:3b:00.3" "  ... and names only that device"
expect_exit 0 njctl V detach vf0
expect_exit 0 njctl V detach vf1
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.2,$VEND,driver=vendor_vfio,label=22.36.1020/MT_0359" --name vf0
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.3,$VEND,driver=vendor_vfio,label=22.36.1020/MT_0359" --name vf1
expect_exit 0 nctl V libvirt-annotate "$XMLS/domain-two-vfs.xml"
with_metadata "$XMLS/domain-two-vfs.xml" "$OUT" >"$T/vendor.xml"
assert_contains "$(<"$T/vendor.xml")" 'plugin="vendor"' "annotate names the device's plugin"
# The source's firmware is 22.36.1020 on both; here vf0 has 22.36.1010 (older), vf1 1030 (newer).
expect_exit 0 njctl V detach vf0
expect_exit 0 njctl V detach vf1
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.2,$VEND,driver=vendor_vfio,label=22.36.1010/MT_0359" --name vf0
expect_exit 0 njctl V attach --sim "pci=0000:3b:00.3,$VEND,driver=vendor_vfio,label=22.36.1030/MT_0359" --name vf1
expect_exit 1 hook migrate begin - <"$T/vendor.xml"
assert_contains "$ERR" "fw: '22.36.1020' here '22.36.1010'" \
    "migrate: the plugin's at_least rule refuses an older firmware, naming the field and both values"
expect_exit 0 njctl V attach --sim "pci=0000:5e:00.1,$VEND,driver=vendor_vfio,label=22.36.1020/MT_0359" --name spare
expect_exit 0 hook migrate begin - <"$T/vendor.xml"
assert_eq "0000:3b:00.3 0000:5e:00.1" "$(source_address 0) $(source_address 1)" \
    "migrate: a newer firmware is accepted (at_least), neither goes to the older one"
