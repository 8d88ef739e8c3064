using System.Diagnostics;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Every bad input gets one line, <c>EPHEMERAL PORTS UNKNOWN - what and where</c>, exit 3, nothing on
/// stderr and never a stack trace: in-process and from the native binary (where CommandLineParser
/// runs under Native AOT).
/// </summary>
public class BadInputTests
{
    private static readonly string Sound = Path.Combine(Repo.Fixtures, "tuple-at-80-percent-warns", "proc");

    public static TheoryData<string[], string> BadArguments => new()
    {
        { ["--bogus"], "bad arguments: Option 'bogus' is unknown. (see --help)" },
        { ["-x"], "bad arguments: Option 'x' is unknown. (see --help)" },
        { ["-w"], "option -w needs a value (see --help)" },
        { ["--critical"], "option --critical needs a value (see --help)" },
        { ["-w", "-c", "80"], "option -w needs a value (see --help)" },
        { ["--warning="], "option --warning needs a value (see --help)" },
        { ["stray"], "unexpected argument 'stray' (see --help)" },
        { ["--"], "unexpected argument '--' (see --help)" },
        { ["-"], "unexpected argument '-' (see --help)" },
        { ["-vz"], "unknown option in '-vz': only -v may be repeated in one word (see --help)" },
        { ["-hv"], "unknown option in '-hv': only -v may be repeated in one word (see --help)" },
        { ["-w", "abc"], "-w/--warning 'abc': bad range: 'abc' is not a number" },
        { ["-c", "90:10"], "-c/--critical '90:10': bad range: start 90 is greater than end 10" },
        { ["-c", "1e9"], "-c/--critical '1e9': bad range: '1e9' is not a number" },
        { ["--top", "-1"], "--top -1: expected 0-100" },
        { ["--top", "100000"], "--top 100000: expected 0-100" },
        { ["--top", "five"], "bad arguments: Option 'top' is defined with a bad format. (see --help)" },
        { ["--top", "99999999999999999999"], "bad arguments: Option 'top' is defined with a bad format. (see --help)" },
        { ["-t", "0"], "-t/--timeout '0': expected SECONDS[:STATE] with SECONDS 1-3600" },
        { ["-t", "99999"], "-t/--timeout '99999': expected SECONDS[:STATE] with SECONDS 1-3600" },
        { ["-t", "-5"], "-t/--timeout '-5': expected SECONDS[:STATE] with SECONDS 1-3600" },
        { ["-t", "10:maybe"], "-t/--timeout '10:maybe': state 'maybe' is not ok, warning, critical or unknown" },
        { ["--protocol", "sctp"], "--protocol 'sctp': expected tcp, udp or all" },
        { ["--source", "ebpf"], "--source 'ebpf': expected auto, bpf, netlink or proc" },
        { ["--source", "netlink", "--proc-root", "/host/proc"], "--source netlink reads this process's own network namespace: it cannot go with --proc-root /host/proc" },
        { ["--format", "xml"], "--format 'xml': expected nagios, json or prometheus" },
        { ["--output"], "option --output needs a value (see --help)" },
        { ["--output", "/tmp/"], "--output '/tmp/': expected a file name" },
        { ["--pid", "abc"], "--pid 'abc': expected a process id" },
        { ["--pid", "0"], "--pid '0': expected a process id" },
        { ["--netns", "/etc/hostname"], "--netns /etc/hostname: /etc/hostname: not a network namespace" },
        { ["--netns", "no-such-netns-here"], "--netns no-such-netns-here: /run/netns/no-such-netns-here: no such namespace" },
        { ["--all-namespaces", "--pid", "1"], "--all-namespaces, --netns and --pid exclude each other: choose one" },
        { ["--netns", "x", "--proc-root", "/tmp"], "--netns and --pid enter namespaces of this host: they cannot go with --proc-root /tmp" },
        { ["--pid", "1", "--proc-root", "/tmp"], "--netns and --pid enter namespaces of this host: they cannot go with --proc-root /tmp" },
        { ["--all-namespaces", "--proc-root", "/etc"], "--all-namespaces found no network namespace in /etc: no process there has a PID/ns/net link naming one" },
        { ["--proc-root", "/nonexistent/proc"], "--proc-root /nonexistent/proc: no such directory" },
        { ["--proc-root", "/etc/hostname"], "--proc-root /etc/hostname: not a directory" },
    };

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void In_process(string[] args, string message)
    {
        var run = Support.Plugin.InProcess(args);
        run.ShouldBeOneUnknownLine(string.Join(' ', args));
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {message}\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [MemberData(nameof(BadArguments))]
    public void Native_binary(string[] args, string message)
    {
        var run = Support.Plugin.Native(args);
        run.ShouldBeOneUnknownLine(string.Join(' ', args));
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {message}\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void Option_order_does_not_matter_and_equals_forms_work()
    {
        string[] a = ["--proc-root", Sound, "-w", "50", "-c", "90", "--top", "2", "--protocol", "tcp"];
        string[] b = ["--protocol=tcp", "--top=2", "-c", "90", "--warning=50", "--proc-root=" + Sound];
        var first = Support.Plugin.Native(a);
        first.ExitCode.ShouldBe(1);
        Support.Plugin.Native(b).Stdout.ShouldBe(first.Stdout);
        Support.Plugin.InProcess(b).Stdout.ShouldBe(first.Stdout);
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void Help_and_version_go_to_stdout_and_exit_3()
    {
        var help = Support.Plugin.Native(["--help"]);
        help.ExitCode.ShouldBe(3);
        help.Stderr.ShouldBeEmpty();
        // Every option of the plugin is in the help of the native binary (CommandLineParser's
        // reflection under Native AOT lists them all only if Options was kept whole).
        var longNames = typeof(EphemeralPorts.Cli.Options).GetProperties()
            .Select(p => p.GetCustomAttributes(typeof(CommandLine.OptionAttribute), false).Cast<CommandLine.OptionAttribute>().Single().LongName);
        foreach (var name in longNames)
        {
            help.Stdout.ShouldContain("--" + name);
        }

        help.Stdout.ShouldContain("Cannot be seen, so not counted");
        Support.Plugin.Native(["-h"]).Stdout.ShouldBe(help.Stdout);
        var version = Support.Plugin.Native(["-V"]);
        version.ExitCode.ShouldBe(3);
        version.Stdout.ShouldMatch(@"^check_ephemeral_ports \d+\.\d+\.\d+\n$");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_sysctl_file_larger_than_any_sysctl_is_refused()
    {
        using var tree = TempProc.CopyOf(Sound);
        File.WriteAllText(tree.PathOf("sys/net/ipv4/ip_local_reserved_ports"), new string('1', 70_000) + "\n");
        var run = Support.Plugin.Native(["--proc-root", tree.Root]);
        run.ShouldBeOneUnknownLine("huge sysctl");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("sys/net/ipv4/ip_local_reserved_ports")}: larger than 65536 bytes, not a sysctl file\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_binary_file_is_refused()
    {
        using var tree = TempProc.CopyOf(Sound);
        File.WriteAllBytes(tree.PathOf("sys/net/ipv4/ip_local_port_range"), [0x34, 0x30, 0x00, 0x01, 0x0A]);
        Support.Plugin.Native(["--proc-root", tree.Root]).Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("sys/net/ipv4/ip_local_port_range")}: binary content (NUL byte)\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void A_directory_where_a_table_should_be_is_named()
    {
        using var tree = TempProc.CopyOf(Sound);
        File.Delete(tree.PathOf("net/udp"));
        Directory.CreateDirectory(tree.PathOf("net/udp"));
        Support.Plugin.Native(["--proc-root", tree.Root]).Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("net/udp")}: is a directory\n");
    }

    [RootFact]
    public void An_unreadable_file_is_named_for_an_unprivileged_user()
    {
        using var tree = TempProc.CopyOf(Sound);
        File.SetUnixFileMode(tree.PathOf("net/tcp"), UnixFileMode.None);
        var run = Support.Plugin.Native(["--proc-root", tree.Root], runAs: "nobody");
        run.ShouldBeOneUnknownLine("unreadable file");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("net/tcp")}: permission denied\n");
    }

    [Trait(Tier.Key, Tier.Full)]
    [Theory]
    [InlineData("1")]
    [InlineData("1:critical")]
    [InlineData("1:OK")]
    public void A_fifo_where_a_table_should_be_answers_at_once_whatever_the_timeout_state(string timeout)
    {
        using var tree = TempProc.CopyOf(Sound);
        File.Delete(tree.PathOf("net/tcp"));
        using (var mkfifo = Process.Start("mkfifo", tree.PathOf("net/tcp")))
        {
            mkfifo.WaitForExit();
            mkfifo.ExitCode.ShouldBe(0);
        }

        // It used to block in open(2) until the timeout; now the file is opened non-blocking and
        // refused for what it is. (A stuck delivery, DeliveryTimeoutTests, still gets the timeout state.)
        var clock = Stopwatch.StartNew();
        var run = Support.Plugin.Native(["--proc-root", tree.Root, "-t", timeout], limit: TimeSpan.FromSeconds(30));
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1), "a FIFO must be refused at once, not waited on");
        run.ShouldBeOneUnknownLine("FIFO");
        run.Stdout.ShouldBe($"EPHEMERAL PORTS UNKNOWN - {tree.PathOf("net/tcp")}: not a regular file (a FIFO)\n");
    }
}

/// <summary>A scratch copy of a fixture /proc tree, removed afterwards.</summary>
public sealed class TempProc : IDisposable
{
    private TempProc(string root) => Root = root;

    public string Root { get; }

    public static TempProc CopyOf(string source)
    {
        var root = Directory.CreateTempSubdirectory("cep-proc-").FullName;
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(root, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (new FileInfo(file).LinkTarget is { } link)
            {
                // A namespace link (net:[INODE]) leads nowhere: it is copied as the link it is.
                File.CreateSymbolicLink(target, link);
            }
            else
            {
                File.Copy(file, target);
            }
        }

        return new TempProc(root);
    }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
