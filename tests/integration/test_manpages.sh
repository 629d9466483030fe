#!/usr/bin/env bash
# The man pages (docs/man/*.scd, built by scdoc into $BUILDDIR/man) say what the programs do:
# rendered with man -l, as a reader sees them, they must name
#   vfio-migctl(1)     every command of `vfio-migctl --help` (each in its own section), every
#                      option of `--help` and of each `COMMAND --help` in that command's
#                      section, and each subcommand (`group create`, `region read`, ...);
#   vfio-migd(8)       every option of `vfio-migd --help`;
#   vfio-migd.conf(5)  every key of `vfio-migd --dump-config`, under its [section];
# and the other way round: an option or key a page documents must exist. New commands, options
# and keys fail this test until their page says what they are.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

: "${BUILDDIR:?BUILDDIR must name the build directory}"
MAN=$BUILDDIR/man

# render PAGE: as man shows it, without hyphenation (a broken "--max-pre-\ncopy" would not match)
render() {
    LC_ALL=C MANWIDTH=250 MANROFFOPT=-rHY=0 man -l -P cat "$MAN/$1" 2>"$T/man.err"
}

for page in vfio-migctl.1 vfio-migd.8 vfio-migd.conf.5; do
    expect_exit 0 render "$page"
    assert_eq "" "$(<"$T/man.err")" "$page renders without a warning"
    render "$page" >"$T/$page.txt"
    assert_not_contains "$(<"$T/$page.txt")" "@" "$page: every @VARIABLE@ was filled in"
done
assert_contains "$(<"$T/vfio-migd.8.txt")" "/vfio-migd/vfio-migd.conf" \
    "vfio-migd(8) names the configuration file"

"$VFIO_MIGCTL" --help >"$T/ctl.help"
mapfile -t COMMANDS < <(sed -n '/^Commands:/,/^$/p' "$T/ctl.help" | awk 'NR > 1 && NF { print $1 }')
check "vfio-migctl --help lists commands (${#COMMANDS[@]})" test "${#COMMANDS[@]}" -gt 10
for c in "${COMMANDS[@]}"; do
    "$VFIO_MIGCTL" "$c" --help >"$T/ctl.$c.help"
done
"$VFIO_MIGD" --help >"$T/migd.help"
"$VFIO_MIGD" --config /dev/null --dump-config >"$T/migd.conf"

# The comparisons, in Python: sections of the rendered text, tokens of the help texts.
PYRC=0
"$PY" - "$T" "${COMMANDS[@]}" <<'EOF' || PYRC=$?
import re, sys

t, commands = sys.argv[1], sys.argv[2:]
checks = failed = 0

def result(ok, what, detail=""):
    global checks, failed
    checks += 1
    if ok:
        print("ok - %s" % what)
    else:
        failed += 1
        print("not ok - %s%s" % (what, "\n#   " + detail if detail else ""))

def read(name):
    with open("%s/%s" % (t, name)) as f:
        return f.read()

def options(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z]|-[a-zA-Z])(?![\w-])", text))

def sections(text, indent):
    """Heading -> body, for headings at exactly @indent spaces (man: 0 for .SH, 3 for .SS)."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^ {%d}(\S.*)$" % indent, line)
        if m and (indent > 0 or line[:1] != " "):
            name = m.group(1).strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out

# ---- vfio-migctl(1)
page = read("vfio-migctl.1.txt")
top = sections(page, 0)
cmds = sections(top.get("COMMANDS", ""), 3)
result("COMMANDS" in top and "OPTIONS" in top, "vfio-migctl(1) has OPTIONS and COMMANDS")
ctl_help = read("ctl.help")
for opt in sorted(options(ctl_help.split("Commands:")[0] + ctl_help.split("Options")[-1])):
    result(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), top.get("OPTIONS", "")),
           "vfio-migctl(1) OPTIONS documents global option %s" % opt)
for c in commands:
    result(c in cmds, "vfio-migctl(1) has a section for command '%s'" % c)
    body = cmds.get(c, "")
    h = read("ctl.%s.help" % c).split("Global options")[0]
    for opt in sorted(options(h)):
        result(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), body),
               "vfio-migctl(1) '%s': documents %s" % (c, opt))
    for opt in sorted(options(body) - options(h) - options(ctl_help)):
        result(False, "vfio-migctl(1) '%s': documents %s, which '%s --help' does not have"
               % (c, opt, c))
    # Subcommands: a usage made of alternatives that each start with a lower-case word.
    alts = h.splitlines()[0].split("[OPTIONS] %s" % c, 1)[-1].split(" | ")
    firsts = [a.split()[0] if a.split() else "" for a in alts]
    if len(alts) > 1 and all(re.fullmatch(r"[a-z][a-z_]*", w) for w in firsts):
        for word in firsts:
            result(re.search(r"(?<![\w-])%s %s(?![\w-])" % (c, word), body),
                   "vfio-migctl(1) '%s': documents the subcommand '%s %s'" % (c, c, word))
for c in sorted(set(cmds) - set(commands)):
    result(False, "vfio-migctl(1) documents a command '%s' that --help does not list" % c)

# ---- vfio-migd(8)
page = read("vfio-migd.8.txt")
opts8 = sections(page, 0).get("OPTIONS", "")
helpd = read("migd.help")
for opt in sorted(options(helpd)):
    result(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), opts8),
           "vfio-migd(8) OPTIONS documents %s" % opt)
for opt in sorted(options(opts8) - options(helpd)):
    result(False, "vfio-migd(8) documents %s, which 'vfio-migd --help' does not have" % opt)

# ---- vfio-migd.conf(5)
page = sections(read("vfio-migd.conf.5.txt"), 0)
keys, section = [], None
for line in read("migd.conf").splitlines():
    m = re.match(r"^\[(\w+)\]$", line)
    if m:
        section = m.group(1)
    m = re.match(r"^([a-z_]+) = ", line)
    if m:
        keys.append((section, m.group(1)))
result(len(keys) >= 10, "vfio-migd --dump-config lists the keys (%d)" % len(keys))
for section, key in keys:
    body = page.get("[%s]" % section, "")
    result(re.search(r"^ +%s = " % key, body, re.M),
           "vfio-migd.conf(5) [%s] documents %s" % (section, key))
documented = {(s[1:-1], k) for s, b in page.items() if s.startswith("[")
              for k in re.findall(r"^ {7}([a-z_]+) = ", b, re.M)}
for section, key in sorted(documented - set(keys)):
    result(False, "vfio-migd.conf(5) documents [%s] %s, which is no key" % (section, key))

print("# man page checks: %d passed, %d failed" % (checks - failed, failed))
sys.exit(1 if failed else 0)
EOF
assert_eq "0" "$PYRC" "every --help command, option and config key is in its man page"
