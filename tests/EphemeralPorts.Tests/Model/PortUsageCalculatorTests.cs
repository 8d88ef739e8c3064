using EphemeralPorts.Evaluation;
using EphemeralPorts.Kinds;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Tests.Model;

/// <summary>The capacity formula of docs/kernel-model.md on a 10-port range, 40000-40009.</summary>
public class PortUsageCalculatorTests
{
    private static readonly IpAddress Lo = IpAddress.Parse("127.0.0.1");
    private static readonly IpAddress Lo2 = IpAddress.Parse("127.0.0.2");
    private static readonly IpAddress Any = IpAddress.Parse("0.0.0.0");
    private static readonly IpAddress Lan = IpAddress.Parse("192.0.2.10");
    private static readonly IpAddress Db = IpAddress.Parse("192.0.2.20");

    private static KernelSettings Settings(string reserved = "", int twReuse = 2, int timestamps = 1) =>
        new(new PortRange(40000, 40009), EphemeralPorts.Acquisition.ProcFs.SysctlParser.ParseReservedPorts(reserved, "test"), twReuse, 1000, true, timestamps, 60);

    private static SocketEntry Tcp(IpAddress local, int localPort, IpAddress remote, int remotePort, byte state = TcpState.Established, long timeWaitLeftMs = -1) =>
        new(Transport.Tcp, local, localPort, remote, remotePort, state, timeWaitLeftMs, 0);

    private static SocketEntry Udp(int localPort) => new(Transport.Udp, Any, localPort, Any, 0, 7, -1, 0);

    private static PortUsage Run(KernelSettings settings, params SocketEntry[] sockets)
    {
        var calculator = new PortUsageCalculator(settings);
        foreach (var socket in sockets)
        {
            calculator.Add(socket);
        }

        return calculator.Finish();
    }

    [Fact]
    public void Tuples_sharing_port_numbers_are_counted_apart()
    {
        var sockets = Enumerable.Range(40000, 5).Select(p => Tcp(Lo, p, Lo, 5000))
            .Concat(Enumerable.Range(40000, 3).Select(p => Tcp(Lo, p, Lo, 5001)))
            .Concat(Enumerable.Range(40000, 4).Select(p => Tcp(Lo, p, Lo2, 5000)))
            .ToArray();
        var tcp = Run(Settings(), sockets).Tcp!;
        tcp.Capacity.ShouldBe(10);
        tcp.Tuples.Select(t => (t.Tuple.ToString(), t.Used)).ShouldBe(
        [
            ("127.0.0.1 -> 127.0.0.1:5000", 5),
            ("127.0.0.1 -> 127.0.0.2:5000", 4),
            ("127.0.0.1 -> 127.0.0.1:5001", 3),
        ]);
        tcp.BusiestPercent.ShouldBe(50);
        tcp.PortsInUse.ShouldBe(5);
    }

    [Fact]
    public void A_listener_in_the_range_costs_every_tuple_its_port_and_inbound_children_cost_nothing_more()
    {
        var usage = Run(
            Settings(),
            Tcp(Lo2, 40005, Any, 0, TcpState.Listen),
            Tcp(Lo2, 40005, Lo, 40001), // accepted child of the in-range listener
            Tcp(Lo, 40001, Lo2, 40005), // the client side: an ordinary outbound connection
            Tcp(Lo, 40002, Db, 5432));
        var tcp = usage.Tcp!;
        tcp.Capacity.ShouldBe(9);
        tcp.ExclusivePortCount.ShouldBe(1);
        tcp.Exclusive.Single().Address.ShouldBe(Lo2);
        tcp.Tuples.Count.ShouldBe(2);
        tcp.Tuples.ShouldAllBe(t => t.Used == 1);
        tcp.PortsInUse.ShouldBe(3);
    }

    [Fact]
    public void A_bound_but_idle_socket_holds_its_port_for_every_tuple()
    {
        var tcp = Run(Settings(), Tcp(Any, 40003, Any, 0, TcpState.Close), Tcp(Lo, 40004, Lo, 80, TcpState.BoundInactive)).Tcp!;
        tcp.Capacity.ShouldBe(8);
        tcp.Tuples.ShouldBeEmpty();
    }

    [Fact]
    public void Reserved_ports_leave_the_range_for_tcp_and_udp_and_are_not_counted_as_used()
    {
        var usage = Run(
            Settings("40000-40003,40007"),
            Tcp(Lo, 40000, Lo, 5000), // explicitly bound into a reserved port: not from the ephemeral pool
            Tcp(Lo, 40004, Lo, 5000),
            Tcp(Lo, 40007, Any, 0, TcpState.Listen), // a reserved listener is already out of the range
            Udp(40001),
            Udp(40005));
        usage.ReservedInRange.ShouldBe(5);
        usage.Tcp!.Capacity.ShouldBe(5);
        usage.Tcp.BusiestUsed.ShouldBe(1);
        usage.Tcp.ExclusivePortCount.ShouldBe(0);
        usage.Udp!.Capacity.ShouldBe(5);
        usage.Udp.Used.ShouldBe(1);
        usage.Udp.Sockets.ShouldBe(2);
    }

    [Fact]
    public void Ports_outside_the_range_do_not_count()
    {
        var usage = Run(Settings(), Tcp(Lo, 39999, Lo, 5000), Tcp(Lo, 40010, Lo, 5000), Udp(53), Udp(40010));
        usage.Tcp!.Tuples.ShouldBeEmpty();
        usage.Tcp.PortsInUse.ShouldBe(0);
        usage.Udp!.Used.ShouldBe(0);
    }

    [Theory]
    // tw_reuse, timestamps, source, age (ms), reusable?
    [InlineData(0, 1, "127.0.0.1", 30_000, false)]
    [InlineData(1, 1, "192.0.2.10", 30_000, true)]
    [InlineData(1, 0, "192.0.2.10", 30_000, false)]
    [InlineData(2, 1, "127.0.0.1", 30_000, true)]
    [InlineData(2, 1, "192.0.2.10", 30_000, false)]
    [InlineData(2, 1, "127.0.0.1", 500, false)]
    [InlineData(1, 1, "192.0.2.10", 1000, false)]
    [InlineData(1, 2, "192.0.2.10", 1001, true)]
    public void Time_wait_counts_unless_the_kernel_would_reuse_it(int twReuse, int timestamps, string source, long ageMs, bool reusable)
    {
        var src = IpAddress.Parse(source);
        var dst = src.IsLoopback ? Lo : Db;
        var tcp = Run(
            Settings(twReuse: twReuse, timestamps: timestamps),
            Tcp(src, 40001, dst, 5000, TcpState.TimeWait, KernelSettings.TimeWaitLengthMs - ageMs),
            Tcp(src, 40002, dst, 5000)).Tcp!;
        var tuple = tcp.Tuples.Single();
        tuple.TimeWait.ShouldBe(1);
        tuple.ReusableTimeWait.ShouldBe(reusable ? 1 : 0);
        tuple.Used.ShouldBe(reusable ? 1 : 2);
        tcp.TimeWait.ShouldBe(1);
    }

    [Fact]
    public void Loopback_destination_is_enough_for_tw_reuse_2()
    {
        var tcp = Run(Settings(twReuse: 2), Tcp(Lan, 40001, Lo, 5000, TcpState.TimeWait, 10_000)).Tcp!;
        tcp.ReusableTimeWait.ShouldBe(1);
        tcp.BusiestUsed.ShouldBe(0);
    }

    [Fact]
    public void V4_mapped_and_plain_ipv4_share_one_tuple_and_ipv6_is_apart()
    {
        var mapped = IpAddress.Parse("::ffff:127.0.0.1");
        var v6 = IpAddress.Parse("::1");
        var tcp = Run(Settings(), Tcp(Lo, 40001, Lo, 5000), Tcp(mapped, 40002, mapped, 5000), Tcp(v6, 40001, v6, 5000)).Tcp!;
        tcp.Tuples.Select(t => (t.Tuple.ToString(), t.Used)).ShouldBe([("127.0.0.1 -> 127.0.0.1:5000", 2), ("::1 -> [::1]:5000", 1)]);
    }

    [Fact]
    public void A_socket_seen_twice_in_a_changing_table_counts_once()
    {
        var socket = Tcp(Lo, 40001, Lo, 5000);
        Run(Settings(), socket, socket, Udp(40002), Udp(40002)).Tcp!.BusiestUsed.ShouldBe(1);
        Run(Settings(), Udp(40002), Udp(40002)).Udp!.Used.ShouldBe(1);
    }

    /// <summary>
    /// Thousands of random sockets (tuples sharing ports, duplicates, TIME_WAITs of both kinds,
    /// listeners, reserved ports) against the formula written out the slow way: per tuple, the
    /// distinct (port, kind) pairs off reserved and excluded ports.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_sockets_give_what_the_formula_written_out_gives(int seed)
    {
        var random = new Random(seed);
        var settings = new KernelSettings(new PortRange(40000, 40999), EphemeralPorts.Acquisition.ProcFs.SysctlParser.ParseReservedPorts("40100-40149,40500", "test"), 1, 1000, true, 1, 60);
        IpAddress[] sources = [Lo, Lo2, Lan, IpAddress.Parse("::1")];
        IpAddress[] destinations = [Lo, Db, IpAddress.Parse("::1")];
        var sockets = new List<SocketEntry>();
        for (var i = 0; i < 5000; i++)
        {
            var port = random.Next(39990, 41010);
            var state = random.Next(20) switch
            {
                0 => TcpState.Listen,
                < 5 => TcpState.TimeWait,
                _ => TcpState.Established,
            };
            var socket = state == TcpState.Listen
                ? Tcp(sources[random.Next(sources.Length)], port, Any, 0, state)
                : Tcp(sources[random.Next(sources.Length)], port, destinations[random.Next(destinations.Length)], 5000 + random.Next(3), state, random.Next(2) == 0 ? 30_000 : 59_900);
            sockets.Add(socket);
            if (random.Next(10) == 0)
            {
                sockets.Add(socket);
            }
        }

        var tcp = Run(settings, [.. sockets]).Tcp!;

        var inRange = sockets.Where(s => settings.Range.Contains(s.LocalPort) && !settings.Reserved.Contains(s.LocalPort)).ToList();
        var excluded = inRange.Where(s => s.State == TcpState.Listen).Select(s => s.LocalPort).ToHashSet();
        var expected = inRange
            .Where(s => s.State != TcpState.Listen && !excluded.Contains(s.LocalPort))
            .Select(s => (Tuple: new TupleKey(s.LocalAddress, s.RemoteAddress, s.RemotePort), s.LocalPort, Kind: s.State != TcpState.TimeWait ? 0 : settings.IsReusableTimeWait(s) ? 2 : 1))
            .Distinct()
            .GroupBy(x => x.Tuple)
            .Select(g => (g.Key.ToString(), Used: g.Where(x => x.Kind != 2).Select(x => x.LocalPort).Distinct().Count(), TimeWait: g.Count(x => x.Kind != 0), Reusable: g.Count(x => x.Kind == 2)))
            .OrderByDescending(t => t.Used).ThenBy(t => t.Item1, StringComparer.Ordinal)
            .ToList();
        tcp.Tuples.Select(t => (t.Tuple.ToString(), t.Used, t.TimeWait, t.ReusableTimeWait)).OrderByDescending(t => t.Used).ThenBy(t => t.Item1, StringComparer.Ordinal).ToList().ShouldBe(expected);
        tcp.Capacity.ShouldBe(1000 - 51 - excluded.Count);
        tcp.TimeWait.ShouldBe(expected.Sum(t => t.TimeWait));
        tcp.ReusableTimeWait.ShouldBe(expected.Sum(t => t.Reusable));
        expected.Sum(t => t.Reusable).ShouldBeGreaterThan(0);
        expected.Sum(t => t.TimeWait - t.Reusable).ShouldBeGreaterThan(0);
    }

    [Fact]
    public void A_full_tuple_is_100_percent_and_a_range_with_nothing_left_is_too()
    {
        Run(Settings(), Enumerable.Range(40000, 10).Select(p => Tcp(Lo, p, Lo, 5000)).ToArray()).Tcp!.BusiestPercent.ShouldBe(100);
        var none = Run(Settings("40000-40009"));
        none.Tcp!.Capacity.ShouldBe(0);
        none.Tcp.BusiestPercent.ShouldBe(100);
        none.Udp!.Percent.ShouldBe(100);
    }

    [Fact]
    public void State_counts_cover_every_tcp_socket_on_a_range_port()
    {
        var tcp = Run(Settings(), Tcp(Lo, 40001, Lo, 5000), Tcp(Lo, 40002, Lo, 5000), Tcp(Lo, 40003, Any, 0, TcpState.Listen), Tcp(Lo, 40004, Lo, 5000, TcpState.TimeWait, 100)).Tcp!;
        tcp.StateCounts.ShouldBe(new Dictionary<byte, int> { [TcpState.Established] = 2, [TcpState.TimeWait] = 1, [TcpState.Listen] = 1 });
    }

    [Fact]
    public void Evaluation_takes_the_worse_of_tcp_and_udp_and_advises_only_when_alerting()
    {
        var thresholds = new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85"));
        var busyUdp = Run(Settings(twReuse: 0), Enumerable.Range(40000, 8).Select(Udp).Append(Tcp(Lo, 40001, Lo, 5000)).ToArray());
        var evaluation = ExhaustionKinds.Evaluate(new Readings(busyUdp), thresholds);
        evaluation.StateOf(EphemeralPorts.Kinds.TcpTuples.TcpTupleKind.Instance).ShouldBe(ServiceState.Ok);
        evaluation.StateOf(EphemeralPorts.Kinds.Udp.UdpKind.Instance).ShouldBe(ServiceState.Warning);
        evaluation.State.ShouldBe(ServiceState.Warning);
        evaluation.Advice.ShouldHaveSingleItem().ShouldContain("UDP sockets");

        var idle = ExhaustionKinds.Evaluate(new Readings(Run(Settings())), thresholds);
        idle.State.ShouldBe(ServiceState.Ok);
        idle.Advice.ShouldBeEmpty();
    }

    [Fact]
    public void Advice_follows_from_what_was_read()
    {
        var thresholds = new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85"));
        var sockets = Enumerable.Range(40000, 5).Select(p => Tcp(Lan, p, Db, 5432))
            .Concat(Enumerable.Range(40005, 4).Select(p => Tcp(Lan, p, Db, 5432, TcpState.TimeWait, 10_000)))
            .Append(Tcp(Any, 40009, Any, 0, TcpState.Listen))
            .ToArray();
        var evaluation = ExhaustionKinds.Evaluate(new Readings(Run(Settings(twReuse: 0), sockets)), thresholds);
        evaluation.State.ShouldBe(ServiceState.Critical);
        evaluation.Advice.Count.ShouldBe(4);
        evaluation.Advice.ShouldBe(
        [
            "tcp_tw_reuse=0 keeps the busiest tuple's 4 TIME_WAIT ports: set net.ipv4.tcp_tw_reuse=1 or pool connections",
            "listeners/bind() hold 1 ports of the range: move them outside 40000-40009",
            "only 10 ports in the range: widen net.ipv4.ip_local_port_range",
            "capacity is per (source, destination, port): add source or destination addresses/ports, or reuse connections",
        ]);
    }
}
