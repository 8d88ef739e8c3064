#!/usr/bin/python3
# Holds N established TCP connections to a listener of its own on HOST:PORT, for the hostile-host
# tests: hold_connections.py HOST PORT N SECONDS [NETNS_FILE]. With NETNS_FILE (/run/netns/NAME)
# the sockets are made inside that network namespace and the process then returns to its own, so
# that no process lives there: only the name leads to them. Prints "ready K" (K connections made;
# fewer than N only when connect() was refused, e.g. a 10-port range that is full) once they are
# up, then keeps them ESTABLISHED for SECONDS (or until it is killed).
import ctypes
import os
import socket
import sys
import time

host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


home = None
if len(sys.argv) > 5:
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(sys.argv[5], os.O_RDONLY)
    setns(target)
    os.close(target)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(n + 16)
clients, accepted = [], []
for _ in range(n):
    c = socket.socket()
    try:
        c.connect((host, port))
    except OSError as e:
        sys.stderr.write("connect %d: %s\n" % (len(clients) + 1, e))
        c.close()
        break
    clients.append(c)
    accepted.append(listener.accept()[0])
if home is not None:
    setns(home)
    os.close(home)
print("ready %d" % len(clients), flush=True)
time.sleep(seconds)
