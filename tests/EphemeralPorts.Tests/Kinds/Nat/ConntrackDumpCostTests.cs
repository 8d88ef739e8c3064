using System.Diagnostics;
using System.Globalization;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Tests.Support;
using Xunit.Abstractions;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// What a dump costs: no allocation per entry (a test), and, on request, the time and allocation of
/// a 100k-entry dump against conntrack -L and /proc/net/nf_conntrack (a measurement:
/// <c>CEP_BENCH_CONNTRACK=100000 dotnet test ... --filter ConntrackDumpCostTests</c>). Entries are
/// made by tests/fixtures/conntrack/fill.py through ctnetlink in a throwaway namespace.
/// </summary>
// Its namespaces hold conntrack entries and rules: serialized with the other tests that count
// every namespace of the host (ConntrackTableOracleTests' --all-namespaces sum).
[Collection(Oracle.NamespaceCollection.Name)]
public class ConntrackDumpCostTests(ITestOutputHelper output)
{
    private sealed class CountingSink : IConntrackSink
    {
        public long Count { get; private set; }

        public long PortSum { get; private set; }

        public void Add(in ConntrackEntry entry)
        {
            Count++;
            PortSum += entry.NatPort;
        }
    }

    private static string Fill => Path.Combine(Repo.Fixtures, "conntrack", "fill.py");

    private static string Namespace(string what) => $"cep-ct{what}-{Environment.ProcessId % 100000}";

    private static void Filled(string ns, int entries)
    {
        if (File.Exists($"/run/netns/{ns}"))
        {
            Command.MustSucceed("ip", "netns", "del", ns);
        }

        Command.MustSucceed("ip", "netns", "add", ns);
        Command.Output("ip", "netns", "exec", ns, "python3", Fill, entries.ToString(CultureInfo.InvariantCulture)).Trim()
            .ShouldBe(entries.ToString(CultureInfo.InvariantCulture));
    }

    [NamespaceFact]
    public void A_dump_allocates_nothing_per_entry()
    {
        const int Entries = 20_000;
        var ns = Namespace("alloc");
        try
        {
            Filled(ns, Entries);
            NatLab.In(ns, () =>
            {
                var buffer = GC.AllocateUninitializedArray<byte>(ConntrackDump.BufferBytes);
                ConntrackDump.Read(new CountingSink(), buffer: buffer); // JIT and first-call costs out of the way
                var sink = new CountingSink();
                var before = GC.GetAllocatedBytesForCurrentThread();
                var result = ConntrackDump.Read(sink, buffer: buffer);
                var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                sink.Count.ShouldBe(Entries);
                result.Entries.ShouldBe(Entries);
                output.WriteLine($"{Entries} entries, {result.BytesReceived} bytes received, {allocated} bytes allocated");

                // The request, the socket object, the filter and the result: a few hundred bytes, whatever the size of the table.
                allocated.ShouldBeLessThan(4096, $"{allocated} bytes for {Entries} entries");
                return 0;
            });
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", ns);
        }
    }

    [NamespaceFact]
    public void A_dump_received_on_a_thread_of_its_own_gives_what_the_serial_dump_gives()
    {
        const int Entries = 20_000;
        var ns = Namespace("overlap");
        try
        {
            Filled(ns, Entries);
            var (serial, overlapped) = NatLab.In(ns, () =>
            {
                ConntrackDump.OverlapWorthIt(Entries).ShouldBeTrue();
                var serial = new ListSink();
                var overlapped = new ListSink();
                ConntrackDump.Read(serial).Entries.ShouldBe(Entries);
                ConntrackDump.Read(overlapped, overlap: true).Entries.ShouldBe(Entries);
                return (serial.Entries, overlapped.Entries);
            });

            // The same entries (fill.py's are all distinct by their reply tuple), whatever the order of the hash walk.
            static (CtAddress, CtAddress, ushort, byte, ushort, ushort) Reply(ConntrackEntry e) => (e.NatAddress, e.Destination, e.DestinationPort, e.Protocol, e.Zone, e.NatPort);
            overlapped.Select(Reply).Order().ShouldBe(serial.Select(Reply).Order());
            overlapped.Select(Reply).Distinct().Count().ShouldBe(Entries);
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", ns);
        }
    }

    [NamespaceFact]
    public void Where_no_entry_is_source_NATed_no_NAT_rule_is_read()
    {
        // fill.py's entries carry no SRC_NAT: no key to analyse, so no rule could apply to one.
        const int Entries = 2000;
        var ns = Namespace("norules");
        try
        {
            Filled(ns, Entries);
            var stdout = Command.Output("ip", "netns", "exec", ns, Repo.NativeBinary, "-v");
            stdout.ShouldContain($"conntrack: {Entries} entries of ");
            stdout.ShouldContain("'nat_tuples'=0;");
            stdout.ShouldNotContain("nf_tables:");
            stdout.ShouldNotContain("iptables-legacy");
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", ns);
        }
    }

    [NamespaceFact]
    public void Measure_a_large_dump_against_conntrack_and_proc()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable("CEP_BENCH_CONNTRACK"), CultureInfo.InvariantCulture, out var entries))
        {
            output.WriteLine("measurement only with CEP_BENCH_CONNTRACK=ENTRIES; nothing measured");
            return;
        }

        var ns = Namespace("bench");
        try
        {
            Filled(ns, entries);
            const int Rounds = 7;
            var (times, allocated, bytes) = NatLab.In(ns, () =>
            {
                var buffer = GC.AllocateUninitializedArray<byte>(ConntrackDump.BufferBytes);
                var times = new List<double>();
                long allocated = 0, bytes = 0;
                ConntrackDump.Read(new CountingSink(), buffer: buffer);
                for (var i = 0; i < Rounds; i++)
                {
                    var sink = new CountingSink();
                    var before = GC.GetAllocatedBytesForCurrentThread();
                    var clock = Stopwatch.StartNew();
                    var result = ConntrackDump.Read(sink, buffer: buffer);
                    times.Add(clock.Elapsed.TotalMilliseconds);
                    allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                    bytes = result.BytesReceived;
                    sink.Count.ShouldBe(entries);
                }

                // Kernel-side filters that match none of fill.py's entries (they carry no SRC_NAT
                // and go to 203.0.113.1): what is left is the walk of the hash.
                foreach (var query in new[]
                {
                    new ConntrackQuery { StatusMask = ConntrackStatus.SourceNat, StatusValue = ConntrackStatus.SourceNat },
                    new ConntrackQuery { Family = CtNetlink.AfInet, ReplyDestination = CtAddress.Parse("192.0.2.77") },
                })
                {
                    var filtered = new List<double>();
                    for (var i = 0; i < Rounds; i++)
                    {
                        var clock = Stopwatch.StartNew();
                        var result = ConntrackDump.Read(new CountingSink(), query, buffer);
                        filtered.Add(clock.Elapsed.TotalMilliseconds);
                        result.Entries.ShouldBe(0);
                        result.KernelFiltered.ShouldBeTrue();
                    }

                    output.WriteLine($"ConntrackDump.Read with a kernel filter matching none ({(query.StatusMask != 0 ? "status SRC_NAT" : "reply destination")}): median {Median(filtered):F1} ms");
                }

                return (times, allocated, bytes);
            });
            output.WriteLine($"ConntrackDump.Read, {entries} entries: median {Median(times):F1} ms (min {times.Min():F1}), {allocated} bytes allocated, {bytes} bytes received");

            // The parser alone, on the same dump stored by the capture tool: what of the time is ours.
            var stored = Directory.CreateTempSubdirectory("cep-ct-bench-").FullName;
            try
            {
                Command.MustSucceed("ip", "netns", "exec", ns, "python3", Path.Combine(Repo.Fixtures, "conntrack", "capture.py"), "dump", stored);
                var dump = File.ReadAllBytes(Path.Combine(stored, "ct-dump.bin"));
                var parse = new List<double>();
                for (var i = 0; i < Rounds; i++)
                {
                    var sink = new CountingSink();
                    var clock = Stopwatch.StartNew();
                    CtNetlinkParser.ParseDump(dump, sink);
                    parse.Add(clock.Elapsed.TotalMilliseconds);
                    sink.Count.ShouldBe(entries);
                }

                output.WriteLine($"CtNetlinkParser.ParseDump alone on the stored dump ({dump.Length} bytes): median {Median(parse):F1} ms");
            }
            finally
            {
                Directory.Delete(stored, recursive: true);
            }
            foreach (var (name, command) in new[]
            {
                ("conntrack -L > /dev/null", "conntrack -L >/dev/null 2>&1"),
                ("cat /proc/net/nf_conntrack > /dev/null", "cat /proc/net/nf_conntrack >/dev/null"),
            })
            {
                // Timed inside the namespace by the shell, so that ip netns exec's own start is not counted.
                var script = $"TIMEFORMAT=%R; for i in $(seq {Rounds}); do {{ time {command}; }} 2>&1; done";
                var seconds = Command.Output("ip", "netns", "exec", ns, "bash", "-c", script)
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture) * 1000).ToList();
                output.WriteLine($"{name}: median {Median(seconds):F1} ms (min {seconds.Min():F1})");
            }
        }
        finally
        {
            Command.MustSucceed("ip", "netns", "del", ns);
        }
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
