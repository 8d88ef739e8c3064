#!/usr/bin/python3
# Holds N established TCP connections to a listener of its own on HOST:PORT, for the hostile-host
# tests: hold_connections.py HOST PORT N SECONDS. Prints "ready K" (K connections made; fewer than
# N only when connect() was refused, e.g. a 10-port range that is full) once they are up, then
# keeps them until SECONDS have passed or its standard input is closed, whichever is first.
import select
import socket
import sys
import time

host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
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
print("ready %d" % len(clients), flush=True)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    r, _, _ = select.select([sys.stdin], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
    if r and not sys.stdin.buffer.read1(4096):
        break
