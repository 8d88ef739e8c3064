namespace EphemeralPorts.Plugin;

/// <summary>
/// A warning and a critical range; critical is evaluated first, as the guidelines require. A
/// kind whose figure is not a share of capacity (a failure probability) has a set of its own,
/// by name in <see cref="Sets"/>; every other figure is held to these two.
/// </summary>
public sealed record Thresholds(NagiosRange Warning, NagiosRange Critical)
{
    /// <summary>Threshold sets of their own, by name (<see cref="For"/>).</summary>
    public IReadOnlyDictionary<string, Thresholds> Sets { get; init; } = new Dictionary<string, Thresholds>();

    /// <summary>The set named <paramref name="name"/>, or these where it has none (or the name is null).</summary>
    public Thresholds For(string? name) => name is not null && Sets.TryGetValue(name, out var set) ? set : this;

    /// <summary>The sets too, by name: two thresholds that differ in a set do not print alike.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Warning = ").Append(Warning).Append(", Critical = ").Append(Critical);
        foreach (var (name, set) in Sets.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            builder.Append(", ").Append(name).Append(" = ").Append(set);
        }

        return true;
    }

    public ServiceState Evaluate(double value) =>
        Critical.Alerts(value) ? ServiceState.Critical
        : Warning.Alerts(value) ? ServiceState.Warning
        : ServiceState.Ok;
}
