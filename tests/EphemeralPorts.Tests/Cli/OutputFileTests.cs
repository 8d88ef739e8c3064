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

    [Fact]
    public void The_temporary_name_is_random_and_never_repeats()
    {
        var names = Enumerable.Range(0, 1000).Select(_ => EphemeralPorts.Cli.AtomicFile.TemporaryName("ports.prom")).ToList();
        names.Distinct().Count().ShouldBe(1000);
        names.ShouldAllBe(n => Regex.IsMatch(n, "^\\.ports\\.prom\\.[0-9a-f]{32}\\.tmp$"));
    }

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
