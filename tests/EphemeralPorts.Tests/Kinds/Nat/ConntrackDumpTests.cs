using System.Net;
using System.Net.Sockets;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Native;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// Three throwaway namespaces, client -> router -> server, joined by veth pairs, the router
/// source-NATing the client to 203.0.113.1 with a port range (nft <c>snat to</c>); addresses exist
/// only inside them. Removed on dispose.
/// </summary>
internal sealed class NatLab : IDisposable
{
    public static readonly IPAddress Client = IPAddress.Parse("198.51.100.2");
    public static readonly IPAddress RouterInside = IPAddress.Parse("198.51.100.1");
    public static readonly IPAddress Nat = IPAddress.Parse("203.0.113.1");
    public static readonly IPAddress Server = IPAddress.Parse("203.0.113.2");

    public NatLab(int low, int high)
    {
        var tag = Environment.ProcessId % 100000;
        ClientNs = $"cep-natc-{tag}";
        RouterNs = $"cep-natr-{tag}";
        ServerNs = $"cep-nats-{tag}";
        Dispose();
        try
        {
            foreach (var ns in new[] { ClientNs, RouterNs, ServerNs })
            {
                Command.MustSucceed("ip", "netns", "add", ns);
                Command.MustSucceed("ip", "-n", ns, "link", "set", "lo", "up");
            }

            // veth names live inside the namespaces only: no clash with the host or a parallel run.
            Command.MustSucceed("ip", "link", "add", "cr", "netns", ClientNs, "type", "veth", "peer", "rc", "netns", RouterNs);
            Command.MustSucceed("ip", "link", "add", "rs", "netns", RouterNs, "type", "veth", "peer", "sr", "netns", ServerNs);
            foreach (var (ns, dev, address) in new[] { (ClientNs, "cr", "198.51.100.2/24"), (RouterNs, "rc", "198.51.100.1/24"), (RouterNs, "rs", "203.0.113.1/24"), (ServerNs, "sr", "203.0.113.2/24") })
            {
                Command.MustSucceed("ip", "-n", ns, "addr", "add", address, "dev", dev);
                Command.MustSucceed("ip", "-n", ns, "link", "set", dev, "up");
            }

            Command.MustSucceed("ip", "-n", ClientNs, "route", "add", "default", "via", "198.51.100.1");
            Command.MustSucceed("ip", "netns", "exec", RouterNs, "sysctl", "-qw", "net.ipv4.ip_forward=1");
            var rules = Path.GetTempFileName();
            try
            {
                File.WriteAllText(rules, $$"""
                    table ip cep_nat {
                        chain post {
                            type nat hook postrouting priority srcnat; policy accept;
                            oifname "rs" ip saddr 198.51.100.0/24 meta l4proto { tcp, udp } snat to 203.0.113.1:{{low}}-{{high}}
                        }
                    }
                    """);
                Command.MustSucceed("ip", "netns", "exec", RouterNs, "nft", "-f", rules);
            }
            finally
            {
                File.Delete(rules);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string ClientNs { get; }

    public string RouterNs { get; }

    public string ServerNs { get; }

    /// <summary>Runs <paramref name="work"/> on this thread inside <paramref name="ns"/>; sockets made there stay there.</summary>
    public static T In<T>(string ns, Func<T> work)
    {
        using var inside = NamespaceSwitch.Enter($"/run/netns/{ns}", out var errno) ?? throw new InvalidOperationException($"setns {ns}: errno {errno}");
        return work();
    }

    public void Dispose()
    {
        foreach (var ns in new[] { ClientNs, RouterNs, ServerNs })
        {
            if (ns is not null && File.Exists($"/run/netns/{ns}"))
            {
                Command.MustSucceed("ip", "netns", "del", ns);
            }
        }
    }
}

/// <summary>
/// <see cref="ConntrackDump"/> against the kernel: flows made through a real SNAT rule, read from
/// the router's namespace, with and without the kernel-side filters; the counters both ways; and
/// the refusal without CAP_NET_ADMIN.
/// </summary>
// Its namespaces hold conntrack entries and rules: serialized with the other tests that count
// every namespace of the host (ConntrackTableOracleTests' --all-namespaces sum).
[Collection(Oracle.NamespaceCollection.Name)]
public class ConntrackDumpTests
{
    private const int Low = 40000;
    private const int High = 40009;

    /// <summary>The flows of <see cref="Flows_through_the_snat_rule_are_read_with_their_keys_and_counts"/>, held open until the end.</summary>
    private sealed class Flows : IDisposable
    {
        public List<Socket> Held { get; } = [];

        public bool EleventhRefused { get; set; }

        public int RouterLocalPort { get; set; }

        public void Dispose() => Held.ForEach(s => s.Dispose());
    }

    private static Flows MakeFlows(NatLab lab, int tcp, int udp)
    {
        var flows = new Flows();
        NatLab.In(lab.ServerNs, () =>
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(NatLab.Server, 8080));
            listener.Listen(128);
            flows.Held.Add(listener);
            return 0;
        });
        NatLab.In(lab.ClientNs, () =>
        {
            for (var i = 0; i < tcp; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                flows.Held.Add(s);
                s.Connect(new IPEndPoint(NatLab.Server, 8080));
            }

            // The range is full: nf_nat finds no port and drops the SYN (insert_failed, drop).
            var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            flows.Held.Add(refused);
            using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(1500));
            try
            {
                refused.ConnectAsync(new IPEndPoint(NatLab.Server, 8080), timeout.Token).AsTask().Wait();
            }
            catch (AggregateException e) when (e.InnerException is OperationCanceledException or SocketException)
            {
                flows.EleventhRefused = true;
            }

            for (var i = 0; i < udp; i++)
            {
                var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                flows.Held.Add(u);
                u.SendTo("x"u8.ToArray(), new IPEndPoint(NatLab.Server, 5353));
            }

            // Not NATed: to the router itself (its reply goes to the client, not to the NAT address).
            var toRouter = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            flows.Held.Add(toRouter);
            toRouter.SendTo("x"u8.ToArray(), new IPEndPoint(NatLab.RouterInside, 9));
            return 0;
        });
        NatLab.In(lab.RouterNs, () =>
        {
            // The router's own connection from the NAT address: same key, no SRC_NAT.
            var local = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            flows.Held.Add(local);
            local.Bind(new IPEndPoint(NatLab.Nat, 0));
            local.Connect(new IPEndPoint(NatLab.Server, 8080));
            flows.RouterLocalPort = ((IPEndPoint)local.LocalEndPoint!).Port;
            return 0;
        });
        return flows;
    }

    [NamespaceFact]
    public void Flows_through_the_snat_rule_are_read_with_their_keys_and_counts()
    {
        const int Tcp = High - Low + 1;
        const int Udp = 7;
        using var lab = new NatLab(Low, High);
        using var flows = MakeFlows(lab, Tcp, Udp);
        flows.EleventhRefused.ShouldBeTrue("a connection past the 10-port range is refused by the kernel");

        var (all, result, count) = NatLab.In(lab.RouterNs, () =>
        {
            var sink = new ListSink();
            var result = ConntrackDump.Read(sink);
            var count = ConntrackTableSize.ParseCount(File.ReadAllText("/proc/sys/net/netfilter/nf_conntrack_count"), "nf_conntrack_count");
            return (sink.Entries, result, count);
        });

        result.Entries.ShouldBe(all.Count);
        result.KernelFiltered.ShouldBeFalse();
        all.Count.ShouldBe((int)count, "the dump holds every entry of the namespace, as nf_conntrack_count counts them");
        var nat = CtAddressOf(NatLab.Nat);
        var server = CtAddressOf(NatLab.Server);
        var byKey = all.GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.ToList());

        var tcpKey = new NatKey(nat, server, 8080, CtNetlink.IpProtoTcp, 0);
        byKey[tcpKey].Count.ShouldBe(Tcp + 1, "the client's ten connections and the router's own");
        byKey[tcpKey].Where(e => e.IsSourceNat).Select(e => (int)e.NatPort).Order().ShouldBe(Enumerable.Range(Low, Tcp));
        byKey[tcpKey].Single(e => !e.IsSourceNat).NatPort.ShouldBe((ushort)flows.RouterLocalPort);
        byKey[tcpKey].ShouldAllBe(e => e.TcpState == TcpConntrackState.Established);

        var udpKey = new NatKey(nat, server, 5353, CtNetlink.IpProtoUdp, 0);
        byKey[udpKey].Count.ShouldBe(Udp);
        byKey[udpKey].ShouldAllBe(e => e.IsSourceNat && e.NatPort >= Low && e.NatPort <= High && e.Client == CtAddressOf(NatLab.Client));
        byKey.Keys.Count(k => k.NatAddress == nat).ShouldBe(2);
    }

    [NamespaceFact]
    public void Kernel_side_filters_give_what_the_same_filter_in_user_space_gives_and_copy_less()
    {
        using var lab = new NatLab(Low, High);
        using var flows = MakeFlows(lab, 4, 3);
        NatLab.In(lab.RouterNs, () =>
        {
            var everything = new ListSink();
            var all = ConntrackDump.Read(everything);
            var nat = CtAddressOf(NatLab.Nat);
            var queries = new[]
            {
                new ConntrackQuery { Family = CtNetlink.AfInet, ReplyDestination = nat },
                new ConntrackQuery { StatusMask = ConntrackStatus.SourceNat, StatusValue = ConntrackStatus.SourceNat },
            };
            foreach (var query in queries)
            {
                var sink = new ListSink();
                var filtered = ConntrackDump.Read(sink, query);
                var expected = everything.Entries.Where(e => query.Matches(e)).ToList();
                sink.Entries.OrderBy(e => e.ClientPort).ThenBy(e => e.Protocol).ShouldBe(expected.OrderBy(e => e.ClientPort).ThenBy(e => e.Protocol), query.ToString());
                expected.Count.ShouldBeLessThan(everything.Entries.Count, "each filter leaves something out here");
                filtered.KernelFiltered.ShouldBeTrue(query.ToString());

                // The kernel filtered (a 6.x kernel takes both): fewer bytes came than for the whole table.
                filtered.BytesReceived.ShouldBeLessThan(all.BytesReceived, query.ToString());
            }

            return 0;
        });
    }

    [NamespaceFact]
    public void The_counters_through_ctnetlink_equal_the_proc_file_of_the_namespace()
    {
        using var lab = new NatLab(Low, High);
        using var flows = MakeFlows(lab, High - Low + 1, 0);
        var (netlink, proc) = NatLab.In(lab.RouterNs, () =>
        {
            // /proc/net is the process's namespace; thread-self/net is this thread's.
            var text = File.ReadAllText("/proc/thread-self/net/stat/nf_conntrack");
            return (ConntrackDump.ReadStatistics(), ConntrackStatistics.ParseProcStat(text, "nf_conntrack"));
        });
        netlink.InsertFailed.ShouldNotBeNull().ShouldBeGreaterThanOrEqualTo(1ul, "the refused 11th connection");
        netlink.Drop.ShouldNotBeNull().ShouldBeGreaterThanOrEqualTo(1ul);
        netlink.Cpus.ShouldBe(proc.Cpus);
        (proc with { Entries = null }).ShouldBe(netlink);
    }

    [NamespaceFact]
    public void Without_CAP_NET_ADMIN_the_dump_is_a_typed_refusal()
    {
        // Credentials are per thread in the kernel; glibc's setresuid() changes every thread of the
        // process, the raw syscall only the calling one. This thread becomes nobody and ends.
        Exception? caught = null;
        ConntrackStatistics? statistics = null;
        var thread = new Thread(() =>
        {
            var setresuid = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? 147 : 117;
            if (Libc.syscall(setresuid, 65534, 65534, 65534, 0) != 0)
            {
                caught = new InvalidOperationException($"setresuid: errno {Libc.LastError}");
                return;
            }

            try
            {
                ConntrackDump.Read(new ListSink());
            }
            catch (Exception e)
            {
                caught = e;
            }

            try
            {
                statistics = ConntrackDump.ReadStatistics();
            }
            catch (ConntrackRefusedException)
            {
                // expected; checked through the first
            }
        });
        thread.Start();
        thread.Join();
        var refused = caught.ShouldBeOfType<ConntrackRefusedException>();
        refused.Reason.ShouldBe(ConntrackRefusal.NeedsCapNetAdmin);
        refused.Errno.ShouldBe(Errno.Eperm);
        refused.Message.ShouldBe("conntrack dump: NAT tuples were not read (needs CAP_NET_ADMIN): the kernel answered EPERM (operation not permitted)");
        statistics.ShouldBeNull("the counters through ctnetlink need the same capability");

        // The process itself kept its privileges: only that thread changed.
        ConntrackDump.Read(new ListSink()).ShouldNotBeNull();
    }

    private static CtAddress CtAddressOf(IPAddress address) => CtAddress.FromBytes(address.GetAddressBytes());
}
