using EphemeralPorts.Plugin;

namespace EphemeralPorts.Evaluation;

/// <summary>
/// How several results make one state. The order of severity is a deliberate choice
/// (<see cref="ServiceStates.Severity"/>): CRITICAL > UNKNOWN > WARNING > OK, because a table that
/// could be read and says CRITICAL is more actionable than one that could not be read.
/// </summary>
public static class Precedence
{
    /// <summary>Worst first: by state, then by the percentage behind it; ties keep their order.</summary>
    public static List<T> WorstFirst<T>(IEnumerable<T> results, Func<T, ServiceState> state, Func<T, double> percent) =>
        [.. results.OrderByDescending(r => ServiceStates.Severity(state(r))).ThenByDescending(percent)];

    /// <summary>
    /// The state when something known to exist was not seen: what was seen still counts when it
    /// is worse (a WARNING or CRITICAL there is real), otherwise the state is UNKNOWN, never OK.
    /// </summary>
    public static ServiceState WithUnseen(ServiceState seen, bool anythingUnseen) =>
        anythingUnseen ? ServiceStates.Worst(seen, ServiceState.Unknown) : seen;
}
