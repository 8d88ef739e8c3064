using EphemeralPorts.Tests.Support;
using Checkpoint = EphemeralPorts.Tests.Oracle.KernelOracleTests.Checkpoint;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// The facts only the kernel's own structures show (docs/kernel-model.md, facts 2-4), each built
/// for real by tests/oracle/oracle.py: the kernel's refusal point is proven first, then the
/// default reading (BPF, as root) must say 100% and CRITICAL exactly there and the right figures
/// before. Through sock_diag and /proc the answer stays what those readings can see, and -vv
/// names the blind spot.
/// </summary>
public class BpfOracleTests
{
    private static readonly string[] BlindReaders = ["netlink", "proc"];

    private static void BlindSpotIsNamed(Dictionary<string, List<Checkpoint>> readers, string blindSpot)
    {
        foreach (var reader in BlindReaders)
        {
            var run = Support.Plugin.Native(["--source", reader, "-vv", "--proc-root", "/proc"]);
            run.Stdout.ShouldContain($"not visible: ", Case.Sensitive, reader);
            run.Stdout.ShouldContain(blindSpot, Case.Sensitive, reader);
        }

        readers["bpf"][^1].Run.Stderr.ShouldBeEmpty();
    }

    [NamespaceFact]
    public void Bind_before_connect_over_five_destinations_exhausts_the_host_and_bpf_says_so()
    {
        var readers = KernelOracleTests.Oracle("bind-before-connect-spread");
        var bpf = readers["bpf"];
        var refused = bpf[^1];
        refused.Fact("made").ShouldBe(10);
        refused.Errno("plain_errno").ShouldBe("EADDRNOTAVAIL", "no plain connect() gets a port");
        refused.Errno("bind_errno").ShouldBe("EADDRINUSE", "bind(127.0.0.1, 0) has no port left");
        refused.Errno("other_bind_errno").ShouldBe("-", "bind(127.0.0.2, 0) still gets one");

        refused.Run.ExitCode.ShouldBe(2, refused.Run.Stdout);
        refused.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - bind(127.0.0.1, 0) has 0 of 10 ports left: 10 connections took their port by bind() before connect(), set IP_BIND_ADDRESS_NO_PORT or drop the source address");
        refused.Perf("tcp_bind_busiest_pct").ShouldBe(100);
        refused.Perf("tcp_bind_busiest_used").ShouldBe(10);
        refused.Perf("capacity").ShouldBe(0, "every port is lost to connect() tuples");
        refused.Perf("tcp_busiest_pct").ShouldBe(100, "with no port left to any tuple, the tuple figure reads 100%");
        var after5 = bpf.Single(c => c.Label.EndsWith("after 5", StringComparison.Ordinal));
        after5.Run.ExitCode.ShouldBe(0);
        after5.Perf("tcp_bind_busiest_pct").ShouldBe(50);
        after5.Perf("capacity").ShouldBe(5);
        var after8 = bpf.Single(c => c.Label.EndsWith("after 8", StringComparison.Ordinal));
        after8.Run.ExitCode.ShouldBe(1, after8.Run.Stdout);
        after8.Perf("tcp_bind_busiest_pct").ShouldBe(80);

        // sock_diag and /proc cannot tell: they see 2 connections per destination, OK 20%.
        foreach (var reader in BlindReaders)
        {
            var blind = readers[reader][^1];
            blind.Run.ExitCode.ShouldBe(0, reader);
            blind.Perf("tcp_busiest_pct").ShouldBe(20, reader);
            blind.Run.Stdout.ShouldNotContain("bind(127.0.0.1, 0)");
        }

        BlindSpotIsNamed(readers, "sockets given their port by bind() before connect()");
    }

    [NamespaceFact]
    public void Bind_before_connect_mixed_with_plain_connects_leaves_the_plain_tuple_what_bind_left()
    {
        var readers = KernelOracleTests.Oracle("bind-before-connect-mixed");
        var refused = readers["bpf"].Single();
        refused.Fact("plain").ShouldBe(5, "5 bind()-owned ports are lost to the plain tuple");
        refused.Errno().ShouldBe("EADDRNOTAVAIL");
        refused.Run.ExitCode.ShouldBe(2, refused.Run.Stdout);
        refused.Perf("capacity").ShouldBe(5);
        refused.Perf("tcp_busiest_used").ShouldBe(5);
        refused.Perf("tcp_busiest_pct").ShouldBe(100);
        refused.Perf("tcp_bind_busiest_used").ShouldBe(10, "plain connects from 127.0.0.1 hold their ports from bind(127.0.0.1, 0) too");
        readers["netlink"].Single().Perf("capacity").ShouldBe(10);
    }

    [NamespaceFact]
    public void Ip_bind_address_no_port_is_shared_per_tuple_like_a_plain_connect()
    {
        var readers = KernelOracleTests.Oracle("bind-address-no-port");
        foreach (var (reader, checkpoints) in readers)
        {
            var c = checkpoints.Single();
            c.Fact("first").ShouldBe(10);
            c.Fact("second").ShouldBe(10, "the second tuple gets the same 10 ports");
            c.Perf("capacity").ShouldBe(10, reader);
            c.Perf("tcp_busiest_pct").ShouldBe(100, reader);
            c.Run.Stdout.ShouldNotContain("took their port by bind() before connect()", Case.Sensitive, reader);
        }

        readers["bpf"].Single().Run.Perf.ContainsKey("tcp_bind_busiest_pct").ShouldBeFalse("the bind(addr, 0) figure turns on only for ports bind() chose");
    }

    [NamespaceFact]
    public void Bind_capacity_is_per_source_address()
    {
        var readers = KernelOracleTests.Oracle("two-source-addresses");
        var c = readers["bpf"].Single();
        c.Fact("made").ShouldBe(10);
        c.Errno("bind_errno").ShouldBe("EADDRINUSE");
        c.Errno("other_bind_errno").ShouldBe("-");
        c.Errno("other_connect_errno").ShouldBe("-", "bind(127.0.0.2, 0) and its connect() still work: bind capacity is per address");
        c.Run.FirstLine.ShouldContain("bind(127.0.0.1, 0) has 0 of 10 ports left");
        c.Run.ExitCode.ShouldBe(2);
    }

    [NamespaceFact]
    public void Ipv6_bind_before_connect_costs_the_ipv4_tuples()
    {
        var readers = KernelOracleTests.Oracle("ipv6-bind-costs-ipv4");
        var c = readers["bpf"].Single();
        c.Fact("made").ShouldBe(10);
        c.Errno().ShouldBe("EADDRNOTAVAIL", "the IPv4 connect() finds no port either");
        c.Run.ExitCode.ShouldBe(2, c.Run.Stdout);
        c.Perf("capacity").ShouldBe(0);
        c.Run.FirstLine.ShouldContain("bind([::1], 0) has 0 of 10 ports left");
        readers["netlink"].Single().Perf("capacity").ShouldBe(10);
    }

    [NamespaceFact]
    public void A_time_wait_made_without_timestamps_is_not_reused_after_they_are_turned_on()
    {
        var readers = KernelOracleTests.Oracle("time-wait-without-timestamps");
        var after = readers["bpf"][^1];
        after.Fact("reused").ShouldBe(0);
        after.Errno().ShouldBe("EADDRNOTAVAIL");
        var aged = readers["bpf"][0];
        aged.Run.ExitCode.ShouldBe(2, aged.Run.Stdout);
        aged.Perf("tcp_busiest_pct").ShouldBe(100, "not one of the 10 TIME_WAITs negotiated timestamps");

        // The sysctl says timestamps are on: sock_diag and /proc call them reusable (a false OK).
        foreach (var reader in BlindReaders)
        {
            readers[reader][0].Perf("tcp_busiest_pct").ShouldBe(0, reader);
        }

        BlindSpotIsNamed(readers, "whether timestamps were negotiated");
    }

    [NamespaceFact]
    public void A_time_wait_made_with_timestamps_is_reused_after_they_are_turned_off()
    {
        var readers = KernelOracleTests.Oracle("time-wait-with-timestamps");
        var after = readers["bpf"][^1];
        after.Fact("reused").ShouldBe(10, "every aged TIME_WAIT is reused by a connect(), 10 of 10");
        var aged = readers["bpf"][0];
        aged.Run.ExitCode.ShouldBe(0, aged.Run.Stdout);
        aged.Perf("tcp_busiest_pct").ShouldBe(0, "all 10 TIME_WAITs negotiated timestamps and are reusable");

        // The sysctl says timestamps are off: sock_diag and /proc call them blocking (a false CRITICAL).
        foreach (var reader in BlindReaders)
        {
            readers[reader][0].Perf("tcp_busiest_pct").ShouldBe(100, reader);
        }
    }

    [NamespaceFact]
    public void An_accepted_connection_keeps_its_closed_listeners_port_from_every_tuple()
    {
        var readers = KernelOracleTests.Oracle("accepted-child-outlives-listener");
        var c = readers["bpf"].Single();
        c.Fact("connected").ShouldBe(9);
        c.Errno().ShouldBe("EADDRNOTAVAIL");
        c.Run.ExitCode.ShouldBe(2, c.Run.Stdout);
        c.Perf("capacity").ShouldBe(9);
        c.Perf("tcp_busiest_pct").ShouldBe(100);
        // bind(127.0.0.2, 0) has that port less too (true); the child is counted among the
        // connections whose port came from bind(), as its bucket does not say it was accepted.
        c.Perf("tcp_bind_busiest_pct").ShouldBe(10);
        readers["netlink"].Single().Perf("capacity").ShouldBe(10);
        BlindSpotIsNamed(readers, "accepted connections that outlived their in-range listener");
    }

    [NamespaceFact]
    public void Sockets_with_their_own_port_range_run_out_at_its_size_while_plain_ones_go_on()
    {
        var readers = KernelOracleTests.Oracle("own-port-range");
        var bpf = readers["bpf"];
        var narrowed = bpf.Single(c => c.Label.EndsWith("narrowed refused", StringComparison.Ordinal));
        narrowed.Fact("narrowed").ShouldBe(5);
        narrowed.Errno().ShouldBe("EADDRNOTAVAIL");
        narrowed.Run.ExitCode.ShouldBe(2, narrowed.Run.Stdout);
        narrowed.Run.FirstLine.ShouldContain("busiest TCP tuple 127.0.0.1 -> 127.0.0.1:5000 (IP_LOCAL_PORT_RANGE 40000-40004) uses 5 of 5 ports (100%), new connections to it fail now");
        var after4 = bpf.Single(c => c.Label.EndsWith("after 4", StringComparison.Ordinal));
        after4.Perf("tcp_busiest_pct").ShouldBe(80);
        after4.Run.ExitCode.ShouldBe(1);
        var plain = bpf.Single(c => c.Label.EndsWith("plain refused", StringComparison.Ordinal));
        plain.Fact("plain").ShouldBe(5, "plain sockets to the same tuple still got the other 5 ports");
        plain.Perf("tcp_busiest_pct").ShouldBe(100);
        plain.Perf("tcp_tuples").ShouldBe(1, "a narrowed range is a figure of its tuple, not another tuple");

        // sock_diag and /proc see 5 of 10 used where the narrowed sockets have none left.
        foreach (var reader in BlindReaders)
        {
            readers[reader].Single(c => c.Label.EndsWith("narrowed refused", StringComparison.Ordinal)).Perf("tcp_busiest_pct").ShouldBe(50, reader);
        }

        BlindSpotIsNamed(readers, "per-socket IP_LOCAL_PORT_RANGE");
    }

    /// <summary>The case users meet: a Go service whose net.Dialer has a LocalAddr (Debian's golang-go).</summary>
    [NamespaceFact]
    public void A_go_client_dialing_with_a_local_address_exhausts_the_host_and_bpf_says_so()
    {
        var readers = KernelOracleTests.Oracle("go-local-addr");
        var c = readers["bpf"].Single();
        c.Fact("made").ShouldBe(10);
        c.Errno().ShouldBe("EADDRINUSE", "Go's bind(127.0.0.1, 0) finds no port");
        c.Errno("plain_errno").ShouldBe("EADDRNOTAVAIL", "and no plain connect() gets one either");
        c.Run.ExitCode.ShouldBe(2, c.Run.Stdout);
        c.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - bind(127.0.0.1, 0) has 0 of 10 ports left: 10 connections took their port by bind() before connect(), set IP_BIND_ADDRESS_NO_PORT or drop the source address");
        c.Run.Stdout.ShouldContain("advice: 10 connections from 127.0.0.1 took their port by bind() before connect()");
        c.Run.Stdout.ShouldContain($"bind(127.0.0.1, 0): the connections that took their port by bind() are held by pid {c.Fact("pid")} (godial) 10", Case.Sensitive, "--processes names the Go client");
        foreach (var reader in BlindReaders)
        {
            readers[reader].Single().Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS OK - busiest TCP tuple 127.0.0.1 -> 127.0.0.1:500", Case.Sensitive, reader);
            readers[reader].Single().Perf("tcp_busiest_pct").ShouldBe(20, reader);
        }
    }
}
