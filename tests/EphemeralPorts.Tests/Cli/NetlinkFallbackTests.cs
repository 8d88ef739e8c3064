using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Where a kernel or a sandbox refuses netlink, --source auto falls back to /proc/net and says so
/// at -v, with the same figures; --source netlink is UNKNOWN instead. The refusal is made for real
/// with strace's syscall fault injection (build.sh test installs strace).
/// </summary>
[Trait(Tier.Key, Tier.Full)]
public class NetlinkFallbackTests
{
    private static PluginRun Refused(string syscall, params string[] args)
    {
        var start = new ProcessStartInfo("strace") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-f", "-o", "/dev/null", "-e", $"trace={syscall}", "-e", $"inject={syscall}:error=EPERM", Repo.NativeBinary }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        return Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
    }

    [Theory]
    [InlineData("socket", "socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPERM (operation not permitted)")]
    [InlineData("sendto", "sending the sock_diag request failed: EPERM (operation not permitted)")]
    public void Auto_falls_back_to_proc_and_says_why_at_v(string syscall, string why)
    {
        var fallback = Refused(syscall, "-v", "--top", "0");
        fallback.Stderr.ShouldBeEmpty();
        fallback.ExitCode.ShouldBeLessThan(3, fallback.Stdout);
        fallback.Stdout.ShouldContain($"netlink unavailable ({why}): sockets read from /proc/net instead, bound-but-idle sockets, the device a socket is bound to (SO_BINDTODEVICE) not seen");
        var proc = Support.Plugin.Native(["-v", "--top", "0", "--source", "proc"]);
        fallback.Perf["capacity"].ShouldBe(proc.Perf["capacity"]);
    }

    [Fact]
    public void Netlink_chosen_explicitly_is_unknown_when_refused()
    {
        var run = Refused("socket", "--source", "netlink");
        run.ShouldBeOneUnknownLine("netlink refused");
        run.Stdout.ShouldBe("EPHEMERAL PORTS UNKNOWN - --source netlink: socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: EPERM (operation not permitted)\n");
    }

    /// <summary>
    /// The dumps run in parallel lanes: a refusal of a later dump (UDP, IPv6: e.g. udp_diag not
    /// loaded) comes after other lanes counted sockets. The fallback must start again, not add
    /// /proc's sockets to netlink's. Made in a namespace holding 3 known connections.
    /// </summary>
    /// <summary>
    /// TCP is asked with the older TCPDIAG_GETSOCK request (both families in one walk). A kernel
    /// that refuses it must be asked per family instead, still through netlink: each TCP lane's
    /// first request is refused here, in a namespace with 3 IPv4 and 2 IPv6 connections.
    /// </summary>
    [NamespaceFact]
    public void A_refused_both_families_request_is_asked_per_family()
    {
        var run = InNamespace("""
            server4 = socket.socket(); server4.bind(("127.0.0.1", 5000)); server4.listen(10)
            server6 = socket.socket(socket.AF_INET6); server6.bind(("::1", 5001)); server6.listen(10)
            held = [socket.create_connection(("127.0.0.1", 5000)) for _ in range(3)]
            held += [socket.create_connection(("::1", 5001)) for _ in range(2)]
            """, "when=1", "--protocol", "tcp", "-v");
        run.ExitCode.ShouldBe(0, run.Stdout);
        run.Stdout.ShouldContain("sockets read through netlink sock_diag");
        run.Perf["tcp_busiest_used"].ShouldBe(3);
        run.Perf["tcp_tuples"].ShouldBe(2);
        run.Stdout.ShouldContain("::1 -> [::1]:5001 2/");
    }

    /// <summary>
    /// Runs the binary under strace refusing sendto as <paramref name="when"/> says, in a namespace
    /// <paramref name="setup"/> prepared, with bpf() refused too and no pinned BPF reader in reach
    /// (an empty /sys/fs/bpf in a private mount namespace): auto's first reader (BPF) is refused,
    /// so what is tested is the netlink reader and its fallback to /proc.
    /// </summary>
    private static PluginRun InNamespace(string setup, string when, params string[] args)
    {
        var script = "import json, socket, subprocess, sys\n"
            + "subprocess.run([\"ip\", \"link\", \"set\", \"lo\", \"up\"], check=True)\n"
            + "subprocess.run([\"mount\", \"-t\", \"tmpfs\", \"none\", \"/sys/fs/bpf\"], check=True)\n"
            + setup
            + "\nrefused = subprocess.run([\"strace\", \"-f\", \"-o\", \"/dev/null\", \"-e\", \"trace=sendto,bpf\", \"-e\", \"inject=bpf:error=EPERM\", \"-e\", \"inject=sendto:error=EPERM:" + when + "\", sys.argv[1]] + sys.argv[2:], capture_output=True, text=True)\n"
            + "print(json.dumps({\"exit\": refused.returncode, \"stdout\": refused.stdout, \"stderr\": refused.stderr}))\n";
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-n", "-m", "/usr/bin/python3", "-c", script, Repo.NativeBinary }.Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        var outer = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        outer.ExitCode.ShouldBe(0, outer.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(outer.Stdout);
        return new PluginRun(doc.RootElement.GetProperty("exit").GetInt32(), doc.RootElement.GetProperty("stdout").GetString()!, doc.RootElement.GetProperty("stderr").GetString()!);
    }

    [NamespaceFact]
    public void A_later_dump_refused_falls_back_without_counting_twice()
    {
        // strace counts per thread: every lane's first request goes through, later ones (the UDP
        // lane's second) are refused after the TCP lanes have counted their sockets. A UDP socket
        // of each family makes both UDP dumps happen (sockstat rules out a family with none).
        var run = InNamespace("""
            server = socket.socket(); server.bind(("127.0.0.1", 5000)); server.listen(10)
            held = [socket.create_connection(("127.0.0.1", 5000)) for _ in range(3)]
            udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)]
            udp[0].bind(("127.0.0.1", 0)); udp[1].bind(("::1", 0))
            """, "when=2+", "-v");
        run.ExitCode.ShouldBe(0, run.Stdout);
        run.Stdout.ShouldContain("netlink unavailable (sending the sock_diag request failed: EPERM (operation not permitted)): sockets read from /proc/net instead");
        run.Perf["tcp_busiest_used"].ShouldBe(3, "counted once, by /proc, after the partial netlink count was dropped");
        run.Perf["tcp_tuples"].ShouldBe(1);
    }
}
