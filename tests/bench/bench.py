#!/usr/bin/env python3
"""Benchmark: check_ephemeral_ports against `ss` and `cat /proc/net/tcp*`, measured in one run.

Run inside a private network namespace as root (./build.sh bench does):
    unshare -n python3 bench.py BINARY [N ...]
For each N it opens N loopback connections (2N sockets, N of them with a port in the range;
several destination ports keep every tuple below the range), then times every command REPEAT
times and prints the median wall time, the median CPU time and the peak RSS of each, and the
ratios ours/ss and ours/cat from the same run. Then (unless --no-namespaces) the namespace
curve: --all-namespaces over 1, 25, 50, 100 and 200 namespaces beside 50k connections, empty
ones and ones holding a socket each, against `ss -tan` run in every namespace in turn. Nothing is asserted: the machine is shared and
noisy, so the script reports and the reader judges. Everything goes with the namespace at exit.
"""
import os
import platform
import signal
import tempfile
import resource
import socket
import statistics
import subprocess
import sys
import time

LOW, HIGH = 10000, 65535  # the destination ports (5000+) stay outside the range, as on a real client
DEST_PORTS = 8
REPEAT = 7


def sysctl(name, value):
    with open("/proc/sys/net/ipv4/" + name, "w") as f:
        f.write(str(value))


def timed_run(argv):
    """One run: (wall ms, cpu ms, stdout). CPU comes from wait4; no wrapper adds to the wall time."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, _, usage = os.wait4(p.pid, 0)
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000, out


def peak_rss_mb(argv, report):
    """GNU time reports the peak RSS of the command itself (a child forked from this Python process
    would carry Python's own RSS into ru_maxrss until exec)."""
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(report) as f:
        return int(f.read().split()[-1]) / 1024


def measure(commands, repeat):
    """Runs the commands round-robin `repeat` times, so that a noisy moment of the machine falls
    on all of them alike, then once each under GNU time for the peak RSS; returns
    name -> (median wall ms, median cpu ms, peak rss MB, stdout)."""
    runs = {name: [] for name, _ in commands}
    for _ in range(repeat):
        for name, argv in commands:
            runs[name].append(timed_run(argv))
    with tempfile.NamedTemporaryFile("r") as report:
        return {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs),
                       peak_rss_mb(dict(commands)[name], report.name), rs[-1][2]) for name, rs in runs.items()}


class Load:
    """N loopback connections, held by worker processes of at most PER_WORKER each (the open-file
    limit may be low and only raisable so far); both ends of a connection live in one worker."""

    def __init__(self, per_worker):
        self.per_worker = per_worker
        self.servers = []
        self.workers = []
        self.count = 0
        for i in range(DEST_PORTS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 5000 + i))
            s.listen(4096)
            self.servers.append(s)

    def grow(self, n):
        while self.count < n:
            k = min(self.per_worker, n - self.count)
            ready_r, ready_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                held = []
                for j in range(k):
                    i = j % DEST_PORTS
                    c = socket.create_connection(("127.0.0.1", 5000 + i))
                    a, _ = self.servers[i].accept()
                    held += (c, a)
                os.write(ready_w, b"x")
                signal.pause()
                os._exit(0)
            os.close(ready_w)
            os.read(ready_r, 1)
            os.close(ready_r)
            self.workers.append(pid)
            self.count += k

    def close(self):
        for pid in self.workers:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


CLONE_NEWNET = 0x40000000
NAMESPACE_CURVE = [1, 25, 50, 100, 200]
NAMESPACE_LOAD = 50_000


class Crowd:
    """Named namespaces (ip netns add) beside this one, each empty or holding one listening socket
    (so that sockstat cannot rule it out and it must be walked); deleted again by close()."""

    def __init__(self, tag):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.tag, self.names, self.held = tag, [], []
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def grow(self, n, with_socket):
        while len(self.names) < n:
            name = "cep-bench-%s-%d-%04d" % (self.tag, os.getpid(), len(self.names))
            subprocess.run(["ip", "netns", "add", name], check=True)
            self.names.append(name)
            subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
            if with_socket:
                fd = os.open("/run/netns/" + name, os.O_RDONLY)
                self.libc.setns(fd, CLONE_NEWNET)
                os.close(fd)
                s = socket.socket()
                s.bind(("127.0.0.1", 7000))
                s.listen(1)
                self.held.append(s)
                self.libc.setns(self.home, CLONE_NEWNET)

    def close(self):
        for s in self.held:
            s.close()
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name])


def namespace_curve(binary, load):
    """--all-namespaces over 1..200 namespaces beside NAMESPACE_LOAD connections, against ss run
    in each namespace in turn; empty namespaces and namespaces with one socket each."""
    load.grow(NAMESPACE_LOAD)
    print()
    print("| namespaces | kind | ours wall ms | ours cpu ms | ours peak RSS MB | ss loop wall ms | ours/ss | checked |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for kind in ("empty", "one socket each"):
        crowd = Crowd("e" if kind == "empty" else "s")
        try:
            for k in NAMESPACE_CURVE:
                crowd.grow(k - 1, kind != "empty")  # this namespace (the load's) is one of them
                loop = "ss -tan >/dev/null; " + "".join("ip netns exec %s ss -tan >/dev/null; " % n for n in crowd.names)
                commands = [("ours", [binary, "--all-namespaces", "-t", "60"]), ("ss loop", ["sh", "-c", loop])]
                results = measure(commands, 3)
                wall, cpu_ms, rss, out = results["ours"]
                said = out.split(b"\n")[0].decode()
                checked = said.split("'namespaces'=")[1].split(";")[0] if "'namespaces'=" in said else "?"
                print("| %d | %s | %.1f | %.1f | %.1f | %.1f | %.2f | %s |" % (
                    k, kind, wall, cpu_ms, rss, results["ss loop"][0], wall / results["ss loop"][0], checked))
                sys.stdout.flush()
        finally:
            crowd.close()


def main():
    binary = sys.argv[1]
    counts = [int(n) for n in sys.argv[2:] if not n.startswith("--")] or [0, 10_000, 50_000, 100_000, 200_000]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sysctl("ip_local_port_range", "%d %d" % (LOW, HIGH))
    # As many connections per worker as the open-file limit allows (two descriptors each).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_worker = max(1000, (hard - 100) // 2)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print("# machine: %s, %d cores, kernel %s; median of %d runs each" % (cpu, os.cpu_count(), platform.release(), REPEAT))
    bpffs = os.environ.get("BENCH_BPFFS") or ("mounted" if os.path.ismount("/sys/fs/bpf") else "absent")
    print("# bpffs on /sys/fs/bpf: %s (%s)" % (bpffs, "the BPF reader's pins are opened" if bpffs == "mounted" else "every run loads the BPF reader"))
    ss_filter = "( sport >= :%d and sport <= :%d )" % (LOW, HIGH)
    commands = [
        ("ours (default: bpf)", [binary]),
        ("ours (netlink)", [binary, "--source", "netlink"]),
        ("ours (proc)", [binary, "--source", "proc"]),
        ("ss -tan | wc -l", ["sh", "-c", "ss -tan state all '%s' | wc -l" % ss_filter]),
        ("cat /proc/net/tcp*", ["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | wc -l"]),
    ]
    print("| N connections | command | wall ms | cpu ms | peak RSS MB | ours/ss | ours/cat |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    load = Load(per_worker)
    try:
        for n in counts:
            run(load, n, commands)
        if "--no-namespaces" not in sys.argv:
            namespace_curve(binary, load)
    finally:
        load.close()
    if "--no-nat" not in sys.argv:
        nat_curve(binary)


def nat_curve(binary, counts=(0, 10_000, 100_000)):
    """The NAT kind's cost: N source-NATed conntrack entries of UDP flows (50 keys) in a throwaway
    namespace (tests/fixtures/conntrack/fill.py --snat), the whole check run there against conntrack -L and
    cat /proc/net/nf_conntrack of the same namespace. Every command runs through ip netns exec."""
    fill = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "conntrack", "fill.py")
    if subprocess.run(["sh", "-c", "command -v conntrack"], capture_output=True).returncode != 0:
        print("# NAT curve skipped: conntrack(8) is missing (apt-get install conntrack)")
        return
    print()
    print("| N conntrack entries | command | wall ms | cpu ms | peak RSS MB | ours/conntrack -L | ours/cat |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in counts:
        ns = "cep-bench-nat-%d" % os.getpid()
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            if n:
                subprocess.run(["ip", "netns", "exec", ns, "python3", fill, str(n), "1200", "--snat"], check=True, stdout=subprocess.DEVNULL)
            inside = ["ip", "netns", "exec", ns]
            commands = [
                ("ours (default)", inside + [binary]),
                ("conntrack -L", inside + ["sh", "-c", "conntrack -L 2>/dev/null | wc -l"]),
                ("cat /proc/net/nf_conntrack", inside + ["sh", "-c", "cat /proc/net/nf_conntrack | wc -l"]),
            ]
            results = measure(commands, REPEAT)
            ct, cat = results["conntrack -L"][0], results["cat /proc/net/nf_conntrack"][0]
            for name, (wall, cpu_ms, rss, _) in results.items():
                ratios = ("%.2f" % (wall / ct), "%.2f" % (wall / cat)) if name.startswith("ours") else ("", "")
                print("| %d | %s | %.1f | %.1f | %.1f | %s | %s |" % (n, name, wall, cpu_ms, rss, *ratios))
            print("# NAT N=%d: ours said: %s" % (n, results["ours (default)"][3].split(b"\n")[0].decode()[:160]), file=sys.stderr)
            sys.stdout.flush()
        finally:
            subprocess.run(["ip", "netns", "del", ns])


def run(load, n, commands):
    t = time.perf_counter()
    load.grow(n)
    setup = time.perf_counter() - t
    # An idle host is measured with more runs: each is short and the machine is noisy.
    results = measure(commands, 31 if n == 0 else REPEAT)
    ours_first_line = results["ours (default: bpf)"][3].split(b"\n")[0].decode()
    ss_wall, cat_wall = results["ss -tan | wc -l"][0], results["cat /proc/net/tcp*"][0]
    for name, (wall, cpu_ms, rss, _) in results.items():
        ratios = ("%.2f" % (wall / ss_wall), "%.2f" % (wall / cat_wall)) if name.startswith("ours") else ("", "")
        print("| %d | %s | %.1f | %.1f | %.1f | %s | %s |" % (n, name.replace("|", "\\|"), wall, cpu_ms, rss, *ratios))
    print("# N=%d: setup %.1f s; ours said: %s" % (n, setup, ours_first_line[:160]), file=sys.stderr)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
