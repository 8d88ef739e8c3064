#!/usr/bin/python3
# Runs a command with its standard output on a pipe and reports, for the hostile-host tests, when
# the first line came, when the pipe was closed (every holder of the write end gone) and when the
# process could be reaped, each in seconds after the start or "never" within LIMIT seconds:
#   watch_exit.py LIMIT OUTFILE CMD ARGS...
# prints "first=S eof=S exit=S rc=N". Its output is saved in OUTFILE. A process still there at
# LIMIT is left running (a thread stuck in the kernel cannot be killed anyway): the caller ends
# what it blocks on, and reaping it is then init's work.
import os
import select
import subprocess
import sys
import time

limit, outfile, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
start = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
fd = proc.stdout.fileno()
data, first, eof, ended, rc = b"", None, None, None, None
while time.monotonic() - start < limit and (eof is None or ended is None):
    if eof is None:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            chunk = os.read(fd, 65536)
            if chunk:
                data += chunk
                if first is None and b"\n" in data:
                    first = time.monotonic() - start
            else:
                eof = time.monotonic() - start
    else:
        time.sleep(0.05)
    if ended is None and proc.poll() is not None:
        ended, rc = time.monotonic() - start, proc.returncode
with open(outfile, "wb") as f:
    f.write(data)
fmt = lambda t: "never" if t is None else "%.2f" % t
print("first=%s eof=%s exit=%s rc=%s" % (fmt(first), fmt(eof), fmt(ended), "none" if rc is None else rc))
