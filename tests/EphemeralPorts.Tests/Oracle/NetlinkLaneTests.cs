using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Model;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Tests.Support;
using static EphemeralPorts.Tests.Support.TestSockets;

namespace EphemeralPorts.Tests.Oracle;

/// <summary>
/// The sock_diag reader splits its work by how many TCP sockets the host has: one lane below
/// <see cref="SockDiagScanner.ParallelFromTcpSockets"/>, else TCP in two lanes by local port (the
/// first also taking every socket with no remote port: listeners and bound-but-idle sockets of
/// the whole range) plus a UDP lane. Which one a real run takes depends on the host, so both are
/// driven here on the same sockets, in a namespace of their own that nothing else touches between
/// the two readings, over an odd-sized range (the port split has a boundary to get wrong).
/// </summary>
public class NetlinkLaneTests
{
    private const int Low = 40000;
    private const int High = 42998; // 2,999 ports

    // With the others, more TCP sockets than SockDiagScanner.ParallelFromTcpSockets.
    private const int V4Connections = 2000;
    private static readonly int Split = SockDiagScanner.SplitPort(new PortRange(Low, High));

    // Listeners and bound-but-idle sockets on both sides of the split and at both ends of the
    // range, where a lane's filter would lose a socket if it were off by one (connect() itself
    // favours even ports, so connections alone might never sit there).
    private static readonly int[] ListenerPorts = [Low, Split - 1, Split, High];
    private static readonly int[] IdlePorts = [Low + 1, Split - 2, Split + 1, High - 1];

    [NamespaceFact]
    public void One_lane_and_parallel_lanes_build_the_same_model_of_the_same_sockets()
    {
        var name = $"cep-lanes-{Environment.ProcessId}";
        Command.NewNamespace(name, Low, High);
        try
        {

            // No TIME_WAIT turns reusable between the two readings (tcp_tw_reuse=2 would after 1 s).
            Command.MustSucceed("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0");
            (string One, string Parallel, PortUsage Usage, PluginRun Native)? result = null;
            Exception? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    result = ReadBothWays(name);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            thread.Start();
            thread.Join();
            if (failure is not null)
            {
                throw new Xunit.Sdk.XunitException($"in namespace {name}: {failure}");
            }

            var (one, parallel, usage, native) = result!.Value;
            parallel.ShouldBe(one);

            // The native binary in that namespace counts enough TCP sockets to split the dump,
            // and says the same as the two readings.
            native.ExitCode.ShouldBe(0, native.Stdout);
            native.Stdout.ShouldContain("TCP sockets in the namespace (sockstat), TCP dumped in two lanes by port, UDP in a third");
            native.Perf["tcp_busiest_used"].ShouldBe(V4Connections, native.Stdout);
            native.Perf["capacity"].ShouldBe(usage.Tcp!.Capacity);

            // And the model is of the sockets made, not of nothing on both sides.
            var tcp = usage.Tcp!;
            tcp.Tuples.Single(t => t.Tuple.ToString() == "127.0.0.1 -> 127.0.0.1:5000").Used.ShouldBe(V4Connections);
            tcp.Tuples.Single(t => t.Tuple.ToString() == "::1 -> [::1]:5000").Used.ShouldBe(400);
            tcp.Tuples.Single(t => t.Tuple.ToString() == "127.0.0.1 -> 127.0.0.1:5001").Used.ShouldBe(200);
            tcp.TimeWait.ShouldBe(150);
            var exclusive = 1 + ListenerPorts.Length + IdlePorts.Length;
            tcp.ExclusivePortCount.ShouldBe(exclusive);
            tcp.Exclusive.Count(e => e.State == TcpState.Close).ShouldBe(IdlePorts.Length * 2, "an IPv4 and an IPv6 one on each port (the kernel reports them as CLOSE)");
            tcp.Capacity.ShouldBe(High - Low + 1 - exclusive);
            usage.Udp!.Sockets.ShouldBe(300);
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", name);
        }
    }

    [NamespaceFact]
    public void A_namespace_with_few_tcp_sockets_is_read_in_one_lane()
    {
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-n", "sh", "-c", $"ip link set lo up && exec {Repo.NativeBinary} --source netlink -vvv" })
        {
            start.ArgumentList.Add(arg);
        }

        var run = Support.Plugin.Run(start, TimeSpan.FromSeconds(30));
        run.ExitCode.ShouldBe(0, run.Stdout + run.Stderr);
        run.Stdout.ShouldContain("netlink: 0 TCP sockets in the namespace (sockstat), one lane");
    }

    // On a thread of its own, inside the namespace: make the sockets, then read them both ways,
    // and once more with the native binary.
    private static (string One, string Parallel, PortUsage Usage, PluginRun Native) ReadBothWays(string name)
    {
        var namespacePath = $"/run/netns/{name}";
        using var inside = NamespaceSwitch.Enter(namespacePath, out var errno) ?? throw new InvalidOperationException($"setns {namespacePath}: errno {errno}");
        var held = new List<Socket>();
        try
        {
            MakeSockets(held);

            // The closing handshakes must be over before reading: a socket moving from FIN_WAIT2
            // to TIME_WAIT during a dump can be missed by it (the kernel's dump is no snapshot).
            // On loopback they take microseconds, on a loaded machine longer: wait (bounded) until
            // the 150 closed connections are all TIME_WAIT and none is closing any more.
            for (var waited = 0; waited < 100 && !HandshakesDone(); waited++)
            {
                Thread.Sleep(50);
            }

            Thread.Sleep(100);
            var kernel = new SysctlReader(new NamespaceView(new Host().Open(), "thread-self/net")).ReadSettings();
            kernel.Range.ShouldBe(new PortRange(Low, High));
            var one = new PortUsageCalculator(kernel);
            SockDiagScanner.Scan(kernel.Range, tcp: true, udp: true, one, tcpSocketsHint: 0);
            var parallel = new PortUsageCalculator(kernel);
            SockDiagScanner.Scan(kernel.Range, tcp: true, udp: true, parallel, tcpSocketsHint: long.MaxValue);
            var usage = one.Finish();
            var native = Support.Plugin.Native(["--source", "netlink", "-vvv", "-w", "95", "-c", "99"]);
            return (Describe(usage), Describe(parallel.Finish()), usage, native);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    // This thread's namespace's /proc/net/tcp: 150 TIME_WAIT (06), nothing in FIN_WAIT1/2, CLOSING or LAST_ACK.
    private static bool HandshakesDone()
    {
        var states = File.ReadLines("/proc/thread-self/net/tcp").Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3]).ToList();
        return states.Count(s => s == "06") >= 150 && !states.Any(s => s is "04" or "05" or "09" or "0B");
    }

    // 2,000 IPv4 connections (150 of them closed, the client first: TIME_WAIT), 400 IPv6, 200 v4-mapped
    // (the IPv4 tuple of the dual-stack listener), listeners and bound-but-idle sockets inside the
    // range, 300 UDP sockets.
    private static void MakeSockets(List<Socket> held)
    {
        var v4 = Listen(new IPEndPoint(IPAddress.Loopback, 5000), held);
        var v6 = Listen(new IPEndPoint(IPAddress.IPv6Loopback, 5000), held);
        var dual = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        held.Add(dual);
        dual.Bind(new IPEndPoint(IPAddress.IPv6Any, 5001));
        dual.Listen(1024);
        Listen(new IPEndPoint(IPAddress.Parse("127.0.0.2"), Low + 2), held);
        foreach (var port in ListenerPorts)
        {
            Listen(new IPEndPoint(IPAddress.Parse("127.0.0.3"), port), held);
        }

        foreach (var port in IdlePorts)
        {
            foreach (var address in new[] { IPAddress.Parse("127.0.0.4"), IPAddress.IPv6Loopback })
            {
                var idle = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                held.Add(idle);
                idle.Bind(new IPEndPoint(address, port));
            }
        }

        Connect(v4, new IPEndPoint(IPAddress.Loopback, 5000), V4Connections, closeFirst: 150, held);
        Connect(v6, new IPEndPoint(IPAddress.IPv6Loopback, 5000), 400, closeFirst: 0, held);
        Connect(dual, new IPEndPoint(IPAddress.Parse("::ffff:127.0.0.1"), 5001), 200, closeFirst: 0, held);
        for (var i = 0; i < 300; i++)
        {
            var udp = new Socket(i % 2 == 0 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            held.Add(udp);
            udp.Bind(new IPEndPoint(i % 2 == 0 ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        }
    }
}
