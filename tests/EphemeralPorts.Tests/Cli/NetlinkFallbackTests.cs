using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Where a kernel or a sandbox refuses netlink, --source auto falls back to /proc/net and says so
/// at -v, with the same figures; --source netlink is UNKNOWN instead. The refusal is made for real
/// with strace's syscall fault injection (build.sh test installs strace).
/// </summary>
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
        fallback.Stdout.ShouldContain($"netlink unavailable ({why}): sockets read from /proc/net instead, bound-but-idle sockets not seen");
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
    [NamespaceFact]
    public void A_later_dump_refused_falls_back_without_counting_twice()
    {
        const string script = """
            import json, socket, subprocess, sys
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            server = socket.socket()
            server.bind(("127.0.0.1", 5000))
            server.listen(10)
            held = [socket.create_connection(("127.0.0.1", 5000)) for _ in range(3)]
            # strace counts per thread: every lane's first request goes through, later ones fail.
            refused = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", "trace=sendto",
                                      "-e", "inject=sendto:error=EPERM:when=2+", sys.argv[1], "-v"],
                                     capture_output=True, text=True)
            print(json.dumps({"exit": refused.returncode, "stdout": refused.stdout, "stderr": refused.stderr}))
            """;
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-n", "/usr/bin/python3", "-c", script, Repo.NativeBinary })
        {
            start.ArgumentList.Add(arg);
        }

        var outer = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        outer.ExitCode.ShouldBe(0, outer.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(outer.Stdout);
        var run = new PluginRun(doc.RootElement.GetProperty("exit").GetInt32(), doc.RootElement.GetProperty("stdout").GetString()!, doc.RootElement.GetProperty("stderr").GetString()!);
        run.ExitCode.ShouldBe(0, run.Stdout);
        run.Stdout.ShouldContain("netlink unavailable (sending the sock_diag request failed: EPERM (operation not permitted)): sockets read from /proc/net instead");
        run.Perf["tcp_busiest_used"].ShouldBe(3, "counted once, by /proc, after the partial netlink count was dropped");
        run.Perf["tcp_tuples"].ShouldBe(1);
    }
}
