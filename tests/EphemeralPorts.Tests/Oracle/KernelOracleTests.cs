using System.Diagnostics;
using System.Text.Json;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// The kernel is the oracle: tests/oracle/oracle.py makes each situation for real in a private
/// network namespace (unshare -n) with the range 40000-40009, opens sockets until the kernel
/// refuses, and runs the published native binary at checkpoints, reading sockets through the BPF
/// iterators, netlink sock_diag and /proc/net in turn. These tests hold every reader's figures
/// against what the kernel did, where the reader can see what decides them.
/// </summary>
public class KernelOracleTests
{
    internal sealed record Checkpoint(string Label, JsonElement Kernel, PluginRun Run)
    {
        public int Fact(string name) => Kernel.GetProperty(name).GetInt32();

        public string? Errno(string name = "errno") => Kernel.TryGetProperty(name, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

        public double Perf(string label) => Run.Perf[label];
    }

    private static readonly string[] Readers = ["bpf", "netlink", "proc"];

    /// <summary>The checkpoints of a scenario, as each socket reader saw them.</summary>
    internal static Dictionary<string, List<Checkpoint>> Oracle(string scenario)
    {
        var start = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "-n", "/usr/bin/python3", Path.Combine(Repo.Root, "tests", "oracle", "oracle.py"), scenario, Repo.NativeBinary })
        {
            start.ArgumentList.Add(arg);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(120));
        run.ExitCode.ShouldBe(0, $"oracle.py {scenario} failed: {run.Stderr}");
        using var doc = JsonDocument.Parse(run.Stdout);
        var checkpoints = doc.RootElement.GetProperty("checkpoints").EnumerateArray().ToList();
        return Readers.ToDictionary(
            reader => reader,
            reader => checkpoints.Select(c =>
            {
                var r = c.GetProperty("runs").GetProperty(reader);
                return new Checkpoint(
                    $"{reader}: {c.GetProperty("label").GetString()}",
                    c.GetProperty("kernel").Clone(),
                    new PluginRun(r.GetProperty("exit").GetInt32(), r.GetProperty("stdout").GetString()!, r.GetProperty("stderr").GetString()!));
            }).ToList());
    }

    /// <summary>The state the default thresholds (-w 70 -c 85) give a percentage.</summary>
    private static int DefaultState(double percent) => percent > 85 ? 2 : percent > 70 ? 1 : 0;

    private static void Sane(Checkpoint c)
    {
        c.Run.Stderr.ShouldBeEmpty(c.Label);
        c.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS ", Case.Sensitive, c.Label);
        c.Run.ExitCode.ShouldBe(DefaultState(Math.Max(c.Perf("tcp_busiest_pct"), c.Perf("udp_used_pct"))), c.Label + ": " + c.Run.FirstLine);
    }

    [NamespaceFact]
    public void Filling_one_tuple_reaches_100_percent_exactly_when_connect_fails()
    {
        foreach (var (reader, checkpoints) in Oracle("fill-one-tuple"))
        {
            var refused = checkpoints[^1];
            refused.Errno().ShouldBe("EADDRNOTAVAIL");
            refused.Fact("connected").ShouldBe(10);
            foreach (var c in checkpoints)
            {
                Sane(c);
                var connected = c.Fact("connected");
                c.Perf("tcp_busiest_used").ShouldBe(connected, c.Label);
                c.Perf("capacity").ShouldBe(refused.Fact("connected"), c.Label);
                c.Perf("tcp_busiest_pct").ShouldBe(connected * 10, c.Label);
            }

            refused.Run.ExitCode.ShouldBe(2);
            refused.Run.FirstLine.ShouldContain("127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10 ports (100%), new connections to it fail now");
            checkpoints.Single(c => c.Label.EndsWith(": after 7", StringComparison.Ordinal)).Run.ExitCode.ShouldBe(0);
            checkpoints.Single(c => c.Label.EndsWith(": after 8", StringComparison.Ordinal)).Run.ExitCode.ShouldBe(1);
            checkpoints.Single(c => c.Label.EndsWith(": after 9", StringComparison.Ordinal)).Run.ExitCode.ShouldBe(2);
        }
    }

    [NamespaceFact]
    public void Two_destinations_each_get_the_whole_range_on_the_same_port_numbers()
    {
        foreach (var (reader, checkpoints) in Oracle("two-destinations"))
        {
            var c = checkpoints.Single();
            c.Fact("first").ShouldBe(10);
            c.Errno("first_errno").ShouldBe("EADDRNOTAVAIL");
            c.Fact("second").ShouldBe(10);
            Sane(c);
            c.Perf("tcp_busiest_used").ShouldBe(10);
            c.Perf("capacity").ShouldBe(10);
            c.Perf("tcp_tuples").ShouldBe(3);
            c.Perf("tcp_ports_in_use").ShouldBe(10);
            c.Run.Stdout.ShouldContain("127.0.0.1 -> 127.0.0.2:5000 4/10 (40%)");
            c.Run.Stdout.ShouldContain("127.0.0.1 -> 127.0.0.1:5001 10/10 (100%)");
        }
    }

    [NamespaceFact]
    public void Listeners_inside_the_range_on_other_addresses_and_families_cost_every_tuple()
    {
        foreach (var (reader, checkpoints) in Oracle("listener-in-range"))
        {
            var c = checkpoints.Single();
            c.Errno().ShouldBe("EADDRNOTAVAIL");
            Sane(c);
            c.Perf("capacity").ShouldBe(c.Fact("connected"));
            c.Perf("tcp_busiest_used").ShouldBe(c.Fact("connected"));
            c.Perf("tcp_busiest_pct").ShouldBe(100);
            c.Run.Stdout.ShouldContain("127.0.0.2:40005 LISTEN");
            c.Run.Stdout.ShouldContain("[::1]:40007 LISTEN");
        }
    }

    [NamespaceFact]
    public void Reserved_ports_are_not_handed_out()
    {
        foreach (var (reader, checkpoints) in Oracle("reserved-ports"))
        {
            var c = checkpoints.Single();
            c.Errno().ShouldBe("EADDRNOTAVAIL");
            c.Fact("connected").ShouldBe(5);
            Sane(c);
            c.Perf("capacity").ShouldBe(5);
            c.Perf("tcp_busiest_pct").ShouldBe(100);
            c.Perf("udp_used").ShouldBe(0);
            c.Run.Stdout.ShouldContain("UDP uses 0 of 5 ports");
        }
    }

    [NamespaceFact]
    public void V4_mapped_connections_share_the_ipv4_tuple_and_ipv6_has_its_own()
    {
        foreach (var (reader, checkpoints) in Oracle("ipv6-and-v4-mapped"))
        {
            var c = checkpoints.Single();
            (c.Fact("mapped") + c.Fact("plain")).ShouldBe(10);
            c.Errno("plain_errno").ShouldBe("EADDRNOTAVAIL");
            c.Fact("v6").ShouldBe(10);
            c.Errno("v6_errno").ShouldBe("EADDRNOTAVAIL");
            Sane(c);
            c.Perf("tcp_busiest_used").ShouldBe(10);
            c.Perf("tcp_tuples").ShouldBe(2);
            c.Run.Stdout.ShouldContain("127.0.0.1 -> 127.0.0.1:5000 10/10 (100%)");
            c.Run.Stdout.ShouldContain("::1 -> [::1]:5000 10/10 (100%)");
        }
    }

    [NamespaceFact]
    public void Time_wait_blocks_its_tuple_with_tw_reuse_0()
    {
        foreach (var (reader, checkpoints) in Oracle("time-wait-reuse-0"))
        {
            checkpoints.ForEach(Sane);
            var fresh = checkpoints[0];
            fresh.Fact("made").ShouldBe(10);
            fresh.Errno().ShouldBe("EADDRNOTAVAIL");
            fresh.Perf("tcp_time_wait").ShouldBe(10);
            fresh.Perf("tcp_busiest_pct").ShouldBe(100);
            var aged = checkpoints[1];
            aged.Perf("tcp_busiest_pct").ShouldBe(100, "tcp_tw_reuse=0 never reuses, however old");
            checkpoints[2].Errno().ShouldBe("EADDRNOTAVAIL");
            checkpoints[2].Perf("tcp_busiest_pct").ShouldBe(100);
        }
    }

    [NamespaceFact]
    public void Time_wait_on_loopback_is_reused_after_the_delay_with_tw_reuse_2()
    {
        foreach (var (reader, checkpoints) in Oracle("time-wait-reuse-2"))
        {
            checkpoints.ForEach(Sane);
            var fresh = checkpoints[0];
            fresh.Fact("made").ShouldBe(10);
            fresh.Errno().ShouldBe("EADDRNOTAVAIL", "younger than tcp_tw_reuse_delay, TIME_WAIT still blocks");
            fresh.Perf("tcp_busiest_pct").ShouldBe(100);
            var aged = checkpoints[1];
            aged.Perf("tcp_time_wait").ShouldBe(10);
            aged.Perf("tcp_busiest_used").ShouldBe(0, "older than the delay, every TIME_WAIT is reusable on loopback");
            aged.Run.ExitCode.ShouldBe(0);
            var after = checkpoints[2];
            after.Errno().ShouldBeNull("the kernel did reuse a TIME_WAIT port");
            after.Perf("tcp_busiest_used").ShouldBe(1);
        }
    }

    [NamespaceFact]
    public void Udp_reaches_100_percent_exactly_when_the_kernel_refuses()
    {
        foreach (var (reader, checkpoints) in Oracle("udp-until-refused"))
        {
            var refused = checkpoints[^1];
            refused.Errno().ShouldBe("EAGAIN");
            refused.Fact("sockets").ShouldBe(10);
            foreach (var c in checkpoints)
            {
                Sane(c);
                c.Perf("udp_used").ShouldBe(c.Fact("sockets"), c.Label);
            }

            refused.Perf("udp_used_pct").ShouldBe(100);
            refused.Run.ExitCode.ShouldBe(2);
            refused.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - UDP uses 10 of 10 ports (100%), new UDP sockets fail now");
        }
    }

    [NamespaceFact]
    public void A_bound_but_idle_socket_is_seen_by_netlink_and_is_a_known_blind_spot_of_proc()
    {
        var readers = Oracle("bound-idle");
        var netlink = readers["netlink"].Single();
        netlink.Errno().ShouldBe("EADDRNOTAVAIL");
        netlink.Fact("connected").ShouldBe(9, "the idle socket's port is lost to every tuple");
        Sane(netlink);
        netlink.Perf("capacity").ShouldBe(9);
        netlink.Perf("tcp_busiest_pct").ShouldBe(100);
        netlink.Run.Stdout.ShouldContain("127.0.0.2:40003");

        // /proc/net/tcp does not list bound-but-idle sockets: the README and --help say so.
        var proc = readers["proc"].Single();
        proc.Perf("capacity").ShouldBe(10);
        proc.Perf("tcp_busiest_used").ShouldBe(9);

        // The BPF iterators do not visit it either: its reading adds sock_diag's bound-inactive dump.
        var bpf = readers["bpf"].Single();
        bpf.Perf("capacity").ShouldBe(9);
        bpf.Perf("tcp_busiest_pct").ShouldBe(100);
        bpf.Run.Stdout.ShouldContain("127.0.0.2:40003");
    }

    /// <summary>
    /// Two readers, one answer: about 4,000 varied sockets (listeners in the range on v4 and v6,
    /// ESTABLISHED both ways, v4-mapped and IPv6, inbound children of an in-range listener,
    /// TIME_WAIT, FIN_WAIT2/CLOSE_WAIT, UDP connected and not, reserved ports). The JSON document
    /// is the whole model; netlink's and /proc's must be identical, field by field.
    /// </summary>
    [NamespaceFact]
    public void Netlink_and_proc_build_the_same_model_of_thousands_of_varied_sockets()
    {
        var readers = Oracle("differential");
        var netlink = readers["netlink"].Single();
        var proc = readers["proc"].Single();
        netlink.Fact("made").ShouldBe(1800);
        netlink.Run.ExitCode.ShouldBe(0);
        netlink.Run.Stderr.ShouldBeEmpty();
        proc.Run.Stderr.ShouldBeEmpty();
        using var a = JsonDocument.Parse(netlink.Run.Stdout);
        using var b = JsonDocument.Parse(proc.Run.Stdout);
        foreach (var property in a.RootElement.EnumerateObject())
        {
            b.RootElement.GetProperty(property.Name).GetRawText().ShouldBe(property.Value.GetRawText(), $"field {property.Name}");
        }

        b.RootElement.EnumerateObject().Count().ShouldBe(a.RootElement.EnumerateObject().Count());

        // BPF sees every fact netlink sees and builds the same model of them; it adds the
        // bind(addr, 0) figure (none of these sockets took its port by bind() before connect()).
        var bpf = readers["bpf"].Single();
        bpf.Run.ExitCode.ShouldBe(0, bpf.Run.Stdout);
        using var c = JsonDocument.Parse(bpf.Run.Stdout);
        foreach (var property in a.RootElement.EnumerateObject().Where(p => p.Name != "tcp" && p.Name != "perfdata"))
        {
            c.RootElement.GetProperty(property.Name).GetRawText().ShouldBe(property.Value.GetRawText(), $"bpf: field {property.Name}");
        }

        foreach (var property in a.RootElement.GetProperty("tcp").EnumerateObject())
        {
            c.RootElement.GetProperty("tcp").GetProperty(property.Name).GetRawText().ShouldBe(property.Value.GetRawText(), $"bpf: field tcp.{property.Name}");
        }

        c.RootElement.GetProperty("tcp").GetProperty("bindBeforeConnect").GetProperty("addresses").GetArrayLength().ShouldBe(0);
        var tcp = a.RootElement.GetProperty("tcp");
        tcp.GetProperty("states").GetProperty("TIME_WAIT").GetInt32().ShouldBe(300);
        tcp.GetProperty("states").GetProperty("FIN_WAIT2").GetInt32().ShouldBe(200);
        tcp.GetProperty("listenersInRange").GetArrayLength().ShouldBe(2);
        tcp.GetProperty("capacity").GetInt32().ShouldBe(5000 - 100 - 2);
        a.RootElement.GetProperty("udp").GetProperty("used").GetInt32().ShouldBe(500);
        a.RootElement.GetProperty("topDestinations").GetArrayLength().ShouldBeGreaterThan(4);
    }
}
