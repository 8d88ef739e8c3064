using System.Diagnostics;

namespace EphemeralPorts.Tests.Support;

/// <summary>Set-up commands of the namespace tests (ip netns, sysctl): each must succeed.</summary>
public static class Command
{
    public static void MustSucceed(params string[] args)
    {
        var start = new ProcessStartInfo(args[0]) { RedirectStandardError = true };
        foreach (var arg in args.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        using var p = Process.Start(start)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        p.ExitCode.ShouldBe(0, $"{string.Join(' ', args)}: {error}");
    }

    /// <summary>What a command that must succeed printed on stdout.</summary>
    public static string Output(params string[] args)
    {
        var start = new ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        p.ExitCode.ShouldBe(0, $"{string.Join(' ', args)}: {error}");
        return stdout.Result;
    }

    /// <summary>A named namespace (ip netns add) with loopback up and the given local port range.</summary>
    public static void NewNamespace(string name, int low, int high)
    {
        MustSucceed("ip", "netns", "add", name);
        MustSucceed("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up");
        MustSucceed("ip", "netns", "exec", name, "sysctl", "-qw", $"net.ipv4.ip_local_port_range={low} {high}");
    }
}
