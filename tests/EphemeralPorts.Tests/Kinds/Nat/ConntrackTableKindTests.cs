using EphemeralPorts.Kinds;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Metrics;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The conntrack table's figure and sentence at the edge the kernel draws: __nf_conntrack_alloc()
/// takes entries up to exactly nf_conntrack_max and refuses the next (ConntrackTableOracleTests
/// fills a namespace to prove it). Shown as 100% and "dropped now" only there.
/// </summary>
public class ConntrackTableKindTests
{
    private static readonly Thresholds Defaults = new(NagiosRange.Parse("70"), NagiosRange.Parse("85"));

    private static KindVerdict? Evaluate(long count, long max, long? unassured = 0) =>
        ConntrackTableKind.Instance.Evaluate(Readings(new ConntrackTable(count, max, null, "a test") { Unassured = unassured }), Defaults);

    private static Readings Readings(ConntrackTable table) =>
        new(Reports.Of("idle-default-range").Shown.Usage, new Dictionary<IResource, object> { [NatResource.Instance] = new NatReading(table, null, null, false) });

    [Theory]
    [InlineData(262_143, 262_144, 99.99)]
    [InlineData(262_118, 262_144, 99.99)]
    [InlineData(262_117, 262_144, 99.9897003173828125)]
    [InlineData(262_000, 262_144, 99.945068359375)]
    [InlineData(262_144, 262_144, 100)]
    [InlineData(65_535, 65_536, 99.99)]
    [InlineData(9_999, 10_000, 99.99)]
    [InlineData(999, 1_000, 99.9)]
    [InlineData(0, 262_144, 0)]
    [InlineData(5, 0, 0)]
    public void The_fill_reads_100_only_when_the_kernel_refuses_the_next_entry(long count, long max, double percent)
    {
        var table = new ConntrackTable(count, max, null, "a test");
        table.Percent.ShouldBe(percent, 1e-9);
        table.Full.ShouldBe(max > 0 && count >= max);
        Numbers.Format(table.Percent).Equals("100", StringComparison.Ordinal).ShouldBe(table.Full, $"{count} of {max} shown as {Numbers.Format(table.Percent)}%");
    }

    [Fact]
    public void One_entry_short_is_critical_but_not_dropping_full_is_dropping()
    {
        var shortOfIt = Evaluate(262_143, 262_144).ShouldNotBeNull();
        shortOfIt.State.ShouldBe(ServiceState.Critical);
        shortOfIt.Sentence.ShouldBe("conntrack table holds 262143 of 262144 entries (99.99%)");

        var full = Evaluate(262_144, 262_144).ShouldNotBeNull();
        full.State.ShouldBe(ServiceState.Critical);
        full.Sentence.ShouldBe("conntrack table holds 262144 of 262144 entries (100%), new connections are dropped now");

        // Entries not yet assured may be evicted for a new flow (early_drop): dropped only "unless".
        Evaluate(262_144, 262_144, 17).ShouldNotBeNull().Sentence.ShouldBe("conntrack table holds 262144 of 262144 entries (100%), new connections are dropped unless early_drop finds one of its 17 unassured entries beside them");
        Evaluate(262_144, 262_144, null).ShouldNotBeNull().Sentence.ShouldBe("conntrack table holds 262144 of 262144 entries (100%), new connections are dropped unless early_drop finds an unassured entry beside them", "the dump was not read");

        Evaluate(100, 262_144).ShouldBeNull("quiet while OK");
        Evaluate(100, 0).ShouldBeNull("no limit, nothing to fill");
    }
}
