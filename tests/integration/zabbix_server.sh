#!/usr/bin/env bash
# Integration test: the Zabbix templates on real Zabbix servers, each with its own PostgreSQL
# and its frontend's JSON-RPC API, all on 127.0.0.1:
#   - Zabbix 6.0 of Debian 12 (bookworm): template_ephemeral_ports.yaml imports through the API;
#   - Zabbix 7.0 of Debian 13 (trixie): the 6.0 template, then template_ephemeral_ports_7.0.yaml
#     over it (same UUIDs: an in-place upgrade);
#   - on each: an external check (ExternalScripts) check_ephemeral_ports["--format","json"]
#     returns the plugin's JSON document, and a host whose Zabbix agent (this machine's
#     zabbix_agentd, with the UserParameter of icinga/zabbix/) runs the plugin in a network
#     namespace of this test: the state and the WARNING trigger follow while the test fills a
#     tuple and empties it again, a host macro {$EPHEMERAL_PORTS.CRIT}=75 makes the CRITICAL
#     trigger fire at 80% while the plugin's own state stays WARNING (the thresholds are the
#     server's), and an external check with --pid sees the same namespace; on 7.0 also the item's
#     timeout, the discovered tuple, its trigger prototypes and the forecast trigger;
#   - on each: the source-NAT discovery run by the server itself. A second agent's
#     ephemeral_ports.json returns, in turn, documents the real plugin printed in a NAT router
#     (tests/fixtures/zabbix-nat/, captured from tests/oracle/nat.py: no NAT router is needed
#     while the servers run); the server discovers the two tuples, its prototypes' JSONPaths give
#     each discovered item its value, the fill and failure-odds trigger prototypes fire (template
#     macros and a per-destination context macro), a tuple that drops out of the plugin's --top
#     stays supported without values and its trigger recovers on nodata, and documents without
#     NAT leave the rule supported (the tuples are only marked lost); the namespace host of the
#     agent scenario (no NAT) has the rule supported and nothing discovered.
# Each release's server, frontend and database come from a debootstrap root cached under
# /var/cache/check-ephemeral-ports/ (lib/zabbix_root.sh; a few minutes on the first run, then
# reused). A run mounts an overlay on it (the cache stays as it was), /proc inside it, and starts
# postgres, zabbix_server and `php -S` in it with chroot; every daemon is recorded by PID and
# stopped, everything is unmounted, the namespace deleted. The whole script runs in a private
# mount namespace of its own, so not even a killed run can leave a mount behind.
# Runs as root; prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
set -u
if [ -z "${CEP_ZABBIX_SERVER_UNSHARED:-}" ]; then
    CEP_ZABBIX_SERVER_UNSHARED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/zabbix_root.sh"
zconf=$root/icinga/zabbix
py=/usr/bin/python3
ns=cep-zbx-$$
mounts=()

# Processes of this test: anything chrooted into $T (postgres, the server, its workers, php) and
# the agent with its configuration file in $T.
own_procs() {
    local p
    for p in /proc/[0-9]*; do
        case $(readlink "$p/root" 2>/dev/null) in "$T"/*) echo "${p#/proc/}";; esac
    done
    pgrep -f "$T/zabbix_agentd.conf"
    pgrep -f "$T/nat_agentd.conf"
}

setup_temp_dir
teardown() {
    stop_all
    local n
    for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount "${mounts[n]}" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    cleanup
}
trap teardown EXIT
require_plugin_binary
install_without_daemon zabbix_agentd debootstrap zabbix-agent python3 python3-yaml iproute2
install_plugin_into "$T/bin"

# The JSON-RPC client: login, import, counts, hosts, items, triggers.
cat >"$T/zapi.py" <<'EOF'
import json, sys, time, urllib.request, yaml

class Api:
    def __init__(self, url):
        self.url, self.token, self.v7 = url, None, False
    def call(self, method, params):
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        headers = {"Content-Type": "application/json-rpc"}
        if self.token and method not in ("apiinfo.version", "user.login"):
            if self.v7:
                headers["Authorization"] = "Bearer " + self.token
            else:
                body["auth"] = self.token
        req = urllib.request.Request(self.url, json.dumps(body).encode(), headers)
        # 180 s: once (a fresh-clone CI run, 6.0) linking a host to the template, which now carries
        # a discovery rule, took the frontend over 60 s while the server worked; a call is not retried.
        reply = json.load(urllib.request.urlopen(req, timeout=180))
        if "error" in reply:
            raise RuntimeError("%s: %s" % (method, reply["error"]))
        return reply["result"]
    def login(self, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                version = self.call("apiinfo.version", {})
                break
            except (OSError, ValueError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        self.v7 = int(version.split(".")[0]) >= 7
        self.token = self.call("user.login", {"username": "Admin", "password": "zabbix"})
        return version

def template_counts(path):
    ex = yaml.safe_load(open(path))["zabbix_export"]
    t = ex["templates"][0]
    rules = t.get("discovery_rules", [])
    return {
        "name": t["template"],
        "items": len(t["items"]),
        "triggers": sum(len(i.get("triggers", [])) for i in t["items"]) + len(ex.get("triggers", [])),
        "discoveries": len(rules),
        "item_prototypes": sum(len(r.get("item_prototypes", [])) for r in rules),
        "trigger_prototypes": sum(len(p.get("trigger_prototypes", [])) for r in rules for p in r.get("item_prototypes", []))
                              + sum(len(r.get("trigger_prototypes", [])) for r in rules),
        "macros": len(t.get("macros", [])),
        "valuemaps": len(t.get("valuemaps", [])),
    }

def rules_for(api):
    both = {"createMissing": True, "updateExisting": True}
    r = {"templates": both, "items": dict(both, deleteMissing=True), "triggers": dict(both, deleteMissing=True),
         "discoveryRules": dict(both, deleteMissing=True), "graphs": dict(both, deleteMissing=True),
         "valueMaps": dict(both, deleteMissing=True), "templateLinkage": {"createMissing": True}}
    if api.v7:
        r["template_groups"] = both
    else:
        r["groups"] = {"createMissing": True}
    return r

def server_template(api, name):
    t = api.call("template.get", {"filter": {"host": name}, "output": ["templateid", "host", "uuid"],
                                  "selectItems": "count", "selectTriggers": "count", "selectDiscoveries": "count",
                                  "selectMacros": "extend", "selectValueMaps": "extend"})
    if len(t) != 1:
        return None, "%d templates named %s" % (len(t), name)
    t = t[0]
    tid = t["templateid"]
    protos = api.call("itemprototype.get", {"templateids": tid, "countOutput": True})
    tprotos = api.call("triggerprototype.get", {"templateids": tid, "countOutput": True})
    return {"name": t["host"], "items": int(t["items"]), "triggers": int(t["triggers"]),
            "discoveries": int(t["discoveries"]), "item_prototypes": int(protos),
            "trigger_prototypes": int(tprotos), "macros": len(t["macros"]),
            "valuemaps": len(t["valuemaps"])}, tid

POKE = []  # (api, itemid): "Execute now" for that item every 5 s while waiting

def wait_for(what, fn, timeout):
    deadline, last, poked = time.time() + timeout, None, 0
    while time.time() < deadline:
        last = fn()
        if last is not None and last is not False:
            return last
        if POKE and time.time() - poked >= 5:
            api, itemid = POKE[0]
            api.call("task.create", [{"type": 6, "request": {"itemid": itemid}}])
            poked = time.time()
        time.sleep(1)
    raise TimeoutError("%s: not within %ds (last: %r)" % (what, timeout, last))

def item(api, hostid, key):
    r = api.call("item.get", {"hostids": hostid, "filter": {"key_": key}, "output": ["itemid", "lastvalue", "lastclock", "state", "error"]})
    return r[0] if r else None

def trigger_value(api, hostid, name):
    r = api.call("trigger.get", {"hostids": hostid, "filter": {"description": name}, "output": ["value", "description"],
                                 "expandDescription": False})
    return r[0]["value"] if r else None

def state(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return {}

if __name__ == "__main__":
    cmd, statefile, url = sys.argv[1], sys.argv[2], sys.argv[3]
    args = sys.argv[4:]
    api = Api(url)
    s = state(statefile)
    if cmd == "login":
        print(api.login())
        json.dump({"token": api.token, "v7": api.v7}, open(statefile, "w"))
        sys.exit(0)
    api.token, api.v7 = s["token"], s["v7"]
    if args and args[-1].startswith("poke="):  # poke=HOSTID:KEY, the master item to run now and then
        hostid_, key_ = args.pop()[5:].split(":", 1)
        POKE.append((api, item(api, hostid_, key_)["itemid"]))
    if cmd == "import":  # FILE: import, then compare what the server holds with the file
        src = open(args[0]).read()
        api.call("configuration.import", {"format": "yaml", "source": src, "rules": rules_for(api)})
        want = template_counts(args[0])
        got, tid = server_template(api, want["name"])
        print(json.dumps({"want": want, "got": got, "templateid": tid}))
        sys.exit(0 if got == want else 1)
    if cmd == "host":  # NAME TEMPLATE_NAME|- AGENT_PORT MACRO=VALUE...: create, print the host id
        name, tname, port = args[:3]
        g = api.call("hostgroup.get", {"filter": {"name": "check_ephemeral_ports test"}})
        gid = g[0]["groupid"] if g else api.call("hostgroup.create", {"name": "check_ephemeral_ports test"})["groupids"][0]
        params = {"host": name, "groups": [{"groupid": gid}],
                  "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": port}],
                  "macros": [{"macro": m.split("=", 1)[0], "value": m.split("=", 1)[1]} for m in args[3:]]}
        if tname != "-":
            t = api.call("template.get", {"filter": {"host": tname}, "output": ["templateid"]})
            params["templates"] = [{"templateid": t[0]["templateid"]}]
        print(api.call("host.create", params)["hostids"][0])
    elif cmd == "external":  # HOSTID KEY: an external check item, text, every 5 s; print its id
        hostid, key = args
        iface = api.call("hostinterface.get", {"hostids": hostid, "output": ["interfaceid"]})[0]["interfaceid"]
        print(api.call("item.create", {"hostid": hostid, "name": "external " + key, "key_": key, "type": 10,
                                       "value_type": 4, "delay": "5s", "interfaceid": iface})["itemids"][0])
    elif cmd == "value":  # HOSTID KEY TIMEOUT [PREVCLOCK]: wait for a value newer than PREVCLOCK; print it
        hostid, key, timeout = args[:3]
        prev = int(args[3]) if len(args) > 3 else 0
        def fresh():
            i = item(api, hostid, key)
            if i and int(i["lastclock"]) > prev:
                return i
            return None
        try:
            i = wait_for("value of " + key, fresh, int(timeout))
        except TimeoutError as e:
            i = item(api, hostid, key)
            print("TIMEOUT %s; item: %s" % (e, i and {k: i[k] for k in ("state", "error", "lastclock")}))
            sys.exit(1)
        print("%s %s" % (i["lastclock"], i["lastvalue"]))
    elif cmd == "trigger":  # HOSTID NAME VALUE TIMEOUT: wait until the trigger's value is VALUE
        hostid, name, value, timeout = args
        try:
            wait_for("trigger " + name, lambda: trigger_value(api, hostid, name) == value, int(timeout))
        except TimeoutError as e:
            print("TIMEOUT: value %s" % trigger_value(api, hostid, name))
            sys.exit(1)
        print("value %s" % value)
    elif cmd == "triggers":  # HOSTID: every trigger of the host, value and name
        for t in api.call("trigger.get", {"hostids": args[0], "output": ["value", "description"], "expandDescription": True}):
            print(t["value"], t["description"])
    elif cmd == "macro":  # HOSTID MACRO VALUE: a host macro, overriding the template's
        hostid, macro, value = args
        print(api.call("usermacro.create", {"hostid": hostid, "macro": macro, "value": value})["hostmacroids"][0])
    elif cmd == "item-field":  # HOSTID KEY FIELD: one field of the host's item, e.g. its timeout
        hostid, key, field = args
        r = api.call("item.get", {"hostids": hostid, "filter": {"key_": key}, "output": [field]})
        print(r[0][field] if r else "")
    elif cmd == "template-macro":  # TEMPLATE_NAME MACRO: the template's value of MACRO
        t = api.call("template.get", {"filter": {"host": args[0]}, "output": ["templateid"], "selectMacros": "extend"})
        print(next((m["value"] for m in t[0]["macros"] if m["macro"] == args[1]), "") if t else "")
    elif cmd == "trigger-named":  # HOSTID NAME VALUE TIMEOUT: wait until the trigger whose expanded name is NAME has VALUE
        hostid, name, value, timeout = args
        def named():
            r = [t for t in api.call("trigger.get", {"hostids": hostid, "output": ["value", "description"], "expandDescription": True})
                 if t["description"] == name]
            return r[0]["value"] if r else None
        try:
            wait_for("trigger " + name, lambda: named() == value, int(timeout))
        except TimeoutError:
            print("TIMEOUT: value %s" % named())
            sys.exit(1)
        print("value %s" % value)
    elif cmd == "rule":  # HOSTID KEY: the discovery rule's state (0 normal, 1 not supported) and error
        r = api.call("discoveryrule.get", {"hostids": args[0], "filter": {"key_": args[1]}, "output": ["state", "error"]})
        print("%s %s" % (r[0]["state"], r[0]["error"]) if r else "none")
    elif cmd == "discovered":  # HOSTID PREFIX: the discovered items whose key starts with PREFIX, one JSON line each:
        # key, state, error, lastclock, lastvalue, lost (the rule no longer lists it: deletion scheduled)
        r = api.call("item.get", {"hostids": args[0], "search": {"key_": args[1]}, "startSearch": True,
                                  "output": ["key_", "state", "error", "lastclock", "lastvalue", "flags"],
                                  "selectItemDiscovery": ["ts_delete"]})
        for i in sorted((i for i in r if i["flags"] == "4"), key=lambda i: i["key_"]):
            print(json.dumps({"key": i["key_"], "state": i["state"], "error": i["error"], "lastclock": int(i["lastclock"]),
                              "lastvalue": i["lastvalue"], "lost": int(i["itemDiscovery"]["ts_delete"]) > 0}))
    elif cmd == "hostid":  # NAME: the host's id
        r = api.call("host.get", {"filter": {"host": args[0]}, "output": ["hostid"]})
        print(r[0]["hostid"] if r else "")
    elif cmd == "items":  # HOSTID: every item key of the host
        for i in api.call("item.get", {"hostids": args[0], "output": ["key_", "lastvalue"]}):
            print(i["key_"], i["lastvalue"][:80])
EOF
zapi() { "$py" "$T/zapi.py" "$@"; }

# The plugin's JSON document has the fields a check of this host must show.
is_plugin_json() { "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["exitCode"] in (0,1,2,3) and "range" in d else 1)' "$1" 2>/dev/null; }

# --- one server ------------------------------------------------------------------------------------
# start_server LABEL SUITE KEY: the root (cached), overlay, postgres, server, frontend; sets
# $R (the root), $api (the API URL), $zport (the server's trapper port).
start_server() {
    local label=$1 suite=$2 key=$3 base cache bindir pgport
    base=$T/$label
    mkdir -p "$base"/{upper,work,root}
    cache=$(zbx_prepare_root "$suite" "$key" "$base/prepare.log")
    check "$label: Debian $suite root with Zabbix server, frontend, PostgreSQL (cache ${cache:-none})" test -n "$cache" ||
        { tail -5 "$base/prepare.log" | sed 's/^/#   /'; return 1; }
    R=$base/root
    mount -t overlay overlay -o "lowerdir=$cache,upperdir=$base/upper,workdir=$base/work" "$R" && mounts+=("$R") &&
        mount -t proc proc "$R/proc" && mounts+=("$R/proc") || { not_ok "$label: mount the overlay and /proc"; return 1; }
    bindir=$(zbx_pg_bindir "$R")
    pgport=$(free_port 16000 16999) zport=$(free_port 16000 16999) wport=$(free_port 16000 16999)
    # PostgreSQL: TCP on 127.0.0.1 only, trust (the cluster was made with -A trust).
    start_daemon "$base/postgres.log" chroot "$R" setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$bindir/postgres" -D /var/lib/zbxtest/pgdata -p "$pgport" -c listen_addresses=127.0.0.1 \
        -k /run/postgresql -c dynamic_shared_memory_type=mmap -c fsync=off -c full_page_writes=off
    local n
    for n in $(seq 60); do
        zbx_chroot "$R" "$bindir/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break
        sleep 0.5
    done
    check "$label: postgres on 127.0.0.1:$pgport" zbx_chroot "$R" "$bindir/pg_isready" -q -h 127.0.0.1 -p "$pgport" || return 1
    mkdir -p "$R/run/zabbix" "$R/var/log/zabbix" "$R/usr/lib/zabbix/externalscripts"
    zbx_chroot "$R" chown zabbix: /run/zabbix /var/log/zabbix
    install -m 0755 "$bin" "$R/usr/lib/zabbix/externalscripts/check_ephemeral_ports"
    cat >"$R/etc/zabbix/test_server.conf" <<EOF
LogType=console
PidFile=/run/zabbix/test_server.pid
SocketDir=/run/zabbix
DBHost=127.0.0.1
DBPort=$pgport
DBName=zabbix
DBUser=zabbix
ListenIP=127.0.0.1
ListenPort=$zport
ExternalScripts=/usr/lib/zabbix/externalscripts
CacheUpdateFrequency=2
Timeout=10
StartPollers=2
StartPollersUnreachable=1
StartTrappers=1
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartTimers=1
StartEscalators=1
StartAlerters=1
StartDBSyncers=1
StartPreprocessors=1
StartLLDProcessors=1
HousekeepingFrequency=0
EOF
    start_daemon "$base/zabbix_server.log" chroot "$R" /usr/sbin/zabbix_server -f -c /etc/zabbix/test_server.conf
    # The frontend: its configuration file (Debian reads /etc/zabbix/zabbix.conf.php), then PHP's built-in web server as www-data.
    cat >"$R/etc/zabbix/zabbix.conf.php" <<EOF
<?php
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = '127.0.0.1';
\$DB['PORT'] = '$pgport';
\$DB['DATABASE'] = 'zabbix';
\$DB['USER'] = 'zabbix';
\$DB['PASSWORD'] = '';
\$DB['SCHEMA'] = '';
\$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = '';
\$DB['CERT_FILE'] = '';
\$DB['CA_FILE'] = '';
\$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = '';
\$DB['VAULT'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['VAULT_CERT_FILE'] = '';
\$DB['VAULT_KEY_FILE'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = '127.0.0.1';
\$ZBX_SERVER_PORT = '$zport';
\$ZBX_SERVER_NAME = 'check_ephemeral_ports test';
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
EOF
    chmod 644 "$R/etc/zabbix/zabbix.conf.php"
    start_daemon "$base/php.log" chroot "$R" setpriv --reuid=www-data --regid=www-data --init-groups -- \
        php -d memory_limit=512M -d post_max_size=16M -d upload_max_filesize=2M -d max_execution_time=300 \
        -d max_input_time=300 -d date.timezone=UTC -S "127.0.0.1:$wport" -t /usr/share/zabbix
    api=http://127.0.0.1:$wport/api_jsonrpc.php
    local version
    version=$(zapi login "$base/api.json" "$api" 2>"$base/login.err")
    check "$label: frontend (php -S 127.0.0.1:$wport) answers the API, Zabbix $version, Admin logs in" test -n "$version" ||
        { tail -3 "$base/login.err" | sed 's/^/#   /'; tail -5 "$base/php.log" | sed 's/^/#   /'; return 1; }
    for n in $(seq 60); do
        grep -q -e 'server #0 started \[main process\]' -e 'started \[main process\]' "$base/zabbix_server.log" && break
        sleep 0.5
    done
    check "$label: zabbix_server on 127.0.0.1:$zport running ($(grep -c 'started \[' "$base/zabbix_server.log") processes started)" \
        grep -q 'started \[main process\]' "$base/zabbix_server.log" || { tail -5 "$base/zabbix_server.log" | sed 's/^/#   /'; return 1; }
}

import_template() { # LABEL FILE
    local label=$1 file=$2 out
    out=$(zapi import "$T/$label/api.json" "$api" "$file" 2>&1)
    check "$label: $(basename "$file") imports through configuration.import; the server holds what the file has" test $? = 0 ||
        echo "$out" | head -c 2000 | sed 's/^/#   /'
    "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print("# %s" % d["got"])' "$out" 2>/dev/null
}

# An external check on host HOSTID: the server itself runs the plugin from ExternalScripts.
external_check() { # LABEL HOSTID
    local label=$1 hostid=$2 key='check_ephemeral_ports["--format","json"]' out
    zapi external "$T/$label/api.json" "$api" "$hostid" "$key" >/dev/null
    out=$(zapi value "$T/$label/api.json" "$api" "$hostid" "$key" 90)
    check "$label: external check $key returns the plugin's JSON document (run by the server as zabbix)" \
        is_plugin_json "${out#* }" || echo "# $out" | head -c 600
}

# --- the agent scenario -------------------------------------------------------------------------
# The test's namespace, made once: 10 ports per tuple.
make_namespace() {
    ip netns add "$ns" && ip -n "$ns" link set lo up &&
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="40000 40009"
    check "namespace $ns: loopback up, ip_local_port_range 40000-40009 (10 ports per tuple)" \
        test "$(ip netns exec "$ns" cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null | tr -s '\t ' ' ')" = "40000 40009"
}

# Fills the tuple: a listener on 127.0.0.1:5000 in the namespace and 8 connections to it, 8 of the
# 10 ports (80%: WARNING at 70, not CRITICAL at 85). SO_LINGER 0 makes the close an abort, so no
# TIME_WAIT is left behind when the holder stops.
cat >"$T/holder.py" <<'EOF'
import signal, socket, struct, sys, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 5000)); srv.listen(64)
clients, accepted = [], []
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", 5000))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    clients.append(c); accepted.append(srv.accept()[0])
open(sys.argv[2], "w").write("%d\n" % len(clients))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
for _ in range(600):
    time.sleep(1)
EOF

# agent_scenario LABEL EXTERNAL_HOSTID: this machine's zabbix_agentd with the UserParameter of
# icinga/zabbix/, changed to check the test's namespace (--netns needs root for setns, hence
# AllowRoot=1; in production the UserParameter checks the host's own namespace and the agent runs
# as zabbix), and a host on LABEL's server linked to the template, with the anti-flap period
# {$EPHEMERAL_PORTS.PERIOD} shortened to 20s. The master item runs every 5 s where the template
# has {$EPHEMERAL_PORTS.INTERVAL} (7.0); on 6.0 (1m, fixed) the waits ask the server to "Execute
# now" every 5 s. On 7.0 also the discovery, the forecast and an external check of the namespace.
agent_scenario() {
    local label=$1 xhid=$2 a=$T/$1/api.json aport ahid st out sum pct holder xs xkey poke tv period=20s
    aport=$(free_port 16000 16999)
    sed "s#/usr/lib/nagios/plugins/check_ephemeral_ports --format json#$T/bin/check_ephemeral_ports --netns $ns --format json#" \
        "$zconf/userparameter_ephemeral_ports.conf" >"$T/userparameter.conf"
    grep -q -- "--netns $ns --format json" "$T/userparameter.conf" || not_ok "UserParameter rewritten for the namespace"
    mkdir -p "$T/agent"
    cat >"$T/zabbix_agentd.conf" <<EOF
LogType=console
PidFile=$T/agent/zabbix_agentd.pid
Server=127.0.0.1
ListenIP=127.0.0.1
ListenPort=$aport
StartAgents=2
AllowRoot=1
Timeout=10
Include=$T/userparameter.conf
EOF
    start_daemon "$T/$label/zabbix_agentd.log" zabbix_agentd -f -c "$T/zabbix_agentd.conf"
    ahid=$(zapi host "$a" "$api" cep-agent 'Ephemeral ports by Zabbix agent' "$aport" \
        '{$EPHEMERAL_PORTS.INTERVAL}=5s' "{\$EPHEMERAL_PORTS.PERIOD}=$period" '{$EPHEMERAL_PORTS.TUPLE.NODATA}=30s')
    check "$label: host cep-agent (agent on 127.0.0.1:$aport) linked to the template, host macros {\$EPHEMERAL_PORTS.PERIOD}=$period, {\$EPHEMERAL_PORTS.TUPLE.NODATA}=30s" \
        test -n "$ahid" || return 1
    if [ "$label" = zabbix7 ]; then
        # 7.0: the item's own timeout (the agent's Timeout no longer applies to items).
        out=$(zapi item-field "$a" "$api" "$ahid" ephemeral_ports.json timeout)
        tv=$(zapi template-macro "$a" "$api" 'Ephemeral ports by Zabbix agent' '{$EPHEMERAL_PORTS.TIMEOUT}')
        check "$label: the host's item ephemeral_ports.json has the timeout $out ($tv)" \
            test "$out" = '{$EPHEMERAL_PORTS.TIMEOUT}' -a "$tv" = 15s
    fi
    poke=poke=$ahid:ephemeral_ports.json
    st=$(zapi value "$a" "$api" "$ahid" ephemeral_ports.state 120 0 "$poke")
    check "$label agent: the empty namespace is OK (ephemeral_ports.state = ${st#* })" test "${st#* }" = 0
    out=$(zapi trigger "$a" "$api" "$ahid" 'Ephemeral ports: WARNING' 0 30 "$poke")
    check "$label agent: trigger 'Ephemeral ports: WARNING' is OK" test $? = 0 || echo "# $out"

    rm -f "$T/holder.ready"
    start_daemon "$T/$label/holder.log" ip netns exec "$ns" "$py" "$T/holder.py" 8 "$T/holder.ready"
    holder=${pids[-1]}
    for _ in $(seq 50); do [ -s "$T/holder.ready" ] && break; sleep 0.2; done
    check "namespace $ns: 8 connections to 127.0.0.1:5000 open" test "$(cat "$T/holder.ready" 2>/dev/null)" = 8
    out=$(zapi trigger "$a" "$api" "$ahid" 'Ephemeral ports: WARNING' 1 90 "$poke")
    check "$label agent: trigger 'Ephemeral ports: WARNING' goes to PROBLEM when the tuple is 80% full" test $? = 0 ||
        { echo "# $out"; zapi items "$a" "$api" "$ahid" | sed 's/^/#   /'; }
    sum=$(zapi value "$a" "$api" "$ahid" ephemeral_ports.summary 10)
    check "$label agent: summary names the tuple: ${sum#* }" grep -q '127.0.0.1 -> 127.0.0.1:5000 uses 8 of 10 ports' <<<"$sum"
    if [ "$label" = zabbix7 ]; then
        pct=$(zapi value "$a" "$api" "$ahid" 'ephemeral_ports.tuple.pct["127.0.0.1","127.0.0.1","5000"]' 90)
        check "$label agent: discovery made the tuple's item prototype; its used percent is ${pct#* }" test "${pct#* }" = 80
    fi
    zapi triggers "$a" "$api" "$ahid" >"$T/$label/triggers.txt"
    if [ "$label" = zabbix7 ]; then
        check "$label agent: the discovered tuple's WARNING trigger fires too" \
            grep -q "^1 Ephemeral ports: tuple 127.0.0.1 -> 127.0.0.1:5000 above 70% for $period\$" "$T/$label/triggers.txt" ||
            sed 's/^/#   /' "$T/$label/triggers.txt"
        check "$label agent: the forecast trigger fires (0 to 8 ports within a minute reaches 10 within the hour)" \
            grep -q '^1 Ephemeral ports: busiest TCP tuple runs out of ports within 1h$' "$T/$label/triggers.txt"
    fi
    check "$label agent: no CRITICAL trigger at 80%" test "$(grep -c '^1 .*\(CRITICAL\|above 85%\)' "$T/$label/triggers.txt")" = 0

    # The thresholds are the server's: a host macro {$EPHEMERAL_PORTS.CRIT}=75 makes 80% CRITICAL
    # while the plugin (its own -c 85 in the UserParameter) still says WARNING.
    zapi macro "$a" "$api" "$ahid" '{$EPHEMERAL_PORTS.CRIT}' 75 >/dev/null
    out=$(zapi trigger "$a" "$api" "$ahid" 'Ephemeral ports: CRITICAL' 1 90 "$poke")
    check "$label agent: host macro {\$EPHEMERAL_PORTS.CRIT}=75: trigger 'Ephemeral ports: CRITICAL' goes to PROBLEM at 80%" test $? = 0 ||
        { echo "# $out"; zapi triggers "$a" "$api" "$ahid" | sed 's/^/#   /'; }
    st=$(zapi value "$a" "$api" "$ahid" ephemeral_ports.state 10)
    check "$label agent: the plugin's own state item still says WARNING (${st#* })" test "${st#* }" = 1
    if [ "$label" = zabbix7 ]; then
        zapi triggers "$a" "$api" "$ahid" >"$T/$label/triggers.txt"
        check "$label agent: the tuple's CRITICAL prototype follows the host macro too (no context-specific one defined)" \
            grep -q "^1 Ephemeral ports: tuple 127.0.0.1 -> 127.0.0.1:5000 above 75% for $period\$" "$T/$label/triggers.txt" ||
            sed 's/^/#   /' "$T/$label/triggers.txt"
    fi

    # An external check of that namespace: the server (user zabbix) runs a copy of the plugin
    # that holds the two capabilities --pid needs (setns, /proc/PID/ns/net of a root process),
    # executable by group zabbix only, as the README describes.
    xs=$R/usr/lib/zabbix/externalscripts/check_ephemeral_ports
    chown root:"$(zbx_chroot "$R" id -g zabbix)" "$xs" && chmod 0750 "$xs" &&
        setcap cap_sys_admin,cap_sys_ptrace+ep "$xs"
    check "$label: externalscripts copy is root:zabbix 0750 with cap_sys_admin,cap_sys_ptrace ($(getcap "$xs" | cut -d' ' -f2-))" \
        test -n "$(getcap "$xs")"
    xkey="check_ephemeral_ports[\"--pid\",\"$holder\",\"--format\",\"json\"]"
    zapi external "$a" "$api" "$xhid" "$xkey" >/dev/null
    out=$(zapi value "$a" "$api" "$xhid" "$xkey" 60)
    check "$label: external check $xkey sees the namespace: WARNING, 8 of 10 ports" \
        "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["exitCode"] == 1 and "uses 8 of 10 ports" in d["summary"] else 1)' "${out#* }" ||
        echo "# $out" | head -c 600

    kill -TERM "$holder"
    wait "$holder" 2>/dev/null
    out=$(zapi trigger "$a" "$api" "$ahid" 'Ephemeral ports: CRITICAL' 0 90 "$poke")
    check "$label agent: trigger 'Ephemeral ports: CRITICAL' recovers when the connections are closed" test $? = 0 || echo "# $out"
    out=$(zapi trigger "$a" "$api" "$ahid" 'Ephemeral ports: WARNING' 0 90 "$poke")
    check "$label agent: trigger 'Ephemeral ports: WARNING' recovers when the connections are closed" test $? = 0 || echo "# $out"
    if [ "$label" = zabbix7 ]; then
        # The tuple left topDestinations: its item gets no value, and its trigger recovers after
        # {$EPHEMERAL_PORTS.TUPLE.NODATA} (30s here) instead of staying in PROBLEM.
        out=$(zapi trigger-named "$a" "$api" "$ahid" "Ephemeral ports: tuple 127.0.0.1 -> 127.0.0.1:5000 above 75% for $period" 0 120 "$poke")
        check "$label agent: the discovered tuple's CRITICAL trigger recovers once the tuple is no longer listed (nodata 30s)" test $? = 0 ||
            { echo "# $out"; zapi triggers "$a" "$api" "$ahid" | sed 's/^/#   /'; }
    fi
}

# --- the source-NAT discovery ------------------------------------------------------------------
# nat_scenario LABEL: a second zabbix_agentd whose ephemeral_ports.json prints $T/nat-doc.json, a
# document of the real plugin in tests/oracle/nat.py's NAT router (tests/fixtures/zabbix-nat/:
# the router is gone by then, and the server only sees the agent's value), swapped between the
# steps; a host cep-nat on it linked to the template. The server runs the discovery rule
# ephemeral_ports.nat.discovery on each value of the master item, creates the tuples' items and
# triggers from the prototypes and computes their values with the prototypes' JSONPaths.
natfx=$root/tests/fixtures/zabbix-nat
nat_key() { # FIELD PORT: a discovered item's key
    echo "ephemeral_ports.nat.tuple.$1[\"10.211.2.1\",\"10.211.2.2\",\"$2\",\"tcp\",\"0\"]"
}
nat_trigger() { # PORT REST: a discovered trigger's expanded name
    echo "Ephemeral ports: NAT tuple 10.211.2.1 -> 10.211.2.2:$1/tcp (zone 0) $2"
}
# Waits for two more values of the master item of host $nhid (the document in place was read).
nat_two_values() {
    local c
    c=$(zapi value "$a" "$api" "$nhid" ephemeral_ports.state 5 | cut -d' ' -f1)
    c=$(zapi value "$a" "$api" "$nhid" ephemeral_ports.state 60 "${c:-0}" "$poke" | cut -d' ' -f1)
    zapi value "$a" "$api" "$nhid" ephemeral_ports.state 60 "${c:-0}" "$poke" | cut -d' ' -f1
}
nat_scenario() {
    local label=$1 a=$T/$1/api.json nport nhid poke out f p prev8081 v1 v2 agenthid
    nport=$(free_port 16000 16999)
    cp "$natfx/two-tuples.json" "$T/nat-doc.json"
    echo "UserParameter=ephemeral_ports.json,cat $T/nat-doc.json" >"$T/nat_userparameter.conf"
    mkdir -p "$T/agent"
    cat >"$T/nat_agentd.conf" <<EOF
LogType=console
PidFile=$T/agent/nat_agentd.pid
Server=127.0.0.1
ListenIP=127.0.0.1
ListenPort=$nport
StartAgents=2
AllowRoot=1
Timeout=10
Include=$T/nat_userparameter.conf
EOF
    start_daemon "$T/$label/nat_agentd.log" zabbix_agentd -f -c "$T/nat_agentd.conf"
    nhid=$(zapi host "$a" "$api" cep-nat 'Ephemeral ports by Zabbix agent' "$nport" \
        '{$EPHEMERAL_PORTS.INTERVAL}=5s' '{$EPHEMERAL_PORTS.PERIOD}=20s' '{$EPHEMERAL_PORTS.TUPLE.NODATA}=30s')
    check "$label: host cep-nat (agent on 127.0.0.1:$nport printing the NAT router's documents) linked to the template" \
        test -n "$nhid" || return 1
    poke=poke=$nhid:ephemeral_ports.json

    # Two tuples: 8080 at 80%, 8081 at 30%. Every prototype of both: an item with its value.
    out=$(zapi value "$a" "$api" "$nhid" "$(nat_key pct 8080)" 150 0 "$poke")
    check "$label NAT: the server discovered 10.211.2.1 -> 10.211.2.2:8080/tcp; its held percent is ${out#* }" test "${out#* }" = 80 ||
        { echo "# $out"; zapi rule "$a" "$api" "$nhid" ephemeral_ports.nat.discovery | sed 's/^/#   rule: /'; }
    for f in held entries capacity failure_pct pct; do
        for p in 8080 8081; do zapi value "$a" "$api" "$nhid" "$(nat_key $f $p)" 60 0 "$poke" >/dev/null; done
    done
    zapi discovered "$a" "$api" "$nhid" ephemeral_ports.nat.tuple. >"$T/$label/nat-items.txt"
    sed 's/^/#   /' "$T/$label/nat-items.txt"
    check "$label NAT: 10 discovered items (5 prototypes x 2 tuples), each with the value of its tuple in the document" \
        "$py" -c '
import json, sys
items = [json.loads(l) for l in open(sys.argv[1])]
doc = json.load(open(sys.argv[2]))
field = {"held": "held", "pct": "percent", "failure_pct": "failurePct", "entries": "entries", "capacity": "capacity"}
want = {"ephemeral_ports.nat.tuple.%s[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]" % (k, t["natAddress"], t["destination"], t["port"], t["protocol"], t["zone"]): t[v]
        for t in doc["nat"]["tuples"] for k, v in field.items()}
got = {i["key"]: i["lastvalue"] for i in items if i["state"] == "0" and i["lastclock"] > 0}
sys.exit(0 if len(want) == 10 and set(got) == set(want) and all(float(got[k]) == float(want[k]) for k in want) else 1)
' "$T/$label/nat-items.txt" "$natfx/two-tuples.json"
    out=$(zapi trigger-named "$a" "$api" "$nhid" "$(nat_trigger 8080 'above 70% for 20s')" 1 90 "$poke")
    check "$label NAT: the 8080 tuple's fill WARNING trigger (80% > {\$EPHEMERAL_PORTS.WARN} 70) fires" test $? = 0 ||
        { echo "# $out"; zapi triggers "$a" "$api" "$nhid" | sed 's/^/#   /'; }
    zapi triggers "$a" "$api" "$nhid" >"$T/$label/nat-triggers.txt"
    check "$label NAT: 8 discovered triggers (4 prototypes x 2 tuples), only that one in PROBLEM" \
        test "$(grep -c 'NAT tuple 10.211' "$T/$label/nat-triggers.txt"):$(grep -c '^1 .*NAT tuple 10.211' "$T/$label/nat-triggers.txt")" = 8:1 ||
        sed 's/^/#   /' "$T/$label/nat-triggers.txt"

    # A host macro with the tuple's context: 8081 (30%) fires at 25 while 8080 keeps 70.
    zapi macro "$a" "$api" "$nhid" '{$EPHEMERAL_PORTS.WARN:"10.211.2.2:8081"}' 25 >/dev/null
    out=$(zapi trigger-named "$a" "$api" "$nhid" "$(nat_trigger 8081 'above 25% for 20s')" 1 90 "$poke")
    check "$label NAT: host macro {\$EPHEMERAL_PORTS.WARN:\"10.211.2.2:8081\"}=25: the 8081 tuple's WARNING fires at 30%" test $? = 0 ||
        { echo "# $out"; zapi triggers "$a" "$api" "$nhid" | sed 's/^/#   /'; }

    # 8080 full: every new flow to it fails (failurePct 100): both CRITICAL triggers.
    cp "$natfx/two-tuples-full.json" "$T/nat-doc.json"
    out=$(zapi trigger-named "$a" "$api" "$nhid" "$(nat_trigger 8080 'drops over 10% of new flows')" 1 90 "$poke")
    check "$label NAT: 8080 full: the failure odds CRITICAL trigger (100% > {\$EPHEMERAL_PORTS.NAT.FAILURE.CRIT} 10) fires" test $? = 0 ||
        { echo "# $out"; zapi triggers "$a" "$api" "$nhid" | sed 's/^/#   /'; }
    out=$(zapi trigger-named "$a" "$api" "$nhid" "$(nat_trigger 8080 'above 85% for 20s')" 1 30 "$poke")
    check "$label NAT: 8080 full: the fill CRITICAL trigger fires" test $? = 0 || echo "# $out"

    # --top 1: 8081 is no longer listed. Its items stay supported and get no value while 8080's
    # keep coming; its trigger recovers after {$EPHEMERAL_PORTS.TUPLE.NODATA} (30s here).
    cp "$natfx/top-1.json" "$T/nat-doc.json"
    nat_two_values >/dev/null
    prev8081=$(zapi value "$a" "$api" "$nhid" "$(nat_key pct 8081)" 5 | cut -d' ' -f1)
    v1=$(zapi value "$a" "$api" "$nhid" "$(nat_key pct 8080)" 5)
    nat_two_values >/dev/null
    v2=$(zapi value "$a" "$api" "$nhid" "$(nat_key pct 8080)" 60 "${v1%% *}" "$poke")
    check "$label NAT --top 1: 8080 still gets values (${v1#* }, then ${v2#* }: 80% again)" test "${v2#* }" = 80
    out=$(zapi trigger-named "$a" "$api" "$nhid" "$(nat_trigger 8081 'above 25% for 20s')" 0 120 "$poke")
    check "$label NAT --top 1: the 8081 tuple's WARNING recovers on nodata (no value for {\$EPHEMERAL_PORTS.TUPLE.NODATA} 30s)" test $? = 0 ||
        { echo "# $out"; zapi triggers "$a" "$api" "$nhid" | sed 's/^/#   /'; }
    zapi discovered "$a" "$api" "$nhid" ephemeral_ports.nat.tuple. >"$T/$label/nat-items.txt"
    sed 's/^/#   /' "$T/$label/nat-items.txt"
    check "$label NAT --top 1: the 8081 items are supported, without error, and got no value since (lastclock $prev8081)" \
        "$py" -c '
import json, sys
items = [i for i in map(json.loads, open(sys.argv[1])) if "\"8081\"" in i["key"]]
sys.exit(0 if len(items) == 5 and all(i["state"] == "0" and not i["error"] and i["lastclock"] <= int(sys.argv[2]) for i in items) else 1)
' "$T/$label/nat-items.txt" "${prev8081:-0}"
    check "$label NAT --top 1: the rule lists 8080 only: the 8081 items are lost (kept for the rule's lifetime), 8080's not" \
        test "$(grep -c '8081.*"lost": true' "$T/$label/nat-items.txt"):$(grep -c '8080.*"lost": true' "$T/$label/nat-items.txt")" = 5:0

    # A document without NAT (the plugin's own, on a /proc fixture: no "nat" key), then the
    # plugin as nobody ("nat": notRead, no tuples): the rule stays supported, both tuples lost.
    "$bin" --format json --proc-root "$root/tests/fixtures/format-json/proc" >"$T/nat-none.json"
    for f in "$T/nat-none.json" "$natfx/not-read.json"; do
        cp "$f" "$T/nat-doc.json"
        nat_two_values >/dev/null
        out=$(zapi rule "$a" "$api" "$nhid" ephemeral_ports.nat.discovery)
        check "$label NAT, $(basename "$f"): the discovery rule stays supported, no error ('$out')" test "$out" = "0 "
    done
    zapi discovered "$a" "$api" "$nhid" ephemeral_ports.nat.tuple. >"$T/$label/nat-items.txt"
    check "$label NAT, no tuples listed: all 10 items kept and supported, marked lost (deleted after the rule's lifetime)" \
        test "$(grep -c '"lost": true' "$T/$label/nat-items.txt"):$(grep -c '"state": "0"' "$T/$label/nat-items.txt")" = 10:10 ||
        sed 's/^/#   /' "$T/$label/nat-items.txt"

    # The agent scenario's host: its namespace does not NAT.
    agenthid=$(zapi hostid "$a" "$api" cep-agent)
    out=$(zapi rule "$a" "$api" "$agenthid" ephemeral_ports.nat.discovery)
    check "$label: host cep-agent (a namespace without NAT): the NAT discovery rule is supported ('$out') and discovered nothing" \
        test "$out" = "0 " -a -z "$(zapi discovered "$a" "$api" "$agenthid" ephemeral_ports.nat.tuple.)"
}

make_namespace

# ZABBIX_SERVERS="6" or "7" runs one of the two (each takes minutes); both by default.
servers=" ${ZABBIX_SERVERS:-6 7} "

# --- Zabbix 6.0, Debian 12 ---------------------------------------------------------------------
if [[ $servers == *" 6 "* ]] && start_server zabbix6 bookworm zabbix-6.0-bookworm-1; then
    import_template zabbix6 "$zconf/template_ephemeral_ports.yaml"
    hid=$(zapi host "$T/zabbix6/api.json" "$api" cep-external - 10050)
    external_check zabbix6 "$hid"
    agent_scenario zabbix6 "$hid"
    nat_scenario zabbix6
fi
stop_all
for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount "${mounts[n]}"; done
mounts=()

# --- Zabbix 7.0, Debian 13 ---------------------------------------------------------------------
if [[ $servers == *" 7 "* ]] && start_server zabbix7 trixie zabbix-7.0-trixie-1; then
    import_template zabbix7 "$zconf/template_ephemeral_ports.yaml"
    import_template zabbix7 "$zconf/template_ephemeral_ports_7.0.yaml"
    hid=$(zapi host "$T/zabbix7/api.json" "$api" cep-external - 10050)
    external_check zabbix7 "$hid"

    agent_scenario zabbix7 "$hid"
    nat_scenario zabbix7
fi
stop_all
for ((n = ${#mounts[@]} - 1; n >= 0; n--)); do umount "${mounts[n]}"; done
mounts=()
ip netns del "$ns" 2>/dev/null
check "nothing left: no zabbix or postgres process, no mount under $T, no namespace $ns" \
    test -z "$(own_procs)" -a -z "$(grep " $T" /proc/mounts)" -a ! -e "/run/netns/$ns"

[ "$failed" = 0 ]
