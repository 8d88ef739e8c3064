#!/usr/bin/python3
# A FUSE file system laid out like the part of /proc that --proc-root reads (sys/net/ipv4/*,
# net/{tcp,tcp6,udp,udp6}) whose every read() blocks until the daemon is killed: a hung NFS or
# FUSE proc tree, for hostile_hosts.sh. Lookups and stat answer at once, so the plugin gets as far
# as its first read. Run in the foreground: blocking_proc_fs.py MOUNTPOINT (needs python3-fusepy).
import errno
import stat
import sys
import threading
import time

from fusepy import FUSE, FuseOSError, Operations

FILES = {
    "/sys/net/ipv4/ip_local_port_range": b"40000\t40009\n",
    "/sys/net/ipv4/ip_local_reserved_ports": b"\n",
    "/sys/net/ipv4/tcp_tw_reuse": b"2\n",
    "/sys/net/ipv4/tcp_timestamps": b"1\n",
    "/sys/net/ipv4/tcp_fin_timeout": b"60\n",
    "/net/tcp": b"",
    "/net/tcp6": b"",
    "/net/udp": b"",
    "/net/udp6": b"",
}
DIRS = {"/", "/sys", "/sys/net", "/sys/net/ipv4", "/net"}
never = threading.Event()


class Blocking(Operations):
    def getattr(self, path, fh=None):
        now = time.time()
        if path in DIRS:
            return dict(st_mode=stat.S_IFDIR | 0o555, st_nlink=2, st_size=0, st_ctime=now, st_mtime=now, st_atime=now)
        if path in FILES:
            # Size 0, as procfs says: a reader must read until EOF instead of trusting st_size.
            return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=0, st_ctime=now, st_mtime=now, st_atime=now)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        names = {p[len(path.rstrip("/")) + 1:].split("/")[0] for p in list(FILES) + list(DIRS)
                 if p != path and p.startswith(path.rstrip("/") + "/")}
        return [".", ".."] + sorted(names)

    def open(self, path, flags):
        if path not in FILES:
            raise FuseOSError(errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        sys.stderr.write("read %s blocks\n" % path)
        sys.stderr.flush()
        never.wait()  # forever: the daemon is killed at the end of the test
        return b""


if __name__ == "__main__":
    # direct_io: every read() reaches the daemon (no page cache answers it).
    FUSE(Blocking(), sys.argv[1], foreground=True, nothreads=False, direct_io=True, allow_other=True, ro=True)
