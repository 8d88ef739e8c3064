#!/usr/bin/env python3
"""Holds sockets in the network namespace it runs in, for the namespace tests.

    holder.py LOW HIGH COUNT|fill [PORT]
sets ip_local_port_range to LOW-HIGH (so it must run as root in its namespace), brings up
loopback, listens on 127.0.0.1:PORT (default 5000, outside the range) and connects to it COUNT
times, or until the kernel refuses with "fill". It prints "ready N ERRNO" (N connections made,
ERRNO the refusal or "-") and holds everything until its standard input closes: the test that
started it decides when the sockets go. Bounded: never more than 1000 attempts.
"""
import errno
import socket
import subprocess
import sys

low, high, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
    f.write("%d %d" % (low, high))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(1024)
held, refusal = [], "-"
limit = 1000 if count == "fill" else int(count)
for _ in range(limit):
    c = socket.socket()
    try:
        c.connect(("127.0.0.1", port))
    except OSError as e:
        refusal = errno.errorcode.get(e.errno, str(e.errno))
        c.close()
        break
    a, _ = server.accept()
    held += (c, a)
print("ready %d %s" % (len(held) // 2, refusal), flush=True)
sys.stdin.read()
