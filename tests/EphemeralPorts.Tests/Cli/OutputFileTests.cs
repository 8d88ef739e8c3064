using System.Diagnostics;
using System.Text.RegularExpressions;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// <c>--output</c> as root into a directory an attacker can write (a world-writable textfile
/// directory, /tmp): links planted at the names the temporary file could take must never redirect
/// the write or the chmod, and the temporary file must be created exclusively under a random name.
/// </summary>
public sealed class OutputFileTests : IDisposable
{
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");
    private readonly string _dir = Directory.CreateTempSubdirectory("cep-out-").FullName;
    private readonly string _victim;

    public OutputFileTests()
    {
        // Sticky and world-writable, as /tmp: anyone may plant a name here.
        File.SetUnixFileMode(_dir, (UnixFileMode)0b1_111_111_111);
        _victim = Path.Combine(Directory.CreateTempSubdirectory("cep-victim-").FullName, "secret");
        File.WriteAllText(_victim, "precious\n");
        File.SetUnixFileMode(_victim, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void Links_planted_at_every_name_the_old_temporary_file_could_take_redirect_nothing()
    {
        // The old name was .NAME.PID.tmp: plant a link for each pid the next processes will get.
        var target = Path.Combine(_dir, "ports.prom");
        var next = int.Parse(File.ReadAllText("/proc/sys/kernel/ns_last_pid").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        for (var pid = next; pid < next + 3000; pid++)
        {
            File.CreateSymbolicLink(Path.Combine(_dir, $".ports.prom.{pid}.tmp"), _victim);
        }

        File.CreateSymbolicLink(Path.Combine(_dir, ".ports.prom.tmp"), _victim);
        var run = Support.Plugin.Native(["--proc-root", Sound, "--format", "prometheus", "--output", target]);
        run.Stdout.ShouldBeEmpty();
        run.Stderr.ShouldBeEmpty();
        File.ReadAllText(_victim).ShouldBe("precious\n", "a planted link must not receive the output");
        File.GetUnixFileMode(_victim).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite, "nor be chmod'ed");
        new FileInfo(target).LinkTarget.ShouldBeNull();
        File.ReadAllText(target).ShouldContain("ephemeral_ports_state");
        File.GetUnixFileMode(target).ShouldBe((UnixFileMode)0b110_100_100);
        Directory.GetFiles(_dir, ".ports.prom.*").Length.ShouldBe(3001, "the planted links are left alone, and no temporary file is left behind");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_link_at_the_target_itself_is_replaced_not_followed()
    {
        var target = Path.Combine(_dir, "ports.prom");
        File.CreateSymbolicLink(target, _victim);
        var run = Support.Plugin.Native(["--proc-root", Sound, "--format", "prometheus", "--output", target]);
        run.Stdout.ShouldBeEmpty();
        File.ReadAllText(_victim).ShouldBe("precious\n");
        new FileInfo(target).LinkTarget.ShouldBeNull();
    }

    [RootFact]
    public void A_device_a_fifo_a_socket_or_a_link_to_one_is_refused_and_left_as_it_was()
    {
        // A null device of our own (mknod 1,3), so that a failure cannot replace the system's.
        var device = Path.Combine(_dir, "null");
        Command.MustSucceed("mknod", "-m", "666", device, "c", "1", "3");
        var fifo = Path.Combine(_dir, "fifo");
        Command.MustSucceed("mkfifo", fifo);
        var socketPath = Path.Combine(_dir, "sock");
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        var link = Path.Combine(_dir, "link-to-null");
        File.CreateSymbolicLink(link, device);
        foreach (var (path, kind) in new[] { (device, "a character device"), (fifo, "a FIFO"), (socketPath, "a socket"), (link, "a symbolic link to a character device") })
        {
            var before = File.ResolveLinkTarget(path, returnFinalTarget: false)?.FullName;
            var type = new FileInfo(path).UnixFileMode;
            var run = Support.Plugin.Native(["--proc-root", Sound, "--format", "prometheus", "--output", path]);
            run.ShouldBeOneUnknownLine(kind);
            run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --output {path}: refused: it is {kind}; --output replaces only a regular file (or makes a new one)\n");
            File.ResolveLinkTarget(path, returnFinalTarget: false)?.FullName.ShouldBe(before);
            new FileInfo(path).UnixFileMode.ShouldBe(type);
        }

        Command.Output("stat", "-c", "%F %t,%T", device).ShouldBe("character special file 1,3\n");
        Command.Output("stat", "-c", "%F", fifo).ShouldBe("fifo\n");
        Command.Output("stat", "-c", "%F", socketPath).ShouldBe("socket\n");
        Directory.GetFiles(_dir, ".*.tmp").ShouldBeEmpty();
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_name_that_is_not_utf8_is_written_byte_for_byte()
    {
        // The runtime decodes argv as UTF-8: the name must come back from the kernel's bytes.
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", "exec \"$0\" --proc-root \"$1\" --format prometheus --output \"$2/$(printf 'ports\\377.prom')\"", Repo.NativeBinary, Sound, _dir })
        {
            start.ArgumentList.Add(a);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        run.ExitCode.ShouldBeLessThan(3, run.Stdout + run.Stderr);
        run.Stdout.ShouldBeEmpty();
        Command.Output("sh", "-c", "cd \"$1\" && ls | od -An -c | tr -d ' \\n'", "sh", _dir).ShouldBe("ports377.prom\\n");

        // .NET cannot name it either: removed by the shell, before Dispose removes the directory.
        Command.MustSucceed("sh", "-c", "rm -f -- \"$1\"/ports*.prom", "sh", _dir);
    }

    [Fact]
    public void The_temporary_name_is_random_and_never_repeats()
    {
        var names = Enumerable.Range(0, 1000).Select(_ => System.Text.Encoding.UTF8.GetString(EphemeralPorts.Cli.AtomicFile.TemporaryName("ports.prom"u8))).ToList();
        names.Distinct().Count().ShouldBe(1000);
        names.ShouldAllBe(n => Regex.IsMatch(n, "^\\.ports\\.prom\\.[0-9a-f]{32}\\.tmp$"));
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void The_temporary_file_is_created_with_O_EXCL_under_a_name_no_other_run_used()
    {
        var target = Path.Combine(_dir, "ports.prom");
        var first = Traced(target);
        var second = Traced(target);
        first.ShouldNotBe(second, "two runs must not use the same temporary name");
        foreach (var call in new[] { first, second })
        {
            call.ShouldContain("O_CREAT");
            call.ShouldContain("O_EXCL");
            call.ShouldContain("O_NOFOLLOW");
            call.ShouldNotContain($".{Environment.ProcessId}.");
        }
    }

    // The openat(2) that created the temporary file, as strace printed it.
    private string Traced(string target)
    {
        var log = Path.Combine(_dir, "strace.log");
        var start = new ProcessStartInfo("strace") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-f", "-e", "trace=open,openat,openat2,creat", "-o", log, Repo.NativeBinary, "--proc-root", Sound, "--output", target })
        {
            start.ArgumentList.Add(a);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(60));
        run.ExitCode.ShouldBe(1, run.Stdout + run.Stderr);
        var creates = File.ReadAllLines(log).Where(l => l.Contains("O_CREAT", StringComparison.Ordinal)).ToList();
        File.Delete(log);
        creates.Count.ShouldBe(1, "one file is created: " + string.Join('\n', creates));
        var name = Regex.Match(creates[0], "\"(\\.ports\\.prom\\.[0-9a-f]{32}\\.tmp)\"");
        name.Success.ShouldBeTrue(creates[0]);
        return creates[0];
    }

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        Directory.Delete(Path.GetDirectoryName(_victim)!, recursive: true);
    }
}
