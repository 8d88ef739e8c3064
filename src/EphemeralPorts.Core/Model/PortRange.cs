namespace EphemeralPorts.Model;

/// <summary><c>net.ipv4.ip_local_port_range</c>: inclusive, used by IPv4 and IPv6 alike.</summary>
public readonly record struct PortRange
{
    public PortRange(int low, int high)
    {
        if (low < 1 || high > 65535 || low > high)
        {
            throw new ArgumentOutOfRangeException(nameof(low), $"{low}-{high} is not a port range");
        }

        Low = low;
        High = high;
    }

    public int Low { get; }

    public int High { get; }

    public int Size => High - Low + 1;

    public bool Contains(int port) => port >= Low && port <= High;

    public override string ToString() => $"{Low}-{High}";
}
