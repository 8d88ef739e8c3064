#!/usr/bin/env python3
"""Kernel oracle for source-NAT port exhaustion: the kernel's own nf_nat search, observed.

Run as root:  python3 nat.py SCENARIO [options]     (prints one JSON document on stdout)

It makes three network namespaces joined by veth pairs, with addresses that exist only there:
    client 10.211.1.2 (.3-.10 too)  --  10.211.1.1 router 10.211.2.1  --  10.211.2.2 server (TCP 8080)
and in the router a source-NAT rule for the clients' TCP (or, with --proto udp, UDP) flows to the
NAT address 10.211.2.1 with a port range (nft `snat to` or `masquerade to`, or the same through
iptables-nft: --rule), so every client flow to the server is one key (NAT address, server address,
8080, protocol, zone 0). A UDP flow is one datagram; it got through when the server receives it.

Scenarios:
  fill  --range N [--probe CMD]
                           client connections one by one, each held open, until the first whose SYN
                           the router drops (reported per attempt, with the NAT port each one got,
                           and CMD's exit code and output, run in the router's namespace after it,
                           with the namespaces' names in EPNAT_CLIENT, EPNAT_ROUTER, EPNAT_SERVER)
  rate  --range N --used U [--layout random|contiguous|blocks] [--attempts K] [--soft S [--soft-layout random|first|spaced]]
                           holds U chosen ports of the key (client connections bound to those ports:
                           nf_nat keeps a port that is in range and free), then K new flows from
                           client ports outside the range, each undone before the next (RST, its
                           conntrack entry deleted), and reports how many the router dropped with
                           the held set read back from the conntrack table; with --soft, S of
                           the held ports are closing SNAT entries (conntrack -I, TIME_WAIT) that
                           6.5+ kernels may evict, each evicted one put back
  local --range N --local L
                           L connections of the router itself from the NAT address to the server,
                           on ports of the range, then fill: they hold ports of the same key
  classes [--rule R]       a rule without ports: nine flows from each of a few original ports
                           (from nine client addresses), all but the first made to search: the
                           NAT ports show the class default ranges
  addrrange --range N [--clients C] [--rule snat|iptables-snat] [--probe CMD]
                           a rule whose NAT address is a range of two (10.211.2.3-10.211.2.4, on
                           the router's outside interface): nf_nat hashes each (client, server) to
                           one of them. One flow from each of C client addresses, then flows only
                           from the clients of the busier address until the router drops one, then
                           one from a client of the other address; after each, the NAT address and
                           port the kernel gave it and each address's count, from the conntrack table
  cleanup                  deletes every namespace this script names (epnat-*)

A dropped SYN is seen at once as a rise of the router's insert_failed counter
(/proc/net/stat/nf_conntrack, read inside the router), or, where that file is compiled out, as a
connect() still pending after --timeout. Every loop is bounded; the namespaces are deleted on
every path (try/finally, SIGTERM), and with them every socket, rule and conntrack entry.
"""
import argparse
import contextlib
import ctypes
import errno
import json
import os
import random
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time

PREFIX = "epnat-"
CLIENT, ROUTER_IN = "10.211.1.2", "10.211.1.1"
EXTRA_CLIENTS = ["10.211.1.%d" % i for i in range(3, 11)]   # more client addresses: flows from one port number
CLIENTS = "10.211.1.0/24"           # what the rule matches
NAT_ADDR, SERVER = "10.211.2.1", "10.211.2.2"
SERVER_PORT = 8080
CLIENT_EPHEMERAL = (20000, 29999)   # the client's own ports: never inside a NAT range used here
CLONE_NEWNET = 0x40000000
LINGER_RST = struct.pack("ii", 1, 0)

libc = ctypes.CDLL(None, use_errno=True)


def run(*cmd, check=True, stdin=None):
    p = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def ours():
    p = run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.startswith(PREFIX)]


def cleanup_all():
    removed = []
    for name in ours():
        run("ip", "netns", "del", name, check=False)
        removed.append(name)
    return removed


class Netlink:
    """Deletes one conntrack entry by its original tuple: ctnetlink IPCTNL_MSG_CT_DELETE, the
    message `conntrack -D` sends, without a process per call."""
    NETLINK_NETFILTER = 12
    MSG_CT_DELETE = (1 << 8) | 2          # NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE
    NLM_F_REQUEST, NLM_F_ACK = 1, 4
    NESTED = 0x8000

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, self.NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    @staticmethod
    def attr(kind, payload):
        head = struct.pack("=HH", 4 + len(payload), kind)
        return head + payload + b"\0" * ((4 - len(payload) % 4) % 4)

    def delete(self, src, dst, sport, dport, proto=socket.IPPROTO_TCP):
        """True when an entry was deleted, False when there was none."""
        ip = self.attr(1 | self.NESTED, self.attr(1, socket.inet_aton(src)) + self.attr(2, socket.inet_aton(dst)))
        l4 = self.attr(2 | self.NESTED, self.attr(1, bytes([proto])) + self.attr(2, struct.pack("!H", sport)) + self.attr(3, struct.pack("!H", dport)))
        body = struct.pack("=BBH", socket.AF_INET, 0, 0) + self.attr(1 | self.NESTED, ip + l4)
        self.seq += 1
        msg = struct.pack("=IHHII", 16 + len(body), self.MSG_CT_DELETE, self.NLM_F_REQUEST | self.NLM_F_ACK, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            reply = self.sock.recv(65536)
            length, kind, _, seq, _ = struct.unpack_from("=IHHII", reply)
            if kind == 2 and seq == self.seq:     # NLMSG_ERROR: 0 is the ack
                code = -struct.unpack_from("=i", reply, 16)[0]
                if code == 0:
                    return True
                if code == errno.ENOENT:
                    return False
                raise OSError(code, "ctnetlink delete: " + os.strerror(code))


class Lab:
    def __init__(self, args):
        self.args = args
        tag = "%s%d" % (PREFIX, os.getpid())
        self.client, self.router, self.server = tag + "-c", tag + "-r", tag + "-s"
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        self.keep = []
        self.stats = None
        self.netlink = None
        self.listener = None
        self.datagrams = None
        self.arrived = []
        self.proto = socket.IPPROTO_UDP if args.proto == "udp" else socket.IPPROTO_TCP

    # --- namespaces -------------------------------------------------------------------------
    @contextlib.contextmanager
    def inside(self, name):
        """Runs the block in namespace `name`: sockets made there stay there."""
        fd = os.open("/run/netns/" + name, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + name)
            yield
        finally:
            if libc.setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
            os.close(fd)

    def ip(self, ns, *cmd):
        return run("ip", "-n", ns, *cmd)

    def sysctl(self, ns, key, value):
        run("ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (key, value))

    def up(self):
        for ns in (self.client, self.router, self.server):
            run("ip", "netns", "add", ns)
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(self.client, "link", "add", "eth0", "type", "veth", "peer", "name", "c0", "netns", self.router)
        self.ip(self.server, "link", "add", "eth0", "type", "veth", "peer", "name", "s0", "netns", self.router)
        for ns, dev, addr in ((self.client, "eth0", CLIENT), (self.router, "c0", ROUTER_IN),
                              (self.router, "s0", NAT_ADDR), (self.server, "eth0", SERVER)):
            self.ip(ns, "addr", "add", addr + "/24", "dev", dev)
            self.ip(ns, "link", "set", dev, "up")
        for extra in EXTRA_CLIENTS:
            self.ip(self.client, "addr", "add", extra + "/24", "dev", "eth0")
        self.ip(self.client, "route", "add", "default", "via", ROUTER_IN)
        self.ip(self.server, "route", "add", "default", "via", NAT_ADDR)
        self.sysctl(self.router, "net.ipv4.ip_forward", 1)
        self.sysctl(self.client, "net.ipv4.ip_local_port_range", "%d %d" % CLIENT_EPHEMERAL)
        self.sysctl(self.router, "net.ipv4.ip_local_port_range", "%d %d" % CLIENT_EPHEMERAL)
        self.rule()
        with self.inside(self.server):
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((SERVER, SERVER_PORT))
            self.listener.listen(4096)
            self.listener.setblocking(False)
            self.datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.datagrams.bind((SERVER, SERVER_PORT))
            self.datagrams.setblocking(False)
        with self.inside(self.router):
            self.netlink = Netlink()
            if os.path.exists("/proc/self/net/stat/nf_conntrack"):
                self.stats = open("/proc/self/net/stat/nf_conntrack")

    def rule(self):
        """The router's source-NAT rule for the clients' TCP flows; without ports (--range 0) the
        kernel picks from the class default of each flow's original port."""
        a = self.args
        lo, hi = a.low, a.low + a.range - 1
        self.range = (lo, hi) if a.range else None
        ports = "%d-%d" % (lo, hi)
        fully = " fully-random" if a.random_fully else ""
        if a.rule == "snat":
            verdict = "snat to %s%s%s" % (NAT_ADDR, ":" + ports if a.range else "", fully)
        elif a.rule == "masquerade":
            verdict = "masquerade%s%s" % (" to :" + ports if a.range else "", fully)
        else:
            target = (["-j", "SNAT", "--to-source", NAT_ADDR + (":" + ports if a.range else "")] if a.rule == "iptables-snat"
                      else ["-j", "MASQUERADE"] + (["--to-ports", ports] if a.range else []))
            run("ip", "netns", "exec", self.router, "iptables", "-t", "nat", "-A", "POSTROUTING",
                "-s", CLIENTS, "-o", "s0", "-p", a.proto, *target, *(["--random-fully"] if a.random_fully else []))
            return
        ruleset = ("table ip epnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n"
                   "  ip saddr %s oifname \"s0\" meta l4proto %s %s\n }\n}\n" % (CLIENTS, a.proto, verdict))
        run("ip", "netns", "exec", self.router, "nft", "-f", "-", stdin=ruleset)

    def down(self):
        for s in self.keep:
            with contextlib.suppress(OSError):
                s.close()
        for f in (self.listener, self.datagrams, self.stats):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        if self.netlink is not None:
            self.netlink.sock.close()
        for ns in (self.client, self.router, self.server):
            run("ip", "netns", "del", ns, check=False)
        os.close(self.home)

    # --- the kernel's answers ---------------------------------------------------------------
    def insert_failed(self):
        """The router's insert_failed summed over CPUs (None where the file is compiled out)."""
        if self.stats is None:
            return None
        self.stats.seek(0)
        lines = self.stats.read().split("\n")
        column = lines[0].split().index("insert_failed")
        return sum(int(line.split()[column], 16) for line in lines[1:] if line.strip())

    def held(self):
        """The ports of the key held in the router's conntrack table (reply tuple server:8080 →
        NAT address), each with its TCP state: the table, not what this script believes."""
        p = run("ip", "netns", "exec", self.router, "conntrack", "-L", "-p", self.args.proto, check=False)
        ports = {}
        for line in p.stdout.splitlines():
            fields = line.split()
            kv = [f.split("=", 1) for f in fields if "=" in f]
            srcs = [v for k, v in kv if k == "src"]
            dsts = [v for k, v in kv if k == "dst"]
            sports = [v for k, v in kv if k == "sport"]
            dports = [v for k, v in kv if k == "dport"]
            if len(srcs) < 2 or len(dports) < 2:
                continue
            if srcs[1] == SERVER and dsts[1] == NAT_ADDR and sports[1] == str(SERVER_PORT):
                ports[int(dports[1])] = fields[3] if "=" not in fields[3] else "-"   # TCP state; UDP has none
        return ports

    def drain(self, listener=None):
        """What reached the server since the last call: the accepted sockets and their peers (for
        UDP no socket, the peers of the datagrams connect() saw arrive)."""
        if self.proto == socket.IPPROTO_UDP:
            arrived, self.arrived = self.arrived, []
            return [(None, peer) for peer in arrived]
        accepted = []
        for _ in range(10000):
            try:
                s, peer = (listener or self.listener).accept()
            except BlockingIOError:
                break
            accepted.append((s, peer))
        return accepted

    def listen(self, port):
        """One more listener on the server: another destination port is another key."""
        with self.inside(self.server):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((SERVER, port))
            s.listen(64)
            s.setblocking(False)
        self.keep.append(s)
        return s

    # --- flows ------------------------------------------------------------------------------
    def connect(self, bind_port=None, local=False, source=CLIENT, dport=SERVER_PORT):
        """One flow to the server, from the client (or from the router itself when `local`),
        bound to `bind_port` where given. Returns (socket or None, client port, how it ended)."""
        if self.proto == socket.IPPROTO_UDP:
            return self.send(bind_port, local, source, dport)
        before = self.insert_failed()
        with self.inside(self.router if local else self.client):
            s = socket.socket()
        s.setblocking(False)
        if bind_port is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((NAT_ADDR if local else source, bind_port))
        try:
            s.connect((SERVER, dport))
        except BlockingIOError:
            pass
        port = s.getsockname()[1]

        def connected():
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                s.setblocking(True)
                return s, port, "connected"
            s.close()
            return None, port, errno.errorcode.get(err, str(err))
        return self.wait(s, port, s, select.POLLOUT, before, connected)

    def wait(self, s, port, watched, event, before, ready):
        """Waits for `event` on `watched` (then `ready()` says how the flow ended), for the router's
        insert_failed to rise past `before` (dropped), or for the timeout; a dropped or timed-out
        flow's socket is closed. poll(), not select(): a thousand held connections pass fd 1024."""
        deadline = time.monotonic() + self.args.timeout
        poller = select.poll()
        poller.register(watched, event)
        while True:
            if poller.poll(1):
                return ready()
            after = self.insert_failed()
            if before is not None and after is not None and after > before:
                s.close()
                return None, port, "insert_failed"
            if time.monotonic() > deadline:
                s.close()
                return None, port, "timeout"

    def send(self, bind_port, local, source, dport):
        """The UDP flow: one datagram, which got through when the server receives it (the server
        answers, so the entry has seen a reply, like a real exchange)."""
        before = self.insert_failed()
        with self.inside(self.router if local else self.client):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if bind_port is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((NAT_ADDR if local else source, bind_port))
        s.connect((SERVER, dport))
        port = s.getsockname()[1]
        s.send(b"flow")

        def delivered():
            _, peer = self.datagrams.recvfrom(64)
            self.datagrams.sendto(b"reply", peer)
            self.arrived.append(peer)
            return s, port, "delivered"
        return self.wait(s, port, self.datagrams, select.POLLIN, before, delivered)

    def undo(self, s, port):
        """Takes a flow back: RST from the client, then its conntrack entry deleted, so the next
        flow meets the same held set. Returns whether an entry was deleted and the NAT ports the
        server saw."""
        if s is not None:
            if self.proto == socket.IPPROTO_TCP:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            s.close()
        seen = []
        for conn, peer in self.drain():
            seen.append(peer[1])
            if conn is not None:
                conn.close()
        return self.netlink.delete(CLIENT, SERVER, port, SERVER_PORT, self.proto), seen

    def soft_entry(self, nat_port, client_port):
        """A closing SNAT entry holding `nat_port` of the key: what a 6.5+ kernel may evict
        (TIME_WAIT, SRC_NAT set by nf_nat_setup_info through ctnetlink's CTA_NAT_SRC). Made with
        conntrack -I, its original-direction td_end is 0, so a new SYN passes nf_seq_has_advanced
        exactly when its end sequence is in the upper half of the signed 32-bit circle from 0:
        one coin per flow, the same for every such entry."""
        run("ip", "netns", "exec", self.router, "conntrack", "-I", "-p", "tcp", "-s", CLIENT, "-d", SERVER,
            "--sport", str(client_port), "--dport", str(SERVER_PORT), "--state", "TIME_WAIT", "-t", "600",
            "-u", "SEEN_REPLY,ASSURED", "--src-nat", "%s:%d" % (NAT_ADDR, nat_port))


def probe(lab):
    """--probe: the command run in the router's namespace (the plugin under test), its exit code and output."""
    if not lab.args.probe:
        return None
    # The lab's names, for a probe that reaches the router from elsewhere (--netns, --pid, --all-namespaces).
    env = dict(os.environ, EPNAT_CLIENT=lab.client, EPNAT_ROUTER=lab.router, EPNAT_SERVER=lab.server)
    p = subprocess.run(["ip", "netns", "exec", lab.router, "sh", "-c", lab.args.probe], capture_output=True, text=True, timeout=60, env=env)
    return {"exit": p.returncode, "stdout": p.stdout, "stderr": p.stderr}


def fill(lab, limit):
    attempts = []
    for n in range(1, limit + 1):
        s, port, how = lab.connect()
        nat_port = None
        if s is not None:
            lab.keep.append(s)
            for conn, peer in lab.drain():
                lab.keep += [conn] if conn else []
                nat_port = peer[1]
        attempts.append({"n": n, "ok": s is not None, "how": how, "client_port": port, "nat_port": nat_port, "probe": probe(lab)})
        if s is None:
            break
    first = next((a["n"] for a in attempts if not a["ok"]), None)
    return attempts, first


def scenario_fill(lab):
    a = lab.args
    attempts, first = fill(lab, min(a.range + 5, 300))
    return {"attempts": attempts, "first_failure": first, "held": sorted(lab.held())}


def scenario_local(lab):
    a = lab.args
    local = []
    for i in range(a.local):
        s, port, how = lab.connect(bind_port=lab.range[0] + i * 2 % a.range, local=True)
        if s is None:
            raise RuntimeError("router connection from port %d: %s" % (port, how))
        lab.keep.append(s)
        local.append(port)
    for conn, _ in lab.drain():
        lab.keep += [conn] if conn else []
    attempts, first = fill(lab, min(a.range + 5, 300))
    return {"local_ports": local, "attempts": attempts, "first_failure": first,
            "connected": sum(1 for x in attempts if x["ok"]), "held": sorted(lab.held())}


def scenario_classes(lab):
    """Without ports in the rule: for each original port, a flow from it (kept, being free) and eight
    more from the same port number on the other client addresses (each a clash: the kernel searches
    the class default range of that port). Each original port has a destination port of its own, so
    a port one pair's searches took cannot be the next pair's original port."""
    pairs = []
    for n, port in enumerate((1, 300, 511, 512, 599, 700, 1023, 1024, 40000, 65535)):
        dport = 9000 + n
        listener = lab.listen(dport)
        got = []
        for source in [CLIENT] + EXTRA_CLIENTS:
            s, _, how = lab.connect(bind_port=port, source=source, dport=dport)
            if s is None:
                raise RuntimeError("flow from %s:%d: %s" % (source, port, how))
            lab.keep.append(s)
            for conn, peer in lab.drain(listener):
                lab.keep.append(conn)
                got.append(peer[1])
        pairs.append({"original": port, "dport": dport, "nat_ports": got})
    return {"pairs": pairs}


# --- addrrange: one rule, two NAT addresses (issue 21 item 6) -----------------------------------
# The rule's address range: two consecutive addresses on the router's outside interface, clear of
# the server (10.211.2.2) and of the router's own 10.211.2.1.
NAT_PAIR = ("10.211.2.3", "10.211.2.4")
# A rule for sources no client has, to another address with a smaller range, ahead of the pair's:
# it never translates a flow here, and a reader that took it to apply to the pair's keys would
# give them 5 ports instead of the range's.
DECOY_SOURCES, DECOY_ADDR, DECOY_PORTS = "10.211.9.0/24", "10.211.2.9", "50000-50004"


def addrrange_rules(lab):
    """Puts the pair on the router's outside interface and replaces the rule up() made with the
    decoy and `snat to PAIR:ports` (nft) or `-j SNAT --to-source PAIR:ports` (iptables-nft)."""
    a = lab.args
    for addr in NAT_PAIR:
        lab.ip(lab.router, "addr", "add", addr + "/24", "dev", "s0")
    ports = "%d-%d" % lab.range
    pair = "%s-%s:%s" % (NAT_PAIR[0], NAT_PAIR[1], ports)
    decoy = "%s:%s" % (DECOY_ADDR, DECOY_PORTS)
    if a.rule == "snat":
        fully = " fully-random" if a.random_fully else ""
        run("ip", "netns", "exec", lab.router, "nft", "delete", "table", "ip", "epnat")
        rules = "".join("  ip saddr %s oifname \"s0\" meta l4proto %s snat to %s%s\n" % (src, a.proto, to, fully)
                        for src, to in ((DECOY_SOURCES, decoy), (CLIENTS, pair)))
        ruleset = "table ip epnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n%s }\n}\n" % rules
        run("ip", "netns", "exec", lab.router, "nft", "-f", "-", stdin=ruleset)
        return
    iptables = ("ip", "netns", "exec", lab.router, "iptables", "-t", "nat")
    run(*iptables, "-F", "POSTROUTING")
    for src, to in ((DECOY_SOURCES, decoy), (CLIENTS, pair)):
        run(*iptables, "-A", "POSTROUTING", "-s", src, "-o", "s0", "-p", a.proto, "-j", "SNAT", "--to-source", to,
            *(["--random-fully"] if a.random_fully else []))


def addrrange_table(lab):
    """The router's conntrack entries to the server's port, whatever their NAT address:
    (client address, client port) -> (NAT address, NAT port), read from each entry's reply tuple
    (server:8080 -> NAT address:port). The table, not what this script believes."""
    p = run("ip", "netns", "exec", lab.router, "conntrack", "-L", "-p", lab.args.proto, check=False)
    flows = {}
    for line in p.stdout.splitlines():
        kv = [f.split("=", 1) for f in line.split() if "=" in f]
        src, dst, sport, dport = ([v for k, v in kv if k == key] for key in ("src", "dst", "sport", "dport"))
        if len(src) < 2 or len(dport) < 2 or src[1] != SERVER or sport[1] != str(SERVER_PORT):
            continue
        flows[(src[0], int(sport[0]))] = (dst[1], int(dport[1]))
    return flows


def scenario_addrrange(lab):
    """nf_nat's address choice under a rule with two NAT addresses (find_best_ips_proto): each
    client is hashed with the server to one address, and only that address's ports are searched.
    Which client lands where is the kernel's affair: the script only reads it back. Phase "spread":
    one flow from each client. Phase "fill": flows from the clients of the address that got more of
    them (a tie: the first client's), in turn, until the router drops one. Phase "other": one flow
    from a client of the other address, after the drop. Every flow is held open."""
    a = lab.args
    addrrange_rules(lab)
    clients = [CLIENT] + EXTRA_CLIENTS[:a.clients - 1]
    attempts = []

    def flow(source, phase):
        s, port, how = lab.connect(bind_port=0, source=source)
        seen = None
        if s is not None:
            lab.keep.append(s)
            for conn, peer in lab.drain():
                lab.keep += [conn] if conn else []
                seen = "%s:%d" % peer
        table = addrrange_table(lab)
        nat = table.get((source, port))
        held = {}
        for addr, _ in table.values():
            held[addr] = held.get(addr, 0) + 1
        attempts.append({"n": len(attempts) + 1, "phase": phase, "client": source, "client_port": port,
                         "ok": s is not None, "how": how, "nat_address": nat[0] if nat else None,
                         "nat_port": nat[1] if nat else None, "server_saw": seen, "held": held, "probe": probe(lab)})
        return attempts[-1]

    mapping = {}
    for source in clients:
        got = flow(source, "spread")
        if not got["ok"] or got["nat_address"] is None:
            raise RuntimeError("flow from %s: %s, NAT address %s" % (source, got["how"], got["nat_address"]))
        mapping[source] = got["nat_address"]
    spread = {addr: sum(1 for m in mapping.values() if m == addr) for addr in NAT_PAIR}
    busier = max(NAT_PAIR, key=lambda addr: (spread[addr], addr == mapping[CLIENT]))
    other = [c for c in clients if mapping[c] != busier]
    turn = [c for c in clients if mapping[c] == busier]
    first = None
    for i in range(a.range + 5):
        got = flow(turn[i % len(turn)], "fill")
        if not got["ok"]:
            first = got["n"]
            break
    if first is not None and other:
        flow(other[0], "other")
    return {"nat_pair": list(NAT_PAIR), "decoy": "%s:%s" % (DECOY_ADDR, DECOY_PORTS), "clients": clients,
            "mapping": mapping, "busier": busier, "attempts": attempts, "first_failure": first}


def layout(a):
    lo = a.low
    rng = random.Random(a.seed)
    if a.layout == "contiguous":
        return list(range(lo, lo + a.used))
    if a.layout == "random":
        return sorted(rng.sample(range(lo, lo + a.range), a.used))
    # blocks: the free ports in five blocks spread evenly over the range
    free_count = a.range - a.used
    blocks = 5
    free = set()
    for b in range(blocks):
        start = lo + (b + 1) * a.range // blocks - free_count // blocks
        free.update(range(start, start + free_count // blocks))
    free.update(range(lo, lo + free_count - len(free)))
    return [p for p in range(lo, lo + a.range) if p not in free]


def scenario_rate(lab):
    a = lab.args
    wanted = layout(a)
    if a.soft_layout == "first":
        soft = set(wanted[:a.soft])
    elif a.soft_layout == "spaced":
        soft = set(wanted[len(wanted) // a.soft // 2::len(wanted) // a.soft][:a.soft]) if a.soft else set()
    else:
        soft = set(random.Random(a.seed + 1).sample(wanted, a.soft))
    entries = SOFT_CLIENT_PORTS
    for port in wanted:
        if port in soft:
            lab.soft_entry(port, next(entries))
            continue
        s, _, how = lab.connect(bind_port=port)
        if s is None:
            raise RuntimeError("holding port %d: %s" % (port, how))
        lab.keep.append(s)
        for conn, _ in lab.drain():
            lab.keep += [conn] if conn else []
    held_before = lab.held()
    outcomes = {}
    failed = late = evicted = 0
    for _ in range(a.attempts):
        s, port, how = lab.connect()
        deleted, nat_ports = lab.undo(s, port)
        if s is None:
            failed += 1
            if deleted:      # a flow that got through after all: counted failed, reported apart
                late += 1
        for nat_port in nat_ports:
            if nat_port in soft:   # the kernel evicted a soft entry to give its port: put one back
                evicted += 1
                lab.soft_entry(nat_port, next(entries))
        outcomes[how] = outcomes.get(how, 0) + 1
    held_after = lab.held()
    closing = ("TIME_WAIT", "CLOSE")
    return {"layout": a.layout, "seed": a.seed, "wanted": len(wanted), "held": sorted(held_before),
            "soft": sorted(p for p, state in held_before.items() if state in closing),
            "held_after": len(held_after),
            "changed": sorted(set(held_before.items()) ^ set(held_after.items())),
            "attempts": a.attempts, "failed": failed, "late": late, "evicted": evicted, "outcomes": outcomes,
            "insert_failed_seen": lab.stats is not None}


# Client ports of the soft entries made with conntrack -I: clear of the client's own ports and of
# the NAT range, never reused within a run (an evicted entry is replaced under a new one).
SOFT_CLIENT_PORTS = iter(range(30000, 40000))


SCENARIOS = {"fill": scenario_fill, "rate": scenario_rate, "local": scenario_local, "classes": scenario_classes,
             "addrrange": scenario_addrrange}


def main():
    parser = argparse.ArgumentParser(description="nf_nat port search, observed")
    parser.add_argument("scenario", choices=sorted(SCENARIOS) + ["cleanup"])
    parser.add_argument("--range", type=int, default=10, help="ports in the NAT range (1-20000)")
    parser.add_argument("--low", type=int, default=40000, help="first port of the NAT range")
    parser.add_argument("--proto", default="tcp", choices=["tcp", "udp"], help="the flows' protocol (classes and --soft: tcp only)")
    parser.add_argument("--rule", default="snat", choices=["snat", "masquerade", "iptables-snat", "iptables-masquerade"])
    parser.add_argument("--random-fully", action="store_true")
    parser.add_argument("--used", type=int, default=0)
    parser.add_argument("--layout", default="random", choices=["random", "contiguous", "blocks"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--local", type=int, default=0)
    parser.add_argument("--soft", type=int, default=0, help="rate: how many of the held ports are closing SNAT entries (TIME_WAIT)")
    parser.add_argument("--soft-layout", default="random", choices=["random", "first", "spaced"],
                        help="rate: the soft ports at random among the held, the lowest ones, or evenly spaced")
    parser.add_argument("--timeout", type=float, default=0.3, help="seconds a connect may take (below the 1 s SYN retransmission)")
    parser.add_argument("--clients", type=int, default=8, help="addrrange: how many client addresses (2-9)")
    parser.add_argument("--probe", help="fill, addrrange: a shell command run in the router's namespace after each attempt (its exit code and output are reported)")
    a = parser.parse_args()
    if a.scenario == "cleanup":
        json.dump({"removed": cleanup_all()}, sys.stdout)
        return 0
    if os.geteuid() != 0:
        print("nat.py: needs root", file=sys.stderr)
        return 2
    if a.proto == "udp" and (a.scenario == "classes" or a.soft):
        print("nat.py: classes and --soft are TCP only", file=sys.stderr)
        return 2
    if a.scenario == "addrrange" and (a.rule not in ("snat", "iptables-snat") or not 2 <= a.clients <= min(a.range, 1 + len(EXTRA_CLIENTS))):
        print("nat.py: addrrange takes --rule snat or iptables-snat and 2-%d clients, no more than the range" % (1 + len(EXTRA_CLIENTS)), file=sys.stderr)
        return 2
    if a.scenario == "classes":
        a.range = 0
    elif not (1 <= a.range <= 20000 and 1024 <= a.low and a.low + a.range - 1 <= 65535
            and not (a.low <= CLIENT_EPHEMERAL[1] and a.low + a.range - 1 >= CLIENT_EPHEMERAL[0])):
        print("nat.py: the range must be 1-20000 ports in 1024-65535, clear of %d-%d" % CLIENT_EPHEMERAL, file=sys.stderr)
        return 2
    if not (0 <= a.used <= a.range and 0 <= a.soft <= a.used and 0 <= a.local <= a.range and 1 <= a.attempts <= 20000 and 0 < a.timeout < 1):
        print("nat.py: --used/--local within the range, 1-20000 attempts, a timeout under 1 s", file=sys.stderr)
        return 2
    for tool in ("ip", "conntrack", "nft" if a.rule in ("snat", "masquerade") else "iptables"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("nat.py: %s is missing (apt-get install iproute2 nftables iptables conntrack)" % tool, file=sys.stderr)
            return 3
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * a.range + 1000)), hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lab = Lab(a)
    started = time.monotonic()
    try:
        lab.up()
        doc = {"scenario": a.scenario, "proto": a.proto, "rule": a.rule, "random_fully": a.random_fully,
               "range": list(lab.range) if lab.range else None, "kernel": os.uname().release,
               "namespaces": {"client": lab.client, "router": lab.router, "server": lab.server}}
        doc.update(SCENARIOS[a.scenario](lab))
    finally:
        lab.down()
    doc["seconds"] = round(time.monotonic() - started, 2)
    doc["left_behind"] = [n for n in ours() if n.startswith("%s%d-" % (PREFIX, os.getpid()))]
    json.dump(doc, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
