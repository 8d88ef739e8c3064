#!/usr/bin/env python3
"""Kernel oracle for a full conntrack table: private namespaces filled to nf_conntrack_max.

Run as root:  python3 conntrack_fill.py fill      one namespace filled until the kernel refuses,
                                                  timed, then deleted (one JSON document)
              python3 conntrack_fill.py serve     namespaces A, B and C kept while commands are read
              python3 conntrack_fill.py cleanup   deletes every namespace this script names (epct-*)

Why it can be done without touching the host: __nf_conntrack_alloc() holds each namespace's own
count (nf_conntrack_count) against the one global nf_conntrack_max (0444 inside a namespace other
than the first: never written here). When the count would pass the max, early_drop() evicts an
entry of the same namespace that is not ASSURED; when there is none the allocation fails with
-ENOMEM ("nf_conntrack: table full"). So a namespace made here fills to exactly the max, and the
host's table is not touched.

The entries are made by ctnetlink (IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL, the message
`conntrack -I` sends), hundreds per sendmsg(): nfnetlink handles every message of a datagram in the
sender's context, so the errors of a datagram (NLMSG_ERROR) are queued before send() returns.
Each is TCP ESTABLISHED with ASSURED|SEEN_REPLY (early_drop() and the garbage collector's early
drop above 95% skip it) and a 1200 s timeout; entry i is 10.200.0.0+i/64000 : 1024+i%64000 ->
10.201.0.1:80, addresses that exist nowhere. Each namespace has an nft rule matching `ct state`,
so conntrack is hooked there and a real connection in it needs an entry too.

serve: prints one JSON line ({"a": NAME, "b": NAME, "c": NAME, "max": M, ...}), then answers each
line of stdin with one JSON line:
  fill NS [N] [unassured]
                  up to N more entries in NS (a, b or c), or until the kernel refuses one;
                  `unassured`: entries without ASSURED, which early_drop() may evict (give N)
  delete NS N     deletes the last N entries made in NS
  flush NS        deletes every entry of NS
  connect NS      a TCP connection to a listener on 127.0.0.1 in NS (nonblocking, 0.5 s)
  stat NS         NS's nf_conntrack_count and its counters (/proc/net/stat/nf_conntrack, summed)
  counts          nf_conntrack_count of the host's namespace and of every namespace under
                  /run/netns (one per inode): what `--all-namespaces` sees in a private PID namespace
At end of input (the test ended, or died), SIGTERM or any error, its namespaces are deleted, and
with them every entry and socket. Every loop is bounded by nf_conntrack_max.
"""
import contextlib
import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

PREFIX = "epct-"
CLONE_NEWNET = 0x40000000
NETFILTER = "/proc/sys/net/netfilter/"

NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
MSG_CT_NEW = (1 << 8) | 0             # NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW
MSG_CT_DELETE = (1 << 8) | 2          # IPCTNL_MSG_CT_DELETE
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
SOL_NETLINK, NETLINK_CAP_ACK = 270, 10
NESTED = 0x8000
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT = 1, 2, 3, 4, 7
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED = 1 << 1, 1 << 2, 1 << 3
TCP_CONNTRACK_ESTABLISHED = 3
TIMEOUT = 1200
PORTS = 64000                         # source ports 1024-65023 per client address
BATCH = 1024                          # messages per send(): 1024 x 156 bytes, under the socket's buffer
EXTRA = 3                             # attempts past the limit, each acknowledged

libc = ctypes.CDLL(None, use_errno=True)


def run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def attr(kind, payload):
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def ip_tuple(src, dst, sport, dport):
    ip = attr(CTA_IP_V4_SRC, socket.inet_aton(src)) + attr(CTA_IP_V4_DST, socket.inet_aton(dst))
    l4 = attr(CTA_PROTO_NUM, bytes([socket.IPPROTO_TCP])) + attr(CTA_PROTO_SRC_PORT, struct.pack("!H", sport)) \
        + attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport))
    return attr(CTA_TUPLE_IP | NESTED, ip) + attr(CTA_TUPLE_PROTO | NESTED, l4)


def address(i):
    """Entry i's client address and port."""
    client = 0x0AC80000 + i // PORTS          # 10.200.0.0 onwards
    return socket.inet_ntoa(struct.pack("!I", client)), 1024 + i % PORTS


SERVER, SERVER_PORT = "10.201.0.1", 80


class Template:
    """One CT_NEW message, built once; entry i's message is this with its client address, its
    client port (orig source, reply destination) and its sequence number written in."""

    # Placeholders for the varying fields, each found exactly twice in the built message.
    MARK_IP, MARK_PORT = "10.222.173.190", 0xBEEF

    def __init__(self, assured=True):
        client, port = self.MARK_IP, self.MARK_PORT
        body = struct.pack("=BBH", socket.AF_INET, 0, 0)
        body += attr(CTA_TUPLE_ORIG | NESTED, ip_tuple(client, SERVER, port, SERVER_PORT))
        body += attr(CTA_TUPLE_REPLY | NESTED, ip_tuple(SERVER, client, SERVER_PORT, port))
        # CONFIRMED too, as conntrack(8) sends it: without it 6.18 answers EBUSY (ctnetlink_change_status()
        # refuses a status whose unchangeable bits differ from the new entry's).
        body += attr(CTA_STATUS, struct.pack("!I", IPS_SEEN_REPLY | IPS_CONFIRMED | (IPS_ASSURED if assured else 0)))
        body += attr(CTA_TIMEOUT, struct.pack("!I", TIMEOUT))
        body += attr(CTA_PROTOINFO | NESTED, attr(CTA_PROTOINFO_TCP | NESTED, attr(CTA_PROTOINFO_TCP_STATE, bytes([TCP_CONNTRACK_ESTABLISHED]))))
        self.size = 16 + len(body)
        self.bytes = struct.pack("=IHHII", self.size, MSG_CT_NEW, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, 0, 0) + body
        # The orig tuple's source and the reply tuple's destination are the client.
        self.ips = self.find_all(socket.inet_aton(client))
        self.ports = self.find_all(struct.pack("!H", port))

    def find_all(self, needle):
        found, at = [], self.bytes.find(needle)
        while at >= 0:
            found.append(at)
            at = self.bytes.find(needle, at + 1)
        if len(found) != 2:
            raise AssertionError("template: %r found %d times" % (needle, len(found)))
        return found

    def batch(self, first, n, flags=None):
        """Messages for entries first .. first+n-1, sequence number i+1 each."""
        buf = bytearray(self.bytes * n)
        for k in range(n):
            i = first + k
            base = k * self.size
            struct.pack_into("=I", buf, base + 8, i + 1)
            if flags is not None:
                struct.pack_into("=H", buf, base + 6, flags)
            client = 0x0AC80000 + i // PORTS
            port = 1024 + i % PORTS
            for at in self.ips:
                struct.pack_into("!I", buf, base + at, client)
            for at in self.ports:
                struct.pack_into("!H", buf, base + at, port)
        return buf


TEMPLATES = {True: Template(assured=True), False: Template(assured=False)}


class CtNetlink:
    """A ctnetlink socket of the namespace it was opened in."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        # Errors carry only the failed message's header (NETLINK_CAP_ACK), and room for many.
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)   # SO_RCVBUFFORCE
        self.sock.setsockopt(socket.SOL_SOCKET, 32, 4 << 20)   # SO_SNDBUFFORCE
        self.sock.bind((0, 0))

    def errors(self):
        """The NLMSG_ERROR messages queued now: [(seq, errno)], acks (errno 0) included."""
        found = []
        while True:
            try:
                buf = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return found
            off = 0
            while off + 20 <= len(buf):
                length, kind, _, seq, _ = struct.unpack_from("=IHHII", buf, off)
                if kind == NLMSG_ERROR:
                    found.append((seq, -struct.unpack_from("=i", buf, off + 16)[0]))
                off += (length + 3) & ~3

    def send(self, data):
        sent = self.sock.send(data)
        if sent != len(data):
            raise RuntimeError("ctnetlink: %d of %d bytes sent" % (sent, len(data)))


class Namespace:
    def __init__(self, name):
        self.name = name
        self.made = 0          # entry numbers used, 0 .. made-1 (the ones deleted are taken off the end)
        self.missing = set()   # numbers below `made` the kernel refused: no entry
        self.netlink = self.listener = self.stat = None
        run("ip", "netns", "add", name)
        try:
            run("ip", "-n", name, "link", "set", "lo", "up")
            # A rule that needs conntrack: the namespace's hooks are registered (5.x+ registers them
            # only when a rule asks), so a real connection in it needs an entry as well.
            run("ip", "netns", "exec", name, "nft", "add table inet epct; "
                "add chain inet epct out { type filter hook output priority 0; policy accept; }; "
                "add rule inet epct out ct state new counter")
            with inside(name):
                self.netlink = CtNetlink()
                self.listener = socket.socket()
                self.listener.bind(("127.0.0.1", 0))
                self.listener.listen(16)
                self.stat = open("/proc/self/net/stat/nf_conntrack") if os.path.exists("/proc/self/net/stat/nf_conntrack") else None
        except BaseException:
            self.delete_namespace()
            raise

    def count(self):
        with inside(self.name):
            with open(NETFILTER + "nf_conntrack_count") as f:
                return int(f.read())

    def counters(self):
        """/proc/net/stat/nf_conntrack summed over the CPUs (hex columns named by the header)."""
        return None if self.stat is None else _sum_rows(self.stat)

    def fill(self, limit, maximum, assured=True):
        """Up to `limit` more entries (None: until the kernel refuses one). Guided by the count: a
        datagram never holds more messages than the table has room for, then EXTRA messages past
        the limit, each acknowledged, are the kernel's refusals. Entries that are not ASSURED are
        evicted for new ones past the limit (early_drop): then `limit` bounds the loop."""
        started = time.monotonic()
        accepted, refused, first_refusal, sends = 0, 0, None, 0
        wanted = limit if limit is not None else maximum + EXTRA
        template = TEMPLATES[assured]
        while accepted + refused < wanted and sends < maximum // 16 + 100:
            room = maximum - self.count() if maximum > 0 else BATCH
            left = wanted - accepted - refused
            if room > 0:
                n, flags = min(BATCH, room, left), None
            else:
                n, flags = min(EXTRA, left), NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK
            first = self.made
            self.netlink.send(template.batch(first, n, flags))
            sends += 1
            failed = {seq: code for seq, code in self.netlink.errors() if code != 0 and first < seq <= first + n}
            # Every number of the datagram is used; the refused ones are remembered as holes (past
            # the limit an unassured table refuses some and evicts for others).
            self.made += n
            self.missing.update(seq - 1 for seq in failed)
            accepted += n - len(failed)
            if failed:
                refused += len(failed)
                code = failed[min(failed)]
                first_refusal = first_refusal or errno.errorcode.get(code, str(code))
                if limit is None or room > 0:
                    # Until the first refusal; or refused below the limit, where something else is
                    # wrong: said instead of looping.
                    break
        return {"accepted": accepted, "refused": refused, "first_refusal": first_refusal,
                "seconds": round(time.monotonic() - started, 3), "sends": sends, "count": self.count()}

    def delete(self, n):
        """Deletes the last n entries made here (IPCTNL_MSG_CT_DELETE by original tuple)."""
        deleted = 0
        while deleted < n and self.made > 0:
            numbers = []
            while len(numbers) < min(BATCH, n - deleted) and self.made > 0:
                self.made -= 1
                if self.made in self.missing:
                    self.missing.discard(self.made)
                else:
                    numbers.append(self.made)
            msgs = bytearray()
            for i in numbers:
                client, port = address(i)
                body = struct.pack("=BBH", socket.AF_INET, 0, 0) + attr(CTA_TUPLE_ORIG | NESTED, ip_tuple(client, SERVER, port, SERVER_PORT))
                msgs += struct.pack("=IHHII", 16 + len(body), MSG_CT_DELETE, NLM_F_REQUEST, i + 1, 0) + body
            self.netlink.send(msgs)
            failed = [e for e in self.netlink.errors() if e[1] != 0]
            if failed:
                raise RuntimeError("ctnetlink delete: %d refused, first %s" % (len(failed), errno.errorcode.get(failed[0][1])))
            deleted += len(numbers)
        return {"deleted": deleted, "count": self.count()}

    def flush(self):
        """Every entry of the namespace deleted (IPCTNL_MSG_CT_DELETE without a tuple flushes the
        sender's namespace only)."""
        body = struct.pack("=BBH", socket.AF_INET, 0, 0)
        self.netlink.send(struct.pack("=IHHII", 16 + len(body), MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body)
        for _ in range(100):
            acks = self.netlink.errors()
            if acks:
                if acks[0][1] != 0:
                    raise OSError(acks[0][1], "ctnetlink flush")
                break
            time.sleep(0.01)
        self.made = 0
        self.missing.clear()
        return {"count": self.count()}

    def connect(self):
        """A TCP connection on the namespace's loopback: its SYN needs a new conntrack entry."""
        before = self.counters()
        with inside(self.name):
            s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(self.listener.getsockname())
        except BlockingIOError:
            pass
        except OSError as e:
            s.close()
            return {"connected": False, "how": errno.errorcode.get(e.errno, str(e.errno)), "before": before, "after": self.counters()}
        poller = select.poll()
        poller.register(s, select.POLLOUT)
        ready = poller.poll(500)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if ready else None
        connected = bool(ready) and err == 0
        how = "connected" if connected else ("pending (SYN_SENT after 0.5 s)" if not ready else errno.errorcode.get(err, str(err)))
        s.close()
        if connected:
            self.listener.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                self.listener.accept()[0].close()
        return {"connected": connected, "how": how, "before": before, "after": self.counters()}

    def delete_namespace(self):
        for f in (self.netlink and self.netlink.sock, self.listener, self.stat):
            if f is not None:
                f.close()
        run("ip", "netns", "del", self.name, check=False)


def _sum_rows(f):
    f.seek(0)
    rows = f.read().split("\n")
    names = rows[0].split()
    total = dict.fromkeys(names, 0)
    for row in rows[1:]:
        values = row.split()
        if len(values) == len(names):
            for name, value in zip(names, values):
                total[name] += int(value, 16)
    total.pop("entries", None)     # a copy of the count in every row, not a counter
    return total


HOME = os.open("/proc/self/ns/net", os.O_RDONLY)


@contextlib.contextmanager
def inside(name):
    """Runs the block in namespace `name` (/run/netns/NAME): sockets and /proc/sys files opened
    there belong to it."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        yield
    finally:
        if libc.setns(HOME, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(fd)


def read_count():
    try:
        with open(NETFILTER + "nf_conntrack_count") as f:
            return int(f.read())
    except FileNotFoundError:
        return 0


def counts():
    """What `--all-namespaces` reads in a private PID namespace: this process's namespace (the
    host's) and every namespace under /run/netns, one per inode."""
    home = os.fstat(HOME).st_ino
    seen = {home}
    named = []
    for name in sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []:
        try:
            inode = os.stat("/run/netns/" + name).st_ino
        except OSError:
            continue
        if inode in seen:
            continue
        seen.add(inode)
        try:
            with inside(name):
                named.append({"name": name, "inode": inode, "count": read_count()})
        except OSError as e:
            # Not a namespace (any more): a file left under /run/netns, which no reader can enter.
            named.append({"name": name, "inode": inode, "count": 0, "error": str(e)})
    host = {"inode": home, "count": read_count()}
    return {"host": host, "named": named, "sum": host["count"] + sum(n["count"] for n in named)}


def maximum():
    with open(NETFILTER + "nf_conntrack_max") as f:
        return int(f.read())


def ours():
    return [n for n in os.listdir("/run/netns") if n.startswith(PREFIX)] if os.path.isdir("/run/netns") else []


def serve():
    tag = "%s%d" % (PREFIX, os.getpid())
    spaces = {}
    try:
        for key in ("a", "b", "c"):
            spaces[key] = Namespace("%s-%s" % (tag, key))
        top = maximum()
        print(json.dumps({"a": spaces["a"].name, "b": spaces["b"].name, "c": spaces["c"].name, "max": top, "kernel": os.uname().release,
                          "procfs_stat": spaces["a"].stat is not None}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                ns = spaces.get(words[1]) if len(words) > 1 else None
                if words[0] == "fill" and ns:
                    count = int(words[2]) if len(words) > 2 and words[2].isdigit() else None
                    reply = ns.fill(count, top, assured=words[-1] != "unassured")
                elif words[0] == "flush" and ns:
                    reply = ns.flush()
                elif words[0] == "delete" and ns and len(words) == 3:
                    reply = ns.delete(int(words[2]))
                elif words[0] == "connect" and ns:
                    reply = ns.connect()
                elif words[0] == "stat" and ns:
                    reply = {"count": ns.count(), "counters": ns.counters(), "made": ns.made}
                elif words[0] == "counts":
                    reply = counts()
                else:
                    reply = {"error": "unknown command: " + line.strip()}
            except Exception as e:          # one bad command is reported, the namespaces stay
                reply = {"error": "%s: %s" % (type(e).__name__, e)}
            print(json.dumps(reply), flush=True)
    finally:
        for ns in spaces.values():
            ns.delete_namespace()
    return 0


def fill_once():
    """One namespace filled until the kernel refuses, timed, then deleted."""
    ns = Namespace("%s%d-fill" % (PREFIX, os.getpid()))
    try:
        top = maximum()
        doc = {"max": top, "kernel": os.uname().release}
        doc.update(ns.fill(None, top))
        doc["rate_per_second"] = round(doc["accepted"] / doc["seconds"]) if doc["seconds"] else None
        doc["counters"] = ns.counters()
        started = time.monotonic()
    finally:
        ns.delete_namespace()
    doc["delete_seconds"] = round(time.monotonic() - started, 3)
    doc["left_behind"] = [n for n in ours() if n == ns.name]
    return doc


def main():
    what = sys.argv[1] if len(sys.argv) == 2 else None
    if what not in ("fill", "serve", "cleanup"):
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    if what == "cleanup":
        removed = ours()
        for name in removed:
            run("ip", "netns", "del", name, check=False)
        print(json.dumps({"removed": removed}))
        return 0
    if os.geteuid() != 0:
        print("conntrack_fill.py: needs root", file=sys.stderr)
        return 2
    for tool in ("ip", "nft"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("conntrack_fill.py: %s is missing (apt-get install iproute2 nftables)" % tool, file=sys.stderr)
            return 3
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if what == "serve":
        return serve()
    print(json.dumps(fill_once()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
