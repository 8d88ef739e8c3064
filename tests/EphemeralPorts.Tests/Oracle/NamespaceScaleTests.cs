using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// Fifty namespaces made here (ip netns add), read by --all-namespaces in parallel: one filled
/// until the kernel refuses connect(), a few holding one kind of socket each (the cases the
/// sockstat rule must not skip), the rest empty. Their sockets are held by this process, made by
/// a thread that entered each namespace. Removed when the tests are done.
/// </summary>
public sealed class NamespaceScaleLab : IDisposable
{
    public const int Count = 50;
    private readonly List<Socket> _held = [];

    public NamespaceScaleLab()
    {
        if (Environments.WhyNotRoot() is not null || Environments.WhyNoNamespaces() is not null)
        {
            return;
        }

        Prefix = $"cep-scale-{Environment.ProcessId}-";
        for (var i = 0; i < Count; i++)
        {
            Command.NewNamespace(Name(i), 40000, 40009);
        }

        // tcp_tw_reuse=0: the one TIME_WAIT stays a blocking one for the whole test.
        Command.MustSucceed("ip", "netns", "exec", Name(TimeWaitOnly), "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0");
        Inside(Full, () => FullRefusal = Fill(10_000));
        Inside(Warm, () => Fill(8));
        Inside(BoundOnly, () =>
        {
            var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _held.Add(idle);
            idle.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        });
        Inside(TimeWaitOnly, () =>
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 5000));
            listener.Listen(4);
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(new IPEndPoint(IPAddress.Loopback, 5000));
            using var accepted = listener.Accept();
            client.Close(); // the side that closes first keeps the TIME_WAIT
            accepted.Close();
        });
        Inside(UdpOnly, () =>
        {
            var udp = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            _held.Add(udp);
            udp.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        });
        Thread.Sleep(200);
    }

    public const int Full = 17;
    public const int Warm = 5;
    public const int BoundOnly = 12;
    public const int TimeWaitOnly = 13;
    public const int UdpOnly = 9;

    public string Prefix { get; } = string.Empty;

    public string? FullRefusal { get; private set; }

    public string Name(int i) => $"{Prefix}{i:00}";

    // Connects to a listener on 127.0.0.1:5000 of the namespace, at most `limit` times or until
    // the kernel refuses; returns the refusal ("-" when none).
    private string Fill(int limit)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _held.Add(listener);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 5000));
        listener.Listen(64);
        for (var n = 0; n < Math.Min(limit, 100); n++)
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                client.Connect(new IPEndPoint(IPAddress.Loopback, 5000));
            }
            catch (SocketException e)
            {
                client.Dispose();
                return e.SocketErrorCode.ToString();
            }

            _held.Add(client);
            _held.Add(listener.Accept());
        }

        return "-";
    }

    private void Inside(int i, Action make) =>
        Worker<bool>.Run("lab", () =>
        {
            using var entered = NamespaceSwitch.Enter($"/run/netns/{Name(i)}", out var errno) ?? throw new InvalidOperationException($"setns {Name(i)}: errno {errno}");
            make();
            return true;
        });

    public void Dispose()
    {
        _held.ForEach(s => s.Dispose());
        for (var i = 0; i < Count && Prefix.Length > 0; i++)
        {
            Command.MustSucceed("ip", "netns", "del", Name(i));
        }
    }
}

[Collection(NamespaceCollection.Name)]
public class NamespaceScaleTests(NamespaceScaleLab lab) : IClassFixture<NamespaceScaleLab>
{
    private static JsonElement Json(params string[] args)
    {
        var run = Support.Plugin.Native([.. args, "--format", "json"]);
        run.ExitCode.ShouldBe(0, run.Stdout);
        run.Stderr.ShouldBeEmpty();
        return JsonDocument.Parse(run.Stdout).RootElement.Clone();
    }

    [NamespaceFact]
    public void The_full_one_of_fifty_namespaces_is_named_as_the_worst_and_critical()
    {
        lab.FullRefusal.ShouldBe(nameof(SocketError.AddressNotAvailable), "the kernel refused connect() in the full namespace");
        var run = Support.Plugin.Native(["--all-namespaces"]);
        run.Stderr.ShouldBeEmpty();
        run.ExitCode.ShouldBe(2, run.Stdout);
        run.FirstLine.ShouldStartWith($"EPHEMERAL PORTS CRITICAL - namespace netns {lab.Name(NamespaceScaleLab.Full)}: busiest TCP tuple 127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10 ports (100%), new connections to it fail now");
        run.Perf["namespaces"].ShouldBeGreaterThanOrEqualTo(NamespaceScaleLab.Count + 1);
        run.Perf["namespaces_critical"].ShouldBeGreaterThanOrEqualTo(1);
        run.Stdout.ShouldContain($"  netns {lab.Name(NamespaceScaleLab.Warm)}: WARNING 80%");
        System.Text.Encoding.UTF8.GetByteCount(run.Stdout).ShouldBeLessThan(1024, "the default output fits an NRPE v2 packet");
    }

    [NamespaceFact]
    public void Each_namespace_read_in_parallel_has_the_figures_of_a_run_of_its_own()
    {
        var all = Json("--all-namespaces");
        var overview = all.GetProperty("namespaces").EnumerateArray().ToDictionary(n => n.GetProperty("name").GetString()!);
        foreach (var i in new[] { 0, 1, NamespaceScaleLab.Warm, NamespaceScaleLab.UdpOnly, NamespaceScaleLab.BoundOnly, NamespaceScaleLab.TimeWaitOnly, NamespaceScaleLab.Full, 30, 49 })
        {
            var name = $"netns {lab.Name(i)}";
            var alone = Json("--netns", lab.Name(i));
            var seen = overview[name];
            seen.GetProperty("state").GetString().ShouldBe(alone.GetProperty("state").GetString(), name);
            seen.GetProperty("percent").GetDouble().ShouldBe(alone.GetProperty("usedPercent").GetDouble(), name);
            seen.GetProperty("summary").GetString().ShouldBe(alone.GetProperty("summary").GetString()!.Replace($"EPHEMERAL PORTS {alone.GetProperty("state").GetString()} - namespace {name}: ", string.Empty, StringComparison.Ordinal), name);
        }
    }

    [NamespaceFact]
    public void Sockstat_skips_only_a_namespace_that_provably_holds_nothing()
    {
        var empty = Support.Plugin.Native(["--netns", lab.Name(0), "-vvv"]);
        empty.Stdout.ShouldContain("no socket and no TIME_WAIT in the namespace (sockstat): no socket table walked");

        // A bound-but-idle socket is in no hash that sockstat counts but "sockets: used": read.
        var bound = Support.Plugin.Native(["--netns", lab.Name(NamespaceScaleLab.BoundOnly), "-vvv"]);
        bound.Stdout.ShouldContain("sockets read through ");
        bound.Stdout.ShouldContain("1 held by listeners/bind(), 9 left per (source, destination, port)");
        bound.Perf["capacity"].ShouldBe(9);

        // A TIME_WAIT is no socket in "sockets: used", only in "tw": read.
        var timeWait = Support.Plugin.Native(["--netns", lab.Name(NamespaceScaleLab.TimeWaitOnly), "-vvv"]);
        timeWait.Stdout.ShouldContain("sockets read through ");
        timeWait.Perf["tcp_time_wait"].ShouldBe(1);
        timeWait.Perf["tcp_busiest_used"].ShouldBe(1, "a TIME_WAIT with tcp_tw_reuse=0 blocks its port");

        // One IPv6 UDP socket: read, and only the IPv4 UDP dump is left out.
        var udp = Support.Plugin.Native(["--netns", lab.Name(NamespaceScaleLab.UdpOnly), "--source", "netlink", "-vvv"]);
        udp.Perf["udp_used"].ShouldBe(1);
        udp.Stdout.ShouldContain("netlink: no IPv4 UDP socket in the namespace (sockstat), not dumped");
        udp.Stdout.ShouldNotContain("no IPv6 UDP socket");
    }
}

/// <summary>
/// The shared timeout with more namespaces than can be read in it: tests/oracle/crowd.py makes
/// 300 namespaces with a socket each (so sockstat cannot rule any out) beside 40,000 loopback
/// connections that every namespace's reading walks. With -t 1 the check must answer in time,
/// with the namespaces it did not reach listed as skipped and the state not OK.
/// </summary>
[Collection(NamespaceCollection.Name)]
public class NamespaceDeadlineTests
{
    [NamespaceFact]
    public void A_tiny_timeout_over_many_namespaces_answers_in_time_and_lists_the_unread_as_skipped()
    {
        var prefix = $"cep-crowd-{Environment.ProcessId}-";
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(Repo.Root, "tests", "oracle", "crowd.py"), prefix, "300", "socket", "40000" })
        {
            start.ArgumentList.Add(arg);
        }

        using var crowd = System.Diagnostics.Process.Start(start)!;
        try
        {
            if (crowd.StandardOutput.ReadLine() != "ready")
            {
                throw new Xunit.Sdk.XunitException($"crowd.py failed: {crowd.StandardError.ReadToEnd()}");
            }

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var run = Support.Plugin.Native(["--all-namespaces", "-t", "1"]);
            var wall = clock.Elapsed;
            run.Stderr.ShouldBeEmpty();
            wall.ShouldBeLessThan(TimeSpan.FromSeconds(1.5), "the check answers within its timeout (and process start)");
            run.FirstLine.ShouldNotStartWith("EPHEMERAL PORTS UNKNOWN - timed out", Case.Sensitive, "the namespaces' deadline comes before the check's own");
            if (Environment.ProcessorCount <= 8)
            {
                // 300 walks of 80,000 sockets take several seconds of CPU: on a machine this size
                // most namespaces cannot be read within one.
                run.FirstLine.ShouldContain("not read within the timeout");
                run.ExitCode.ShouldBeOneOf(2, 3);
                run.FirstLine.ShouldNotStartWith("EPHEMERAL PORTS OK", Case.Sensitive, "namespaces not seen are not OK");
                run.Perf["namespaces_skipped"].ShouldBeGreaterThanOrEqualTo(1);
                run.Perf["namespaces"].ShouldBeGreaterThanOrEqualTo(1, "what was read in time still counts");
            }
        }
        finally
        {
            crowd.StandardInput.Close();
            if (!crowd.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                crowd.Kill(entireProcessTree: true);
            }

            foreach (var left in Directory.EnumerateFiles("/run/netns", prefix + "*"))
            {
                Command.MustSucceed("ip", "netns", "del", Path.GetFileName(left));
            }
        }
    }
}

/// <summary>The tests that count or rank every namespace of the host run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class NamespaceCollection
{
    public const string Name = "host namespaces";
}
