#!/usr/bin/env python3
"""What opening and reading the BPF reader costs (cep_bpf_dump), with and without bpffs, against ss
and cat: the figures of README.md's "Load cost" table. Root only.

    python3 src/native/load_cost.py DUMP [--bpffs mounted|absent|both] [--repeat R] [--plugin BIN] [N ...]

Runs itself again in a private mount and network namespace per bpffs way (`unshare -m -n`): a fresh
tmpfs on /run (the load cache starts empty), a fresh bpffs on /sys/fs/bpf or none, loopback up, the
range 10000-65535 and N loopback connections (tests/bench/bench.py's load: 2N sockets, N of them in
the range). Per N, round-robin R times (idle: 3R): the reader as a default run (mounted: opens the
pins; absent: loads from the cache), --no-pin (loads from the cache), --no-pin --no-cache (libbpf
parses the kernel's BTF: what every run without bpffs cost before the cache), `ss -tan`, the ss
pipeline (the range filter, | wc -l) and cat /proc/net/tcp*, and with --plugin (absent way only:
with bpffs its pins and ours would sweep each other) a default run of that plugin binary (its own
BPF reader, as it was built); median wall and CPU ms, and the peak RSS
of one more run under GNU time. The host's /run and /sys/fs/bpf are not touched.
"""
import argparse
import os
import resource
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "bench"))
import bench  # noqa: E402  (Load, measure, sysctl)


def inside(args):
    if args.bpffs == "mounted":
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    else:
        while subprocess.run(["stat", "-f", "-c", "%T", "/sys/fs/bpf"], capture_output=True, text=True).stdout.strip() == "bpf_fs":
            subprocess.run(["umount", "/sys/fs/bpf"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "cep-run", "/run"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    bench.sysctl("ip_local_port_range", "%d %d" % (bench.LOW, bench.HIGH))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ss_filter = "( sport >= :%d and sport <= :%d )" % (bench.LOW, bench.HIGH)
    default = "bpf pinned" if args.bpffs == "mounted" else "bpf from the cache"
    commands = [
        (default, [args.dump, "--quiet"]),
        ("bpf --no-pin (cache)", [args.dump, "--quiet", "--no-pin"]),
        ("bpf libbpf load", [args.dump, "--quiet", "--no-pin", "--no-cache"]),
    ]
    if args.plugin and args.bpffs == "absent":  # (mounted, its pins and ours would sweep each other)
        commands.append(("plugin (as built)", [args.plugin]))
    commands += [
        ("ss -tan", ["ss", "-tan"]),
        ("ss pipeline", ["sh", "-c", "ss -tan state all '%s' | wc -l" % ss_filter]),
        ("cat /proc/net/tcp*", ["sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 | wc -l"]),
    ]
    how = subprocess.run([args.dump, "--count", "--time"], capture_output=True, text=True).stderr.splitlines()[0]
    print("# bpffs %s, first run: %s" % (args.bpffs, how), file=sys.stderr)
    how = subprocess.run([args.dump, "--count", "--time"], capture_output=True, text=True).stderr.splitlines()[0]
    print("# bpffs %s, later runs: %s" % (args.bpffs, how), file=sys.stderr)
    load = bench.Load(max(1000, (hard - 100) // 2))
    try:
        for n in args.counts:
            load.grow(n)
            res = bench.measure(commands, args.repeat * 3 if n == 0 else args.repeat)
            for name, _ in commands:
                wall, cpu, rss, _ = res[name]
                print("| %s | %d | %s | %.1f | %.1f | %.1f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f |" % (
                    args.bpffs, n, name, wall, cpu, rss,
                    wall / res["ss -tan"][0], cpu / res["ss -tan"][1],
                    wall / res["ss pipeline"][0], cpu / res["ss pipeline"][1],
                    wall / res["cat /proc/net/tcp*"][0], cpu / res["cat /proc/net/tcp*"][1]))
            sys.stdout.flush()
    finally:
        load.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--bpffs", choices=["mounted", "absent", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--plugin")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("counts", nargs="*", type=int)
    args = ap.parse_intermixed_args()
    args.dump = os.path.abspath(args.dump)
    args.counts = args.counts or [0, 50_000]
    if args.inside:
        return inside(args)
    print("| bpffs | N | command | wall ms | cpu ms | peak RSS MB | /ss -tan wall / cpu | /ss pipeline | /cat |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    sys.stdout.flush()
    rc = 0
    for way in (["mounted", "absent"] if args.bpffs == "both" else [args.bpffs]):
        rc |= subprocess.run(["unshare", "-m", "--propagation", "private", "-n", sys.executable, os.path.abspath(__file__),
                              "--inside", "--bpffs", way, "--repeat", str(args.repeat), args.dump]
                             + (["--plugin", os.path.abspath(args.plugin)] if args.plugin else [])
                             + [str(n) for n in args.counts]).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
