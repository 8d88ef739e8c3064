using EphemeralPorts.Acquisition;
using System.Diagnostics;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Cli;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Acquisition.ProcFs;

/// <summary>
/// A /proc tree made by someone else (<c>--proc-root</c>): links that lead out of it, a comm file
/// that is a secret or /dev/zero, FIFOs and devices. Every read stays in the tree, has a bound and
/// refuses what is not a regular file; error messages quote only a short, escaped excerpt.
/// </summary>
public sealed class HostileTreeTests : IDisposable
{
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");
    private readonly TempProc _tree = TempProc.CopyOf(Sound);
    private readonly string _secret;

    public HostileTreeTests()
    {
        _secret = Path.Combine(Directory.CreateTempSubdirectory("cep-secret-").FullName, "secret");
        File.WriteAllText(_secret, "TOPSECRET-first-line\nTOPSECRET-second-line\n");
    }

    private string Range => _tree.PathOf("sys/net/ipv4/ip_local_port_range");

    public static TheoryData<bool> Walks => new() { false, true };

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [MemberData(nameof(Walks))]
    public void An_absolute_link_out_of_the_tree_is_refused(bool walk)
    {
        File.Delete(Range);
        File.CreateSymbolicLink(Range, _secret);
        Refusal(walk).ShouldBe($"{Range}: a symbolic link leads out of the tree");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [MemberData(nameof(Walks))]
    public void A_relative_link_climbing_out_of_the_tree_is_refused(bool walk)
    {
        File.Delete(Range);
        File.CreateSymbolicLink(Range, Path.GetRelativePath(Path.GetDirectoryName(Range)!, _secret));
        Refusal(walk).ShouldBe($"{Range}: a symbolic link leads out of the tree");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [MemberData(nameof(Walks))]
    public void A_directory_link_out_of_the_tree_is_refused(bool walk)
    {
        var ipv4 = _tree.PathOf("sys/net/ipv4");
        var outside = Directory.CreateTempSubdirectory("cep-outside-").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(ipv4))
            {
                File.Copy(file, Path.Combine(outside, Path.GetFileName(file)));
            }

            Directory.Delete(ipv4, recursive: true);
            Directory.CreateSymbolicLink(ipv4, outside);
            Refusal(walk).ShouldBe($"{Range}: a symbolic link leads out of the tree");
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Walks))]
    public void Links_inside_the_tree_are_followed_as_in_the_kernels_proc(bool walk)
    {
        // /proc/net is a link to self/net, /proc/self one to the pid: both stay inside.
        var net = _tree.PathOf("net");
        Directory.CreateDirectory(_tree.PathOf("4242"));
        Directory.Move(net, _tree.PathOf("4242/net"));
        File.CreateSymbolicLink(_tree.PathOf("self"), "4242");
        File.CreateSymbolicLink(net, "self/net");
        using var root = new Host(_tree.Root, walkPaths: walk).Open();
        using var reader = root.OpenLines("net/tcp", optional: false)!;
        reader.TryReadLine(out var header).ShouldBeTrue();
        SocketTableParser.IsHeader(header).ShouldBeTrue();
        root.OpenLines("net/../net/./tcp", optional: false)!.Dispose();
        Should.Throw<CheckException>(() => root.OpenLines("net/../../../x", optional: false)).Message.ShouldEndWith("a symbolic link leads out of the tree");
    }

    [Theory]
    [MemberData(nameof(Walks))]
    public void A_magic_link_is_not_followed(bool walk)
    {
        // /proc/self/root is a magic link to "/": reading /proc/self/root/etc/hostname through it
        // would leave the tree.
        var root = new Host("/proc", walkPaths: walk).Open();
        var e = Should.Throw<CheckException>(() => root.ReadSmallFile("self/root/etc/hostname", optional: false));
        e.Message.ShouldBeOneOf(
            "/proc/self/root/etc/hostname: too many symbolic links, or a link into another process's files",
            "/proc/self/root/etc/hostname: a symbolic link leads out of the tree");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_comm_linked_to_a_secret_names_no_secret()
    {
        var run = WithProcess(comm => File.CreateSymbolicLink(comm, _secret));
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldContain("held by pid 4242 (?) 1");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_comm_longer_than_the_kernels_is_not_read_past_its_bound()
    {
        // What a hard link to a file elsewhere looks like: inside the tree, only the bound stops it.
        var run = WithProcess(comm => File.WriteAllText(comm, "TOPSECRET-first-line\nTOPSECRET-second-line\n"));
        run.Stdout.ShouldNotContain("TOPSECRET");
        run.Stdout.ShouldContain("held by pid 4242 (?) 1");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_comm_linked_to_dev_zero_costs_neither_memory_nor_time()
    {
        var clock = Stopwatch.StartNew();
        var run = WithProcess(comm => File.CreateSymbolicLink(comm, "/dev/zero"), measure: true);
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5));
        run.Stdout.ShouldContain("held by pid 4242 (?) 1");
        MaxRssKb(run.Stderr).ShouldBeLessThan(200_000, "the process must not grow reading /dev/zero");
    }

    [RootFact]
    public void A_device_node_in_the_tree_is_refused_for_what_it_is()
    {
        File.Delete(_tree.PathOf("net/udp"));
        Command.MustSucceed("mknod", "-m", "444", _tree.PathOf("net/udp"), "c", "1", "5");
        var run = Support.Plugin.Native(["--proc-root", _tree.Root], limit: TimeSpan.FromSeconds(10));
        run.ShouldBeOneUnknownLine("a device");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {_tree.PathOf("net/udp")}: not a regular file (a character device)\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_quoted_excerpt_is_short_and_escaped()
    {
        File.WriteAllText(Range, "\u001b]0;owned\u0007 | 'x' \\ " + new string('A', 200));
        var run = Support.Plugin.Native(["--proc-root", _tree.Root]);
        run.ShouldBeOneUnknownLine("garbage");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {Range} line 1: expected two ports, found '\\x1b]0;owned\\x07 \\x7c \\x27x\\x27 \\x5c AAAAAAAAAAAAAAAAAAAAA...'\n");
    }

    [Fact]
    public void A_command_name_is_escaped()
    {
        SocketOwners.CommandName("a|b\u001b\n").ShouldBe("a\\x7cb\\x1b");
        SocketOwners.CommandName("fifteen-chars-x\n").ShouldBe("fifteen-chars-x");
        SocketOwners.CommandName("two\nlines\n").ShouldBeNull();
        SocketOwners.CommandName("\n").ShouldBeNull();
    }

    // --processes on the fixture with one process, 4242, holding a socket of the busiest tuple.
    private PluginRun WithProcess(Action<string> plantComm, bool measure = false)
    {
        var inode = FirstTupleInode();
        var fd = _tree.PathOf("4242/fd");
        Directory.CreateDirectory(fd);
        File.CreateSymbolicLink(Path.Combine(fd, "3"), $"socket:[{inode}]");
        plantComm(_tree.PathOf("4242/comm"));
        string[] args = ["--proc-root", _tree.Root, "--processes", "-t", "10"];
        if (!measure)
        {
            return Support.Plugin.Native(args, limit: TimeSpan.FromSeconds(30));
        }

        var start = new ProcessStartInfo("/usr/bin/time") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-f", "maxrss=%M", Repo.NativeBinary }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }

        return Support.Plugin.Run(start, TimeSpan.FromSeconds(30));
    }

    private static long MaxRssKb(string timeOutput) =>
        long.Parse(timeOutput.Split('\n').Single(l => l.StartsWith("maxrss=", StringComparison.Ordinal))[7..], System.Globalization.CultureInfo.InvariantCulture);

    private long FirstTupleInode()
    {
        // The fixture's established outbound connections all belong to the busiest tuple.
        foreach (var line in File.ReadLines(_tree.PathOf("net/tcp")).Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f[3] == "01" && f[9] != "0")
            {
                return long.Parse(f[9], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("no established socket with an inode in the fixture");
    }

    private string Refusal(bool walk)
    {
        var root = new Host(_tree.Root, walkPaths: walk).Open();
        var message = Should.Throw<CheckException>(() => root.ReadSmallFile("sys/net/ipv4/ip_local_port_range", optional: false)).Message;
        message.ShouldNotContain("TOPSECRET");
        if (!walk)
        {
            var run = Support.Plugin.Native(["--proc-root", _tree.Root]);
            run.ShouldBeOneUnknownLine("a link out");
            run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {message}\n");
        }

        return message;
    }

    public void Dispose()
    {
        _tree.Dispose();
        Directory.Delete(Path.GetDirectoryName(_secret)!, recursive: true);
    }
}
