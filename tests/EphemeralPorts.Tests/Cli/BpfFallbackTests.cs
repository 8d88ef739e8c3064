using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The BPF reader is first in --source auto only where the kernel allows it: refused (not root,
/// bpf() refused), auto reads through sock_diag and -v says why; --source bpf is then UNKNOWN with
/// the reason. All through the native binary, which is the one build with the reader linked in.
/// </summary>
public class BpfFallbackTests
{
    [RootFact]
    public void As_nobody_auto_falls_back_to_netlink_and_says_why()
    {
        var run = Support.Plugin.Native(["-v"], runAs: "nobody");
        run.Stderr.ShouldBeEmpty();
        run.ExitCode.ShouldBeLessThanOrEqualTo(2, run.Stdout);
        run.Stdout.ShouldContain("bpf unavailable (");
        run.Stdout.ShouldContain("sockets read through netlink sock_diag instead, sockets given their port by bind() before connect()");
        run.Stdout.ShouldContain("whether timestamps were negotiated not seen");
    }

    [RootFact]
    public void As_nobody_source_bpf_is_unknown_with_the_reason()
    {
        var run = Support.Plugin.Native(["--source", "bpf"], runAs: "nobody");
        run.ShouldBeOneUnknownLine("--source bpf as nobody");
        run.FirstLine.ShouldStartWith("EPHEMERAL PORTS UNKNOWN - --source bpf: ");
        run.FirstLine.ShouldContain("CAP_BPF");
    }

    [NamespaceFact]
    public void Bpf_refused_by_the_kernel_falls_back_and_says_so()
    {
        // No pinned reader in reach (an empty /sys/fs/bpf in a private mount namespace), and every
        // bpf() call refused with EPERM as a locked-down kernel would. A listener, so that sockstat
        // does not prove the namespace empty (then nothing at all is read).
        var script = "mount -t tmpfs none /sys/fs/bpf && ip link set lo up && "
            + "{ python3 -c 'import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", 5000)); s.listen(); time.sleep(20)' >/dev/null & } && listener=$! && sleep 0.5 && "
            + $"strace -f -o /dev/null -e trace=bpf -e inject=bpf:error=EPERM {Repo.NativeBinary} -v; "
            + $"strace -f -o /dev/null -e trace=bpf -e inject=bpf:error=EPERM {Repo.NativeBinary} --source bpf; kill $listener";
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-n", "-m", "sh", "-c", script })
        {
            start.ArgumentList.Add(arg);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        run.Stderr.ShouldBeEmpty();
        var lines = run.Stdout.TrimEnd('\n').Split('\n');
        lines.ShouldContain(l => l.StartsWith("bpf unavailable (", StringComparison.Ordinal) && l.Contains("sockets read through netlink sock_diag instead", StringComparison.Ordinal), run.Stdout);
        lines[^1].ShouldStartWith("EPHEMERAL PORTS UNKNOWN - --source bpf: ");
        lines[^1].ShouldContain("refused");
    }
}
