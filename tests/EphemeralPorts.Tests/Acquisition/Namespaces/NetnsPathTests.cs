using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Acquisition.Namespaces;

/// <summary><c>--netns PATH</c> must be an nsfs inode before anything opens it: a FIFO there answers at once.</summary>
[Trait(Tier.Key, Tier.Full)]
public sealed class NetnsPathTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cep-netns-").FullName;

    [Fact]
    public void A_fifo_answers_unknown_within_a_second()
    {
        var fifo = Path.Combine(_dir, "ns");
        Command.MustSucceed("mkfifo", fifo);
        var clock = Stopwatch.StartNew();
        var run = Support.Plugin.Native(["--netns", fifo, "-t", "30"], limit: TimeSpan.FromSeconds(40));
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1));
        run.ShouldBeOneUnknownLine("FIFO as --netns");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --netns {fifo}: {fifo}: not a network namespace\n");
    }

    [Fact]
    public void A_fifo_as_a_name_under_run_netns_is_not_climbed_to()
    {
        Support.Plugin.Native(["--netns", ".."]).Stdout.ShouldBe("EPHEMERAL PORTS UNKNOWN - --netns ..: not a namespace name\n");
    }

    [Fact]
    public void A_directory_or_a_regular_file_is_no_namespace()
    {
        Support.Plugin.Native(["--netns", _dir]).Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - --netns {_dir}: {_dir}: not a network namespace\n");
    }

    [RootFact]
    public void The_own_namespace_file_still_works()
    {
        var run = Support.Plugin.Native(["--netns", "/proc/self/ns/net"]);
        run.Stderr.ShouldBeEmpty();
        run.ExitCode.ShouldBeInRange(0, 2, run.Stdout);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
