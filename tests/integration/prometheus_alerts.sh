#!/usr/bin/env bash
# Integration test: the alerting rules icinga/prometheus/ephemeral_ports.rules.yml.
#   1. promtool check rules, and promtool test rules with ephemeral_ports.rules.test.yml beside it
#      (hand-written series: every alert firing, pending and not firing, with its text);
#   2. the rules over the plugin's own output: for several fixture trees the exposition the
#      plugin prints becomes promtool input series, and each rule's expression must return
#      exactly the tuples the values call for (so a renamed metric or label cannot go unnoticed);
#   3. a real Prometheus server (Debian 12's prometheus) scraping a real node_exporter whose
#      textfile directory holds the plugin's --output file: the rules load, evaluate without
#      error, and the CRITICAL fixture's alerts go pending with the tuple in labels and summary.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure. Daemons on
# 127.0.0.1 only, stopped by PID; temp dir kept on failure or with KEEP_TMP=1.
set -u
. "$(dirname "$0")/lib/common.sh"
py=/usr/bin/python3
rules=$root/icinga/prometheus/ephemeral_ports.rules.yml
tests=$root/icinga/prometheus/ephemeral_ports.rules.test.yml

daemons() { live_processes '^prometheus'; }

setup_temp_dir
require_plugin_binary
before=$(daemons)
check "install prometheus prometheus-node-exporter python3 python3-yaml" \
    need_packages prometheus prometheus-node-exporter python3 python3-yaml || exit 1
check "package install started no prometheus daemon" test "$(daemons)" = "$before"
install_plugin_into "$T/bin"
plugin=$T/bin/check_ephemeral_ports

# --- 1. promtool -------------------------------------------------------------------------------
promtool check rules "$rules" >"$T/check-rules.log" 2>&1
check "promtool check rules $(basename "$rules"): $(grep -o '[0-9]* rules found' "$T/check-rules.log")" test $? = 0 ||
    sed 's/^/#   /' "$T/check-rules.log"
promtool test rules "$tests" >"$T/test-rules.log" 2>&1
check "promtool test rules $(basename "$tests")" test $? = 0 || sed 's/^/#   /' "$T/test-rules.log" | head -40
# Every alert of the rules file has at least one test where it fires.
"$py" - "$rules" "$tests" >"$T/coverage.log" <<'EOF'
import sys, yaml
rules = [r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
fired = {t["alertname"] for g in yaml.safe_load(open(sys.argv[2]))["tests"]
         for t in g.get("alert_rule_test", []) if t.get("exp_alerts")}
quiet = {t["alertname"] for g in yaml.safe_load(open(sys.argv[2]))["tests"]
         for t in g.get("alert_rule_test", []) if not t.get("exp_alerts")}
missing = [r for r in rules if r not in fired or r not in quiet]
print(" ".join(missing))
sys.exit(1 if missing else 0)
EOF
missing=$(cat "$T/coverage.log")
check "every alert has a firing and a not-firing test${missing:+ (not: $missing)}" \
    test "$(wc -w <"$T/coverage.log")" = 0

# --- 2. the rule expressions over the plugin's own output --------------------------------------
fixture_list="tuple-full-is-critical tuple-at-80-percent-warns udp-exhausted idle-default-range error-tcp-missing ipv6-and-v4-mapped"
mkdir -p "$T/expo"
for f in $fixture_list; do
    "$plugin" --format prometheus --proc-root "$fixtures/$f/proc" >"$T/expo/$f.prom"
done
# The generated test: one group per fixture; for each rule (the textfile ones need node_exporter's
# own series and are left to part 3), "count by (tuple labels) (expr)" must give what the
# exposition's values call for.
"$py" - "$rules" "$T/generated.test.yml" "$T/expo" $fixture_list >"$T/generated.log" 2>&1 <<'EOF'
import os, re, sys, yaml
rules_file, out, expo, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rules = {r["alert"]: r["expr"] for g in yaml.safe_load(open(rules_file))["groups"] for r in g["rules"]}
LINE = re.compile(r'([a-z_]+)(\{(.*)\})? (\S+)$')
def samples(path):
    s = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        m = LINE.match(line.strip())
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        s.append((m.group(1), labels, float(m.group(4))))
    return s
def one(s, name):
    v = [x for x in s if x[0] == name]
    return v[0] if v else None
def value(s, name):
    v = one(s, name)
    return None if v is None else v[2]
def info(s, name):
    v = one(s, name)
    return None if v is None else v[1]
def tuple_if(cond, labels):
    return [labels] if cond and labels is not None else []
def expected(s):
    r, u, st = value(s, "ephemeral_ports_tcp_busiest_ratio"), value(s, "ephemeral_ports_up"), value(s, "ephemeral_ports_state")
    tinfo = info(s, "ephemeral_ports_tcp_busiest_info")
    used, cap = value(s, "ephemeral_ports_tcp_busiest_used"), value(s, "ephemeral_ports_tcp_capacity")
    ur, uu, uc = value(s, "ephemeral_ports_udp_ratio"), value(s, "ephemeral_ports_udp_used"), value(s, "ephemeral_ports_udp_capacity")
    br, bu, bc = (value(s, "ephemeral_ports_tcp_bind_busiest_" + n) for n in ("ratio", "used", "capacity"))
    binfo, bcap = info(s, "ephemeral_ports_tcp_bind_busiest_info"), value(s, "ephemeral_ports_tcp_bind_capacity")
    nc = value(s, "ephemeral_ports_namespaces_critical")
    return {
        "EphemeralPortsTcpTupleWarning": tuple_if(r is not None and r > 0.70, tinfo),
        "EphemeralPortsTcpTupleCritical": tuple_if(r is not None and r > 0.85, tinfo),
        # constant series: the prediction is the value itself
        "EphemeralPortsTcpTupleExhaustionForecast": tuple_if(used is not None and used >= cap, tinfo),
        "EphemeralPortsBindBeforeConnectWarning": tuple_if(br is not None and br > 0.70, binfo),
        "EphemeralPortsBindBeforeConnectCritical": tuple_if(br is not None and br > 0.85, binfo),
        "EphemeralPortsBindBeforeConnectExhaustionForecast": tuple_if(bu is not None and bu >= bcap, binfo),
        "EphemeralPortsUdpWarning": tuple_if(ur is not None and ur > 0.70, {}),
        "EphemeralPortsUdpCritical": tuple_if(ur is not None and ur > 0.85, {}),
        "EphemeralPortsUdpExhaustionForecast": tuple_if(uu is not None and uu >= uc, {}),
        "EphemeralPortsNamespacesCritical": tuple_if(nc is not None and nc > 0, {}),
        "EphemeralPortsCheckFailing": tuple_if(u == 0 or st == 3, {}),
    }
def labels_text(d):
    return "{" + ", ".join('%s="%s"' % kv for kv in sorted(d.items())) + "}"
doc = {"rule_files": [], "evaluation_interval": "1m", "tests": []}
fired = set()
for name in names:
    s = samples(os.path.join(expo, name + ".prom"))
    series = []
    for metric, labels, v in s:
        l = dict(labels, instance=name, job="node")
        series.append({"series": metric + labels_text(l), "values": "%s+0x40" % repr(v)})
    tests = []
    for alert, exp in expected(s).items():
        tests.append({"expr": "count by (source, destination, port, address) (%s)" % rules[alert].strip(),
                      "eval_time": "35m",
                      "exp_samples": [{"labels": labels_text(e), "value": 1} for e in exp]})
        if exp:
            fired.add(alert)
        print("%s: %s -> %s" % (name, alert, exp))
    doc["tests"].append({"name": name, "interval": "1m", "input_series": series, "promql_expr_test": tests})
yaml.safe_dump(doc, open(out, "w"), sort_keys=False, width=1000)
print("FIRED", " ".join(sorted(fired)))
EOF
check "generated a promtool test from the plugin's output of: $fixture_list" test $? = 0
fired=$(sed -n 's/^FIRED //p' "$T/generated.log")
promtool test rules "$T/generated.test.yml" >"$T/generated-run.log" 2>&1
check "rules over the plugin's own exposition: each expression returns the tuples the values call for" test $? = 0 ||
    sed 's/^/#   /' "$T/generated-run.log" | head -40
for a in EphemeralPortsTcpTupleWarning EphemeralPortsTcpTupleCritical EphemeralPortsUdpCritical EphemeralPortsCheckFailing; do
    case " $fired " in *" $a "*) ;; *) not_ok "the fixtures make $a fire (they did not)";; esac
done

# --- 3. a real Prometheus and node_exporter ------------------------------------------------------
mkdir -p "$T/textfile" "$T/tsdb"
chown prometheus:prometheus "$T/tsdb"
"$plugin" --format prometheus --proc-root "$fixtures/tuple-full-is-critical/proc" --output "$T/textfile/ephemeral_ports.prom"
cp "$rules" "$T/rules.yml"
ne_port=$(free_port) && prom_port=$(free_port)
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $T/rules.yml
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$ne_port']
EOF
chmod -R a+rX "$T/textfile" "$T/rules.yml" "$T/prometheus.yml"
start_daemon "$T/node_exporter.log" setpriv --reuid=prometheus --regid=prometheus --init-groups -- \
    prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" --collector.disable-defaults \
    --collector.textfile --collector.textfile.directory="$T/textfile"
start_daemon "$T/prometheus.log" setpriv --reuid=prometheus --regid=prometheus --init-groups -- \
    prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1h
# Polls the API for up to 60 s until the alerts of the CRITICAL fixture are pending (their "for"
# keeps them from firing here), then reports rules and alerts.
"$py" - "$prom_port" >"$T/api.log" 2>&1 <<'EOF'
import json, sys, time, urllib.request
port = int(sys.argv[1])
def get(path):
    return json.load(urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5))["data"]
want = {"EphemeralPortsTcpTupleWarning", "EphemeralPortsTcpTupleCritical", "EphemeralPortsTcpTupleExhaustionForecast"}
deadline, alerts, rules = time.time() + 60, [], []
while time.time() < deadline:
    try:
        alerts = get("/api/v1/alerts")["alerts"]
        rules = [r for g in get("/api/v1/rules")["groups"] for r in g["rules"]]
    except OSError:
        time.sleep(0.5)
        continue
    names = {a["labels"]["alertname"] for a in alerts}
    if want <= names and rules and all(r.get("lastEvaluation", "").startswith("2") and not r["lastEvaluation"].startswith("0001") for r in rules):
        break
    time.sleep(0.5)
print("RULES %d" % len(rules))
for r in rules:
    print("RULE %s %s %s" % (r["name"], r.get("health"), r.get("lastError", "")))
for a in alerts:
    l = a["labels"]
    print("ALERT %s %s %s->%s:%s | %s" % (l["alertname"], a["state"], l.get("source"), l.get("destination"), l.get("port"), a["annotations"]["summary"]))
EOF
sed 's/^/# /' "$T/api.log"
nrules=$(grep -c '^RULE ' "$T/api.log")
check "prometheus loaded all $(grep -c '^      - alert:' "$rules") rules" test "$nrules" = "$(grep -c '^      - alert:' "$rules")"
check "prometheus evaluates every rule without error" test "$(grep '^RULE ' "$T/api.log" | grep -vc ' ok $')" = 0
for a in EphemeralPortsTcpTupleWarning EphemeralPortsTcpTupleCritical EphemeralPortsTcpTupleExhaustionForecast; do
    check "prometheus: $a pending for the full tuple 192.0.2.10 -> 192.0.2.20:5432, named in the summary" \
        grep -q "^ALERT $a pending 192.0.2.10->192.0.2.20:5432 | .*192.0.2.10 -> 192.0.2.20:5432" "$T/api.log"
done
check "prometheus: no UDP, check-failing or textfile alert for that file" \
    test "$(grep '^ALERT ' "$T/api.log" | grep -c -e Udp -e CheckFailing -e Textfile -e Bind -e Namespaces)" = 0
stop_all
check "no prometheus daemon left running" test "$(daemons)" = "$before"

[ "$failed" = 0 ]
