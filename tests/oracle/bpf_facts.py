#!/usr/bin/env python3
"""Kernel facts behind the BPF reader (issue 10), each proved against the kernel first, then read
back through the BPF iterators (src/native, cep_bpf_dump --json).

    python3 bpf_facts.py DUMP [--json FILE] [SCENARIO ...]

Each scenario runs in a private network namespace of its own (the script re-runs itself under
`unshare -n`), with loopback up and a 10-port range 40000-40009. A scenario makes its sockets,
finds the kernel's refusal point (how many connect()/bind() calls succeed and the errno that
stops them), then reads the namespace through BPF, and states what both must show. It prints
TAP-like lines ("ok - ..."/"not ok - ...") and, with --json, writes every scenario's kernel
answers and BPF records. Root only. Every loop is bounded; everything goes with the namespace.
"""
import errno
import json
import os
import socket
import struct
import subprocess
import sys
import time

LOW, HIGH = 40000, 40009
RANGE = HIGH - LOW + 1
SYSCTL = "/proc/sys/net/ipv4/"
IP_BIND_ADDRESS_NO_PORT = 24
IP_LOCAL_PORT_RANGE = 51
MAX = 100  # attempts: far above the 10-port range


def sysctl(name, value):
    with open(SYSCTL + name, "w") as f:
        f.write(str(value))


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Scene:
    def __init__(self, dump):
        self.dump = dump
        self.keep = []
        self.checks = []   # (ok, text)
        self.kernel = {}
        self.records = []
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        sysctl("ip_local_port_range", "%d %d" % (LOW, HIGH))
        sysctl("ip_local_reserved_ports", "")
        sysctl("tcp_timestamps", 1)
        sysctl("tcp_tw_reuse", 2)

    # ---- sockets -------------------------------------------------------------------------
    def listen(self, host, port, family=socket.AF_INET, reuse=True, v6only=None):
        s = socket.socket(family, socket.SOCK_STREAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6only is not None:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        s.bind((host, port))
        s.listen(1024)
        self.keep.append(s)
        return s

    def connect(self, dst, src=None, no_port=False, reuse=False, port_range=None, family=socket.AF_INET):
        """One TCP connect(); returns (socket, None) or (None, errno name), naming the step that failed."""
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            if reuse:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if port_range:
                s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack("<HH", *port_range))
            if no_port:
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            if src is not None:
                try:
                    s.bind((src, 0))
                except OSError as e:
                    s.close()
                    return None, "bind:" + err_name(e)
            s.connect(dst)
        except OSError as e:
            s.close()
            return None, err_name(e)
        self.keep.append(s)
        return s, None

    def fill(self, dst, limit=MAX, **kw):
        """connect() until the kernel refuses: (successes, errno name)."""
        for n in range(limit):
            s, err = self.connect(dst, **kw)
            if err:
                return n, err
        return limit, None

    def bind0(self, host, reuse=False, family=socket.AF_INET, keep=False):
        """bind(host, 0): the port, or the errno name."""
        s = socket.socket(family, socket.SOCK_STREAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, 0))
        except OSError as e:
            s.close()
            return err_name(e)
        port = s.getsockname()[1]
        if keep:
            self.keep.append(s)
        else:
            s.close()
        return port

    def time_waits(self, server, dst, n, **kw):
        """n connections to dst that the client closes first: n TIME_WAITs on the client side."""
        made = 0
        for _ in range(n):
            c, err = self.connect(dst, **kw)
            if err:
                return made, err
            a, _ = server.accept()
            c.close()
            self.keep.remove(c)
            a.close()
            made += 1
        time.sleep(0.2)
        return made, None

    # ---- the BPF side --------------------------------------------------------------------
    def read_bpf(self, *args):
        p = subprocess.run([self.dump, "--json", "--no-pin"] + list(args), capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or p.stderr:
            raise RuntimeError("cep_bpf_dump failed (%d): %s" % (p.returncode, p.stderr.strip()))
        self.records = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        return self.records

    def tcp(self, **match):
        return [r for r in self.records if r["proto"] == "tcp" and all(r[k] == v for k, v in match.items())]

    def check(self, ok, text):
        self.checks.append((bool(ok), text))


# ---- scenarios: the kernel's answer first, then what BPF says ----------------------------------

def bind_before_connect_spread(s):
    """bind(127.0.0.1, 0) then connect(), 10 sockets over 5 destinations: every port is lost to
    every connect() tuple, bind(127.0.0.1, 0) is refused, bind(127.0.0.2, 0) still works."""
    for p in range(5000, 5005):
        s.listen("127.0.0.1", p)
    made = 0
    for i in range(MAX):
        sock, err = s.connect(("127.0.0.1", 5000 + i % 5), src="127.0.0.1")
        if err:
            break
        made += 1
    s.kernel.update(made=made, refusal=err)
    s.check(made == RANGE and err == "bind:EADDRINUSE", "kernel: 10 bind-before-connect sockets, the 11th bind(127.0.0.1, 0) is EADDRINUSE (%d, %s)" % (made, err))
    _, plain = s.connect(("127.0.0.1", 5006 - 1))
    other = s.bind0("127.0.0.2")
    s.kernel.update(plain_connect=plain, bind_other_address=other)
    s.check(plain == "EADDRNOTAVAIL", "kernel: a plain connect() to a fresh tuple is refused (%s)" % plain)
    s.check(isinstance(other, int), "kernel: bind(127.0.0.2, 0) still gets a port (%s)" % other)
    s.read_bpf()
    est = s.tcp(state_name="ESTABLISHED")
    s.check(len(est) == RANGE and all(r["bucket"] == "bind" for r in est),
            "bpf: 10 ESTABLISHED records, each with a bind()-made bucket (%s)" % sorted((r["lport"], r["bucket"]) for r in est))
    s.check(all(r["connect_bind"] is False for r in est if r["connect_bind"] is not None),
            "bpf: none of them carries the kernel's connect()-chose-the-port mark")


def bind_address_no_port(s):
    """IP_BIND_ADDRESS_NO_PORT: connect() picks the port, shared per tuple like a plain connect()."""
    s.listen("127.0.0.1", 5000)
    s.listen("127.0.0.1", 5001)
    a = s.fill(("127.0.0.1", 5000), src="127.0.0.1", no_port=True)
    b = s.fill(("127.0.0.1", 5001), src="127.0.0.1", no_port=True)
    s.kernel.update(first=a, second=b)
    s.check(a == (RANGE, "EADDRNOTAVAIL") and b == (RANGE, "EADDRNOTAVAIL"),
            "kernel: 10 per tuple, the 11th EADDRNOTAVAIL, on each of two tuples (%s, %s)" % (a, b))
    s.read_bpf()
    est = s.tcp(state_name="ESTABLISHED")
    s.check(len(est) == 2 * RANGE and all(r["bucket"] == "connect" and r["bind_address_no_port"] for r in est),
            "bpf: 20 records, connect()-made buckets, bind_address_no_port set")


def plain_connect(s):
    s.listen("127.0.0.1", 5000)
    n, err = s.fill(("127.0.0.1", 5000))
    s.kernel.update(made=n, refusal=err)
    s.check((n, err) == (RANGE, "EADDRNOTAVAIL"), "kernel: 10 plain connects to one tuple, then EADDRNOTAVAIL (%d, %s)" % (n, err))
    s.read_bpf()
    est = s.tcp(state_name="ESTABLISHED")
    s.check(len(est) == RANGE and all(r["bucket"] == "connect" and not r["bind_address_no_port"] for r in est),
            "bpf: 10 records with connect()-made buckets")
    s.check(all(r["connect_bind"] is True for r in est if r["connect_bind"] is not None),
            "bpf: the kernel's connect()-chose-the-port mark is on each (where the kernel has it)")


def listener(s):
    s.listen("127.0.0.1", 5000)
    s.listen("127.0.0.1", 40005)
    n, err = s.fill(("127.0.0.1", 5000))
    s.kernel.update(made=n, refusal=err)
    s.check((n, err) == (RANGE - 1, "EADDRNOTAVAIL"), "kernel: an in-range listener leaves 9 ports to a tuple (%d, %s)" % (n, err))
    s.read_bpf()
    ls = s.tcp(state_name="LISTEN")
    s.check(len(ls) == 1 and ls[0]["lport"] == 40005 and ls[0]["bucket"] == "bind", "bpf: the listener, bind()-made bucket")


def accepted_child(s):
    """An accepted connection outlives its in-range listener and keeps the port lost to every tuple."""
    s.listen("127.0.0.1", 5000)
    l = s.listen("127.0.0.1", 40005)
    c, err = s.connect(("127.0.0.1", 40005))
    child, _ = l.accept()
    s.keep.append(child)
    l.close()
    s.keep.remove(l)
    n, err = s.fill(("127.0.0.1", 5000))
    s.kernel.update(made=n, refusal=err)
    s.check((n, err) == (RANGE - 1, "EADDRNOTAVAIL"), "kernel: the child of a closed listener still costs its port (%d, %s)" % (n, err))
    s.read_bpf()
    ch = s.tcp(lport=40005, state_name="ESTABLISHED")
    s.check(len(ch) == 1 and ch[0]["bucket"] == "bind", "bpf: the child on 40005 shows a bind()-made bucket (%s)" % ch)
    s.check(not s.tcp(state_name="LISTEN"), "bpf: no listener left")


def time_wait(s, made_with_ts, ts_after):
    sysctl("tcp_timestamps", int(made_with_ts))
    delay = 1000
    if os.path.exists(SYSCTL + "tcp_tw_reuse_delay"):
        delay = 2000
        sysctl("tcp_tw_reuse_delay", delay)
    server = s.listen("127.0.0.1", 5000)
    n, err = s.time_waits(server, ("127.0.0.1", 5000), RANGE)
    s.check(n == RANGE, "kernel: 10 TIME_WAITs made with tcp_timestamps=%d" % made_with_ts)
    fresh = s.connect(("127.0.0.1", 5000))[1]
    s.read_bpf()
    tw = s.tcp(state_name="TIME_WAIT")
    s.check(len(tw) == RANGE, "bpf: 10 TIME_WAIT records")
    s.check(all(r["tw_timestamps"] == made_with_ts for r in tw),
            "bpf: tw_ts_recent_stamp %s on each" % ("non-zero" if made_with_ts else "zero"))
    s.check(all(r["tw_age_ms"] < delay for r in tw), "bpf: each younger than the reuse delay (%s ms)" % sorted(r["tw_age_ms"] for r in tw))
    s.check(fresh == "EADDRNOTAVAIL", "kernel: no TIME_WAIT younger than tcp_tw_reuse_delay is reused (%s)" % fresh)
    time.sleep(delay / 1000 + 0.5)
    sysctl("tcp_timestamps", int(ts_after))
    n_after, err_after = s.fill(("127.0.0.1", 5000), limit=RANGE + 1)
    s.kernel.update(fresh=fresh, after_delay=(n_after, err_after), delay_ms=delay)
    if made_with_ts:
        s.check((n_after, err_after) == (RANGE, "EADDRNOTAVAIL"),
                "kernel: after the delay all 10 are reused although tcp_timestamps is now %d (%d, %s)" % (ts_after, n_after, err_after))
    else:
        s.check((n_after, err_after) == (0, "EADDRNOTAVAIL"),
                "kernel: none is reused although tcp_timestamps is now %d (%d, %s)" % (ts_after, n_after, err_after))
    s.read_bpf()
    left = s.tcp(state_name="TIME_WAIT")
    s.check(all(r["tw_age_ms"] >= delay for r in left) and len(left) == (0 if made_with_ts else RANGE),
            "bpf: %d TIME_WAITs left, each older than the delay" % len(left))


def time_wait_ts_off_then_on(s):
    time_wait(s, False, True)


def time_wait_ts_on_then_off(s):
    time_wait(s, True, False)


def per_socket_range(s):
    """IP_LOCAL_PORT_RANGE narrows one socket's range; plain sockets to the same tuple go on."""
    s.listen("127.0.0.1", 5000)
    a = s.fill(("127.0.0.1", 5000), port_range=(40000, 40002))
    b = s.fill(("127.0.0.1", 5000))
    s.kernel.update(narrowed=a, plain=b)
    s.check(a == (3, "EADDRNOTAVAIL"), "kernel: 3 connects with IP_LOCAL_PORT_RANGE 40000-40002, then EADDRNOTAVAIL (%s)" % (a,))
    s.check(b == (RANGE - 3, "EADDRNOTAVAIL"), "kernel: plain connects to the same tuple take the other 7 (%s)" % (b,))
    s.read_bpf()
    nar = [r for r in s.tcp(state_name="ESTABLISHED") if r["range_lo"]]
    s.check(len(nar) == 3 and all((r["range_lo"], r["range_hi"]) == (40000, 40002) and 40000 <= r["lport"] <= 40002 for r in nar),
            "bpf: 3 records carry the range 40000-40002 (%s)" % [(r["lport"], r["range_lo"], r["range_hi"]) for r in nar])


def bound_inactive(s):
    """Bound but neither listening nor connected: costs its port, but iter/tcp never visits it."""
    s.listen("127.0.0.1", 5000)
    b = socket.socket()
    b.bind(("127.0.0.2", 40003))
    s.keep.append(b)
    n, err = s.fill(("127.0.0.1", 5000))
    s.kernel.update(made=n, refusal=err)
    s.check((n, err) == (RANGE - 1, "EADDRNOTAVAIL"), "kernel: a bound-only socket costs its port (%d, %s)" % (n, err))
    s.read_bpf()
    s.check(not s.tcp(lport=40003, laddr="127.0.0.2"), "bpf: iter/tcp does not visit the bound-only socket")


def udp(s):
    n = 0
    refusal = None
    for n in range(MAX):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.sendto(b"x", ("127.0.0.1", 9))
        except OSError as e:
            refusal = err_name(e)
            u.close()
            break
        s.keep.append(u)
    s.kernel.update(made=n, refusal=refusal)
    s.check((n, refusal) == (RANGE, "EAGAIN"), "kernel: 10 UDP autobinds, then EAGAIN (%d, %s)" % (n, refusal))
    s.read_bpf()
    us = [r for r in s.records if r["proto"] == "udp"]
    s.check(len(us) == RANGE and all(r["bucket"] == "none" for r in us), "bpf: 10 UDP records")


def ipv6_bind_before_connect_costs_v4(s):
    """bind([::1], 0) then connect() over IPv6: the bind()-made buckets are per port, whatever the
    family, so the IPv4 tuples lose those ports too."""
    s.listen("::1", 5000, socket.AF_INET6, v6only=True)
    s.listen("127.0.0.1", 5000)
    n, err = s.fill(("::1", 5000, 0, 0), family=socket.AF_INET6, src="::1", limit=4)
    v4 = s.fill(("127.0.0.1", 5000))
    s.kernel.update(v6_bbc=(n, err), v4=v4)
    s.check(n == 4 and v4 == (RANGE - 4, "EADDRNOTAVAIL"), "kernel: 4 IPv6 bind-before-connect sockets leave 6 ports to an IPv4 tuple (%s)" % (v4,))
    s.read_bpf()
    v6 = [r for r in s.tcp(state_name="ESTABLISHED") if r["family"] == 10 and r["laddr"] == "::1"]
    s.check(len(v6) == 4 and all(r["bucket"] == "bind" for r in v6), "bpf: 4 IPv6 records with bind()-made buckets")


def request_sock(s):
    """A listener with TCP_DEFER_ACCEPT keeps a connection without data as a request sock."""
    l = s.listen("127.0.0.1", 40005)
    l.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
    s.connect(("127.0.0.1", 40005))
    time.sleep(0.2)
    s.read_bpf()
    rq = s.tcp(state_name="SYN_RECV")
    s.check(len(rq) == 1 and rq[0]["lport"] == 40005 and rq[0]["bucket"] == "bind",
            "bpf: the request sock reads SYN_RECV on the listener's port with its bind()-made bucket (%s)" % rq)


SS_STATES = {"ESTAB": "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "LISTEN": "LISTEN", "SYN-SENT": "SYN_SENT",
             "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "CLOSE-WAIT": "CLOSE_WAIT",
             "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING", "UNCONN": "UNCONN"}


def ss_sockets(lo, hi):
    """(proto, state, laddr, lport, raddr, rport) of every socket ss (sock_diag) shows in [lo, hi]."""
    out = subprocess.run(["ss", "-Htuan"], capture_output=True, text=True, check=True).stdout
    rows = set()
    for line in out.splitlines():
        f = line.split()
        la, lp = f[4].rsplit(":", 1)
        ra, rp = f[5].rsplit(":", 1)
        if not lo <= int(lp) <= hi:
            continue
        strip = lambda a: "::" if a in ("*", "[::]") else a.strip("[]").split("%")[0]
        rows.add((f[0], SS_STATES.get(f[1], f[1]), strip(la), int(lp), strip(ra), 0 if rp == "*" else int(rp)))
    return rows


def differential(s):
    """A few thousand varied sockets: BPF and sock_diag (ss) list the same sockets in the range."""
    lo, hi = 40000, 44999
    sysctl("ip_local_port_range", "%d %d" % (lo, hi))
    sysctl("tcp_tw_reuse", 0)
    servers = [s.listen("127.0.0.1", 5000 + i) for i in range(4)] + [s.listen("::", 5100, socket.AF_INET6, v6only=False)]
    for p in range(lo, lo + 20):
        s.listen("127.0.0.%d" % (2 + p % 3), p)
    for i in range(1500):
        kind = i % 6
        if kind == 0:
            s.connect(("127.0.0.1", 5000 + i % 4))
        elif kind == 1:
            s.connect(("127.0.0.1", 5000 + i % 4), src="127.0.0.1")
        elif kind == 2:
            s.connect(("127.0.0.1", 5000 + i % 4), src="127.0.0.2", no_port=True)
        elif kind == 3:
            s.connect(("::1", 5100, 0, 0), family=socket.AF_INET6)
        elif kind == 4:
            s.connect(("::ffff:127.0.0.1", 5100, 0, 0), family=socket.AF_INET6)
        else:
            u = socket.socket(socket.AF_INET6 if i % 2 else socket.AF_INET, socket.SOCK_DGRAM)
            u.sendto(b"x", ("::1", 9) if i % 2 else ("127.0.0.1", 9))
            s.keep.append(u)
    s.time_waits(servers[0], ("127.0.0.1", 5000), 300)
    time.sleep(0.3)
    ss = ss_sockets(lo, hi)
    s.read_bpf()
    bpf = {(r["proto"], r["state_name"] if r["proto"] == "tcp" else ("ESTABLISHED" if r["state"] == 1 else "UNCONN"),
            r["laddr"], r["lport"], r["raddr"], r["rport"]) for r in s.records}
    s.kernel.update(ss=len(ss), bpf=len(bpf), only_ss=sorted(ss - bpf)[:5], only_bpf=sorted(bpf - ss)[:5])
    s.check(len(ss) >= 1800 and ss == bpf, "bpf and sock_diag list the same %d sockets in the range (only ss %s, only bpf %s)" % (
        len(ss), sorted(ss - bpf)[:3], sorted(bpf - ss)[:3]))
    s.records = s.records[:50]  # the JSON stays small


def v4_mapped_and_v6(s):
    s.listen("::", 5000, socket.AF_INET6, v6only=False)
    a = s.fill(("::ffff:127.0.0.1", 5000, 0, 0), family=socket.AF_INET6, limit=4)
    b = s.fill(("127.0.0.1", 5000))
    c = s.fill(("::1", 5000, 0, 0), family=socket.AF_INET6)
    s.kernel.update(mapped=a, v4=b, v6=c)
    s.check(a[0] == 4 and b == (RANGE - 4, "EADDRNOTAVAIL") and c == (RANGE, "EADDRNOTAVAIL"),
            "kernel: v4-mapped shares the v4 tuple, v6 has its own (%s %s %s)" % (a, b, c))
    s.read_bpf()
    mapped = [r for r in s.tcp(state_name="ESTABLISHED") if r["family"] == 10 and r["laddr"].startswith("::ffff:")]
    s.check(len(mapped) == 4, "bpf: 4 AF_INET6 records with v4-mapped addresses (%d)" % len(mapped))


# ---- bind(A, 0): which sockets on A (or the wildcard) take a port from it ---------------------

def conflict(s, kind):
    """Occupies all 10 ports with sockets of one kind, then asks bind(127.0.0.1, 0): a port back
    means that kind does not conflict, EADDRINUSE means it does."""
    A = "127.0.0.1"
    expect = True
    reuse_new = False
    if kind in ("listener_A", "listener_any", "listener_B", "bound_A", "listener_v6any_dual", "listener_v6any_v6only"):
        host, fam, v6only = {"listener_A": (A, socket.AF_INET, None), "listener_any": ("0.0.0.0", socket.AF_INET, None),
                             "listener_B": ("127.0.0.2", socket.AF_INET, None), "bound_A": (A, socket.AF_INET, None),
                             "listener_v6any_dual": ("::", socket.AF_INET6, False),
                             "listener_v6any_v6only": ("::", socket.AF_INET6, True)}[kind]
        for p in range(LOW, HIGH + 1):
            x = socket.socket(fam, socket.SOCK_STREAM)
            x.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if v6only is not None:
                x.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
            x.bind((host, p))
            if kind != "bound_A":
                x.listen(16)
            s.keep.append(x)
        expect = kind not in ("listener_B", "listener_v6any_v6only")
    elif kind in ("bbc_A", "bbc_A_reuseaddr", "bbc_A_reuseaddr_autobind_reuse"):
        if kind.endswith("autobind_reuse"):
            sysctl("ip_autobind_reuse", 1)
        reuse_new = "reuseaddr" in kind
        for p in range(5000, 5005):
            s.listen(A, p)
        for i in range(RANGE):
            _, err = s.connect((A, 5000 + i % 5), src=A, reuse=reuse_new)
            assert err is None, err
        expect = kind != "bbc_A_reuseaddr_autobind_reuse"
    elif kind in ("plain_A", "no_port_A", "plain_B"):
        s.listen(A, 5000)
        s.listen("127.0.0.2", 5000)
        if kind == "plain_B":
            n, _ = s.fill(("127.0.0.2", 5000), src="127.0.0.2", no_port=True)
        else:
            n, _ = s.fill((A, 5000), src=A if kind == "no_port_A" else None, no_port=kind == "no_port_A")
        assert n == RANGE, n
        expect = kind != "plain_B"
    elif kind in ("time_wait_plain_A", "time_wait_bbc_A"):
        server = s.listen(A, 5000)
        n, err = s.time_waits(server, (A, 5000), RANGE, src=A if kind == "time_wait_bbc_A" else None)
        assert n == RANGE, (n, err)
    elif kind == "accepted_children_A":
        ls = [s.listen(A, p) for p in range(LOW, HIGH + 1)]
        for l, p in zip(ls, range(LOW, HIGH + 1)):
            # the client side takes its port from outside the range
            c = socket.socket()
            c.bind(("127.0.0.2", 30000 + p - LOW))
            c.connect((A, p))
            s.keep.append(c)
            ch, _ = l.accept()
            s.keep.append(ch)
            l.close()
            s.keep.remove(l)
    elif kind == "udp_A":
        for p in range(LOW, HIGH + 1):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((A, p))
            s.keep.append(u)
        expect = False
    got = s.bind0(A, reuse=reuse_new, keep=True)
    conflicts = got == "EADDRINUSE"
    s.kernel.update(kind=kind, bind_A_0=got)
    if not conflicts:
        # none of the 10 is taken: bind(A, 0) gets all 10 (kept bound), then EADDRINUSE
        ports = [got] + [s.bind0(A, reuse=reuse_new, keep=True) for _ in range(RANGE)]
        got = "%d ports, then %s" % (len([p for p in ports if isinstance(p, int)]), ports[-1])
        if not reuse_new:
            # every port of the range comes back once, then the new sockets fill it themselves
            conflicts = ports[-1] != "EADDRINUSE" or len(set(p for p in ports if isinstance(p, int))) != RANGE
        # with SO_REUSEADDR and ip_autobind_reuse=1 the new sockets share ports: no refusal at all
    s.check(conflicts == expect, "kernel: %s %s a port from bind(127.0.0.1, 0) (bind gave %s)" % (
        kind, "takes" if conflicts else "does not take", got))
    s.read_bpf()
    s.kernel["bpf_buckets"] = sorted({r["bucket"] for r in s.records})


CONFLICT_KINDS = ["listener_A", "listener_any", "listener_B", "bound_A", "listener_v6any_dual", "listener_v6any_v6only",
                  "bbc_A", "bbc_A_reuseaddr", "bbc_A_reuseaddr_autobind_reuse", "plain_A", "no_port_A", "plain_B",
                  "time_wait_plain_A", "time_wait_bbc_A", "accepted_children_A", "udp_A"]

SCENARIOS = {f.__name__: f for f in [bind_before_connect_spread, bind_address_no_port, plain_connect, listener,
                                     accepted_child, time_wait_ts_off_then_on, time_wait_ts_on_then_off,
                                     per_socket_range, bound_inactive, udp, v4_mapped_and_v6,
                                     ipv6_bind_before_connect_costs_v4, request_sock,
                                     differential]}
for k in CONFLICT_KINDS:
    SCENARIOS["conflict_" + k] = (lambda kind: lambda s: conflict(s, kind))(k)


def run_one(name, dump):
    s = Scene(dump)
    try:
        SCENARIOS[name](s)
    except Exception as e:  # a scenario that broke says so rather than passing
        s.check(False, "scenario raised %s: %s" % (type(e).__name__, e))
    print(json.dumps({"scenario": name, "kernel": s.kernel, "checks": s.checks, "records": s.records}))


def main():
    args = sys.argv[1:]
    if args and args[0] == "--one":
        run_one(args[1], args[2])
        return 0
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = args[i + 1]
        del args[i:i + 2]
    dump = os.path.abspath(args[0])
    names = args[1:] or list(SCENARIOS)
    docs, failed = [], 0
    for name in names:
        p = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--one", name, dump],
                           capture_output=True, text=True, timeout=120)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            doc = {"scenario": name, "checks": [(False, "no result (exit %d): %s" % (p.returncode, p.stderr.strip()[-300:]))]}
        docs.append(doc)
        for ok, text in doc["checks"]:
            failed += not ok
            print("%s - %s: %s" % ("ok" if ok else "not ok", name, text))
        sys.stdout.flush()
    if out:
        with open(out, "w") as f:
            json.dump(docs, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
