namespace EphemeralPorts.Plugin;

/// <summary>What a check concluded: a state, one summary sentence, perfdata and detail lines.</summary>
public sealed record CheckResult(
    ServiceState State,
    string Summary,
    IReadOnlyList<PerfDatum> PerfData,
    IReadOnlyList<string> Details)
{
    public static CheckResult Unknown(string message) => new(ServiceState.Unknown, message, [], []);
}
