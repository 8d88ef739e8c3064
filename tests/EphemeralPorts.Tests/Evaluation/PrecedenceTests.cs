using EphemeralPorts.Evaluation;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Tests.Evaluation;

/// <summary>
/// The documented precedence of states (README, "States"): CRITICAL > UNKNOWN > WARNING > OK. A
/// table that could be read and says CRITICAL is more actionable than one that could not be read;
/// an UNKNOWN (something not seen) outweighs a WARNING and an OK of what was seen.
/// </summary>
public class PrecedenceTests
{
    private static readonly ServiceState[] MildestFirst = [ServiceState.Ok, ServiceState.Warning, ServiceState.Unknown, ServiceState.Critical];

    public static TheoryData<ServiceState, ServiceState> Pairs()
    {
        var data = new TheoryData<ServiceState, ServiceState>();
        foreach (var a in MildestFirst)
        {
            foreach (var b in MildestFirst)
            {
                data.Add(a, b);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void The_worst_of_two_states_is_the_later_in_OK_WARNING_UNKNOWN_CRITICAL(ServiceState a, ServiceState b)
    {
        var expected = MildestFirst[Math.Max(Array.IndexOf(MildestFirst, a), Array.IndexOf(MildestFirst, b))];
        ServiceStates.Worst(a, b).ShouldBe(expected);
        ServiceStates.Worst(b, a).ShouldBe(expected);
    }

    [Fact]
    public void Critical_outweighs_warning_and_warning_outweighs_ok()
    {
        ServiceStates.Worst(ServiceState.Warning, ServiceState.Critical).ShouldBe(ServiceState.Critical);
        ServiceStates.Worst(ServiceState.Ok, ServiceState.Warning).ShouldBe(ServiceState.Warning);
        ServiceStates.Worst(ServiceState.Ok, ServiceState.Ok).ShouldBe(ServiceState.Ok);
    }

    [Theory]
    [InlineData(ServiceState.Ok, ServiceState.Unknown)]
    [InlineData(ServiceState.Warning, ServiceState.Unknown)]
    [InlineData(ServiceState.Unknown, ServiceState.Unknown)]
    [InlineData(ServiceState.Critical, ServiceState.Critical)]
    public void Something_not_seen_makes_OK_and_WARNING_unknown_but_leaves_CRITICAL(ServiceState seen, ServiceState expected)
    {
        Precedence.WithUnseen(seen, anythingUnseen: true).ShouldBe(expected);
        Precedence.WithUnseen(seen, anythingUnseen: false).ShouldBe(seen);
    }

    [Fact]
    public void Worst_first_orders_by_state_then_by_percentage_and_keeps_ties_in_order()
    {
        (string Name, ServiceState State, double Percent)[] results =
        [
            ("ok-high", ServiceState.Ok, 60), ("warn-low", ServiceState.Warning, 71), ("unknown", ServiceState.Unknown, 0),
            ("crit", ServiceState.Critical, 90), ("warn-high", ServiceState.Warning, 80), ("ok-a", ServiceState.Ok, 10), ("ok-b", ServiceState.Ok, 10),
        ];
        Precedence.WorstFirst(results, r => r.State, r => r.Percent).Select(r => r.Name)
            .ShouldBe(["crit", "unknown", "warn-high", "warn-low", "ok-high", "ok-a", "ok-b"]);
    }
}
