using EphemeralPorts.Plugin;

namespace EphemeralPorts.Check;

/// <summary>Where sockets are read (<c>--source</c>): auto tries each way in <see cref="PortCheck.SourceOrder"/>.</summary>
public enum SourceChoice
{
    Auto,
    Bpf,
    Netlink,
    Proc,
}

public enum ProtocolChoice
{
    All,
    Tcp,
    Udp,
}

/// <summary>Which network namespaces to check: all of them, one by name or path, or one by pid.</summary>
public sealed record NamespaceChoice(bool All, string? Netns, int? Pid)
{
    /// <summary>The bytes of <see cref="Netns"/> as the command line gave them (a name need not be UTF-8).</summary>
    public byte[]? NetnsBytes { get; init; }
}

/// <summary>
/// What to read and where: everything that changes the reading, and nothing else. A reading
/// made early (<see cref="PortCheck.Prefetch"/>) is used only for equal settings of this kind.
/// </summary>
public sealed record ReadingSettings(
    ProtocolChoice Protocol = ProtocolChoice.All,
    string ProcRoot = "/proc",
    SourceChoice Source = SourceChoice.Auto,
    NamespaceChoice? Namespaces = null,
    bool Processes = false)
{
    /// <summary>The source-NAT port range the operator gave (<c>--nat-range</c>), which overrides what the rules say; null when none.</summary>
    public (int Low, int High)? NatRange { get; init; }

    /// <summary>Source-NAT tuples are neither read nor alerted on (<c>--ignore-nat</c>); the conntrack table still is.</summary>
    public bool IgnoreNat { get; init; }

    public bool Tcp => Protocol != ProtocolChoice.Udp;

    public bool Udp => Protocol != ProtocolChoice.Tcp;
}

/// <summary>The validated, immutable settings of one check: the reading, the thresholds, how many tuples to list, the timeout.</summary>
public sealed record CheckSettings(
    ReadingSettings Reading,
    Thresholds Thresholds,
    int Top,
    TimeSpan Timeout,
    ServiceState TimeoutState = ServiceState.Unknown);
