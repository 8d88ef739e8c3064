namespace EphemeralPorts.Plugin;

/// <summary>A warning and a critical range; critical is evaluated first, as the guidelines require.</summary>
public sealed record Thresholds(NagiosRange Warning, NagiosRange Critical)
{
    public ServiceState Evaluate(double value) =>
        Critical.Alerts(value) ? ServiceState.Critical
        : Warning.Alerts(value) ? ServiceState.Warning
        : ServiceState.Ok;
}
