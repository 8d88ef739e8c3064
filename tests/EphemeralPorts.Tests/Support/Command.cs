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
}
