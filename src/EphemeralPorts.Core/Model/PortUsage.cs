namespace EphemeralPorts.Model;

/// <summary>One (source address, destination address, destination port) tuple.</summary>
public readonly record struct TupleKey(IpAddress Source, IpAddress Destination, int DestinationPort, string? Device = null) : IComparable<TupleKey>
{
    public int CompareTo(TupleKey other)
    {
        var c = Source.CompareTo(other.Source);
        if (c == 0)
        {
            c = Destination.CompareTo(other.Destination);
        }

        if (c == 0)
        {
            c = DestinationPort.CompareTo(other.DestinationPort);
        }

        return c != 0 ? c : string.CompareOrdinal(Device, other.Device);
    }

    /// <summary>The same tuple for sockets bound to no device.</summary>
    public TupleKey Unbound => this with { Device = null };

    /// <summary>As ss writes a bound device: the source address, '%', the device.</summary>
    public override string ToString() => $"{Source}{(Device is null ? string.Empty : $"%{Device}")} -> {Destination.WithPort(DestinationPort)}";
}

/// <summary>How much of its capacity one tuple uses.</summary>
/// <param name="Used">Distinct ephemeral ports the tuple holds, as connect() counts them.</param>
/// <param name="TimeWait">TIME_WAIT sockets of the tuple, reusable or not.</param>
/// <param name="ReusableTimeWait">TIME_WAIT sockets connect() would take over; not in <paramref name="Used"/>.</param>
public sealed record TupleUsage(TupleKey Tuple, int Used, int TimeWait, int ReusableTimeWait)
{
    /// <summary>For the sockets of the tuple with their own IP_LOCAL_PORT_RANGE: that range (inside the namespace's).</summary>
    public PortRange? OwnRange { get; init; }

    /// <summary>With <see cref="OwnRange"/>: the ports connect() has for those sockets; else the tuple shares the namespace's capacity.</summary>
    public int? OwnCapacity { get; init; }

    public override string ToString() => OwnRange is { } own ? $"{Tuple} (IP_LOCAL_PORT_RANGE {own})" : Tuple.ToString();
}

/// <summary>A socket holding a port of the range through bind()/listen(): the port is lost to every tuple.</summary>
public sealed record ExclusivePort(int Port, IpAddress Address, byte State);

public sealed record TcpUsage(
    int Capacity,
    IReadOnlyList<TupleUsage> Tuples,
    int PortsInUse,
    int TimeWait,
    int ReusableTimeWait,
    IReadOnlyDictionary<byte, int> StateCounts,
    IReadOnlyList<ExclusivePort> Exclusive,
    int ExclusivePortCount)
{
    /// <summary>The busiest tuple, or null when no tuple holds a port (reusable TIME_WAIT holds none).</summary>
    public TupleUsage? Busiest => Tuples.Count > 0 && Tuples[0].Used > 0 ? Tuples[0] : null;

    /// <summary>The ports a tuple's connect() has: its own narrowed range's, or the namespace's per-tuple capacity.</summary>
    public int CapacityOf(TupleUsage tuple) => tuple.OwnCapacity ?? Capacity;

    /// <summary>Tuples holding at least one port (a tuple's narrowed-range figure is no tuple of its own).</summary>
    public int TuplesInUse => Tuples.Count(t => t.Used > 0 && t.OwnRange is null);

    public int BusiestUsed => Busiest?.Used ?? 0;

    /// <summary>The busiest tuple's capacity: the per-tuple one, or its own narrowed range's.</summary>
    public int BusiestCapacity => Busiest is { } b ? CapacityOf(b) : Capacity;

    /// <summary>Percent of its capacity the busiest tuple uses; 100 when no port is left at all.</summary>
    public double BusiestPercent => Plugin.Numbers.Percent(BusiestUsed, BusiestCapacity);

    /// <summary>bind(addr, 0) per local address; null where the source cannot tell bind()'s ports from connect()'s.</summary>
    public BindUsage? Bind { get; init; }
}

/// <summary>
/// bind(addr, 0) on one local address: the ports of the range it can no longer take, of those
/// not reserved, and how many connections there took their port by bind() before connect().
/// </summary>
public sealed record AddressBindUsage(IpAddress Address, int Used, int Capacity, int BoundConnections)
{
    public int Free => Capacity - Used;

    public double Percent => Plugin.Numbers.Percent(Used, Capacity);
}

/// <summary>The bind(addr, 0) figure: every local address where a connection took its port by bind() before connect(), busiest first.</summary>
public sealed record BindUsage(IReadOnlyList<AddressBindUsage> Addresses)
{
    public AddressBindUsage? Busiest => Addresses.Count > 0 ? Addresses[0] : null;

    public double BusiestPercent => Busiest?.Percent ?? 0;
}

public sealed record UdpUsage(int Used, int Capacity, int Sockets)
{
    /// <summary>Where the figure is that of a per-socket IP_LOCAL_PORT_RANGE (fuller than the whole range): that range.</summary>
    public PortRange? OwnRange { get; init; }

    public double Percent => Plugin.Numbers.Percent(Used, Capacity);
}

/// <summary>The model's answer for one network namespace; <c>Tcp</c> or <c>Udp</c> is null when not checked.</summary>
public sealed record PortUsage(KernelSettings Settings, int ReservedInRange, TcpUsage? Tcp, UdpUsage? Udp)
{
    /// <summary>The percentage that drives the state: the worse of the busiest TCP tuple and UDP.</summary>
    public double HeadlinePercent => Math.Max(Tcp?.BusiestPercent ?? 0, Udp?.Percent ?? 0);
}

/// <summary>A process holding sockets of a tuple (<c>--processes</c>).</summary>
public sealed record SocketHolder(int Pid, string Command, int Sockets);
