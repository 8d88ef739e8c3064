using EphemeralPorts.Tests.Support;
using Checkpoint = EphemeralPorts.Tests.Oracle.KernelOracleTests.Checkpoint;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// The kernel's rules for sockets bound to a device, UDP sockets with their own range, and
/// odd-sized ranges (docs/kernel-model.md, facts 12-14), each built by tests/oracle/oracle.py until
/// the kernel refuses, then held against every reader that can see what decides it.
/// </summary>
public class KernelRulesOracleTests
{
    private static Checkpoint At(List<Checkpoint> checkpoints, string label) =>
        checkpoints.Single(c => c.Label.EndsWith(": " + label, StringComparison.Ordinal));

    [NamespaceFact]
    public void Connections_bound_to_a_device_fill_their_tuple_for_that_device_only()
    {
        var readers = KernelOracleTests.Oracle("device-bound-connections");
        foreach (var reader in new[] { "bpf", "netlink" })
        {
            var bound = At(readers[reader], "bound refused");
            bound.Fact("bound").ShouldBe(10);
            bound.Errno().ShouldBe("EADDRNOTAVAIL", "an 11th connect() bound to lo is refused");
            bound.Run.ExitCode.ShouldBe(2, bound.Run.Stdout);
            bound.Run.FirstLine.ShouldContain("busiest TCP tuple 127.0.0.1%lo -> 127.0.0.1:5000 uses 10 of 10 ports (100%), new connections to it fail now", Case.Sensitive, reader);
            bound.Perf("tcp_tuples").ShouldBe(1, "the sockets bound to no device hold nothing yet");

            // The kernel then gave 10 connect() calls bound to no device a port on the same tuple.
            var plain = At(readers[reader], "plain refused");
            plain.Fact("plain").ShouldBe(10, "sockets bound to lo never block a connect() bound to no device");
            plain.Run.FirstLine.ShouldContain("busiest TCP tuple 127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10 ports (100%)", Case.Sensitive, reader);
        }

        // /proc shows no device: it counts both kinds in one tuple, and -vv says what it misses.
        At(readers["proc"], "bound refused").Run.FirstLine.ShouldContain("127.0.0.1 -> 127.0.0.1:5000 uses 10 of 10");
        var blind = Support.Plugin.Native(["--source", "proc", "-vv", "--proc-root", "/proc"]);
        blind.Stdout.ShouldContain("the device a socket is bound to (SO_BINDTODEVICE) (netlink and bpf)");
    }

    [NamespaceFact]
    public void Time_wait_bound_to_lo_is_loopback_for_tw_reuse_2_whatever_its_addresses()
    {
        var readers = KernelOracleTests.Oracle("device-bound-time-wait");
        foreach (var reader in new[] { "bpf", "netlink" })
        {
            var fresh = At(readers[reader], "fresh");
            fresh.Fact("made").ShouldBe(10);
            fresh.Errno().ShouldBe("EADDRNOTAVAIL", "fresh TIME_WAITs are not reused yet");
            fresh.Run.ExitCode.ShouldBe(2, fresh.Run.Stdout);
            fresh.Run.FirstLine.ShouldContain("198.51.100.1%lo -> 198.51.100.1:5000 uses 10 of 10 ports (100%)", Case.Sensitive, reader);

            var aged = At(readers[reader], "aged");
            aged.Run.ExitCode.ShouldBe(0, reader + ": " + aged.Run.Stdout);
            aged.Perf("tcp_busiest_used").ShouldBe(0, reader);
            var after = At(readers[reader], "after one more lo-bound connect");
            after.Errno().ShouldBeNull("the kernel reused an aged TIME_WAIT bound to lo");
            after.Perf("tcp_busiest_used").ShouldBe(1, reader);
        }

        // /proc cannot see the device: outside 127/8 it keeps the TIME_WAITs blocking.
        At(readers["proc"], "aged").Run.ExitCode.ShouldBe(2);
    }

    [NamespaceFact]
    public void Bind_before_connect_on_sockets_bound_to_a_device_exhausts_bind_for_unbound_sockets_too()
    {
        var refused = KernelOracleTests.Oracle("device-bound-bind-before-connect")["bpf"].Single();
        refused.Fact("made").ShouldBe(10);
        refused.Errno("bind_errno").ShouldBe("EADDRINUSE", "bind(127.0.0.1, 0) of a socket bound to no device finds no port either");
        refused.Run.ExitCode.ShouldBe(2, refused.Run.Stdout);
        refused.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - bind(127.0.0.1, 0) has 0 of 10 ports left");
    }

    [NamespaceFact]
    public void Udp_sockets_with_their_own_range_run_out_of_it_and_bpf_says_so()
    {
        var readers = KernelOracleTests.Oracle("udp-own-port-range");
        var refused = At(readers["bpf"], "narrowed refused");
        refused.Fact("narrowed").ShouldBe(5);
        refused.Errno().ShouldBe("EAGAIN", "the sixth socket with the range 40000-40004 finds no port");
        refused.Errno("plain_errno").ShouldBe("-", "a socket without its own range still gets one");
        refused.Run.ExitCode.ShouldBe(2, refused.Run.Stdout);
        refused.Run.FirstLine.ShouldStartWith("EPHEMERAL PORTS CRITICAL - UDP uses 5 of 5 ports of IP_LOCAL_PORT_RANGE 40000-40004 (100%), new UDP sockets fail now");
        refused.Perf("udp_used_pct").ShouldBe(100);
        At(readers["bpf"], "after 4").Perf("udp_used_pct").ShouldBe(80);
        foreach (var reader in new[] { "netlink", "proc" })
        {
            At(readers[reader], "narrowed refused").Perf("udp_used_pct").ShouldBe(50, reader + " cannot see the socket's range");
        }
    }

    [NamespaceFact]
    public void An_odd_sized_range_is_counted_at_what_the_kernel_guarantees_every_tuple()
    {
        var readers = KernelOracleTests.Oracle("odd-sized-range");
        foreach (var (reader, checkpoints) in readers)
        {
            var refused = checkpoints.Single();
            refused.Label.ShouldEndWith("refused at 10", Case.Sensitive, "the kernel refused some tuple of 11 ports at 10 (bounded search over 128 tuples)");
            refused.Fact("connected").ShouldBe(10);
            refused.Errno().ShouldBe("EADDRNOTAVAIL");
            refused.Run.ExitCode.ShouldBe(2, reader + ": " + refused.Run.Stdout);
            refused.Run.FirstLine.ShouldContain($"127.0.0.1:{refused.Fact("dport")} uses 10 of 10 ports (100%), new connections to it fail now", Case.Sensitive, reader);
            refused.Perf("capacity").ShouldBe(10, "11 ports, one of which the kernel may skip");
            refused.Run.Stdout.ShouldContain("make its ends differ in parity (net.ipv4.ip_local_port_range = \"40000 40009\" or \"40000 40011\")");
        }

        // -v says why the capacity is one less than the range.
        var verbose = Support.Plugin.Native(["--proc-root", Path.Combine(Repo.Fixtures, "odd-sized-range", "proc"), "-v"]);
        verbose.Stdout.ShouldContain("odd-sized range: 11 ports; __inet_hash_connect() scans 10 of them");
    }
}
