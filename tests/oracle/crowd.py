#!/usr/bin/env python3
"""A crowd of network namespaces for the namespace tests and the benchmark.

    crowd.py PREFIX COUNT empty|socket [LOAD]
makes COUNT named namespaces PREFIX0000.. (ip netns add), each with loopback up; with "socket"
each also gets one listening TCP socket, held by this process (so sockstat shows it: the
namespace must be walked). With LOAD, a namespace PREFIXload holds LOAD loopback connections
(2 x LOAD sockets in the host-wide hashes that every namespace's reading walks). Prints
"ready" and holds everything until its standard input closes, then deletes every namespace it
made. Run as root. Bounded: COUNT <= 1000, LOAD <= 200000.
"""
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True)


def load_worker(count, ready, servers):
    """In the load namespace: COUNT connections to its 8 listeners, in this forked process."""
    setns("/run/netns/" + prefix + "load")
    held = []
    for j in range(count):
        c = socket.create_connection(("127.0.0.1", 5000 + j % 8))
        a, _ = servers[j % 8].accept()
        held += (c, a)
    os.write(ready, b"x")
    signal.pause()


def stop(signum, frame):
    raise SystemExit(1)


prefix, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
signal.signal(signal.SIGTERM, stop)
load = int(sys.argv[4]) if len(sys.argv) > 4 else 0
assert 0 <= count <= 1000 and 0 <= load <= 200000 and mode in ("empty", "socket")
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
made, held, workers = [], [], []
home = os.open("/proc/self/ns/net", os.O_RDONLY)
try:
    names = ["%s%04d" % (prefix, i) for i in range(count)] + ([prefix + "load"] if load else [])
    for name in names:
        ip("netns", "add", name)
        made.append(name)
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    if mode == "socket":
        for name in names[:count]:
            setns("/run/netns/" + name)
            s = socket.socket()
            s.bind(("127.0.0.1", 7000))
            s.listen(1)
            held.append(s)
            libc.setns(home, CLONE_NEWNET)
    # Two descriptors a connection, besides what a worker inherits from this process.
    per_worker = max(100, (hard - 200 - len(held)) // 2)
    servers = []
    if load:
        # The listeners live in the load namespace; every worker inherits them.
        setns("/run/netns/" + prefix + "load")
        with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
            f.write("10000 65535")
        for i in range(8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 5000 + i))
            s.listen(4096)
            servers.append(s)
        libc.setns(home, CLONE_NEWNET)
    left = load
    while left > 0:
        k = min(per_worker, left)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                os.close(r)
                load_worker(k, w, servers)
            finally:
                os._exit(1)
        os.close(w)
        if os.read(r, 1) != b"x":
            raise RuntimeError("a load worker failed")
        os.close(r)
        workers.append(pid)
        left -= k
    print("ready", flush=True)
    sys.stdin.read()
finally:
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    for s in held:
        s.close()
    for name in made:
        subprocess.run(["ip", "netns", "del", name])
