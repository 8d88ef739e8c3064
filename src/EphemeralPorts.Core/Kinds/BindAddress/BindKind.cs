using EphemeralPorts.Metrics;
using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.BindAddress;

/// <summary>
/// bind(addr, 0): the ports one local address can still be given, where connections took their
/// port by bind() before connect() (inet_csk_find_open_port(); the BPF reading only).
/// </summary>
public sealed class BindKind : IExhaustionKind
{
    public static readonly BindKind Instance = new();

    public static readonly MetricKind Figures = new("bind")
    {
        Exposition = 20,
        HelpNote = "bind(addr, 0), BPF reading, where connections took their port by bind() before connect()",
    };

    private BindKind()
    {
    }

    public string Id => Figures.Id;

    public MetricKind Group => Figures;

    public IReadOnlyList<Metric> Metrics => BindMetrics.All;

    /// <summary>When it runs out, taking the source address off bind() is what the operator changes first.</summary>
    public bool Leads => true;

    public KindVerdict? Evaluate(Readings readings, Thresholds thresholds)
    {
        if (readings.Sockets.Tcp?.Bind?.Busiest is not { } bound)
        {
            return null;
        }

        var state = thresholds.Evaluate(bound.Percent);
        return new KindVerdict(this, state, bound.Percent, Sentence(bound), state == ServiceState.Ok ? [] : [Advice(bound)]);
    }

    private static string Sentence(AddressBindUsage bound)
    {
        var took = $"{bound.BoundConnections} connection{(bound.BoundConnections == 1 ? "" : "s")} took their port by bind() before connect()";
        var bind = bound.Address.IsV4 ? $"bind({bound.Address}, 0)" : $"bind([{bound.Address}], 0)";
        return bound.Free <= 0
            ? $"{bind} has 0 of {bound.Capacity} ports left: {took}, set IP_BIND_ADDRESS_NO_PORT or drop the source address"
            : $"{bind} has {bound.Free} of {bound.Capacity} ports left ({Numbers.Format(bound.Percent)}% used): {took}";
    }

    private static string Advice(AddressBindUsage bound) =>
        $"{bound.BoundConnections} connections from {bound.Address} took their port by bind() before connect() (Go's Dialer.LocalAddr, Java's Socket(host, port, localAddr, 0), Python's source_address): each holds it from every destination. Set IP_BIND_ADDRESS_NO_PORT before bind(), or drop the source address";
}
