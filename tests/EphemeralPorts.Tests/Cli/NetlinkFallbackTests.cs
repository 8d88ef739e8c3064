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
}
