#!/usr/bin/env bash
# Integration test: Zabbix agent (Debian 12: zabbix-agent and zabbix-agent2 6.0) runs
# check_ephemeral_ports through icinga/zabbix/userparameter_ephemeral_ports.conf, and the values
# it returns feed every dependent item and trigger of icinga/zabbix/template_ephemeral_ports.yaml.
# There is no Zabbix server here, so the template is checked for structure, and its JSONPath
# steps and trigger expressions are evaluated in Python against the documents the agents return
# (and against the plugin's output for every fixture tree), with the templates' default macros
# and with host macros overriding the thresholds. The packages' placement of the UserParameter is
# zabbix_packages.sh's; the real servers are zabbix_server.sh's.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
# Temp dir kept on failure or with KEEP_TMP=1; agent daemons are stopped by PID on exit.
set -u
. "$(dirname "$0")/lib/common.sh"
zconf=$root/icinga/zabbix
py=/usr/bin/python3  # Debian's, for python3-yaml (a pyenv python3 may be first in PATH)

# zabbix_agentd, its workers, zabbix_agent2
agents() { live_processes '^zabbix_agent'; }

setup_temp_dir
require_plugin_binary
before=$(agents)
check "install zabbix-agent zabbix-agent2 python3 python3-yaml" \
    need_packages zabbix-agent zabbix-agent2 python3 python3-yaml || exit 1
check "package install started no zabbix agent" test "$(agents)" = "$before"

# --- the files under test, copied into the temp dir -------------------------------------------
# The binary is copied where user zabbix can run it; the fixture tree gives a WARNING; a missing
# --proc-root gives the UNKNOWN document.
mkdir -p "$T/run" && chown zabbix:zabbix "$T/run"  # run/: PID files and sockets
install_plugin_into "$T/bin"
cp -r "$fixtures/format-json/proc" "$T/proc" && chmod -R a+rX "$T/proc"
up=$zconf/userparameter_ephemeral_ports.conf
check "userparameter file has exactly one UserParameter, ephemeral_ports.json -> /usr/lib/nagios/plugins/check_ephemeral_ports --format json" \
    test "$(grep -c '^UserParameter=' "$up")" = 1 -a \
    -n "$(grep -x 'UserParameter=ephemeral_ports\.json,/usr/lib/nagios/plugins/check_ephemeral_ports --format json\( -w [0-9.]* -c [0-9.]*\)\?' "$up")"
{
    sed "s#/usr/lib/nagios/plugins/check_ephemeral_ports#$T/bin/check_ephemeral_ports#" "$up"
    echo "UserParameter=ephemeral_ports.fixture.json,$T/bin/check_ephemeral_ports --format json --proc-root $T/proc"
    echo "UserParameter=ephemeral_ports.broken.json,$T/bin/check_ephemeral_ports --format json --proc-root $T/nonexistent"
    echo "UserParameter=test.whoami,id -un"  # who the agent runs the commands as
} >"$T/userparameter.conf"
check "binary path rewritten in the copied userparameter file" grep -q "^UserParameter=ephemeral_ports.json,$T/bin/" "$T/userparameter.conf"

# Python helpers: template structure, JSONPath resolution, trigger evaluation, agent protocol.
cat >"$T/zbx.py" <<'EOF'
import json, re, socket, struct, sys, time
import yaml

failed = False
def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond
    return cond

def load_template(path):
    return yaml.safe_load(open(path))

def template_of(doc):
    return doc["zabbix_export"]["templates"][0]

def resolve(document, path):
    """The simple JSONPath subset the template uses: $.name(.name)*. Missing -> KeyError."""
    if not re.fullmatch(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)+", path):
        raise ValueError("path outside the supported subset: " + path)
    value = document
    for name in path.split(".")[1:]:
        if not isinstance(value, dict) or name not in value:
            raise KeyError(path)
        value = value[name]
    return value

def dependent_items(template):
    return [i for i in template["items"] if i.get("type") == "DEPENDENT"]

def jsonpath_step(item):
    return next(s for s in item["preprocessing"] if s["type"] == "JSONPATH")

def item_value(item, document):
    """What Zabbix would store for a dependent item, or None when the value is discarded."""
    step = jsonpath_step(item)
    try:
        value = resolve(document, step["parameters"][0]) if isinstance(document, dict) else resolve({}, step["parameters"][0])
        # JSONPath gives a string for scalars; objects/arrays would be JSON text, not a value.
        if isinstance(value, (dict, list)) or value is None:
            raise KeyError("not a scalar")
    except KeyError:
        handler = step.get("error_handler")
        if handler == "CUSTOM_VALUE":
            return step["error_handler_params"]
        if handler == "DISCARD_VALUE":
            return None
        raise
    return value

def type_ok(value, value_type):
    if value_type in ("TEXT", "CHAR"):
        return isinstance(value, str) and (value_type == "TEXT" or len(value) <= 255)
    if isinstance(value, str):  # a CUSTOM_VALUE from the error handler
        return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value) is not None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value_type == "FLOAT" or (isinstance(value, int) and value >= 0)  # UNSIGNED

def macro_values(template):
    return {m["macro"]: m["value"] for m in template.get("macros", [])}

# The items with threshold triggers: the headline (busiest tuple or UDP) and bind(addr, 0), which
# only the BPF reading has (absent from the document otherwise: discarded, its triggers stay OK).
THRESHOLD_ITEMS = ["ephemeral_ports.used_percent", "ephemeral_ports.bind.busiest_pct",
                   "ephemeral_ports.nat.busiest_pct", "ephemeral_ports.conntrack.used_pct"]
# Figures of a reading or a namespace a document may not have: bind(addr, 0) (BPF), source NAT
# (root, where the namespace NATs) and the conntrack table (where it tracks connections).
OPTIONAL_PATHS = {"$.tcp.bindBeforeConnect.busiestPct", "$.nat.busiestPct", "$.nat.failurePct",
                  "$.conntrack.usedPct", "$.conntrack.entries", "$.conntrack.insertFailed", "$.conntrack.drop"}

THRESHOLD = re.compile(r"min\(/([^/]+)/([^,)]+),\{\$EPHEMERAL_PORTS\.PERIOD\}\)>(\{\$EPHEMERAL_PORTS\.(WARN|CRIT)\})")

def fired_triggers(template, values, macros=None):
    """The triggers that fire for one document: last(/T/key)=N and the threshold form
    min(/T/key,{$EPHEMERAL_PORTS.PERIOD})>{$EPHEMERAL_PORTS.WARN|CRIT} (every value of the period
    being this document's, min is its value), with the template's macros or MACROS; a trigger
    whose dependency fires is suppressed. nodata() triggers need time, skipped."""
    macros = dict(macro_values(template), **(macros or {}))
    fired = []
    triggers = [tr for item in template["items"] for tr in item.get("triggers", [])]
    for trig in triggers:
        m = re.fullmatch(r"last\(/([^/]+)/([^)]+)\)=([0-9]+)", trig["expression"])
        if m and m.group(2) in values and values[m.group(2)] is not None \
                and float(values[m.group(2)]) == float(m.group(3)):
            fired.append(trig)
        m = THRESHOLD.fullmatch(trig["expression"])
        if m and values.get(m.group(2)) is not None and float(values[m.group(2)]) > float(macros[m.group(3)]):
            fired.append(trig)
    names = {tr["name"] for tr in fired}
    return [tr for tr in fired if not any(d["name"] in names for d in tr.get("dependencies", []))]

# The runbook section of each trigger (README.md next to the templates lists them): the trigger's
# name lowercased with spaces as '-', its macros and punctuation left out, shortened where long.
ANCHORS = [
    (r"Ephemeral ports: WARNING", "ephemeral-ports-warning"),
    (r"Ephemeral ports: CRITICAL", "ephemeral-ports-critical"),
    (r"Ephemeral ports: bind\(addr, 0\) WARNING", "ephemeral-ports-bind-warning"),
    (r"Ephemeral ports: bind\(addr, 0\) CRITICAL", "ephemeral-ports-bind-critical"),
    (r"Ephemeral ports: UNKNOWN, .*", "ephemeral-ports-unknown"),
    (r"Ephemeral ports: No data for .*", "ephemeral-ports-no-data"),
    (r"Ephemeral ports: tuple .* above \{\$EPHEMERAL_PORTS\.WARN.*", "ephemeral-ports-tuple-warning"),
    (r"Ephemeral ports: tuple .* above \{\$EPHEMERAL_PORTS\.CRIT.*", "ephemeral-ports-tuple-critical"),
    (r"Ephemeral ports: busiest TCP tuple runs out of ports .*", "ephemeral-ports-forecast"),
    (r"Ephemeral ports: source NAT tuple WARNING", "nat-tuple-warning"),
    (r"Ephemeral ports: source NAT tuple CRITICAL", "nat-tuple-critical"),
    (r"Ephemeral ports: conntrack table WARNING", "conntrack-warning"),
    (r"Ephemeral ports: conntrack table CRITICAL", "conntrack-critical"),
    (r"Ephemeral ports: conntrack insertions failing .*", "nat-tuple-critical"),
    (r"Ephemeral ports: NAT tuple .* (above|drops over) \{\$EPHEMERAL_PORTS\.(NAT\.FAILURE\.)?WARN:.*", "nat-tuple-warning"),
    (r"Ephemeral ports: NAT tuple .* (above|drops over) \{\$EPHEMERAL_PORTS\.(NAT\.FAILURE\.)?CRIT:.*", "nat-tuple-critical"),
]

def anchor(name):
    return next((a for pattern, a in ANCHORS if re.fullmatch(pattern, name)), None)

def check_thresholds(t, label, top_triggers=()):
    """The WARNING/CRITICAL triggers: thresholds from user macros (defaults the plugin's -w/-c),
    anti-flap min() over {$EPHEMERAL_PORTS.PERIOD}, recovery by max() over the same period, the
    warning depending on the critical one; every trigger links its runbook section."""
    name = t["template"]
    macros = macro_values(t)
    ok(macros.get("{$EPHEMERAL_PORTS.WARN}") == "70" and macros.get("{$EPHEMERAL_PORTS.CRIT}") == "85"
       and re.fullmatch(r"[0-9]+[smh]", macros.get("{$EPHEMERAL_PORTS.PERIOD}", "")),
       "%s: macros {$EPHEMERAL_PORTS.WARN} 70, {$EPHEMERAL_PORTS.CRIT} 85 (the plugin's defaults), {$EPHEMERAL_PORTS.PERIOD} %s"
       % (label, macros.get("{$EPHEMERAL_PORTS.PERIOD}")))
    triggers = [tr for i in t["items"] for tr in i.get("triggers", [])]
    by_level = {}
    for tr in triggers:
        m = THRESHOLD.fullmatch(tr["expression"])
        if m:
            by_level[(m.group(2), m.group(4))] = tr
            want_recovery = "max(/%s/%s,{$EPHEMERAL_PORTS.PERIOD})<=%s" % (m.group(1), m.group(2), m.group(3))
            ok(m.group(1) == name and tr.get("recovery_mode") == "RECOVERY_EXPRESSION"
               and tr.get("recovery_expression") == want_recovery,
               "%s: %s: %s, recovery %s" % (label, tr["name"], tr["expression"], tr.get("recovery_expression")))
    for key in THRESHOLD_ITEMS:
        w, c = by_level.get((key, "WARN")), by_level.get((key, "CRIT"))
        ok(w is not None and c is not None and w["priority"] == "WARNING" and c["priority"] == "HIGH"
           and [d["name"] for d in w.get("dependencies", [])] == [c["name"]]
           and w["dependencies"][0]["expression"] == c["expression"]
           and w["dependencies"][0].get("recovery_expression") == c["recovery_expression"],
           "%s: on %s a WARNING trigger (priority WARNING) over {$EPHEMERAL_PORTS.WARN} depending on a CRITICAL one (HIGH) over {$EPHEMERAL_PORTS.CRIT}" % (label, key))
    ok(sorted({k for k, _ in by_level}) == sorted(THRESHOLD_ITEMS), "%s: threshold triggers on %s" % (label, " and ".join(THRESHOLD_ITEMS)))
    states = sorted(int(m.group(1)) for tr in triggers
                    for m in [re.fullmatch(r"last\(/[^/]+/ephemeral_ports\.state\)=([0-9])", tr["expression"])] if m)
    ok(states == [3], "%s: of the plugin's states only UNKNOWN (3) has a trigger (the thresholds are the macros'): %s" % (label, states))
    everything = triggers + [tp for r in t.get("discovery_rules", []) for p in r.get("item_prototypes", [])
                             for tp in p.get("trigger_prototypes", [])] + list(top_triggers)
    bad = [tr["name"] for tr in everything if anchor(tr["name"]) is None
           or tr.get("url") != "{$EPHEMERAL_PORTS.RUNBOOK}#" + anchor(tr["name"])]
    ok("{$EPHEMERAL_PORTS.RUNBOOK}" in macros and not bad,
       "%s: all %d triggers link {$EPHEMERAL_PORTS.RUNBOOK}#<their section>%s" % (label, len(everything), "; not: " + ", ".join(bad) if bad else ""))

TCP_RULE, NAT_RULE = "ephemeral_ports.tuples.discovery", "ephemeral_ports.nat.discovery"
NAT_MACROS = {"{#NAT.ADDRESS}": "$.natAddress", "{#NAT.DEST}": "$.destination", "{#NAT.PORT}": "$.port",
              "{#NAT.PROTO}": "$.protocol", "{#NAT.ZONE}": "$.zone"}
# The one JSONPath form of the NAT item prototypes: the tuple selected by all five of its key
# fields (NAT address, destination, port, protocol, zone: two tuples may differ in one only).
NAT_FILTER = re.compile(r'\$\.nat\.tuples\[\?\(@\.natAddress == "([^"]*)" && @\.destination == "([^"]*)" && @\.port == ([0-9]+)'
                        r' && @\.protocol == "([^"]*)" && @\.zone == ([0-9]+)\)\]\.([A-Za-z]+)\.first\(\)')
NAT_FIELDS = {"held": "held", "pct": "percent", "failure_pct": "failurePct", "entries": "entries", "capacity": "capacity"}
# The problem expression also needs the tuple's values to be recent: with none in the period min()
# cannot be evaluated, and a problem expression Zabbix cannot evaluate leaves the trigger as it
# was (state unknown), never reaching the recovery expression; "unknown and 0" is 0.
NAT_TRIGGER = re.compile(r"min\(/([^/]+)/(ephemeral_ports\.nat\.tuple\.(pct|failure_pct)\[[^\]]*\]),\{\$EPHEMERAL_PORTS\.PERIOD\}\)"
                         r">\{\$(EPHEMERAL_PORTS\.(?:NAT\.FAILURE\.)?(WARN|CRIT)):\"\{#NAT\.DEST\}:\{#NAT\.PORT\}\"\}"
                         r" and nodata\(/\1/\2,\{\$EPHEMERAL_PORTS\.TUPLE\.NODATA\}\)=0")

def rule(t, key):
    return next(r for r in t.get("discovery_rules", []) if r["key"] == key)

def discovery_objects(t):
    """Every discovery rule, item prototype and trigger prototype of the template."""
    out = []
    for r in t.get("discovery_rules", []):
        out.append(r)
        for p in r.get("item_prototypes", []):
            out.append(p)
            out += p.get("trigger_prototypes", [])
    return out

def rule_of(t, obj):
    return next(r["key"] for r in t.get("discovery_rules", []) if obj is r or obj in discovery_objects({"discovery_rules": [r]}))

def check_nat_discovery(t, label, v7):
    """The source-NAT discovery: a dependent rule over $.nat.tuples that a document without NAT
    turns into an empty list (not an error), prototypes selecting their tuple by all five key
    fields and discarding the value when it is not listed, WARNING/CRITICAL trigger prototypes on
    the fill and the failure odds with per-destination context macros, the WARNING depending on
    the CRITICAL, recovering on nodata once the tuple is no longer listed."""
    name = t["template"]
    r = rule(t, NAT_RULE)
    step = r["preprocessing"][0]
    ok(r.get("type") == "DEPENDENT" and r.get("master_item", {}).get("key") == "ephemeral_ports.json"
       and len(r["preprocessing"]) == 1 and step["type"] == "JSONPATH" and step["parameters"] == ["$.nat.tuples"]
       and step.get("error_handler") == "CUSTOM_VALUE" and step.get("error_handler_params") == "[]",
       "%s: %s is a dependent of ephemeral_ports.json over $.nat.tuples, '[]' when the document has none" % (label, NAT_RULE))
    lifetime = (r.get("lifetime_type"), r.get("lifetime"), r.get("enabled_lifetime_type"), r.get("enabled_lifetime")) if v7 else r.get("lifetime")
    ok(lifetime == (("DELETE_AFTER", "7d", "DISABLE_AFTER", "1d") if v7 else "7d"),
       "%s: lost NAT tuples %s" % (label, "disabled after 1d, deleted after 7d" if v7 else "deleted after 7d (6.0 cannot disable them first)"))
    ok({m["lld_macro"]: m["path"] for m in r.get("lld_macro_paths", [])} == NAT_MACROS,
       "%s: LLD macros %s" % (label, " ".join(NAT_MACROS)))
    protos = r.get("item_prototypes", [])
    pkeys = [p["key"] for p in protos]
    args = '["{#NAT.ADDRESS}","{#NAT.DEST}","{#NAT.PORT}","{#NAT.PROTO}","{#NAT.ZONE}"]'
    ok(sorted(pkeys) == sorted("ephemeral_ports.nat.tuple.%s%s" % (k, args) for k in NAT_FIELDS),
       "%s: NAT item prototypes %s, each keyed by all five macros" % (label, ", ".join(sorted(NAT_FIELDS))))
    bad = []
    sample = {"{#NAT.ADDRESS}": "192.0.2.1", "{#NAT.DEST}": "198.51.100.2", "{#NAT.PORT}": "443", "{#NAT.PROTO}": "tcp", "{#NAT.ZONE}": "7"}
    for p in protos:
        field = NAT_FIELDS[p["key"].split("[")[0].rsplit(".", 1)[1]]
        s0 = p["preprocessing"][0]
        path = s0["parameters"][0]
        for k, v in sample.items():
            path = path.replace(k, v)
        # Filled in, the filter must name each field once with its own macro (port and zone are
        # numbers in the document: compared unquoted), then the prototype's own field.
        m = NAT_FILTER.fullmatch(path)
        if not (p.get("type") == "DEPENDENT" and p.get("master_item", {}).get("key") == "ephemeral_ports.json" and str(p.get("delay")) == "0"
                and s0["type"] == "JSONPATH" and s0.get("error_handler") == "DISCARD_VALUE" and "timeout" not in p
                and m and m.groups() == ("192.0.2.1", "198.51.100.2", "443", "tcp", "7", field)):
            bad.append(p["key"])
    ok(not bad and len(protos) == len(NAT_FIELDS),
       "%s: every NAT prototype is a dependent item (delay 0) whose JSONPath selects its tuple by all five fields and discards the value when the tuple is not listed%s"
       % (label, "; not: " + ", ".join(bad) if bad else ""))
    macros = macro_values(t)
    ok(macros.get("{$EPHEMERAL_PORTS.NAT.FAILURE.WARN}") == "1" and macros.get("{$EPHEMERAL_PORTS.NAT.FAILURE.CRIT}") == "10"
       and re.fullmatch(r"[0-9]+[smh]", macros.get("{$EPHEMERAL_PORTS.TUPLE.NODATA}", "")),
       "%s: macros {$EPHEMERAL_PORTS.NAT.FAILURE.WARN} 1, .CRIT 10 (the plugin's --nat-failure-warning/-critical defaults), {$EPHEMERAL_PORTS.TUPLE.NODATA} %s"
       % (label, macros.get("{$EPHEMERAL_PORTS.TUPLE.NODATA}")))
    tps, bad = {}, []
    for p in protos:
        for tp in p.get("trigger_prototypes", []):
            m = NAT_TRIGGER.fullmatch(tp["expression"])
            if not m or m.group(1) != name or m.group(2) != p["key"]:
                bad.append(tp["name"])
                continue
            ref = "/%s/%s" % (name, p["key"])
            want_rec = "max(%s,{$EPHEMERAL_PORTS.PERIOD})<={$%s:\"{#NAT.DEST}:{#NAT.PORT}\"} or nodata(%s,{$EPHEMERAL_PORTS.TUPLE.NODATA})=1" % (ref, m.group(4), ref)
            if tp.get("recovery_mode") != "RECOVERY_EXPRESSION" or tp.get("recovery_expression") != want_rec:
                bad.append(tp["name"] + " (recovery)")
            tps[(m.group(3), m.group(5))] = tp
    pairs = []
    for kind in ("pct", "failure_pct"):
        w, c = tps.get((kind, "WARN")), tps.get((kind, "CRIT"))
        pairs.append(w is not None and c is not None and w["priority"] == "WARNING" and c["priority"] == "HIGH"
                     and [(d["name"], d["expression"], d.get("recovery_expression")) for d in w.get("dependencies", [])]
                     == [(c["name"], c["expression"], c["recovery_expression"])] and not c.get("dependencies"))
    ok(not bad and len(tps) == 4 and all(pairs),
       "%s: NAT trigger prototypes: fill over {$EPHEMERAL_PORTS.WARN/CRIT:\"{#NAT.DEST}:{#NAT.PORT}\"}, failure odds over {$EPHEMERAL_PORTS.NAT.FAILURE.WARN/CRIT:...}, min() over the period while values come (nodata {$EPHEMERAL_PORTS.TUPLE.NODATA} 0), recovery by max() or nodata, each WARNING depending on its CRITICAL%s"
       % (label, "; not: " + ", ".join(bad) if bad else ""))
    v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    longest = max(len(x["name"].replace("{#NAT.ADDRESS}", v6).replace("{#NAT.DEST}", v6).replace("{#NAT.PORT}", "65535")
                      .replace("{#NAT.PROTO}", "udplite").replace("{#NAT.ZONE}", "65535")) for x in protos + list(tps.values()))
    ok(longest <= 255, "%s: NAT prototype names fit Zabbix's 255 characters with two full IPv6 addresses (longest %d)" % (label, longest))

def nat_discover(r, document):
    """What the NAT rule's preprocessing gives the LLD: the nat.tuples list, or its error handler's '[]'."""
    step = r["preprocessing"][0]
    try:
        rows = resolve(document if isinstance(document, dict) else {}, "$.nat.tuples")
    except KeyError:
        if step.get("error_handler") != "CUSTOM_VALUE":
            raise
        rows = json.loads(step["error_handler_params"])
    if not isinstance(rows, list):
        raise ValueError("$.nat.tuples is not a list")
    return [{m["lld_macro"]: str(resolve(row, m["path"])) for m in r["lld_macro_paths"]} for row in rows]

def nat_values(r, entity, document):
    """Each item prototype of one discovered tuple, its JSONPath filled in and run on DOCUMENT:
    key -> value, or None when the step discards it (the tuple is not listed)."""
    values = {}
    for p in r["item_prototypes"]:
        key, path = p["key"], p["preprocessing"][0]["parameters"][0]
        for k, v in entity.items():
            key, path = key.replace(k, v), path.replace(k, v)
        m = NAT_FILTER.fullmatch(path)
        if not m:
            raise ValueError("%s: JSONPath %s outside the known filter form" % (key, path))
        rows = (document.get("nat") or {}).get("tuples", []) if isinstance(document, dict) else []
        found = [x for x in rows if (x["natAddress"], x["destination"], x["port"], x["protocol"], x["zone"])
                 == (m.group(1), m.group(2), int(m.group(3)), m.group(4), int(m.group(5)))]
        if len(found) > 1:
            raise ValueError("%s: %d tuples match" % (key, len(found)))
        if found and not type_ok(found[0][m.group(6)], p.get("value_type", "UNSIGNED")):
            raise ValueError("%s: %r is not %s" % (key, found[0][m.group(6)], p.get("value_type", "UNSIGNED")))
        values[key] = found[0][m.group(6)] if found else None
    return values

def nat_fired(t, r, entity, values, host_macros):
    """The trigger prototypes of one tuple that fire when every value of the period is VALUES'
    (min is that value); no value in the period fires nothing. A macro with the tuple's context
    "DEST:PORT" on the host wins over the plain one on the host, then the template's."""
    macros = dict(macro_values(t), **host_macros)
    ctx = "%s:%s" % (entity["{#NAT.DEST}"], entity["{#NAT.PORT}"])
    fired = []
    for p in r["item_prototypes"]:
        for tp in p.get("trigger_prototypes", []):
            m = NAT_TRIGGER.fullmatch(tp["expression"])
            key = m.group(2)
            for k, v in entity.items():
                key = key.replace(k, v)
            plain = "{$%s}" % m.group(4)
            threshold = macros.get('{$%s:"%s"}' % (m.group(4), ctx), macros[plain])
            if values.get(key) is not None and float(values[key]) > float(threshold):
                fired.append(tp)
    names = {tp["name"] for tp in fired}
    return [tp for tp in fired if not any(d["name"] in names for d in tp.get("dependencies", []))]

def cmd_natlld(path, label, discover_path, values_path, expected, host_macros):
    """Discovery over DISCOVER (the entities the server holds), then the values of one later
    document VALUES through each entity's prototypes, and the trigger prototypes that fire:
    EXPECTED is a comma list of PORT/PRIORITY/kind (kind pct or failure_pct), sorted."""
    t = template_of(load_template(path))
    r = rule(t, NAT_RULE)
    def load(p):
        try:
            return json.load(open(p))
        except ValueError:
            return None
    discovered, document = load(discover_path), load(values_path)
    try:
        entities = nat_discover(r, discovered)
        fired, found, dropped = [], 0, 0
        for e in entities:
            values = nat_values(r, e, document)
            found += sum(v is not None for v in values.values())
            dropped += all(v is None for v in values.values())
            for tp in nat_fired(t, r, e, values, host_macros):
                fired.append("%s/%s/%s" % (e["{#NAT.PORT}"], tp["priority"], NAT_TRIGGER.fullmatch(tp["expression"]).group(3)))
        problem = None
    except (KeyError, ValueError) as ex:
        problem, entities, fired, found, dropped = str(ex), [], [], 0, 0
    rows = len((document.get("nat") or {}).get("tuples", [])) if isinstance(document, dict) else 0
    ok(problem is None and ",".join(sorted(fired)) == expected and found == rows * len(r["item_prototypes"]),
       "%s: %d NAT tuples discovered, %d prototype values found by their filters, %d tuples not listed any more (values discarded), host macros %s: trigger prototypes that fire: %s%s"
       % (label, len(entities), found, dropped, " ".join("%s=%s" % kv for kv in host_macros.items()) or "none",
          ",".join(sorted(fired)) or "none", "; " + problem if problem else "" if ",".join(sorted(fired)) == expected else "; expected " + (expected or "none")))

def cmd_template(path):
    doc = load_template(path)
    ex = doc["zabbix_export"]
    ok(ex.get("version") == "6.0", "template: zabbix_export.version is '6.0'")
    ok(len(ex.get("templates", [])) == 1, "template: exactly one template")
    t = template_of(doc)
    name = t["template"]
    group_names = {g["name"] for g in ex.get("groups", [])}
    ok(t.get("groups") and all(g["name"] in group_names for g in t["groups"]),
       "template: its groups are declared in zabbix_export.groups (6.0: no template_groups)")
    uuids = [g["uuid"] for g in ex.get("groups", [])] + [t["uuid"]]
    uuids += [i["uuid"] for i in t["items"]] + [tr["uuid"] for i in t["items"] for tr in i.get("triggers", [])]
    uuids += [v["uuid"] for v in t.get("valuemaps", [])] + [g["uuid"] for g in ex.get("graphs", [])]
    uuids += [x["uuid"] for x in discovery_objects(t)]
    ok(all(re.fullmatch(r"[0-9a-f]{32}", u) for u in uuids) and len(set(uuids)) == len(uuids),
       "template: %d UUIDs, all 32 lowercase hex digits and unique" % len(uuids))
    keys = [i["key"] for i in t["items"]]
    ok(len(set(keys)) == len(keys), "template: item keys unique")
    masters = [i for i in t["items"] if i.get("type", "ZABBIX_PASSIVE") in ("ZABBIX_PASSIVE", "ZABBIX_ACTIVE")]
    ok(len(masters) == 1 and masters[0]["key"] == "ephemeral_ports.json"
       and masters[0].get("value_type") == "TEXT" and str(masters[0].get("trends")) == "0",
       "template: one agent item, ephemeral_ports.json, value_type TEXT, trends 0")
    deps = dependent_items(t)
    ok(len(deps) == len(t["items"]) - 1, "template: the %d other items are DEPENDENT" % len(deps))
    ok(all(i.get("master_item", {}).get("key") == "ephemeral_ports.json" for i in deps),
       "template: every dependent item's master_item.key is ephemeral_ports.json")
    ok(all(str(i.get("delay")) == "0" and sum(s["type"] == "JSONPATH" for s in i.get("preprocessing", [])) == 1
           and i["preprocessing"][0]["type"] == "JSONPATH" for i in deps),
       "template: every dependent item has delay 0 and starts with one JSONPATH step")
    paths = {jsonpath_step(i)["parameters"][0]: i["key"] for i in deps}
    wanted = ["$.exitCode", "$.tcp.busiestPct", "$.tcp.busiestUsed", "$.tcp.capacity", "$.tcp.portsInUse",
              "$.tcp.timeWait", "$.udp.usedPct", "$.udp.used", "$.healthScore", "$.usedPercent", "$.summary"]
    ok(all(p in paths for p in wanted), "template: JSONPaths for " + " ".join(wanted))
    ok(all(i.get("value_type", "UNSIGNED") in ("FLOAT", "UNSIGNED", "CHAR", "TEXT", "LOG") for i in t["items"]),
       "template: value_types are 6.0 constants")
    valuemaps = {v["name"] for v in t.get("valuemaps", [])}
    ok(all(i["valuemap"]["name"] in valuemaps for i in t["items"] if "valuemap" in i),
       "template: referenced value maps exist")
    # Every function in every trigger expression (and expression macro in event names) refers to
    # this template (or, in a macro, to the trigger's host: //key) and an item key it has.
    refs_ok, triggers = True, [tr for i in t["items"] for tr in i.get("triggers", [])] + ex.get("triggers", [])
    for tr in triggers:
        refs = re.findall(r"[a-z]+\(/([^/]*)/([^,)]+)", tr["expression"])
        macro_refs = re.findall(r"\{\?[a-z]+\(/([^/]*)/([^,)]+)", tr.get("event_name", ""))
        refs_ok &= bool(refs) and all(h == name and k in keys for h, k in refs)
        refs_ok &= all(h in ("", name) and k in keys for h, k in macro_refs)
        refs_ok &= tr.get("priority") in ("NOT_CLASSIFIED", "INFO", "WARNING", "AVERAGE", "HIGH", "DISASTER")
    ok(refs_ok and len(triggers) >= 3, "template: %d triggers; expressions use /%s/<existing key>, priorities valid"
       % (len(triggers), name))
    check_thresholds(t, "template")
    ok([r["key"] for r in t.get("discovery_rules", [])] == [NAT_RULE],
       "template: one discovery rule, %s (the busiest TCP tuples' is 7.0's)" % NAT_RULE)
    check_nat_discovery(t, "template", v7=False)
    ok(all("timeout" not in i for i in t["items"]), "template: no item timeout (6.0 has none: the agent's Timeout applies)")
    graph_ok = all(gi["item"]["host"] == name and gi["item"]["key"] in keys
                   for g in ex.get("graphs", []) for gi in g["graph_items"])
    ok(graph_ok, "template: graph items refer to the template's items")
    return doc

def cmd_document(template_path, document_text, label, expect_state=None, expect_text=None):
    """Every dependent item gets a value of its type (or is discarded by its error handler)."""
    t = template_of(load_template(template_path))
    if expect_text is not None:
        ok(document_text == expect_text, label + ": agent value equals the plugin's own output")
    try:
        document = json.loads(document_text)
        ok(isinstance(document, dict) and "\n" not in document_text.strip(), label + ": one JSON object on one line")
    except ValueError as e:
        document = None
        ok(expect_state == "garbage", label + ": not JSON (%s)" % e)
    values, problems = {}, []
    for item in dependent_items(t):
        path = jsonpath_step(item)["parameters"][0]
        try:
            value = item_value(item, document)
        except KeyError:
            problems.append("%s (%s): no value and no error handler" % (item["key"], path))
            continue
        values[item["key"]] = value
        if value is None:
            if isinstance(document, dict) and document.get("state") != "UNKNOWN" and path not in OPTIONAL_PATHS:
                problems.append("%s (%s): discarded in a %s document" % (item["key"], path, document.get("state")))
        elif not type_ok(value, item.get("value_type", "UNSIGNED")):
            problems.append("%s (%s) = %r is not %s" % (item["key"], path, value, item.get("value_type", "UNSIGNED")))
    stored = sum(v is not None for v in values.values())
    ok(not problems, "%s: %d of %d dependent items get a value of their type%s" % (
        label, stored, len(dependent_items(t)), "; " + "; ".join(problems) if problems else ""))
    exit_code = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
    if isinstance(document, dict):
        ok(document.get("exitCode") == exit_code.get(document.get("state")),
           "%s: state %s matches exitCode %s" % (label, document.get("state"), document.get("exitCode")))
    if expect_state:
        want = 3 if expect_state == "garbage" else exit_code[expect_state]
        ok(str(values.get("ephemeral_ports.state")) == str(want),
           "%s: item ephemeral_ports.state = %s (%s)" % (label, values.get("ephemeral_ports.state"), expect_state))
    state = values.get("ephemeral_ports.state")
    want_priority = {0: [], 1: ["WARNING"], 2: ["HIGH"], 3: ["AVERAGE"]}.get(int(state) if state is not None else -1)
    fired = fired_triggers(t, values)
    ok(want_priority is not None and sorted(tr["priority"] for tr in fired) == want_priority,
       "%s: triggers that fire: %s" % (label, ", ".join("%s (%s)" % (tr["name"], tr["priority"]) for tr in fired) or "none"))

def cmd_template7(path, path6):
    """The 7.0 template: 7.0 structure, the same items as the 6.0 one (same UUIDs, so that an
    import over the 6.0 template updates it in place), the discovery rule and the forecast."""
    doc = load_template(path)
    ex = doc["zabbix_export"]
    ok(ex.get("version") == "7.0", "7.0 template: zabbix_export.version is '7.0'")
    ok("groups" not in ex and ex.get("template_groups"), "7.0 template: template_groups, no 6.0 groups")
    t = template_of(doc)
    name = t["template"]
    ok(all(g["name"] in {x["name"] for x in ex["template_groups"]} for g in t["groups"]),
       "7.0 template: its groups are declared in template_groups")
    ok(t.get("vendor", {}).get("name") and re.fullmatch(r"7\.0-[0-9]+", str(t["vendor"].get("version", ""))),
       "7.0 template: vendor name and version 7.0-N (%s)" % t.get("vendor"))
    ok(len(t.get("tags", [])) >= 1 and all(g.get("tag") for g in t["tags"]), "7.0 template: template tags")
    macros = {m["macro"]: m for m in t.get("macros", [])}
    ok(all(m.get("description") for m in macros.values()) and len(macros) >= 5,
       "7.0 template: %d macros, each with a description" % len(macros))
    check_thresholds(t, "7.0 template", ex.get("triggers", []))
    master = [i for i in t["items"] if i["key"] == "ephemeral_ports.json"][0]
    timeout = macros.get("{$EPHEMERAL_PORTS.TIMEOUT}", {}).get("value", "")
    ok(master.get("timeout") == "{$EPHEMERAL_PORTS.TIMEOUT}" and re.fullmatch(r"[0-9]+s", timeout)
       and 10 < int(timeout[:-1]) <= 600,
       "7.0 template: ephemeral_ports.json has the timeout {$EPHEMERAL_PORTS.TIMEOUT} = %s, longer than the plugin's -t 10 s" % timeout)
    ok(all("timeout" not in i for i in t["items"] if i is not master), "7.0 template: no timeout on the dependent items")
    vm = {v["name"]: {m["value"]: m["newvalue"] for m in v["mappings"]} for v in t.get("valuemaps", [])}
    ok(vm.get("check_ephemeral_ports state") == {"0": "OK", "1": "WARNING", "2": "CRITICAL", "3": "UNKNOWN"},
       "7.0 template: value map for the state 0-3")
    rules = t.get("discovery_rules", [])
    ok(sorted(x["key"] for x in rules) == sorted([TCP_RULE, NAT_RULE]), "7.0 template: two discovery rules, %s and %s" % (TCP_RULE, NAT_RULE))
    check_nat_discovery(t, "7.0 template", v7=True)
    r = rule(t, TCP_RULE)
    ok(r.get("type") == "DEPENDENT" and r.get("master_item", {}).get("key") == "ephemeral_ports.json"
       and r["preprocessing"][0]["type"] == "JSONPATH" and r["preprocessing"][0]["parameters"] == ["$.topDestinations"],
       "7.0 template: the discovery rule is a dependent of ephemeral_ports.json over $.topDestinations")
    paths = {m["lld_macro"]: m["path"] for m in r.get("lld_macro_paths", [])}
    ok(paths == {"{#SOURCE}": "$.source", "{#DESTINATION}": "$.destination", "{#PORT}": "$.port"},
       "7.0 template: LLD macros {#SOURCE} {#DESTINATION} {#PORT}")
    protos = r.get("item_prototypes", [])
    keys = [i["key"] for i in t["items"]]
    pkeys = [p["key"] for p in protos]
    ok(len(protos) >= 2 and all(all(m in p["key"] for m in paths) and p.get("master_item", {}).get("key") == "ephemeral_ports.json"
                                 for p in protos),
       "7.0 template: %d item prototypes, keyed by all three macros, dependent on ephemeral_ports.json" % len(protos))
    tprotos = [tp for p in protos for tp in p.get("trigger_prototypes", [])]
    refs_ok = True
    for tp in tprotos:
        refs = re.findall(r"[a-z]+\(/([^/]*)/([^,)\[]+\[[^\]]*\])", tp["expression"] + " " + tp.get("recovery_expression", ""))
        refs_ok &= bool(refs) and all(h == name and k in pkeys for h, k in refs)
    ok(len(tprotos) >= 2 and refs_ok and {tp["priority"] for tp in tprotos} == {"WARNING", "HIGH"},
       "7.0 template: %d trigger prototypes (WARNING, HIGH) on the item prototypes" % len(tprotos))
    # "and nodata(...)=0": see NAT_TRIGGER (a tuple that leaves the list must let its trigger recover).
    ctx = {tp["priority"]: re.search(r"min\((/.+\]),\{\$EPHEMERAL_PORTS\.PERIOD\}\)>(\{\$EPHEMERAL_PORTS\.[A-Z]+:\"\{#DESTINATION\}:\{#PORT\}\"\})"
                                     r" and nodata\(\1,\{\$EPHEMERAL_PORTS\.TUPLE\.NODATA\}\)=0$", tp["expression"])
           for tp in tprotos}
    ok(ctx.get("WARNING") and ctx["WARNING"].group(2) == '{$EPHEMERAL_PORTS.WARN:"{#DESTINATION}:{#PORT}"}'
       and ctx.get("HIGH") and ctx["HIGH"].group(2) == '{$EPHEMERAL_PORTS.CRIT:"{#DESTINATION}:{#PORT}"}',
       "7.0 template: the tuple trigger prototypes use the threshold macros with the context \"{#DESTINATION}:{#PORT}\" over {$EPHEMERAL_PORTS.PERIOD}, while the tuple has values (nodata {$EPHEMERAL_PORTS.TUPLE.NODATA} 0)")
    triggers = [tr for i in t["items"] for tr in i.get("triggers", [])] + ex.get("triggers", [])
    ok(all(all(h == name and k in keys for h, k in re.findall(r"[a-z]+\(/([^/]*)/([^,)]+)", tr["expression"]))
           for tr in triggers), "7.0 template: trigger expressions use /%s/<existing key>" % name)
    fc = [tr for tr in triggers if re.search(r"\b(forecast|timeleft)\(/[^/]+/ephemeral_ports\.tcp\.busiest_used,", tr["expression"])]
    ok(len(fc) == 1, "7.0 template: a forecast trigger on the busiest tuple's used ports: %s" % (fc and fc[0]["expression"]))
    uuids = re.findall(r"uuid: ([0-9a-f]+)", open(path).read())
    ok(all(len(u) == 32 for u in uuids) and len(set(uuids)) == len(uuids),
       "7.0 template: %d UUIDs, all 32 lowercase hex digits and unique" % len(uuids))
    t6 = template_of(load_template(path6))
    same = t6["uuid"] == t["uuid"] and t6["template"] == name and all(
        i6["uuid"] == i7["uuid"] for i6 in t6["items"] for i7 in t["items"] if i6["key"] == i7["key"])
    ok(same and set(i["key"] for i in t6["items"]) <= set(keys),
       "7.0 template: same name, UUIDs and item keys as the 6.0 template (an upgrade in place)")
    objs6 = {(x.get("key") or x.get("name")): x["uuid"] for x in discovery_objects(t6)}
    objs7 = {(x.get("key") or x.get("name")): x["uuid"] for x in discovery_objects(t) if rule_of(t, x) == NAT_RULE}
    ok(objs6 == objs7 and len(objs6) >= 10,
       "7.0 template: the NAT discovery rule, its %d item and trigger prototypes have the 6.0 template's keys, names and UUIDs" % (len(objs6) - 1))

FILTER = re.compile(r"\$\.topDestinations\[\?\(@\.source == \"(.*)\" && @\.destination == \"(.*)\" && @\.port == ([0-9]+)\)\]\.([a-zA-Z]+)\.first\(\)")

def cmd_lld(path, label, document_path):
    """The discovery over one document: entities from $.topDestinations with the LLD macro paths,
    then each item prototype's JSONPath with the macros filled in must find that tuple's value."""
    t = template_of(load_template(path))
    r = rule(t, TCP_RULE)
    try:
        document = json.load(open(document_path))
    except ValueError:
        document = None
    rows = document.get("topDestinations") if isinstance(document, dict) else None
    if rows is None:
        ok(r["preprocessing"][0].get("error_handler") == "DISCARD_VALUE",
           "%s: no topDestinations, the discovery discards the value" % label)
        return
    problems, n = [], 0
    for row in rows:
        macros = {m["lld_macro"]: str(resolve(row, m["path"])) for m in r["lld_macro_paths"]}
        for p in r["item_prototypes"]:
            path_ = p["preprocessing"][0]["parameters"][0]
            for k, v in macros.items():
                path_ = path_.replace(k, v)
            m = FILTER.fullmatch(path_)
            if not m:
                problems.append("%s: JSONPath %s outside the known filter form" % (p["key"], path_))
                continue
            found = [x for x in document["topDestinations"] if x["source"] == m.group(1) and x["destination"] == m.group(2) and x["port"] == int(m.group(3))]
            if len(found) != 1 or found[0].get(m.group(4)) != row.get(m.group(4)):
                problems.append("%s: %d matches for %s" % (p["key"], len(found), macros))
            elif not type_ok(found[0][m.group(4)], p.get("value_type", "UNSIGNED")):
                problems.append("%s: %r is not %s" % (p["key"], found[0][m.group(4)], p.get("value_type", "UNSIGNED")))
            n += 1
    ok(not problems, "%s: %d discovered tuples, %d prototype values found by their JSONPath filters%s" % (
        label, len(rows), n, "; " + "; ".join(problems) if problems else ""))

def parse_test_output(text, key, label):
    """zabbix_agentd/zabbix_agent2 -t print 'KEY<spaces>[<type>|<value>]'."""
    m = re.fullmatch(r"(\S+) +\[([a-z])\|(.*)\]\n?", text, re.S)
    if not ok(m is not None and m.group(1) == key, "%s: output has the form '%s  [<type>|<value>]'" % (label, key)):
        print("# got: %r" % text[:300])
        return None, None
    return m.group(2), m.group(3)

def query(port, key, timeout=15):
    """Passive check over the Zabbix protocol (ZBXD\\x01, 8-byte little-endian length)."""
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    with s:
        s.sendall(b"ZBXD\x01" + struct.pack("<Q", len(key)) + key.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    if data[:5] != b"ZBXD\x01":
        raise ValueError("no ZBXD header: %r" % data[:40])
    (length,) = struct.unpack("<I", data[5:9])  # 6.0: 4-byte data length + 4-byte reserved
    return data[13:13 + length].decode()

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "template":
        cmd_template(*args)
    elif cmd == "test-output":  # TEMPLATE KEY LABEL OUTFILE EXPECT_STATE [EXPECTED_VALUE_FILE]
        template, key, label, outfile, expect = args[:5]
        kind, value = parse_test_output(open(outfile).read(), key, label)
        if value is not None:
            print("# %s value type '%s', %d characters" % (label, kind, len(value)))
            expected = open(args[5]).read().rstrip("\n") if len(args) > 5 else None
            cmd_document(template, value, label, expect or None, expected)
    elif cmd == "query":  # PORT KEY: print the value
        print(query(int(args[0]), args[1]))
    elif cmd == "template7":  # TEMPLATE7 TEMPLATE6
        cmd_template7(*args)
    elif cmd == "lld":  # TEMPLATE7 LABEL FILE
        cmd_lld(*args)
    elif cmd == "natlld":  # TEMPLATE LABEL DISCOVER_FILE VALUES_FILE EXPECTED MACRO=VALUE...
        cmd_natlld(args[0], args[1], args[2], args[3], args[4], dict(a.split("=", 1) for a in args[5:]))
    elif cmd == "override":  # TEMPLATE FILE EXPECTED_PRIORITIES MACRO=VALUE...: the triggers with host macros
        t = template_of(load_template(args[0]))
        document = json.load(open(args[1]))
        values = {i["key"]: item_value(i, document) for i in dependent_items(t)}
        macros = dict(a.split("=", 1) for a in args[3:])
        fired = sorted(tr["priority"] for tr in fired_triggers(t, values, macros))
        bind = document["tcp"].get("bindBeforeConnect", {}).get("busiestPct")
        ok(",".join(fired) == args[2], "%s, plugin state %s at %s%%%s, host macros %s: triggers that fire: %s"
           % (args[0].rsplit("/", 1)[-1], document["state"], document["usedPercent"],
              "" if bind is None else ", bind(addr, 0) at %s%%" % bind, " ".join(args[3:]) or "none", ",".join(fired) or "none"))
    elif cmd == "document":  # TEMPLATE LABEL FILE EXPECT_STATE
        cmd_document(args[0], open(args[2]).read().rstrip("\n"), args[1], args[3] or None)
    sys.exit(1 if failed else 0)
EOF
template=$zconf/template_ephemeral_ports.yaml
zbx() { "$py" "$T/zbx.py" "$@"; }

# --- the template ------------------------------------------------------------------------------
zbx template "$template" || failed=1

# --- every fixture scenario through the template's JSONPaths and triggers (no agent) ----------
# The error scenarios give the short UNKNOWN document: items without an error handler there
# would become "not supported", so each must resolve or be discarded by its handler.
for dir in "$fixtures"/*/proc; do
    name=$(basename "$(dirname "$dir")")
    "$T/bin/check_ephemeral_ports" --format json --proc-root "$dir" >"$T/fixture-$name.json"
    { zbx document "$template" "fixture $name" "$T/fixture-$name.json" "" &&
        zbx natlld "$template" "fixture $name" "$T/fixture-$name.json" "$T/fixture-$name.json" ""; } >"$T/fixture-$name.tap" ||
        { cat "$T/fixture-$name.tap"; failed=1; }
done
count=$(ls "$fixtures"/*/proc -d | wc -l)
check "all $count fixture trees: every dependent item gets a value of its type, the expected trigger fires, the NAT discovery finds no tuple without an error" \
    test -z "$(cat "$T"/fixture-*.tap | grep '^not ok')"
echo 'not json at all' >"$T/garbage.txt"  # e.g. an error text in place of the document
zbx document "$template" "non-JSON agent value" "$T/garbage.txt" garbage || failed=1

# --- source NAT: the discovery over documents of the real plugin in a NAT router ----------------
# tests/fixtures/zabbix-nat/ (capture.py: tests/oracle/nat.py's router, one tuple filled by real
# connections, a second one of three entries): 10.211.2.1 -> 10.211.2.2:8080/tcp at 80% and
# :8081 at 30%; the same moment with --top 1 (8081 not listed) and as user nobody (not read);
# 8080 full (failure odds 100%).
# Each template: the items, then the discovery, each tuple's prototype values and the trigger
# prototypes that fire, with the template's macros and with host macros (per-destination context).
natfx=$fixtures/zabbix-nat
for tpl in "$template" "$zconf/template_ephemeral_ports_7.0.yaml"; do
    v=$(basename "$tpl" .yaml)
    zbx document "$tpl" "$v, NAT 80%" "$natfx/two-tuples.json" WARNING || failed=1
    zbx document "$tpl" "$v, NAT full" "$natfx/two-tuples-full.json" CRITICAL || failed=1
    zbx natlld "$tpl" "$v, NAT 80% and 30%" "$natfx/two-tuples.json" "$natfx/two-tuples.json" 8080/WARNING/pct || failed=1
    zbx natlld "$tpl" "$v, NAT 80% and 30%" "$natfx/two-tuples.json" "$natfx/two-tuples.json" 8080/WARNING/pct,8081/WARNING/pct \
        '{$EPHEMERAL_PORTS.WARN:"10.211.2.2:8081"}=25' || failed=1
    zbx natlld "$tpl" "$v, NAT 80% and 30%" "$natfx/two-tuples.json" "$natfx/two-tuples.json" 8080/HIGH/pct \
        '{$EPHEMERAL_PORTS.CRIT:"10.211.2.2:8080"}=75' || failed=1
    zbx natlld "$tpl" "$v, NAT 80% and 30%" "$natfx/two-tuples.json" "$natfx/two-tuples.json" "" '{$EPHEMERAL_PORTS.WARN}=80' || failed=1
    zbx natlld "$tpl" "$v, NAT full" "$natfx/two-tuples-full.json" "$natfx/two-tuples-full.json" 8080/HIGH/failure_pct,8080/HIGH/pct || failed=1
    zbx natlld "$tpl" "$v, NAT full" "$natfx/two-tuples-full.json" "$natfx/two-tuples-full.json" 8080/HIGH/pct,8080/WARNING/failure_pct \
        '{$EPHEMERAL_PORTS.NAT.FAILURE.CRIT:"10.211.2.2:8080"}=100' || failed=1
    # 8081 drops out of the list (--top 1): its items get no value and its triggers stay quiet,
    # even with a threshold it was above.
    zbx natlld "$tpl" "$v, NAT discovered with 2 tuples, then --top 1" "$natfx/two-tuples.json" "$natfx/top-1.json" 8080/WARNING/pct \
        '{$EPHEMERAL_PORTS.WARN:"10.211.2.2:8081"}=25' || failed=1
    zbx natlld "$tpl" "$v, non-JSON agent value" "$T/garbage.txt" "$T/garbage.txt" "" || failed=1
    # The plugin as an unprivileged user in that router: "nat" says notRead, no tuples (the state
    # is UNKNOWN: the namespace forwards packets and may NAT).
    zbx document "$tpl" "$v, NAT not read (not root)" "$natfx/not-read.json" UNKNOWN || failed=1
    zbx natlld "$tpl" "$v, NAT not read (not root)" "$natfx/not-read.json" "$natfx/not-read.json" "" || failed=1
    zbx natlld "$tpl" "$v, NAT discovered with 2 tuples, then not read" "$natfx/two-tuples.json" "$natfx/not-read.json" "" \
        '{$EPHEMERAL_PORTS.WARN:"10.211.2.2:8081"}=25' || failed=1
done

# --- host macros decide, not the plugin's -w/-c: the fixture is WARNING at 77.78% for the plugin --
for tpl in "$template" "$zconf/template_ephemeral_ports_7.0.yaml"; do
    zbx override "$tpl" "$T/fixture-format-json.json" WARNING || failed=1
    zbx override "$tpl" "$T/fixture-format-json.json" "" '{$EPHEMERAL_PORTS.WARN}=80' || failed=1
    zbx override "$tpl" "$T/fixture-format-json.json" HIGH '{$EPHEMERAL_PORTS.CRIT}=75' || failed=1
    # The same document as the BPF reading would give it with bind(addr, 0) 90% full.
    "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["tcp"]["bindBeforeConnect"]={"state":"CRITICAL","busiestPct":90,"addresses":[]}; print(json.dumps(d))' \
        "$T/fixture-format-json.json" >"$T/fixture-bind.json"
    zbx override "$tpl" "$T/fixture-bind.json" HIGH,WARNING || failed=1
    zbx override "$tpl" "$T/fixture-bind.json" WARNING,WARNING '{$EPHEMERAL_PORTS.CRIT}=95' || failed=1
done

# --- the 7.0 template: structure, and the same fixtures through its items and its discovery ------
# (tests/integration/zabbix_server.sh imports both templates into real servers.)
template7=$zconf/template_ephemeral_ports_7.0.yaml
zbx template7 "$template7" "$template" || failed=1
for dir in "$fixtures"/*/proc; do
    name=$(basename "$(dirname "$dir")")
    { zbx document "$template7" "7.0 fixture $name" "$T/fixture-$name.json" "" &&
        zbx lld "$template7" "7.0 fixture $name" "$T/fixture-$name.json" &&
        zbx natlld "$template7" "7.0 fixture $name" "$T/fixture-$name.json" "$T/fixture-$name.json" ""; } >"$T/fixture7-$name.tap" ||
        { cat "$T/fixture7-$name.tap"; failed=1; }
done
check "7.0 template, all $count fixture trees: items get values of their type, triggers fire as expected, every discovered tuple's prototypes find their values" \
    test -z "$(cat "$T"/fixture7-*.tap | grep '^not ok')"
zbx document "$template7" "7.0 template, non-JSON agent value" "$T/garbage.txt" garbage || failed=1

# --- zabbix_agentd -t / zabbix_agent2 -t: run the items once, in the foreground ---------------
# Started as root, -t does not drop privileges: the commands run as root (test.whoami shows it).
# The value comes back as "KEY<spaces>[t|VALUE]" (zabbix_agentd, t = text) or "[s|VALUE]" (agent2).
# Zabbix accepts ListenPort 1024-32767 only (below the ephemeral range).
cat >"$T/zabbix_agentd.conf" <<EOF
LogType=console
PidFile=$T/run/zabbix_agentd.pid
Server=127.0.0.1
ListenIP=127.0.0.1
ListenPort=$(free_port 16000 16999)
StartAgents=1
Include=$T/userparameter.conf
EOF
# agent2 needs its own file: other defaults (ControlSocket, PluginSocket under /tmp otherwise).
cat >"$T/zabbix_agent2.conf" <<EOF
LogType=console
PidFile=$T/run/zabbix_agent2.pid
Server=127.0.0.1
ListenIP=127.0.0.1
ListenPort=$(free_port 16000 16999)
ControlSocket=$T/run/agent2.sock
PluginSocket=$T/run/agent2.plugin.sock
Include=$T/userparameter.conf
EOF
"$T/bin/check_ephemeral_ports" --format json --proc-root "$T/proc" >"$T/fixture-direct.json"

for agent in zabbix_agentd zabbix_agent2; do
    cfg=$T/$agent.conf
    for key in ephemeral_ports.json ephemeral_ports.fixture.json ephemeral_ports.broken.json test.whoami; do
        "$agent" -c "$cfg" -t "$key" >"$T/$agent.$key.out" 2>"$T/$agent.$key.err"
        check "$agent -t $key exits 0" test $? = 0
    done
    echo "# $agent -t runs the command as: $(sed 's/.*|\(.*\)\]$/\1/' "$T/$agent.test.whoami.out")"
    echo "# $agent -t output: $(cut -c1-110 "$T/$agent.ephemeral_ports.json.out")..."
    zbx test-output "$template" ephemeral_ports.json "$agent -t, this host" \
        "$T/$agent.ephemeral_ports.json.out" "" || failed=1
    zbx test-output "$template" ephemeral_ports.fixture.json "$agent -t, fixture" \
        "$T/$agent.ephemeral_ports.fixture.json.out" WARNING "$T/fixture-direct.json" || failed=1
    zbx test-output "$template" ephemeral_ports.broken.json "$agent -t, missing --proc-root" \
        "$T/$agent.ephemeral_ports.broken.json.out" UNKNOWN || failed=1
done

# --- the agents as daemons, as user zabbix (as Debian's systemd units run them) -----------------
# zabbix_agentd started as root would drop to zabbix itself; zabbix_agent2 would not, so both are
# started through setpriv (which execs: $! is the agent). This is the unprivileged path the plugin
# takes in production: it must be executable and /proc readable by zabbix.
for agent in zabbix_agentd zabbix_agent2; do
    cfg=$T/$agent.conf
    port=$(sed -n 's/^ListenPort=//p' "$cfg")
    extra=(); [ "$agent" = zabbix_agentd ] && extra=(-f)  # agent2 stays in the foreground anyway
    start_daemon "$T/$agent.log" setpriv --reuid=zabbix --regid=zabbix --init-groups -- "$agent" "${extra[@]}" -c "$cfg"
    zbx query "$port" test.whoami >"$T/$agent.d.whoami" 2>&1
    check "$agent daemon on 127.0.0.1:$port runs UserParameters as zabbix" \
        test "$(cat "$T/$agent.d.whoami")" = zabbix
    zbx query "$port" ephemeral_ports.json >"$T/$agent.d.json" 2>&1 &&
        zbx document "$template" "$agent daemon, this host" "$T/$agent.d.json" "" || failed=1
    zbx query "$port" ephemeral_ports.fixture.json >"$T/$agent.d.fixture.json" 2>&1 &&
        zbx document "$template" "$agent daemon, fixture" "$T/$agent.d.fixture.json" WARNING || failed=1
    check "$agent daemon: fixture value equals the plugin's own output" \
        cmp -s "$T/$agent.d.fixture.json" "$T/fixture-direct.json"
done
stop_all
check "no zabbix agent left running" test "$(agents)" = "$before"

[ "$failed" = 0 ]
