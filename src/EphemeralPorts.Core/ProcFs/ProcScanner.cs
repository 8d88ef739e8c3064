using EphemeralPorts.Plugin;
using EphemeralPorts.Ports;

namespace EphemeralPorts.ProcFs;

/// <summary>What was read from where, for <c>-vvv</c> and for saying what could not be seen.</summary>
public sealed record TableRead(string Path, bool Present, int Sockets);

/// <summary>
/// Acquisition from a /proc tree: the sysctls of the namespace and its four socket tables, fed
/// into a <see cref="PortUsageCalculator"/> one line at a time. Reports each file it opens through
/// <paramref name="progress"/> so that a timeout can say where the read hung.
/// </summary>
/// <paramref name="tablesDirectory"/> is where the socket tables are, below the root: <c>net</c>,
/// or <c>thread-self/net</c> for a thread that entered another network namespace (/proc/net
/// follows the process's main thread, /proc/thread-self/net the calling thread).
public sealed class ProcScanner(ProcRoot root, Action<string>? progress = null, string tablesDirectory = "net")
{
    private const string Ipv4Sysctl = "sys/net/ipv4/";

    public KernelSettings ReadSettings()
    {
        var range = SysctlParser.ParsePortRange(Required("ip_local_port_range"), Where("ip_local_port_range"));
        var reservedText = Optional("ip_local_reserved_ports");
        var reserved = reservedText is null ? new PortSet() : SysctlParser.ParseReservedPorts(reservedText, Where("ip_local_reserved_ports"));
        var twReuse = IntOrDefault("tcp_tw_reuse", 2, 0, 2);
        var delayText = Optional("tcp_tw_reuse_delay");
        var delay = delayText is null
            ? KernelSettings.DefaultTwReuseDelayMs
            : SysctlParser.ParseInt(delayText, Where("tcp_tw_reuse_delay"), 1, int.MaxValue);
        var timestamps = IntOrDefault("tcp_timestamps", 1, 0, 2);
        var finTimeout = IntOrDefault("tcp_fin_timeout", 60, 0, int.MaxValue);
        return new KernelSettings(range, reserved, twReuse, delay, delayText is not null, timestamps, finTimeout);
    }

    /// <summary>
    /// How many TCP sockets the namespace has (<see cref="SockstatParser"/>); null when that cannot
    /// be read or understood: it is a hint for how to split a sock_diag dump, never part of the answer.
    /// </summary>
    public long? TcpSocketCountHint()
    {
        try
        {
            return root.ReadSmallFile($"{tablesDirectory}/sockstat", optional: true) is { } sockstat
                ? SockstatParser.TcpSockets(sockstat, root.ReadSmallFile($"{tablesDirectory}/sockstat6", optional: true))
                : null;
        }
        catch (CheckException)
        {
            return null;
        }
    }

    /// <summary>Streams the socket tables into <paramref name="calculator"/>.</summary>
    public IReadOnlyList<TableRead> ReadTables(PortUsageCalculator calculator, bool tcp, bool udp)
    {
        var reads = new List<TableRead>(4);
        if (tcp)
        {
            reads.Add(ReadTable($"{tablesDirectory}/tcp", Transport.Tcp, ipv6: false, calculator));
            reads.Add(ReadTable($"{tablesDirectory}/tcp6", Transport.Tcp, ipv6: true, calculator));
        }

        if (udp)
        {
            reads.Add(ReadTable($"{tablesDirectory}/udp", Transport.Udp, ipv6: false, calculator));
            reads.Add(ReadTable($"{tablesDirectory}/udp6", Transport.Udp, ipv6: true, calculator));
        }

        return reads;
    }

    // The IPv6 tables are absent when IPv6 is disabled: that is normal, not an error.
    private TableRead ReadTable(string relative, Transport transport, bool ipv6, PortUsageCalculator calculator)
    {
        progress?.Invoke(root.Describe(relative));
        using var reader = root.OpenLines(relative, optional: ipv6);
        if (reader is null)
        {
            return new TableRead(root.Describe(relative), Present: false, Sockets: 0);
        }

        if (!reader.TryReadLine(out var header))
        {
            throw new CheckException($"{reader.Path}: empty, the kernel always prints a header line");
        }

        if (!SocketTableParser.IsHeader(header))
        {
            throw reader.Error("not a socket table header");
        }

        var sockets = 0;
        while (reader.TryReadLine(out var line))
        {
            if (!SocketTableParser.TryParse(line, transport, ipv6, out var entry, out var error))
            {
                throw reader.Error(error!);
            }

            calculator.Add(entry);
            sockets++;
        }

        return new TableRead(reader.Path, Present: true, sockets);
    }

    private string Where(string name) => root.Describe(Ipv4Sysctl + name);

    private string Required(string name)
    {
        progress?.Invoke(Where(name));
        return root.ReadSmallFile(Ipv4Sysctl + name, optional: false)!;
    }

    private string? Optional(string name)
    {
        progress?.Invoke(Where(name));
        return root.ReadSmallFile(Ipv4Sysctl + name, optional: true);
    }

    private int IntOrDefault(string name, int fallback, int min, int max)
    {
        var text = Optional(name);
        return text is null ? fallback : SysctlParser.ParseInt(text, Where(name), min, max);
    }
}
