using System.Text.Json.Serialization;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The JSON section of the NAT kind (<c>nat</c>), typed: what the Zabbix templates read from it,
/// the discovery's list of tuples included, is held to these names (CatalogueDriftTests).
/// </summary>
/// <param name="NotRead">Why the tuples were not read, where they were not.</param>
/// <param name="Forwarding">Where they were not: the forwarding sysctl that is on, if any.</param>
/// <param name="BusiestPct">The busiest tuple's fill.</param>
/// <param name="FailurePct">The busiest tuple's failure odds, in percent.</param>
/// <param name="Tuples">The busiest tuples, worst first, at most --top.</param>
public sealed record NatJson(string? NotRead, string? Forwarding, double? BusiestPct, double? FailurePct, IReadOnlyList<NatTupleJson> Tuples);

/// <summary>One tuple of <see cref="NatJson.Tuples"/>: its key, and what its entries hold of its range.</summary>
public sealed record NatTupleJson(
    string NatAddress,
    string Destination,
    int Port,
    string Protocol,
    int Zone,
    int Entries,
    int Held,
    int Soft,
    int Capacity,
    string Range,
    double Percent,
    double FailurePct)
{
    public static NatTupleJson Of(NatKeyUsage key) => new(
        key.Key.NatAddress.ToString(),
        key.Key.Destination.ToString(),
        key.Key.DestinationPort,
        NatKeyUsage.ProtocolName(key.Key.Protocol),
        key.Key.Zone,
        key.Entries,
        key.Held,
        key.Soft,
        key.Range.Size,
        key.Range.ToString(),
        key.Percent,
        key.FailurePercent);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NatJson))]
internal sealed partial class NatJsonContext : JsonSerializerContext;
