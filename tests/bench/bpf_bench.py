#!/usr/bin/env python3
"""Benchmark of the native BPF socket reader (src/native) against ss and cat /proc/net/tcp*.

Run as root inside a private network namespace:
    unshare -n python3 bpf_bench.py DUMP [--plugin BINARY] [--repeat R] [N ...]
DUMP is artifacts/native/cep_bpf_dump. For each N it opens N loopback connections (bench.py's
load: 2N sockets, N of them with a port in the range), then times round-robin, R times each:
the reader with pinned iterators (the normal case after the first root run), the reader loading
the program for the run (no pins: the first run, or no bpffs), optionally the plugin's netlink
reading, the ss pipeline and cat. Prints median wall ms per command and the ratios to ss and cat.
Pins left by the run are removed at exit (the host's /sys/fs/bpf is shared with the namespace).
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the load generator and the timed runner)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--plugin")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("counts", nargs="*", type=int)
    args = ap.parse_intermixed_args()
    counts = args.counts or [0, 50_000, 100_000]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    bench.sysctl("ip_local_port_range", "%d %d" % (bench.LOW, bench.HIGH))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_worker = max(1000, (hard - 100) // 2)
    ss_filter = "( sport >= :%d and sport <= :%d )" % (bench.LOW, bench.HIGH)
    commands = [
        ("bpf pinned", [args.dump, "--quiet"]),
        ("bpf pinned, tcp only", [args.dump, "--quiet", "tcp"]),
        ("bpf load per run", [args.dump, "--quiet", "--no-pin"]),
    ]
    if args.plugin:
        commands.append(("plugin --source netlink", [args.plugin, "--source", "netlink"]))
    commands += [
        ("ss -tan | wc -l", ["sh", "-c", "ss -tan state all '%s' | wc -l" % ss_filter]),
        ("cat /proc/net/tcp*", ["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | wc -l"]),
    ]
    subprocess.run([args.dump, "--count"], check=True, stdout=subprocess.DEVNULL)  # pins the iterators
    print("| N | command | wall ms (median) | cpu ms | /ss | /cat |")
    print("|---:|---|---:|---:|---:|---:|")
    load = bench.Load(per_worker)
    try:
        for n in counts:
            load.grow(n)
            repeat = args.repeat * 3 if n == 0 else args.repeat
            runs = {name: [] for name, _ in commands}
            for _ in range(repeat):
                for name, argv in commands:
                    runs[name].append(bench.timed_run(argv))
            wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
            cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
            for name, _ in commands:
                print("| %d | %s | %.1f | %.1f | %.2f | %.2f |" % (
                    n, name.replace("|", "\\|"), wall[name], cpu[name],
                    wall[name] / wall["ss -tan | wc -l"], wall[name] / wall["cat /proc/net/tcp*"]))
            counted = subprocess.run([args.dump, "--count"], capture_output=True, text=True).stdout.split()
            print("# N=%d: records %s" % (n, " ".join(counted)), file=sys.stderr)
            sys.stdout.flush()
    finally:
        load.close()
        subprocess.run([args.dump, "--unpin-all"])


if __name__ == "__main__":
    main()
