using System.Text;
using EphemeralPorts.Acquisition.Namespaces;
using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Fuzz;

/// <summary>
/// One target per parser of outside input. A parser may refuse its input the way it documents
/// (CheckException for /proc text and ctnetlink dumps, InvalidDataException for a sock_diag buffer, a false TryParse
/// with an error); anything else it throws is a finding, and so is a result that breaks what the
/// model relies on (a port outside 0-65535, a container id that is not 64 hex digits).
/// </summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>
    {
        ["socket-table"] = SocketTable,
        ["sysctl"] = Sysctl,
        ["sockstat"] = Sockstat,
        ["netlink"] = Netlink,
        ["cgroup"] = Cgroup,
        ["ctnetlink"] = Ctnetlink,
    };

    private static KernelSettings Kernel() => new(new PortRange(32768, 60999), new PortSet(), 2, KernelSettings.DefaultTwReuseDelayMs, false, 1, 60);

    /// <summary>/proc/net/{tcp,tcp6,udp,udp6} through the line reader, read as each of the four tables, into the model.</summary>
    public static void SocketTable(byte[] data)
    {
        foreach (var (transport, ipv6) in new[] { (Transport.Tcp, false), (Transport.Tcp, true), (Transport.Udp, false), (Transport.Udp, true) })
        {
            var calculator = new PortUsageCalculator(Kernel(), recordInodes: true);
            try
            {
                using var reader = new ProcLineReader(new MemoryStream(data), "fuzz");
                if (!reader.TryReadLine(out var header) || !SocketTableParser.IsHeader(header))
                {
                    continue;
                }

                while (reader.TryReadLine(out var line))
                {
                    if (SocketTableParser.TryParse(line, transport, ipv6, out var entry, out var error))
                    {
                        Check(entry);
                        calculator.Add(entry);
                    }
                    else if (error is null)
                    {
                        throw new InvalidOperationException("TryParse refused a line without saying why");
                    }
                }
            }
            catch (CheckException)
            {
                continue;
            }

            Finish(calculator);
        }
    }

    /// <summary>The sysctl files: the range, the reserved ports, the integers; text as ProcRoot decodes it.</summary>
    public static void Sysctl(byte[] data)
    {
        var text = Encoding.ASCII.GetString(data);
        Refusable(() =>
        {
            var range = SysctlParser.ParsePortRange(text, "fuzz");
            if (range.Low is < 1 or > 65535 || range.High < range.Low || range.High > 65535)
            {
                throw new InvalidOperationException($"range {range.Low}-{range.High}");
            }
        });
        Refusable(() =>
        {
            var reserved = SysctlParser.ParseReservedPorts(text, "fuzz");
            var kernel = Kernel() with { Reserved = reserved };
            Finish(new PortUsageCalculator(kernel));
        });
        Refusable(() =>
        {
            var value = SysctlParser.ParseInt(text, "fuzz", 0, 2);
            if (value is < 0 or > 2)
            {
                throw new InvalidOperationException($"tcp_tw_reuse {value}");
            }
        });
        Refusable(() => SysctlParser.ParseInt(text, "fuzz", int.MinValue, int.MaxValue));
    }

    /// <summary>sockstat, then a NUL, then sockstat6.</summary>
    public static void Sockstat(byte[] data)
    {
        var text = Encoding.ASCII.GetString(data);
        var nul = text.IndexOf('\0', StringComparison.Ordinal);
        var count = nul < 0 ? SockstatParser.TcpSockets(text, null) : SockstatParser.TcpSockets(text[..nul], text[(nul + 1)..]);
        if (count < 0)
        {
            throw new InvalidOperationException($"negative socket count {count}");
        }
    }

    /// <summary>One received netlink buffer of sock_diag replies, as TCP and as UDP.</summary>
    public static void Netlink(byte[] data)
    {
        foreach (var transport in new[] { Transport.Tcp, Transport.Udp })
        {
            var calculator = new PortUsageCalculator(Kernel(), recordInodes: true);
            var sink = new CheckingSink(calculator);
            try
            {
                SockDiagProtocol.Parse(data, transport, sink, out _);
            }
            catch (InvalidDataException)
            {
                continue;
            }

            Finish(calculator);
        }
    }

    /// <summary>/proc/PID/cgroup: the container id NamespaceFinder names a namespace by.</summary>
    public static void Cgroup(byte[] data)
    {
        var text = Encoding.UTF8.GetString(data);
        if (NamespaceFinder.ContainerIdIn(text) is { } id && (id.Length != 64 || !id.All(char.IsAsciiHexDigitLower)))
        {
            throw new InvalidOperationException($"container id '{id}'");
        }
    }

    /// <summary>
    /// A stored ctnetlink dump (conntrack entries, then NLMSG_DONE) and the same bytes as per-CPU
    /// statistics: entries or a CheckException, and every entry what the NAT model relies on.
    /// </summary>
    public static void Ctnetlink(byte[] data)
    {
        Refusable(() => CtNetlinkParser.ParseDump(data, new CheckingConntrackSink()));
        Refusable(() =>
        {
            var stats = ConntrackStatistics.ParseCpuStatsDump(data);
            if (stats.Cpus < 0)
            {
                throw new InvalidOperationException($"{stats.Cpus} CPUs");
            }
        });
    }

    private sealed class CheckingConntrackSink : IConntrackSink
    {
        public void Add(in ConntrackEntry entry)
        {
            // An IPv4 entry's addresses are all IPv4; a key is made of the entry's own fields.
            if (!entry.IsIPv6 && !(entry.NatAddress.IsV4Mapped && entry.Destination.IsV4Mapped && entry.Client.IsV4Mapped))
            {
                throw new InvalidOperationException($"IPv4 entry with address {entry.NatAddress}, {entry.Destination} or {entry.Client}");
            }

            if (entry.Key.NatAddress != entry.NatAddress || entry.Key.DestinationPort != entry.DestinationPort)
            {
                throw new InvalidOperationException("key differs from the entry");
            }
        }
    }

    private static void Refusable(Action parse)
    {
        try
        {
            parse();
        }
        catch (CheckException)
        {
            // The documented refusal.
        }
    }

    private static void Check(in SocketEntry entry)
    {
        if (entry.LocalPort is < 0 or > 65535 || entry.RemotePort is < 0 or > 65535)
        {
            throw new InvalidOperationException($"port {entry.LocalPort} or {entry.RemotePort} outside 0-65535");
        }

        // -1 is "not in TIME_WAIT"; a time left is never negative.
        if (entry.TimeWaitRemainingMs < -1)
        {
            throw new InvalidOperationException($"TIME_WAIT time left {entry.TimeWaitRemainingMs} ms");
        }
    }

    private static void Finish(PortUsageCalculator calculator)
    {
        var usage = calculator.Finish();
        if (usage.Tcp is { } tcp)
        {
            _ = calculator.InodesOf([.. tcp.Tuples.Take(5).Select(t => t.Tuple)]);
        }
    }

    private sealed class CheckingSink(ISocketSink inner) : ISocketSink
    {
        public void Add(in SocketEntry socket)
        {
            Check(socket);
            inner.Add(socket);
        }
    }
}
