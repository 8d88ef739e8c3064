using System.Net;
using System.Net.Sockets;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Bpf;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Check;
using EphemeralPorts.Model;
using EphemeralPorts.Tests.Support;
using static EphemeralPorts.Tests.Support.TestSockets;

namespace EphemeralPorts.Tests.Acquisition;

/// <summary>
/// Every socket source feeds the same model through the one interface: in a namespace this test
/// makes, each source that auto tries reads the same sockets and must build the same model, on
/// every fact all of them can see (no bound-but-idle sockets here: the /proc tables cannot see
/// them, and say so in their blind spots).
/// </summary>
public class SourceParityTests
{
    [NamespaceFact]
    public void Each_source_builds_the_same_model_of_the_same_sockets()
    {
        var name = $"cep-parity-{Environment.ProcessId}";
        Command.NewNamespace(name, 40000, 40999);
        try
        {
            Command.MustSucceed("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0");
            using var bpf = BpfSource.NewReader();
            var sources = PortCheck.SourceOrder(SourceChoice.Auto, bpf);
            sources.Count.ShouldBeGreaterThanOrEqualTo(2);
            using var proc = new Host().Open();
            var run = NamespaceRunner.RunAll([NamespaceFinder.ByNameOrPath(new Host(), System.Text.Encoding.UTF8.GetBytes(name))], proc, NamespaceFinder.OwnInode(), TimeSpan.FromSeconds(60), 1, (_, view) =>
            {
                var held = new List<Socket>();
                try
                {
                    MakeSockets(held);
                    Thread.Sleep(200);
                    var kernel = new SysctlReader(view).ReadSettings();
                    var models = new List<(string Name, string Model)>();
                    foreach (var source in sources)
                    {
                        source.CanRead(view).ShouldBeTrue(source.Name);
                        var model = new PortUsageCalculator(kernel);
                        try
                        {
                            source.Read(new SourceRequest(view, kernel, Tcp: true, Udp: true), model).Note.ShouldStartWith("sockets read ");
                        }
                        catch (SourceRefusedException e) when (source.Name == "bpf" && e.Message.Contains("not linked in", StringComparison.Ordinal))
                        {
                            // The test process is no native build: the BPF reader is held to
                            // sock_diag by the differential oracle test, through the binary.
                            continue;
                        }

                        models.Add((source.Name, Describe(model.Finish())));
                    }

                    return models;
                }
                finally
                {
                    held.ForEach(s => s.Dispose());
                }
            }).Single();
            run.Skipped.ShouldBeNull();
            var models = run.Result!;

            // Not a model of nothing on both sides.
            models[0].Model.ShouldContain("127.0.0.1 -> 127.0.0.1:5000: used 340 tw 40 reusable 0");
            models[0].Model.ShouldContain("::1 -> [::1]:5000: used 60 tw 0");
            models[0].Model.ShouldContain("exclusive 127.0.0.3:40005 state 10");
            models[0].Model.ShouldContain(" of 1000, 50 sockets");
            foreach (var other in models.Skip(1))
            {
                other.Model.ShouldBe(models[0].Model, $"{other.Name} and {models[0].Name} disagree");
            }
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", name);
        }
    }

    [Fact]
    public void A_source_that_cannot_see_a_fact_says_so_and_a_fallback_names_what_it_loses()
    {
        using var bpf = BpfSource.NewReader();
        var sources = PortCheck.SourceOrder(SourceChoice.Auto, bpf);
        var last = sources[^1];
        last.Name.ShouldBe("proc");
        last.BlindSpots.ShouldContain(BlindSpots.BoundButIdle);
        sources[0].BlindSpots.ShouldNotContain(BlindSpots.BoundButIdle);
        foreach (var source in sources)
        {
            source.BlindSpots.ShouldNotBeEmpty();
        }
    }

    // 340 IPv4 connections (40 closed by the client first: TIME_WAIT), 60 IPv6, a listener inside
    // the range on another address, 50 UDP sockets.
    private static void MakeSockets(List<Socket> held)
    {
        var v4 = Listen(new IPEndPoint(IPAddress.Loopback, 5000), held);
        var v6 = Listen(new IPEndPoint(IPAddress.IPv6Loopback, 5000), held);
        Listen(new IPEndPoint(IPAddress.Parse("127.0.0.3"), 40005), held);
        Connect(v4, new IPEndPoint(IPAddress.Loopback, 5000), 340, closeFirst: 40, held);
        Connect(v6, new IPEndPoint(IPAddress.IPv6Loopback, 5000), 60, closeFirst: 0, held);
        for (var i = 0; i < 50; i++)
        {
            var udp = new Socket(i % 2 == 0 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
            held.Add(udp);
            udp.Bind(new IPEndPoint(i % 2 == 0 ? IPAddress.Loopback : IPAddress.IPv6Loopback, 0));
        }
    }
}
