#!/usr/bin/env python3
"""Seeds for the fuzz targets, written into DIR/<target>/: the fixture files for the socket
tables and sysctls, and, for what the fixtures do not hold, inputs in the kernel's own formats:
sockstat as net/ipv4/proc.c prints it, cgroup lines of Docker, containerd, podman and cgroup v1,
and sock_diag replies (nlmsghdr + inet_diag_msg, include/uapi/linux/inet_diag.h) ending in
NLMSG_DONE or NLMSG_ERROR; and the captured ctnetlink dumps of tests/fixtures/conntrack
(capture.py), whole and cut into their messages."""
import hashlib
import pathlib
import struct
import sys

out = pathlib.Path(sys.argv[1])
fixtures = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


def put(target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


for f in sorted(fixtures.glob("*/proc/net/*")):
    if f.name in ("tcp", "tcp6", "udp", "udp6") and f.stat().st_size < 64 * 1024:
        put("socket-table", f.read_bytes())
for f in sorted(fixtures.glob("*/proc/sys/net/ipv4/*")):
    put("sysctl", f.read_bytes())

put("sockstat", b"sockets: used 188\nTCP: inuse 7 orphan 0 tw 3 alloc 9 mem 1\nUDP: inuse 2 mem 2\n"
    b"UDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n\0"
    b"TCP6: inuse 2\nUDP6: inuse 1\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n")
put("sockstat", b"sockets: used 1\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\nUDP: inuse 0 mem 0\n")

cid = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
for line in (f"0::/system.slice/docker-{cid}.scope\n",
             f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-{cid}.scope\n",
             f"0::/machine.slice/libpod-{cid}.scope/container\n",
             f"12:memory:/docker/{cid}\n11:cpu:/docker/{cid}\n",
             "0::/user.slice/user-0.slice/session-1.scope\n"):
    put("cgroup", line.encode())

NLMSG_ERROR, NLMSG_DONE, SOCK_DIAG_BY_FAMILY = 2, 3, 20


def nlmsg(kind, payload, seq=1):
    msg = struct.pack("<IHHII", 16 + len(payload), kind, 2, seq, 0) + payload
    return msg + b"\0" * (-len(msg) % 4)


def diag(family, state, sport, dport, src, dst, timer=0, expires=0, inode=0, uid=0):
    # inet_diag_msg: family, state, timer, retrans; inet_diag_sockid (ports big-endian,
    # addresses 16 bytes each, if, cookie); expires, rqueue, wqueue, uid, inode.
    sockid = struct.pack(">HH", sport, dport) + src.ljust(16, b"\0") + dst.ljust(16, b"\0") + struct.pack("<I", 0) + b"\xff" * 8
    return struct.pack("<BBBB", family, state, timer, 0) + sockid + struct.pack("<IIIII", expires, 0, 0, uid, inode)


lo4 = bytes([127, 0, 0, 1])
lo6 = bytes(15) + b"\x01"
mapped = bytes(10) + b"\xff\xff" + lo4
established = [nlmsg(SOCK_DIAG_BY_FAMILY, diag(2, 1, 40000 + i, 5000, lo4, lo4, inode=10000 + i)) for i in range(4)]
put("netlink", b"".join(established) + nlmsg(NLMSG_DONE, struct.pack("<i", 0)))
put("netlink", nlmsg(SOCK_DIAG_BY_FAMILY, diag(2, 6, 40001, 443, lo4, bytes([10, 0, 0, 1]), timer=3, expires=45000))
    + nlmsg(SOCK_DIAG_BY_FAMILY, diag(2, 10, 40002, 0, lo4, bytes(4), inode=77)))
put("netlink", nlmsg(SOCK_DIAG_BY_FAMILY, diag(10, 1, 50000, 8080, lo6, lo6, inode=5))
    + nlmsg(SOCK_DIAG_BY_FAMILY, diag(10, 1, 50001, 8080, mapped, mapped, inode=6))
    + nlmsg(NLMSG_DONE, struct.pack("<i", 0)))
put("netlink", nlmsg(NLMSG_ERROR, struct.pack("<i", -1) + nlmsg(SOCK_DIAG_BY_FAMILY, b"")[:16]))
put("netlink", nlmsg(18, diag(2, 7, 53, 0, lo4, bytes(4))) + nlmsg(NLMSG_DONE, b""))

# ctnetlink: the captured dump and statistics, and each message of the dump alone followed by
# NLMSG_DONE (small seeds mutate faster than the whole 3 KiB dump).
conntrack = fixtures / "conntrack"
for name in ("ct-dump.bin", "ct-stats-cpu.bin"):
    put("ctnetlink", (conntrack / name).read_bytes())
dump = (conntrack / "ct-dump.bin").read_bytes()
done = dump[-20:]
offset = 0
while offset < len(dump) - 20:
    length = struct.unpack_from("<I", dump, offset)[0]
    put("ctnetlink", dump[offset:offset + length] + done)
    offset += (length + 3) & ~3
put("ctnetlink", nlmsg(NLMSG_ERROR, struct.pack("<i", -1) + nlmsg(0x0101, b"")[:16]))
