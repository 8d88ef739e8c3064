#!/usr/bin/env python3
"""Kernel-oracle driver: makes a port-exhaustion situation for real and asks the plugin about it.

Run as root inside a private network namespace, which the caller makes:
    unshare -n python3 oracle.py SCENARIO /path/to/check_ephemeral_ports
It brings up loopback, sets a 10-port range (40000-40009), opens sockets until the kernel
refuses, runs the plugin at checkpoints, and prints one JSON document:
    {"scenario": ..., "checkpoints": [{"label", "kernel": {...}, "exit", "stdout"}]}
The kernel's answers (how many connect() calls succeeded, the errno that stopped them) go in
"kernel"; the test compares them with what the plugin printed. Only loopback addresses are
used, every loop is bounded, and everything goes with the namespace when this process exits.
"""
import errno
import json
import os
import socket
import subprocess
import sys
import time

LOW, HIGH = 40000, 40009
MAX_ATTEMPTS = 100  # far above the 10-port range: the kernel refuses long before
SYSCTL = "/proc/sys/net/ipv4/"


def sysctl(name, value):
    with open(SYSCTL + name, "w") as f:
        f.write(str(value))


def long_reuse_delay():
    """A long tcp_tw_reuse_delay keeps "fresh" TIME_WAITs fresh on a loaded CI machine; kernels
    without the sysctl have a fixed delay of 1 s. Returns the delay in ms."""
    if not os.path.exists(SYSCTL + "tcp_tw_reuse_delay"):
        return 1000
    sysctl("tcp_tw_reuse_delay", 4000)
    return 4000


def setup(tw_reuse=2, reserved=""):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sysctl("ip_local_port_range", "%d %d" % (LOW, HIGH))
    sysctl("ip_local_reserved_ports", reserved)
    sysctl("tcp_tw_reuse", tw_reuse)
    sysctl("tcp_timestamps", 1)


class Run:
    def __init__(self, scenario, binary):
        self.binary = binary
        self.doc = {"scenario": scenario, "checkpoints": []}
        self.keep = []  # sockets stay open until the process exits

    def check(self, label, args=(), **kernel):
        """Runs the plugin once per socket reader: both must agree with the kernel."""
        runs = {}
        for source in ("bpf", "netlink", "proc"):
            p = subprocess.run([self.binary, "--source", source] + list(args), capture_output=True, text=True, timeout=60)
            runs[source] = {"exit": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
        self.doc["checkpoints"].append({"label": label, "kernel": kernel, "runs": runs})

    def listen(self, host, port, family=socket.AF_INET, v6only=None):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6only is not None:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        s.bind((host, port))
        s.listen(1024)
        self.keep.append(s)
        return s

    def connect(self, host, port, family=socket.AF_INET, source=None, make=None):
        """One connect() on a new socket (made by `make` where given); returns None on success,
        else the errno name."""
        s = make() if make is not None else socket.socket(family, socket.SOCK_STREAM)
        try:
            if source is not None:
                # IP_BIND_ADDRESS_NO_PORT: choose the source address but leave the port to connect(),
                # so the port is shared per tuple like a plain connect() (kernel-model fact 3).
                s.setsockopt(socket.IPPROTO_IP, 24, 1)
                s.bind((source, 0))
            s.connect((host, port))
        except OSError as e:
            s.close()
            return errno.errorcode.get(e.errno, str(e.errno))
        self.keep.append(s)
        return None

    def bind_connect(self, host, port, source, family=socket.AF_INET, no_port=False, port_range=None):
        """bind(source, 0) then connect(), as Go's Dialer with LocalAddr does (no
        IP_BIND_ADDRESS_NO_PORT unless no_port); returns None, or the errno name and the call."""
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            if no_port:
                s.setsockopt(socket.IPPROTO_IP, 24, 1)
            s.bind((source, 0))
        except OSError as e:
            s.close()
            return "bind " + errno.errorcode.get(e.errno, str(e.errno))
        try:
            s.connect((host, port))
        except OSError as e:
            s.close()
            return "connect " + errno.errorcode.get(e.errno, str(e.errno))
        self.keep.append(s)
        return None

    def try_bind(self, source, family=socket.AF_INET):
        """Whether bind(source, 0) would get a port now: None, or the errno name."""
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            return None
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))
        finally:
            s.close()

    def fill(self, host, port, family=socket.AF_INET, source=None, limit=MAX_ATTEMPTS, each=None, make=None):
        """connect() until the kernel refuses; returns (successes, errno name of the refusal)."""
        for n in range(limit):
            err = self.connect(host, port, family, source, make)
            if err is not None:
                return n, err
            if each is not None:
                each(n + 1)
        return limit, None


def fill_one_tuple(r):
    setup()
    r.listen("127.0.0.1", 5000)
    r.check("empty", connected=0)
    n, err = r.fill("127.0.0.1", 5000, each=lambda k: r.check("after %d" % k, connected=k))
    r.check("refused", connected=n, errno=err)


def two_destinations(r):
    setup()
    for host, port in (("127.0.0.1", 5000), ("127.0.0.1", 5001), ("127.0.0.2", 5000)):
        r.listen(host, port)
    a = r.fill("127.0.0.1", 5000)
    b = r.fill("127.0.0.1", 5001)
    c = r.fill("127.0.0.2", 5000, limit=4)
    r.check("filled", first=a[0], first_errno=a[1], second=b[0], second_errno=b[1], third=c[0])


def listener_in_range(r):
    setup()
    r.listen("127.0.0.1", 5000)
    r.listen("127.0.0.2", 40005)          # inside the range, on another address
    r.listen("::1", 40007, socket.AF_INET6, v6only=True)  # a v6-only listener costs v4 tuples too
    n, err = r.fill("127.0.0.1", 5000)
    r.check("refused", connected=n, errno=err)


def reserved_ports(r):
    setup(reserved="40000-40003,40007")
    r.listen("127.0.0.1", 5000)
    n, err = r.fill("127.0.0.1", 5000)
    r.check("refused", connected=n, errno=err)


def ipv6_and_v4_mapped(r):
    setup()
    r.listen("::", 5000, socket.AF_INET6, v6only=False)  # dual stack
    half = r.fill("::ffff:127.0.0.1", 5000, socket.AF_INET6, limit=5)
    rest = r.fill("127.0.0.1", 5000)
    v6 = r.fill("::1", 5000, socket.AF_INET6)
    r.check("refused", mapped=half[0], plain=rest[0], plain_errno=rest[1], v6=v6[0], v6_errno=v6[1])


def time_wait(r, tw_reuse):
    setup(tw_reuse=tw_reuse)
    delay_ms = long_reuse_delay()
    server = r.listen("127.0.0.1", 5000)
    made = 0
    for _ in range(MAX_ATTEMPTS):
        c = socket.socket()
        try:
            c.connect(("127.0.0.1", 5000))
        except OSError as e:
            refusal = errno.errorcode.get(e.errno)
            c.close()
            break
        a, _ = server.accept()
        c.close()   # the client closes first: its side ends in TIME_WAIT, holding the port
        a.close()
        made += 1
    else:
        refusal = None
    time.sleep(0.1)
    r.check("fresh", made=made, errno=refusal)
    time.sleep(delay_ms / 1000 + 0.5)  # past tcp_tw_reuse_delay
    r.check("aged")
    err = r.connect("127.0.0.1", 5000)
    r.check("after one more connect", errno=err)


def bound_idle(r):
    """A socket bound into the range but neither listening nor connected: netlink sees it, /proc not."""
    setup()
    r.listen("127.0.0.1", 5000)
    idle = socket.socket()
    idle.bind(("127.0.0.2", 40003))
    r.keep.append(idle)
    n, err = r.fill("127.0.0.1", 5000)
    r.check("refused", connected=n, errno=err)


def udp_until_refused(r):
    setup()
    def each(k):
        r.check("after %d" % k, sockets=k)
    n = 0
    refusal = None
    for n in range(MAX_ATTEMPTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"x", ("127.0.0.1", 9))  # autobind draws from the range
        except OSError as e:
            refusal = errno.errorcode.get(e.errno)
            s.close()
            break
        r.keep.append(s)
        each(n + 1)
    r.check("refused", sockets=n, errno=refusal)


def differential(r):
    """A few thousand varied sockets; both readers must build the same model (issue: two readers, one answer)."""
    global LOW, HIGH
    LOW, HIGH = 40000, 44999
    setup(tw_reuse=0)  # no TIME_WAIT turns reusable between the two runs
    sysctl("ip_local_reserved_ports", "40100-40199")
    servers = [r.listen("127.0.0.1", 5000), r.listen("127.0.0.2", 5001), r.listen("::", 6000, socket.AF_INET6, v6only=False)]
    r.listen("127.0.0.3", 41000)                                  # v4 listener inside the range
    r.listen("::1", 42000, socket.AF_INET6, v6only=True)          # v6-only listener inside the range
    made = 0
    for i in range(600):                                          # ESTABLISHED, both ends
        made += r.connect("127.0.0.1", 5000) is None
    for i in range(400):
        made += r.connect("127.0.0.2", 5001, source="127.0.0.9") is None
    for i in range(300):                                          # v4-mapped and IPv6
        made += r.connect("::ffff:127.0.0.1", 6000, socket.AF_INET6) is None
        made += r.connect("::1", 6000, socket.AF_INET6) is None
    for i in range(200):                                          # inbound connections to the in-range listener
        made += r.connect("127.0.0.3", 41000) is None
    for srv in servers:                                           # accept what is queued so far
        srv.setblocking(False)
        while True:
            try:
                conn, _ = srv.accept()
            except BlockingIOError:
                break
            r.keep.append(conn)
    # TIME_WAIT: the client closes first, after the server accepted.
    tw_server = r.listen("127.0.0.1", 5002)
    for i in range(300):
        c = socket.create_connection(("127.0.0.1", 5002))
        a, _ = tw_server.accept()
        c.close()
        a.close()
    # FIN_WAIT2 on the client, CLOSE_WAIT on the server: the server never closes.
    hc_server = r.listen("127.0.0.1", 5003)
    for i in range(200):
        c = socket.create_connection(("127.0.0.1", 5003))
        a, _ = hc_server.accept()
        r.keep.append(a)
        c.shutdown(socket.SHUT_WR)
        r.keep.append(c)
    for i in range(300):                                          # UDP: unconnected, connected, v6
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"x", ("127.0.0.1", 9))
        r.keep.append(u)
    for i in range(200):
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.connect(("::1", 53))
        r.keep.append(u)
    time.sleep(0.2)
    r.check("varied", args=["--format", "json", "--top", "100"], made=made)


# --- What only the BPF reader sees (docs/kernel-model.md, facts 2-4). Each proves the kernel's
# refusal first; the test requires the default reading (BPF as root) to say 100% exactly there.

def bind_before_connect_spread(r):
    """10 connections of bind(127.0.0.1, 0) + connect() spread over 5 destinations."""
    setup()
    for port in range(5000, 5005):
        r.listen("127.0.0.1", port)
    made = 0
    for k in range(1, 11):
        err = r.bind_connect("127.0.0.1", 5000 + (k - 1) % 5, "127.0.0.1")
        if err is not None:
            break
        made = k
        if k in (5, 8):
            r.check("after %d" % k, made=k)
    r.check("refused", made=made, plain_errno=r.connect("127.0.0.1", 5000),
            bind_errno=r.try_bind("127.0.0.1"), other_bind_errno=r.try_bind("127.0.0.2") or "-")


def bind_before_connect_mixed(r):
    """5 bind-before-connect connections, then plain connect() to another port until refused."""
    setup()
    r.listen("127.0.0.1", 5000)
    r.listen("127.0.0.1", 5001)
    for _ in range(5):
        assert r.bind_connect("127.0.0.1", 5000, "127.0.0.1") is None
    n, err = r.fill("127.0.0.1", 5001)
    r.check("refused", bound=5, plain=n, errno=err)


def bind_address_no_port(r):
    """IP_BIND_ADDRESS_NO_PORT: the port is connect()'s, shared per tuple: 10 to each of two ports."""
    setup()
    r.listen("127.0.0.1", 5000)
    r.listen("127.0.0.1", 5001)
    counts = []
    for port in (5000, 5001):
        n = 0
        for _ in range(MAX_ATTEMPTS):
            err = r.bind_connect("127.0.0.1", port, "127.0.0.1", no_port=True)
            if err is not None:
                break
            n += 1
        counts.append((n, err))
    r.check("refused", first=counts[0][0], first_errno=counts[0][1], second=counts[1][0], second_errno=counts[1][1])


def two_source_addresses(r):
    """10 bind-before-connect on 127.0.0.1: bind(127.0.0.1, 0) is refused, bind(127.0.0.2, 0) is not."""
    setup()
    r.listen("127.0.0.1", 5000)
    for port in range(5000, 5010):
        pass
    made = 0
    for k in range(MAX_ATTEMPTS):
        if r.bind_connect("127.0.0.1", 5000, "127.0.0.1") is not None:
            break
        made += 1
    r.check("refused", made=made, bind_errno=r.try_bind("127.0.0.1"), other_bind_errno=r.try_bind("127.0.0.2") or "-",
            other_connect_errno=r.bind_connect("127.0.0.1", 5000, "127.0.0.2") or "-")


def ipv6_bind_costs_ipv4(r):
    """10 bind([::1], 0) + connect(): IPv4 connect() has no port left either."""
    setup()
    r.listen("::1", 5000, family=socket.AF_INET6)
    r.listen("127.0.0.1", 5000)
    made = 0
    for _ in range(MAX_ATTEMPTS):
        if r.bind_connect("::1", 5000, "::1", family=socket.AF_INET6) is not None:
            break
        made += 1
    r.check("refused", made=made, errno=r.connect("127.0.0.1", 5000))


def time_wait_timestamps(r, made_with, now):
    """10 TIME_WAITs made with tcp_timestamps=made_with, then the sysctl set to now: reuse follows
    what each connection negotiated."""
    setup(tw_reuse=2)
    sysctl("tcp_timestamps", made_with)
    server = r.listen("127.0.0.1", 5000)
    made = 0
    for _ in range(10):
        c = socket.socket()
        c.connect(("127.0.0.1", 5000))
        a, _ = server.accept()
        c.close()  # the client closes first: its side keeps the TIME_WAIT
        a.close()
        made += 1
    sysctl("tcp_timestamps", now)
    delay = 1000
    if os.path.exists(SYSCTL + "tcp_tw_reuse_delay"):
        with open(SYSCTL + "tcp_tw_reuse_delay") as f:
            delay = int(f.read())
    time.sleep(delay / 1000 + 0.5)
    r.check("aged", made=made)
    n, err = r.fill("127.0.0.1", 5000, limit=20)
    r.check("after connects", made=made, reused=n, errno=err or "-")


def accepted_child_outlives_listener(r):
    """A listener in the range accepts one connection and closes: its child keeps the port from every tuple."""
    setup()
    r.listen("127.0.0.1", 5000)
    inrange = socket.socket()
    inrange.bind(("127.0.0.2", 40003))
    inrange.listen(1)
    c = socket.create_connection(("127.0.0.2", 40003))
    a, _ = inrange.accept()
    inrange.close()
    r.keep += [c, a]
    n, err = r.fill("127.0.0.1", 5000)
    r.check("refused", connected=n, errno=err)


def own_port_range(r):
    """IP_LOCAL_PORT_RANGE (option 51) 40000-40004 on some sockets: they run out after 5, while
    plain sockets to the same tuple still get the other 5 ports."""
    import struct
    setup()
    r.listen("127.0.0.1", 5000)
    narrowed = 0
    refusal = None
    for _ in range(MAX_ATTEMPTS):
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_IP, 51, struct.pack("I", 40000 | 40004 << 16))
        try:
            s.connect(("127.0.0.1", 5000))
        except OSError as e:
            refusal = errno.errorcode.get(e.errno, str(e.errno))
            s.close()
            break
        r.keep.append(s)
        narrowed += 1
        if narrowed == 4:
            r.check("after 4", narrowed=4)
    r.check("narrowed refused", narrowed=narrowed, errno=refusal)
    plain, err = r.fill("127.0.0.1", 5000)
    r.check("plain refused", narrowed=narrowed, plain=plain, errno=err)


def go_local_addr(r):
    """Go's net.Dialer with LocalAddr 127.0.0.1 to 5 destinations until the kernel refuses."""
    import tempfile
    setup()
    for port in range(5000, 5005):
        r.listen("127.0.0.1", port)
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as build:
        env = dict(os.environ, GOCACHE=os.path.join(build, "cache"), GOPATH=os.path.join(build, "path"), GO111MODULE="off", GOFLAGS="")
        binary = os.path.join(build, "godial")
        subprocess.run(["go", "build", "-o", binary, os.path.join(here, "godial", "main.go")], check=True, env=env, capture_output=True)
        client = subprocess.Popen([binary, "5000", "5", str(MAX_ATTEMPTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            _, made, refusal = client.stdout.readline().split()
            r.check("refused", args=["--processes", "-v"], made=int(made), errno=refusal, plain_errno=r.connect("127.0.0.1", 5000),
                    other_bind_errno=r.try_bind("127.0.0.2") or "-", pid=client.pid)
        finally:
            client.stdin.close()
            client.wait(timeout=30)


SO_BINDTODEVICE = 25
IP_LOCAL_PORT_RANGE = 51


def bound_socket(device, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
    return s


def device_bound_connections(r):
    """10 connections bound to lo (SO_BINDTODEVICE) fill their tuple for lo-bound sockets only:
    __inet_check_established() matches a socket bound to a device only against new sockets bound
    to the same one, so a connect() bound to no device still finds all 10 ports free."""
    setup()
    r.listen("127.0.0.1", 5000)
    bound, refusal = r.fill("127.0.0.1", 5000, make=lambda: bound_socket("lo"))
    r.check("bound refused", bound=bound, errno=refusal)
    plain, err = r.fill("127.0.0.1", 5000)
    r.check("plain refused", bound=bound, plain=plain, errno=err)


def device_bound_time_wait(r):
    """TIME_WAITs bound to lo between addresses outside 127/8: with tcp_tw_reuse=2,
    tcp_twsk_unique() takes a TIME_WAIT bound to lo for loopback, so they are reused once aged."""
    setup(tw_reuse=2)
    delay_ms = long_reuse_delay()
    # An address that lives only on this namespace's lo (TEST-NET-2).
    subprocess.run(["ip", "addr", "add", "198.51.100.1/32", "dev", "lo"], check=True)
    server = r.listen("198.51.100.1", 5000)
    made = 0
    refusal = None
    for _ in range(MAX_ATTEMPTS):
        c = bound_socket("lo")
        try:
            c.connect(("198.51.100.1", 5000))
        except OSError as e:
            refusal = errno.errorcode.get(e.errno, str(e.errno))
            c.close()
            break
        a, _ = server.accept()
        c.close()   # the client closes first: its lo-bound side ends in TIME_WAIT
        a.close()
        made += 1
    time.sleep(0.1)
    r.check("fresh", made=made, errno=refusal)
    time.sleep(delay_ms / 1000 + 0.5)
    r.check("aged")
    c = bound_socket("lo")
    try:
        c.connect(("198.51.100.1", 5000))
        err = None
        r.keep.append(c)
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        c.close()
    r.check("after one more lo-bound connect", errno=err)


def device_bound_bind_before_connect(r):
    """bind(127.0.0.1, 0) then connect() on sockets bound to lo, over 5 destinations: their ports
    are lost to bind(127.0.0.1, 0) of a socket bound to no device too (inet_bind_conflict():
    a socket bound to no device conflicts with every device)."""
    setup()
    for port in range(5000, 5005):
        r.listen("127.0.0.1", port)
    made = 0
    refusal = None
    for i in range(MAX_ATTEMPTS):
        s = bound_socket("lo")
        try:
            s.bind(("127.0.0.1", 0))
            s.connect(("127.0.0.1", 5000 + i % 5))
        except OSError as e:
            refusal = errno.errorcode.get(e.errno, str(e.errno))
            s.close()
            break
        r.keep.append(s)
        made += 1
    r.check("refused", made=made, errno=refusal, bind_errno=r.try_bind("127.0.0.1") or "-")


def udp_own_port_range(r):
    """UDP sockets with IP_LOCAL_PORT_RANGE 40000-40004: udp_lib_get_port() searches only that
    range, so the sixth such socket finds no port while a plain one still does."""
    import struct
    setup()
    narrowed = 0
    refusal = None
    for _ in range(MAX_ATTEMPTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack("I", 40000 | 40004 << 16))
        try:
            s.sendto(b"x", ("127.0.0.1", 9))
        except OSError as e:
            refusal = errno.errorcode.get(e.errno, str(e.errno))
            s.close()
            break
        r.keep.append(s)
        narrowed += 1
        if narrowed == 4:
            r.check("after 4", narrowed=4)
    plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        plain.sendto(b"x", ("127.0.0.1", 9))
        plain_err = None
    except OSError as e:
        plain_err = errno.errorcode.get(e.errno, str(e.errno))
    plain.close()
    r.check("narrowed refused", narrowed=narrowed, errno=refusal, plain_errno=plain_err or "-")


def odd_sized_range(r):
    """An 11-port range (40000-40010): __inet_hash_connect() scans 10 ports in two parity passes,
    so a tuple whose last free port is the end port its scan skips is refused at 10. Fills tuple
    after tuple (bounded) until the kernel refuses one at 10, keeps that one and resets the others."""
    global HIGH
    HIGH = 40010
    setup()
    linger = struct_linger = None
    import struct
    struct_linger = struct.pack("ii", 1, 0)
    chosen = None
    for dport in range(5000, 5128):
        r.listen("127.0.0.1", dport)
        held = []
        refusal = None
        for _ in range(MAX_ATTEMPTS):
            s = socket.socket()
            try:
                s.connect(("127.0.0.1", dport))
            except OSError as e:
                refusal = errno.errorcode.get(e.errno, str(e.errno))
                s.close()
                break
            held.append(s)
        if len(held) == 10 and chosen is None:
            chosen = (dport, refusal)
            r.keep += held
            continue
        for s in held:
            # An abortive close (SO_LINGER 0): no TIME_WAIT left on the other tuples.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct_linger)
            s.close()
        if chosen is not None:
            break
    if chosen is None:
        r.check("no tuple refused at 10", refused_at_10=0)
        return
    r.check("refused at 10", dport=chosen[0], connected=10, errno=chosen[1])


SCENARIOS = {
    "device-bound-connections": device_bound_connections,
    "device-bound-time-wait": device_bound_time_wait,
    "device-bound-bind-before-connect": device_bound_bind_before_connect,
    "udp-own-port-range": udp_own_port_range,
    "odd-sized-range": odd_sized_range,
    "go-local-addr": go_local_addr,
    "own-port-range": own_port_range,
    "bind-before-connect-spread": bind_before_connect_spread,
    "bind-before-connect-mixed": bind_before_connect_mixed,
    "bind-address-no-port": bind_address_no_port,
    "two-source-addresses": two_source_addresses,
    "ipv6-bind-costs-ipv4": ipv6_bind_costs_ipv4,
    "time-wait-without-timestamps": lambda r: time_wait_timestamps(r, 0, 1),
    "time-wait-with-timestamps": lambda r: time_wait_timestamps(r, 1, 0),
    "accepted-child-outlives-listener": accepted_child_outlives_listener,
    "fill-one-tuple": fill_one_tuple,
    "two-destinations": two_destinations,
    "listener-in-range": listener_in_range,
    "reserved-ports": reserved_ports,
    "ipv6-and-v4-mapped": ipv6_and_v4_mapped,
    "time-wait-reuse-0": lambda r: time_wait(r, 0),
    "time-wait-reuse-2": lambda r: time_wait(r, 2),
    "udp-until-refused": udp_until_refused,
    "bound-idle": bound_idle,
    "differential": differential,
}

if __name__ == "__main__":
    scenario, binary = sys.argv[1], sys.argv[2]
    run = Run(scenario, binary)
    SCENARIOS[scenario](run)
    json.dump(run.doc, sys.stdout, indent=1)
