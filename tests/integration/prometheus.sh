#!/usr/bin/env bash
# Integration test: check_ephemeral_ports --format prometheus against the Prometheus tools of
# Debian 12: `promtool check metrics` (package prometheus) and node_exporter's textfile collector
# (package prometheus-node-exporter), plus a strict Python check of the text exposition format
# and of the values against --format json. Covers this host, every fixture tree, and --output
# (atomic write into a textfile directory).
# If a package cannot be installed, the parts that need it are reported as "# SKIP" and the
# Python check still runs. Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on
# any failure. Temp dir kept on failure or with KEEP_TMP=1; node_exporter is stopped by PID.
set -u
. "$(dirname "$0")/lib/common.sh"
py=/usr/bin/python3

skip() { echo "ok - $* # SKIP"; }
# prometheus and prometheus-node-exporter processes
daemons() { live_processes '^prometheus'; }
as_prometheus() { setpriv --reuid=prometheus --regid=prometheus --init-groups -- "$@"; }

setup_temp_dir
require_plugin_binary
before=$(daemons)
check "install python3" need_packages python3 || exit 1
have_promtool='' have_node_exporter=''
if need_packages prometheus && [ -x /usr/bin/promtool ]; then
    have_promtool=1; ok "install prometheus (for promtool): $(promtool --version 2>&1 | head -1)"
else
    echo "# promtool unavailable (see $T/apt.log): the strict Python check stands in for it"
fi
if need_packages prometheus-node-exporter && [ -x /usr/bin/prometheus-node-exporter ]; then
    have_node_exporter=1; ok "install prometheus-node-exporter"
else
    echo "# node_exporter unavailable (see $T/apt.log)"
fi
check "package install started no prometheus daemon" test "$(daemons)" = "$before"

mkdir -p "$T/out" "$T/textfile"
install_plugin_into "$T/bin"
plugin=$T/bin/check_ephemeral_ports

# Strict check of the text exposition format 0.0.4, the values against --format json, scraping.
cat >"$T/prom.py" <<'EOF'
import json, math, re, sys, time, urllib.request

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|[+-]?Inf\Z|NaN\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}

def parse_labels(text):
    """name="value",... with only \\\\, \\" and \\n escapes; returns a dict or raises ValueError."""
    labels, i = {}, 0
    while i < len(text):
        m = re.compile(r'\s*([^=\s]+)\s*=\s*"').match(text, i)
        if not m or not LABEL.match(m.group(1)) or m.group(1).startswith("__"):
            raise ValueError("bad label name at %r" % text[i:])
        name, i, value = m.group(1), m.end(), ""
        while True:
            if i >= len(text):
                raise ValueError("unterminated label value")
            c = text[i]
            if c == "\\":
                if text[i + 1:i + 2] not in ('\\', '"', 'n'):
                    raise ValueError("bad escape in label value")
                value += {"\\": "\\", '"': '"', "n": "\n"}[text[i + 1]]
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ValueError("newline in label value")
            else:
                value += c
                i += 1
        if name in labels:
            raise ValueError("label %s twice" % name)
        labels[name] = value
        m = re.compile(r"\s*(,|\Z)\s*").match(text, i)
        if not m:
            raise ValueError("expected , after label %s" % name)
        i = m.end()
    return labels

def check_text(text, prefix="ephemeral_ports_"):
    """Returns (errors, samples {(name, labels tuple): value})."""
    errors, samples, help_, type_, seen, current = [], {}, {}, {}, set(), None
    if not text.endswith("\n"):
        errors.append("does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: " % n
        if "\r" in line:
            errors.append(where + "carriage return")
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME.match(parts[2]):
                    errors.append(where + "bad metric name in " + parts[1])
                    continue
                name, rest = parts[2], parts[3] if len(parts) > 3 else ""
                if name in seen and name != current:
                    errors.append(where + "%s for %s after its group ended" % (parts[1], name))
                if parts[1] == "HELP":
                    if name in help_:
                        errors.append(where + "second HELP for " + name)
                    if re.search(r"\\[^\\n]", rest):
                        errors.append(where + "bad escape in HELP")
                    help_[name] = rest
                else:
                    if name in type_:
                        errors.append(where + "second TYPE for " + name)
                    if any(k[0] == name for k in samples):
                        errors.append(where + "TYPE after samples of " + name)
                    if rest not in TYPES:
                        errors.append(where + "unknown type %r" % rest)
                    type_[name] = rest
                seen.add(name)
                current = name
            continue  # any other comment is allowed
        m = re.match(r"([^{\s]+)(\{(.*)\})?[ \t]+(\S+)([ \t]+(-?\d+))?[ \t]*\Z", line)
        if not m or not NAME.match(m.group(1)):
            errors.append(where + "not a sample: %r" % line)
            continue
        name, value = m.group(1), m.group(4)
        try:
            labels = parse_labels(m.group(3) or "")
        except ValueError as e:
            errors.append(where + str(e))
            continue
        if not FLOAT.match(value):
            errors.append(where + "bad value %r" % value)
            continue
        family = name
        if type_.get(name) is None:  # a histogram/summary child carries a suffix
            family = re.sub(r"_(bucket|sum|count)\Z", "", name)
        if family in seen and family != current:
            errors.append(where + "samples of %s not in one group" % family)
        seen.add(family)
        current = family
        key = (name, tuple(sorted(labels.items())))
        if key in samples:
            errors.append(where + "duplicate series %s%s" % key)
        samples[key] = float(value)
        if type_.get(family) in ("gauge", "counter", "untyped") and name != family:
            errors.append(where + "sample name differs from its family")
        # This plugin's own conventions: one prefix, every family documented and typed.
        if not name.startswith(prefix):
            errors.append(where + "name without the %s prefix" % prefix)
        if family not in help_ or family not in type_:
            errors.append(where + "no HELP or TYPE before " + name)
    return errors, samples

def value_of(samples, name):
    found = [(labels, v) for (n, labels), v in samples.items() if n == name]
    return found[0] if len(found) == 1 else (None, None)

def compare(samples, doc):
    """The Prometheus values against the JSON document of the same tree."""
    errors = []
    def want(name, expected, tolerance=0.0):
        labels, got = value_of(samples, name)
        if got is None:
            errors.append("%s missing (or more than one series)" % name)
        elif expected is None or abs(got - expected) > tolerance:
            errors.append("%s = %s, JSON says %s" % (name, got, expected))
        return labels
    want("ephemeral_ports_state", doc["exitCode"])
    if doc["state"] == "UNKNOWN" and "tcp" not in doc:
        want("ephemeral_ports_up", 0)
        if len(samples) != 2:
            errors.append("an UNKNOWN exposition should hold only up and state, has %d series" % len(samples))
        return errors
    want("ephemeral_ports_up", 1)
    want("ephemeral_ports_range_low", doc["range"]["low"])
    want("ephemeral_ports_range_high", doc["range"]["high"])
    want("ephemeral_ports_reserved", doc["reservedInRange"])
    tcp, udp = doc["tcp"], doc["udp"]
    want("ephemeral_ports_tcp_capacity", tcp["capacity"])
    want("ephemeral_ports_tcp_busiest_used", tcp["busiestUsed"])
    want("ephemeral_ports_tcp_busiest_ratio", tcp["busiestPct"] / 100, 0.00006)  # JSON: 2 decimals
    # Which tuple is the busiest is an info metric's labels, so the series above keep one identity.
    labels = want("ephemeral_ports_tcp_busiest_info", 1) if doc["topDestinations"] else None
    if not doc["topDestinations"] and value_of(samples, "ephemeral_ports_tcp_busiest_info")[1] is not None:
        errors.append("ephemeral_ports_tcp_busiest_info present without a busiest tuple")
    want("ephemeral_ports_tcp_ports_in_use", tcp["portsInUse"])
    want("ephemeral_ports_tcp_time_wait", tcp["timeWait"])
    want("ephemeral_ports_tcp_time_wait_reusable", tcp["timeWaitReusable"])
    want("ephemeral_ports_tcp_tuples", tcp["tuples"])
    want("ephemeral_ports_udp_capacity", udp["capacity"])
    want("ephemeral_ports_udp_used", udp["used"])
    want("ephemeral_ports_udp_ratio", udp["usedPct"] / 100, 0.00006)
    if doc["topDestinations"] and labels is not None:
        top = doc["topDestinations"][0]
        expected = (("destination", top["destination"]), ("port", str(top["port"])), ("source", top["source"]))
        if labels != expected:
            errors.append("busiest labels %s, JSON's top destination %s" % (labels, expected))
    return errors

def scrape(port, timeout=15):
    deadline = time.time() + timeout
    while True:
        try:
            return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":  # FILE [JSONFILE]: exit 1 with the errors on stdout
        errors, samples = check_text(open(args[0], encoding="utf-8").read())
        if not errors and len(args) > 1:
            errors = compare(samples, json.load(open(args[1])))
        print("\n".join(errors) if errors else "%d series" % len(samples))
        sys.exit(1 if errors else 0)
    if cmd == "scrape":  # PORT OUTFILE
        open(args[1], "w").write(scrape(int(args[0])))
EOF
prom() { "$py" "$T/prom.py" "$@"; }

# promtool check metrics reads the exposition on stdin; it exits non-zero on a parse error and
# prints lint problems (names, units, HELP) one per line. Both are collected for the report.
promtool_check() { # FILE LABEL
    [ -n "$have_promtool" ] || return 0
    promtool check metrics <"$1" >"$1.promtool" 2>&1
    local rc=$?
    if [ -s "$1.promtool" ]; then sed "s/^/# promtool ($2): /" "$1.promtool"; fi
    return $rc
}

# --- this host ------------------------------------------------------------------------------------
"$plugin" --format prometheus >"$T/out/host.prom" 2>"$T/out/host.err"
check "this host: --format prometheus exits 0, nothing on stderr" test $? = 0 -a ! -s "$T/out/host.err"
if [ -n "$have_promtool" ]; then
    check "this host: promtool check metrics accepts it" promtool_check "$T/out/host.prom" "this host"
else
    skip "this host: promtool check metrics (promtool not installed)"
fi
prom check "$T/out/host.prom" >"$T/out/host.check"
rc=$?
check "this host: strict text-format check: $(head -3 "$T/out/host.check" | tr '\n' ' ')" test $rc = 0

# --- every fixture tree (all states, IPv6, UNKNOWN expositions), also against --format json -----
bad=()
for dir in "$fixtures"/*/proc; do
    name=$(basename "$(dirname "$dir")")
    out=$T/out/fixture-$name
    "$plugin" --format prometheus --proc-root "$dir" >"$out.prom" 2>"$out.err" || bad+=("$name: exit $?")
    [ -s "$out.err" ] && bad+=("$name: stderr $(head -c 200 "$out.err")")
    "$plugin" --format json --proc-root "$dir" >"$out.json"
    prom check "$out.prom" "$out.json" >"$out.check" || bad+=("$name: $(tr '\n' ';' <"$out.check")")
    if [ -n "$have_promtool" ]; then
        promtool_check "$out.prom" "$name" || bad+=("$name: promtool rejects it")
    fi
done
count=$(ls -d "$fixtures"/*/proc | wc -l)
check "all $count fixture trees: exit 0, strict format check, values equal --format json${have_promtool:+, promtool check metrics}" \
    test ${#bad[@]} = 0
for b in "${bad[@]}"; do echo "#   $b"; done

# --- --output: the atomic write into a textfile directory ---------------------------------------
# node_exporter reads *.prom files as user prometheus while the plugin may be rewriting them:
# the file must appear whole (temp file + rename, no leftovers) and be readable by others.
prom_file=$T/textfile/ephemeral_ports.prom
fx=$fixtures/format-json/proc
"$plugin" --format prometheus --proc-root "$fx" >"$T/out/fx-stdout.prom"
"$plugin" --format prometheus --proc-root "$fx" --output "$prom_file" >"$T/out/fx-output.stdout" 2>&1
check "--output FILE: exits 0, prints nothing" test $? = 0 -a ! -s "$T/out/fx-output.stdout"
check "--output FILE: content equals the stdout output" cmp -s "$prom_file" "$T/out/fx-stdout.prom"
check "--output FILE: nothing else left in the directory" test "$(ls -A "$T/textfile")" = ephemeral_ports.prom
check "--output FILE: readable by user prometheus ($(stat -c %A "$prom_file"))" \
    as_prometheus sh -c 'cat "$1" >/dev/null' - "$prom_file"
ino=$(stat -c %i "$prom_file")
"$plugin" --format prometheus --proc-root "$fixtures/tuple-full-is-critical/proc" >"$T/out/crit-stdout.prom"
"$plugin" --format prometheus --proc-root "$fixtures/tuple-full-is-critical/proc" --output "$prom_file"
check "--output over an existing file: replaced (new inode, rename) with the new content" \
    test "$(stat -c %i "$prom_file")" != "$ino" -a "$(cmp -s "$prom_file" "$T/out/crit-stdout.prom" && echo same)" = same
check "--output over an existing file: nothing else left in the directory" \
    test "$(ls -A "$T/textfile")" = ephemeral_ports.prom
"$plugin" --format prometheus --output "$T/out/host-output.prom"
check "--output, this host: exits 0" test $? = 0
if [ -n "$have_promtool" ]; then
    check "--output, this host: promtool check metrics accepts the file" \
        promtool_check "$T/out/host-output.prom" "--output, this host"
fi
prom check "$T/out/host-output.prom" >"$T/out/host-output.check"
rc=$?
check "--output, this host: strict text-format check: $(head -3 "$T/out/host-output.check" | tr '\n' ' ')" test $rc = 0
"$plugin" --format prometheus --output "$T/no-such-dir/x.prom" >"$T/out/nodir.stdout" 2>&1
rc=$?
check "--output into a missing directory: exit 3, one UNKNOWN line ($(head -c 100 "$T/out/nodir.stdout"))" \
    test "$rc" = 3 -a "$(wc -l <"$T/out/nodir.stdout")" = 1 -a ! -e "$T/no-such-dir"
grep -q '^EPHEMERAL PORTS UNKNOWN' "$T/out/nodir.stdout" || not_ok "--output into a missing directory: UNKNOWN text"

# --- node_exporter's textfile collector reads the file, as user prometheus ----------------------
if [ -n "$have_node_exporter" ]; then
    port=$(free_port)
    # the WARNING fixture with IPv6 tuples, then the UNKNOWN exposition (it starts with a comment)
    "$plugin" --format prometheus --proc-root "$fixtures/ipv6-and-v4-mapped/proc" --output "$prom_file"
    # setpriv directly, not as_prometheus: start_daemon needs a program (setpriv execs it).
    start_daemon "$T/node_exporter.log" setpriv --reuid=prometheus --regid=prometheus --init-groups -- \
        prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
        --collector.textfile --collector.textfile.directory="$T/textfile"
    prom scrape "$port" "$T/out/scrape1.txt"
    check "node_exporter: textfile collector read the file without error" \
        grep -qx 'node_textfile_scrape_error 0' "$T/out/scrape1.txt"
    check "node_exporter: serves ephemeral_ports_state 1 and ephemeral_ports_up 1 (WARNING fixture)" \
        test "$(grep -cx 'ephemeral_ports_state 1\|ephemeral_ports_up 1' "$T/out/scrape1.txt")" = 2
    check "node_exporter: serves the busiest tuple's labels and its ratio" \
        sh -c "grep -q '^ephemeral_ports_tcp_busiest_info{destination=\"127.0.0.1\",port=\"5000\",source=\"127.0.0.1\"} 1\$' '$T/out/scrape1.txt' && grep -q '^ephemeral_ports_tcp_busiest_ratio 0.8\$' '$T/out/scrape1.txt'"
    check "node_exporter: serves every series of the file" \
        test "$(grep -c '^ephemeral_ports_' "$T/out/scrape1.txt")" = "$(grep -c '^ephemeral_ports_' "$prom_file")"
    "$plugin" --format prometheus --proc-root "$fixtures/error-tcp-missing/proc" --output "$prom_file"
    prom scrape "$port" "$T/out/scrape2.txt"
    check "node_exporter: the UNKNOWN exposition reads without error: up 0, state 3, nothing else" \
        test "$(grep -c '^ephemeral_ports_' "$T/out/scrape2.txt")" = 2 -a \
        "$(grep -cx 'ephemeral_ports_state 3\|ephemeral_ports_up 0\|node_textfile_scrape_error 0' "$T/out/scrape2.txt")" = 3
    stop_all
else
    skip "node_exporter textfile collector (prometheus-node-exporter not installed)"
fi
check "no prometheus daemon left running" test "$(daemons)" = "$before"

[ "$failed" = 0 ]
