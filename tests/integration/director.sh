#!/usr/bin/env bash
# Integration test: a real Icinga Director (Debian 12 icingaweb2-module-director 1.10.2, run through
# icingacli) imports the basket icinga/director/basket_ephemeral_ports.json into its own MariaDB:
# the CheckCommand ephemeral_ports with every argument of icinga/icinga2/command-ephemeral_ports.conf
# (compared one by one), one data field per ephemeral_ports_* var, and the service template. Nothing
# in the basket or in what Director keeps is a lambda.
# Runs as root. MariaDB runs from a datadir in the temp dir on 127.0.0.1 (a port of 20000-20999)
# and its own socket, never the system's service; it is stopped on exit. Icinga Web reads its
# configuration from the temp dir (ICINGAWEB_CONFIGDIR), not from /etc/icingaweb2.
set -u
. "$(dirname "$0")/lib/common.sh"
basket=$root/icinga/director/basket_ephemeral_ports.json
command_conf=$root/icinga/icinga2/command-ephemeral_ports.conf

setup_temp_dir
# Installed once; later runs find them (the slow part of this test is the install).
install_without_daemon mariadbd icingaweb2 icingaweb2-module-director icingacli php-cli php-mysql mariadb-server

check "no lambda ({{ ... }}) in the basket" sh -c "! grep -q '{{' '$basket'"
check "no lambda ({{ ... }}) in the CheckCommand" sh -c "! grep -q '{{' '$command_conf'"

# --- MariaDB in the temp dir ----------------------------------------------------------------------
db=$T/mariadb
port=$(free_port 20000 20999)
check_silent "mariadb-install-db into $db" mariadb-install-db --no-defaults --datadir="$db/data" --user=root \
    --auth-root-authentication-method=normal --skip-test-db || exit 1
start_daemon "$T/mariadbd.log" /usr/sbin/mariadbd --no-defaults --datadir="$db/data" --socket="$db/sock" \
    --port="$port" --bind-address=127.0.0.1 --user=root --pid-file="$db/pid" --skip-log-bin \
    --log-error="$db/error.log" </dev/null
sql() { mariadb --no-defaults -S "$db/sock" -u root --batch --skip-column-names "$@"; }
for _ in $(seq 60); do sql -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
check "MariaDB answers on 127.0.0.1:$port" sh -c "mariadb --no-defaults -h 127.0.0.1 -P $port -u root -e 'SELECT 1' >/dev/null" || exit 1
sql -e "CREATE DATABASE director CHARACTER SET 'utf8';
        CREATE USER director@'127.0.0.1' IDENTIFIED BY 'director';
        GRANT ALL ON director.* TO director@'127.0.0.1';"

# --- Icinga Web 2 with the Director module, configured in the temp dir ----------------------------
etc=$T/icingaweb2
mkdir -p "$etc/enabledModules" "$etc/modules/director"
for m in director incubator reactbundle; do ln -s "/usr/share/icingaweb2/modules/$m" "$etc/enabledModules/$m"; done
cat >"$etc/resources.ini" <<EOF
[director_db]
type = "db"
db = "mysql"
host = "127.0.0.1"
port = "$port"
dbname = "director"
username = "director"
password = "director"
charset = "utf8"
EOF
printf '[global]\nconfig_backend = "ini"\n[logging]\nlog = "none"\n' >"$etc/config.ini"
printf '[db]\nresource = "director_db"\n' >"$etc/modules/director/config.ini"
director() { (cd "$T" && ICINGAWEB_CONFIGDIR=$etc timeout 120 icingacli director "$@"); }

check_silent "icingacli director migration run (the schema)" director migration run --verbose
check "no pending migration" sh -c "! ICINGAWEB_CONFIGDIR='$etc' icingacli director migration pending >/dev/null"
check "Director's health: the schema exists" sh -c "ICINGAWEB_CONFIGDIR='$etc' icingacli director health --check config | grep -q 'OK.*schema exists'"

check "basket restore" quiet "$T/restore.log" director basket restore <"$basket"
# A second restore (an upgrade of the basket) changes nothing and makes no second field.
check "basket restore again" quiet "$T/restore2.log" director basket restore <"$basket"

check "command show ephemeral_ports --json" quiet "$T/command.json" director command show ephemeral_ports --json
check "service show ephemeral_ports --json (the template)" quiet "$T/service.json" director service show ephemeral_ports --json
sql director -e "SELECT d.varname, d.datatype FROM icinga_command_field f
    JOIN icinga_command c ON c.id = f.command_id JOIN director_datafield d ON d.id = f.datafield_id
    WHERE c.object_name = 'ephemeral_ports' ORDER BY d.varname" >"$T/command_fields.txt"
sql director -e "SELECT d.varname FROM icinga_service_field f
    JOIN icinga_service s ON s.id = f.service_id JOIN director_datafield d ON d.id = f.datafield_id
    WHERE s.object_name = 'ephemeral_ports' AND s.object_type = 'template' ORDER BY d.varname" >"$T/service_fields.txt"
sql director -e "SELECT COUNT(*), COUNT(DISTINCT varname) FROM director_datafield" >"$T/field_count.txt"

# What Director made against the CheckCommand file: the same command, the same arguments with the
# same value, set_if, skip_key, order and description; one field per $ephemeral_ports_*$ var.
python3 - "$command_conf" "$T/command.json" "$T/service.json" "$T/command_fields.txt" \
    "$T/service_fields.txt" "$T/field_count.txt" <<'EOF'
import json, re, sys
conf_path, cmd_path, svc_path, cf_path, sf_path, count_path = sys.argv[1:]

def ok(cond, what):
    print(("ok - " if cond else "not ok - ") + what)

def parse_conf(path):
    """The CheckCommand's command and arguments: {key: {attribute: value}}; a value that is not
    one string literal (PluginContribDir + "...") is kept as its Icinga DSL text."""
    text = open(path).read()
    command = re.search(r'command = \[ "([^"]+)" \]', text).group(1)
    body = text[text.index("arguments = {"):]
    args = {}
    for m in re.finditer(r'^\s*"([^"]+)" = \{(.*?)^\s*\}', body, re.S | re.M):
        attrs = {}
        for line in m.group(2).splitlines():
            line = line.strip()
            if not line or line.startswith(("/*", "//", "*")):
                continue
            key, _, value = line.partition(" = ")
            if re.fullmatch(r'"(?:[^"\\]|\\.)*"', value):
                attrs[key] = ("string", json.loads(value))
            elif value in ("true", "false"):
                attrs[key] = ("bool", value == "true")
            elif re.fullmatch(r"-?[0-9]+", value):
                attrs[key] = ("int", int(value))
            else:
                attrs[key] = ("expression", value)
        args[m.group(1)] = attrs
    return command, args

def evaluate(expression):
    m = re.fullmatch(r'PluginContribDir \+ "([^"]*)"', expression)
    return m and "/usr/lib/nagios/plugins" + m.group(1)

command, conf_args = parse_conf(conf_path)
cmd = json.load(open(cmd_path))
ok(cmd.get("object_name") == "ephemeral_ports", "Director has the CheckCommand ephemeral_ports")
ok(cmd.get("object_type") == "external_object",
   "it is an external command (the package's plugins-contrib.d copy is the one Icinga runs; Director deploys none)")
ok(cmd.get("command") == command, "its command is %s, as in the .conf (%s)" % (command, cmd.get("command")))
dir_args = cmd.get("arguments", {})
ok(sorted(dir_args) == sorted(conf_args),
   "the same %d arguments as command-ephemeral_ports.conf (%s)" % (len(conf_args), " ".join(sorted(dir_args))))
for key, attrs in sorted(conf_args.items()):
    got = dir_args.get(key, {})
    if not isinstance(got, dict):
        got = {"value": got}
    bad = []
    for attr, (kind, want) in attrs.items():
        have = got.get(attr)
        if attr == "value" and kind == "expression":
            # Director would render an expression as a lambda ({{ ... }}): the basket holds the
            # value Icinga computes for it on Debian, as Director's kickstart would import it.
            same = have == evaluate(want)
        elif attr == "order":
            same = str(have) == str(want)
        else:
            same = have == want
        if not same:
            bad.append("%s: %r, want %r" % (attr, have, want))
    extra = set(got) - set(attrs)
    if extra:
        bad.append("extra %s" % sorted(extra))
    ok(not bad, "argument %s as in the .conf%s" % (key, (": " + "; ".join(bad)) if bad else ""))
ok("{{" not in json.dumps(cmd), "no lambda in what Director stored")

wanted = sorted(set(re.findall(r"\$(ephemeral_ports_[a-z_]+)\$", open(conf_path).read())))
fields = [line.split("\t") for line in open(cf_path).read().split("\n") if line]
ok([f[0] for f in fields] == wanted, "one data field per var on the command (%d: %s)" % (len(wanted), " ".join(f[0] for f in fields)))
types = dict(fields)
for var in ("ephemeral_ports_sudo", "ephemeral_ports_all_namespaces", "ephemeral_ports_processes"):
    ok(types.get(var, "").endswith("DataTypeBoolean"), "%s is a boolean field (set_if)" % var)
for var in ("ephemeral_ports_top", "ephemeral_ports_pid"):
    ok(types.get(var, "").endswith("DataTypeNumber"), "%s is a number field" % var)
svc_fields = [line for line in open(sf_path).read().split("\n") if line]
ok(svc_fields == wanted, "the service template offers the same fields")
total, distinct = open(count_path).read().split()
ok(total == distinct == str(len(wanted)), "restoring twice made no field twice (%s fields, %s names)" % (total, distinct))

svc = json.load(open(svc_path))
ok(svc.get("object_type") == "template" and svc.get("check_command") == "ephemeral_ports",
   "service template ephemeral_ports runs check_command ephemeral_ports")
EOF
[ $? = 0 ] || failed=1

# Director renders a CheckCommand it owns as Icinga 2 config: the same basket as an object of its
# own shows what it would deploy, with no lambda in it.
python3 - "$basket" >"$T/rendered-basket.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
c = b["Command"].pop("ephemeral_ports")
c.update(object_name="ephemeral_ports_rendered", object_type="object")
b["Command"] = {"ephemeral_ports_rendered": c}
del b["ServiceTemplate"]
print(json.dumps(b))
EOF
check "restore a copy as a Director-owned command" quiet "$T/restore3.log" director basket restore <"$T/rendered-basket.json"
director command show ephemeral_ports_rendered >"$T/rendered.conf" 2>&1
check "Director renders it: command [ \"/usr/bin/env\" ], the plugin's path a string, no lambda" \
    sh -c "grep -qF 'command = [ \"/usr/bin/env\" ]' '$T/rendered.conf' &&
           grep -qF 'value = \"/usr/lib/nagios/plugins/check_ephemeral_ports\"' '$T/rendered.conf' &&
           ! grep -q '{{' '$T/rendered.conf'"

exit $failed
