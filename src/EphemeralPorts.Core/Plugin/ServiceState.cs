namespace EphemeralPorts.Plugin;

/// <summary>Monitoring Plugins service states; the numeric value is the exit code.</summary>
public enum ServiceState
{
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

public static class ServiceStates
{
    // Deliberate precedence for "the worst of several results": CRITICAL > UNKNOWN > WARNING > OK.
    // A port table we could read that says CRITICAL is more actionable than one we could not read.
    public static int Severity(ServiceState state) => state switch
    {
        ServiceState.Ok => 0,
        ServiceState.Warning => 1,
        ServiceState.Unknown => 2,
        ServiceState.Critical => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static ServiceState Worst(ServiceState a, ServiceState b) => Severity(a) >= Severity(b) ? a : b;

    public static string Label(this ServiceState state) => state switch
    {
        ServiceState.Ok => "OK",
        ServiceState.Warning => "WARNING",
        ServiceState.Critical => "CRITICAL",
        ServiceState.Unknown => "UNKNOWN",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    /// <summary>Parses a state name or number as given in <c>-t SECONDS:STATE</c>.</summary>
    public static bool TryParse(string text, out ServiceState state)
    {
        switch (text.Trim().ToUpperInvariant())
        {
            case "0": case "OK": state = ServiceState.Ok; return true;
            case "1": case "WARNING": case "WARN": state = ServiceState.Warning; return true;
            case "2": case "CRITICAL": case "CRIT": state = ServiceState.Critical; return true;
            case "3": case "UNKNOWN": state = ServiceState.Unknown; return true;
            default: state = ServiceState.Unknown; return false;
        }
    }
}
