using EphemeralPorts.Plugin;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// The sysctls of a namespace that decide its ports (under <c>sys/net/ipv4</c> of a /proc tree:
/// /proc/sys follows the namespace of the calling thread) and the sockstat hint, where the
/// <see cref="NamespaceView"/> says they are. Reports each file it opens through
/// <paramref name="progress"/> so that a timeout can say where the read hung.
/// </summary>
public sealed class SysctlReader(NamespaceView view, Action<string>? progress = null)
{
    private readonly ProcRoot _root = view.Root;
    private readonly string _tables = view.TablesDirectory;
    private readonly string _ipv4Sysctl = view.SysctlDirectory + "/net/ipv4/";

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
    /// The namespace's socket counters (<see cref="Sockstat"/>); null when they cannot be read:
    /// they are hints, never part of the answer.
    /// </summary>
    public Sockstat? ReadSockstat()
    {
        try
        {
            return _root.ReadSmallFile($"{_tables}/sockstat", optional: true) is { } sockstat
                ? SockstatParser.Parse(sockstat, _root.ReadSmallFile($"{_tables}/sockstat6", optional: true))
                : null;
        }
        catch (CheckException)
        {
            return null;
        }
    }

    private string Where(string name) => _root.Describe(_ipv4Sysctl + name);

    private string Required(string name)
    {
        progress?.Invoke(Where(name));
        return _root.ReadSmallFile(_ipv4Sysctl + name, optional: false)!;
    }

    private string? Optional(string name)
    {
        progress?.Invoke(Where(name));
        return _root.ReadSmallFile(_ipv4Sysctl + name, optional: true);
    }

    private int IntOrDefault(string name, int fallback, int min, int max)
    {
        var text = Optional(name);
        return text is null ? fallback : SysctlParser.ParseInt(text, Where(name), min, max);
    }
}
