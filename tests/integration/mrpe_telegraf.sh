#!/usr/bin/env bash
# The README's Checkmk MRPE line and Telegraf [[inputs.exec]] snippet, checked against the plugin's
# real output the way each tool reads it (neither tool runs here; the parsing is re-implemented
# below from how they work, not copied):
#   - Checkmk: the agent splits an mrpe.cfg line into a description (its first word, %20 for a
#     space) and a command line, runs the command line through the shell, and sends
#     "(PLUGIN) DESCR EXITCODE OUTPUT" with the output's newlines turned into \1; the server splits
#     that line at whitespace, takes the exit code as the state (anything but 0-3 is UNKNOWN), joins
#     the rest with single spaces, splits it at \1 into lines, takes the first line's text before
#     '|' as the summary and everything after the first '|' as perfdata, whitespace-separated
#     NAME=VALUE;WARN;CRIT;MIN;MAX items, each a metric whose name has no space, ':', '/' or '\'.
#   - Telegraf, data_format = "nagios": the first line must have at most one '|' (more is an
#     "illegal output format" and nothing is kept); its text becomes nagios_state.service_output,
#     the next lines long_service_output until one that holds a '|'; each perfdata item becomes a
#     metric "nagios" tagged perfdata=LABEL (quotes trimmed) and unit=UOM, with the fields value,
#     warning_lt/warning_gt and critical_lt/critical_gt (a plain N is the range 0..N), min, max;
#     the exit code becomes nagios_state.state.
# Each runs in a network namespace of its own with a 10-port range: idle (OK), 8 connections to one
# destination (WARNING), 10 (CRITICAL), and a fixture with no range file (UNKNOWN).
set -u
. "$(dirname "$0")/lib/common.sh"
setup_temp_dir
require_plugin_binary
check "install python3, iproute2, util-linux" need_packages python3 iproute2 util-linux || exit 1
install_plugin_into "$T/plugins"
readme=$root/README.md

# The snippets as the README shows them: the mrpe.cfg line, and the [[inputs.exec]] block's command.
mrpe_line=$(grep -m 1 '^Ephemeral%20ports ' "$readme")
check "README has an mrpe.cfg line: $mrpe_line" test -n "$mrpe_line" || exit 1
telegraf_block=$(sed -n '/^```toml/,/^```/p' "$readme" | sed -n '/\[\[inputs.exec\]\]/,/^```/p')
telegraf_cmd=$(sed -n 's/^ *commands = \["\(.*\)"\]/\1/p' <<<"$telegraf_block")
check "README has an [[inputs.exec]] with one command: $telegraf_cmd" test -n "$telegraf_cmd" || exit 1
check "... and data_format = \"nagios\"" grep -qx ' *data_format = "nagios"' <<<"$telegraf_block"
check "... and a timeout above the plugin's -t" grep -qx ' *timeout = "15s"' <<<"$telegraf_block"
installed=/usr/lib/nagios/plugins/check_ephemeral_ports
check "both run $installed" sh -c "case '$mrpe_line' in *' $installed '*) ;; *) exit 1;; esac && case '$telegraf_cmd' in '$installed '*) ;; *) exit 1;; esac"

# One scenario: a private network namespace, range 40000-40009, N connections to 127.0.0.1:20500;
# then the agent's run (MRPE) or the command and its exit code (Telegraf), with the plugin copy in
# place of the installed path, and EXTRA arguments appended to the command line.
run_in_netns() {  # N KIND EXTRA OUT
    unshare -n bash -c '
        ip link set lo up && sysctl -qw net.ipv4.ip_local_port_range="40000 40009" || exit 99
        python3 - "$1" "$2" "$3" "$4" "$5" "$6" "$7" <<"EOF"
import socket, subprocess, sys
n, kind, extra, out, mrpe_line, telegraf_cmd, plugin = sys.argv[1:]
listener = socket.socket()
listener.bind(("127.0.0.1", 20500))
listener.listen(64)
held = [socket.create_connection(("127.0.0.1", 20500)) for _ in range(int(n))]
installed = "/usr/lib/nagios/plugins/check_ephemeral_ports"
if kind == "mrpe":
    # The agent: "read -r descr rest" of the mrpe.cfg line, the command line run by the shell (eval),
    # its stdout kept, its exit code the status; printed as one line, newlines as \1.
    descr, cmdline = mrpe_line.split(None, 1)
    cmdline = cmdline.replace(installed, plugin) + extra
    agent = r"""out=$(eval "$2"); st=$?; p=${2%% *}; printf "(%s) %s %s %s" "${p##*/}" "$1" "$st" "$out" | tr "\n" "\001"; printf "\n" """
    data = subprocess.run(["bash", "-c", agent, "agent", descr, cmdline], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout
    open(out, "wb").write(b"<<<mrpe>>>\n" + data)
else:
    cmd = telegraf_cmd.replace(installed, plugin) + extra
    # Telegraf runs the command split into words, no shell; stdout is parsed, the exit code kept.
    p = subprocess.run(cmd.split(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    open(out, "wb").write(p.stdout)
    open(out + ".rc", "w").write(str(p.returncode))
EOF' sh "$1" "$2" "$3" "$4" "$mrpe_line" "$telegraf_cmd" "$T/plugins/check_ephemeral_ports"
}

scenarios=("0 0 ''" "8 1 ''" "10 2 ''" "0 3 ' --proc-root $root/tests/fixtures/error-range-file-missing/proc --source proc'")
for s in "${scenarios[@]}"; do
    eval "set -- $s"
    n=$1 want=$2 extra=$3
    run_in_netns "$n" mrpe "$extra" "$T/mrpe-$want.txt"
    run_in_netns "$n" telegraf "$extra" "$T/telegraf-$want.txt"
done

python3 - "$T" "$perfdata_labels" <<'EOF'
import re, sys, urllib.parse
T, labels = sys.argv[1], sys.argv[2].split()
failed = False
def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed |= not cond

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}

def checkmk(path):
    """Checkmk's server side for one <<<mrpe>>> section: (item, state, summary, details, metrics)."""
    lines = open(path, "rb").read().decode().split("\n")
    assert lines[0] == "<<<mrpe>>>", lines[0]
    words = lines[1].split()                      # the section's default separator: whitespace
    name = words.pop(0).strip("()") if words[0].startswith("(") else None
    item, raw_state, rest = urllib.parse.unquote(words[0]), words[1], words[2:]
    try:
        state = int(raw_state)
        if state not in STATES:
            raise ValueError
    except ValueError:
        rest.insert(0, "Invalid plug-in status '%s'. Output is:" % raw_state)
        state = 3
    text = " ".join(rest).split("\1")
    first = text[0].split("|", 1)
    output, perf = [first[0].strip()], (first[1].split() if len(first) > 1 else [])
    in_perf = False
    for line in text[1:]:
        if in_perf:
            perf += line.split()
            continue
        part = line.split("|", 1)
        output.append(part[0].strip())
        if len(part) > 1:
            perf += part[1].split()
            in_perf = True
    metrics = {}
    for item_ in perf:
        key, value = item_.split("=", 1)
        if set(key) & set(" :/\\"):
            raise ValueError("invalid metric name %r" % key)
        fields = [v.split(":")[-1] for v in value.split(";")][:5]
        fields += [""] * (5 - len(fields))
        number = next(float(fields[0][:i]) for i in range(len(fields[0]), 0, -1)
                      if re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", fields[0][:i]))
        opt = lambda s: float(s) if re.fullmatch(r"[-+]?[0-9.]+", s) else None
        metrics[key] = (number, opt(fields[1]), opt(fields[2]), opt(fields[3]), opt(fields[4]))
    return name, item, state, output[0], output, metrics

PERF_ITEM = re.compile(r"[^=]+=\S+")
PERF = re.compile(r"^([^=]+)=([\d.\-+eE]+)([\w/%]*);?([\d.\-+eE:~@]+)?;?([\d.\-+eE:~@]+)?;?([\d.\-+eE]+)?;?([\d.\-+eE]+)?;?\s*")

def threshold(text):
    parts = text.split(":")
    if len(parts) == 1:
        return 0.0, float(parts[0])
    low = -float("inf") if parts[0] == "~" else float(parts[0] or 0)
    return low, float("inf") if parts[1] == "" else float(parts[1])

def telegraf(path, rc):
    """Telegraf's nagios parser: (metrics by perfdata tag, nagios_state fields)."""
    lines = open(path, "rb").read().decode().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    metrics = {}
    def perfdata(text):
        for raw in PERF_ITEM.findall(text):
            m = PERF.match(raw.strip())
            if not m:
                continue
            label, value, unit, warn, crit, lo, hi = m.groups()
            tags = {"perfdata": label.strip("'")}
            if unit:
                tags["unit"] = unit
            fields = {"value": float(value)}
            for prefix, t in (("warning", warn), ("critical", crit)):
                if t:
                    a, b = threshold(t.lstrip("@"))
                    fields.update({prefix + ("_le" if "@" in t else "_lt"): a, prefix + ("_ge" if "@" in t else "_gt"): b})
            if lo:
                fields["min"] = float(lo)
            if hi:
                fields["max"] = float(hi)
            metrics[tags["perfdata"]] = (tags, fields)
    parts = lines[0].split("|")
    if len(parts) > 2:
        return None, None
    if len(parts) == 2:
        perfdata(parts[1])
    state = {"service_output": parts[0].strip(), "state": rc}
    long_lines, rest = [], iter(lines[1:])
    for line in rest:
        if "|" in line:
            text, perf = line.split("|", 1)
            long_lines.append(text.strip())
            perfdata(perf)
            break
        long_lines.append(line.strip())
    for line in rest:
        perfdata(line)
    if long_lines:
        state["long_service_output"] = "\n".join(long_lines)
    return metrics, state

for want in (0, 1, 2, 3):
    word = STATES[want]
    # --- Checkmk ----------------------------------------------------------------------------------
    name, item, state, summary, output, metrics = checkmk("%s/mrpe-%d.txt" % (T, want))
    ok(item == "Ephemeral ports", "MRPE %s: the service is 'Ephemeral ports' (%r)" % (word, item))
    ok(name == "check_ephemeral_ports", "MRPE %s: the check command is check_ephemeral_ports (%r)" % (word, name))
    ok(state == want, "MRPE %s: state %d from the exit code" % (word, state))
    ok(summary.startswith("EPHEMERAL PORTS %s - " % word), "MRPE %s: summary %r" % (word, summary[:70]))
    if want != 3:
        ok(any(l.startswith("range 40000-40009") for l in output[1:]),
           "MRPE %s: the details carry the plugin's detail lines" % word)
        ok(sorted(k.strip("'") for k in metrics) == sorted(labels),
           "MRPE %s: one metric per perfdata label (%s)" % (word, " ".join(sorted(metrics))))
        pct = metrics.get("'tcp_busiest_pct'")
        expect = {0: 0.0, 1: 80.0, 2: 100.0}[want]
        ok(pct is not None and pct[0] == expect and pct[1:3] == (70.0, 85.0) and pct[3:] == (0.0, 100.0),
           "MRPE %s: tcp_busiest_pct %s, levels (70, 85), boundaries (0, 100) (%r)" % (word, expect, pct))
        ok(metrics.get("'tcp_busiest_used'", (None,))[0] == {0: 0, 1: 8, 2: 10}[want],
           "MRPE %s: tcp_busiest_used" % word)
    # --- Telegraf ---------------------------------------------------------------------------------
    rc = int(open("%s/telegraf-%d.txt.rc" % (T, want)).read())
    tmetrics, tstate = telegraf("%s/telegraf-%d.txt" % (T, want), rc)
    ok(tstate is not None, "Telegraf %s: the first line has at most one '|'" % word)
    if tstate is None:
        continue
    ok(tstate["state"] == want, "Telegraf %s: nagios_state.state %d" % (word, tstate["state"]))
    ok(tstate["service_output"].startswith("EPHEMERAL PORTS %s - " % word),
       "Telegraf %s: service_output %r" % (word, tstate["service_output"][:70]))
    if want != 3:
        ok("range 40000-40009" in tstate.get("long_service_output", ""),
           "Telegraf %s: long_service_output has the detail lines, none taken for perfdata" % word)
        ok(sorted(tmetrics) == sorted(labels), "Telegraf %s: a nagios metric per label (%s)" % (word, " ".join(sorted(tmetrics))))
        tags, fields = tmetrics.get("tcp_busiest_pct", ({}, {}))
        expect = {0: 0.0, 1: 80.0, 2: 100.0}[want]
        ok(tags.get("unit") == "%" and fields == {"value": expect, "warning_lt": 0.0, "warning_gt": 70.0,
                                                  "critical_lt": 0.0, "critical_gt": 85.0, "min": 0.0, "max": 100.0},
           "Telegraf %s: tcp_busiest_pct unit %% value %s warning 0..70 critical 0..85 min 0 max 100 (%r %r)"
           % (word, expect, tags, fields))
        tags, fields = tmetrics.get("tcp_busiest_used", ({}, {}))
        ok(fields.get("value") == {0: 0, 1: 8, 2: 10}[want] and fields.get("max") == 10.0 and "unit" not in tags,
           "Telegraf %s: tcp_busiest_used value and max 10, no unit (%r)" % (word, fields))
sys.exit(1 if failed else 0)
EOF
[ $? = 0 ] || failed=1

# -vv detail lines: still no '|' after the first line (Telegraf would read one as perfdata).
unshare -n bash -c 'ip link set lo up; sysctl -qw net.ipv4.ip_local_port_range="40000 40009"; "$1" -vv' sh "$T/plugins/check_ephemeral_ports" >"$T/vv.txt" 2>&1
check "with -vv only the first line has a '|'" test "$(tail -n +2 "$T/vv.txt" | grep -c '|')" = 0
exit $failed
