#!/usr/bin/env bash
# docs/runbook.md has a section for every alert and every link to it:
#   - every Prometheus rule of icinga/prometheus/*.rules.yml has runbook_url BASE#<alert in lower case>;
#   - every Zabbix trigger and trigger prototype of icinga/zabbix/*.yaml (both templates) has the URL
#     {$EPHEMERAL_PORTS.RUNBOOK}#<anchor>;
#   - every notes_url of the Icinga 2 apply rules and the Nagios services is BASE#<anchor>;
#   - the plugin's states (OK, the TCP tuple, UDP and bind(addr, 0) WARNING/CRITICAL, UNKNOWN,
#     namespaces not checked) have theirs;
# and each such anchor is an <a id> of docs/runbook.md, followed by a section with text. BASE is the
# one the runbook itself names (the installed copy); the packages install the runbook there.
set -u
. "$(dirname "$0")/lib/common.sh"
setup_temp_dir
check "install python3, python3-yaml" need_packages python3 python3-yaml || exit 1

python3 - "$root" <<'EOF'
import glob, os, re, sys
import yaml

root = sys.argv[1]
failed = False
def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond

runbook = open(os.path.join(root, "docs/runbook.md")).read()
ids = re.findall(r'<a id="([^"]+)"></a>', runbook)
ok(len(ids) == len(set(ids)), "runbook: every anchor once (%d anchors)" % len(ids))
ids = set(ids)
# The section after each anchor: a heading and some text before the next anchor.
parts = re.split(r'<a id="([^"]+)"></a>', runbook)
for name, body in zip(parts[1::2], parts[2::2]):
    ok(re.match(r"\s*#+ \S", body) and len(re.sub(r"\s+", " ", body)) > 120,
       "runbook: #%s starts a section with a heading and text" % name)
for target in sorted(set(re.findall(r"\]\(#([^)]+)\)", runbook))):
    ok(target in ids, "runbook: its link #%s has an anchor" % target)

bases = re.findall(r"`(file://[^`#]*runbook\.md)`", runbook)
ok(len(set(bases)) == 1, "runbook: it names one base URL (%s)" % ", ".join(sorted(set(bases))))
base = bases[0] if bases else "?"

def anchor_of(url, prefix, where):
    if not url or not url.startswith(prefix + "#"):
        ok(False, "%s: URL %r is %s#<anchor>" % (where, url, prefix))
        return
    anchor = url[len(prefix) + 1:]
    ok(anchor in ids, "%s: #%s has a runbook section" % (where, anchor))
    return anchor

# --- Prometheus ----------------------------------------------------------------------------------
rule_files = sorted(glob.glob(os.path.join(root, "icinga/prometheus/*.rules.yml")))
ok(rule_files, "Prometheus rule files found")
alerts = 0
for path in rule_files:
    for group in yaml.safe_load(open(path))["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            alerts += 1
            name = rule["alert"]
            url = rule.get("annotations", {}).get("runbook_url")
            where = "%s %s" % (os.path.basename(path), name)
            anchor = anchor_of(url, base, where)
            if anchor is not None:
                ok(anchor == name.lower(), "%s: the anchor is the alert's name in lower case" % where)
ok(alerts > 0, "%d Prometheus alerts" % alerts)

# --- Zabbix: both templates, triggers and trigger prototypes --------------------------------------
def triggers(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("triggers", "trigger_prototypes") and isinstance(value, list):
                for t in value:
                    yield t
            yield from triggers(value)
    elif isinstance(node, list):
        for v in node:
            yield from triggers(v)

templates = sorted(glob.glob(os.path.join(root, "icinga/zabbix/*.yaml")))
ok(len(templates) >= 2, "Zabbix templates found (%s)" % " ".join(os.path.basename(t) for t in templates))
for path in templates:
    doc = yaml.safe_load(open(path))
    found = list(triggers(doc))
    ok(found, "%s: has triggers" % os.path.basename(path))
    for t in found:
        anchor_of(t.get("url"), "{$EPHEMERAL_PORTS.RUNBOOK}", "%s trigger %r" % (os.path.basename(path), t.get("name")))

# --- Icinga 2 and Nagios notes_url -----------------------------------------------------------------
services = sorted(glob.glob(os.path.join(root, "icinga/icinga2/*.conf")))
rules = 0
for path in services:
    text = open(path).read()
    for m in re.finditer(r'apply Service "[^"]*" \{(.*?)\n\}', text, re.S):
        rules += 1
        urls = re.findall(r'^\s*notes_url = "([^"]*)"', m.group(1), re.M)
        where = "%s apply rule" % os.path.basename(path)
        ok(len(urls) == 1, "%s: one notes_url" % where)
        for url in urls:
            anchor_of(url, base, where)
ok(rules >= 2, "%d Icinga 2 apply rules" % rules)
nagios = open(os.path.join(root, "icinga/nagios/services.cfg")).read()
for m in re.finditer(r"^#?define service \{(.*?)^#?\}", nagios, re.S | re.M):
    urls = re.findall(r"^#?\s*notes_url\s+(\S+)", m.group(1), re.M)
    ok(len(urls) == 1, "services.cfg service: one notes_url")
    for url in urls:
        anchor_of(url, base, "services.cfg service")

# --- the plugin's states ----------------------------------------------------------------------------
for anchor in ("plugin-states", "ok", "tcp-tuple-warning", "tcp-tuple-critical", "udp-warning",
               "udp-critical", "bind-warning", "bind-critical", "nat-tuple-warning", "nat-tuple-critical",
               "conntrack-warning", "conntrack-critical", "unknown", "namespaces-not-checked"):
    ok(anchor in ids, "plugin state: #%s has a runbook section" % anchor)

# --- the packages install it where BASE points -------------------------------------------------------
manifest = open(os.path.join(root, "src/packaging/manifest")).read()
ok(re.search(r"^doc\s+docs/runbook\.md\s+@DOCDIR@/runbook\.md\s*$", manifest, re.M)
   and base == "file:///usr/share/doc/check-ephemeral-ports/runbook.md",
   "the packages install docs/runbook.md as %s" % base[len("file://"):])
sys.exit(1 if failed else 0)
EOF
[ $? = 0 ] || failed=1
exit $failed
