using EphemeralPorts.Plugin;

namespace EphemeralPorts.Tests.Plugin;

public class PerfDatumTests
{
    [Fact]
    public void Formats_with_trailing_empty_fields_trimmed()
    {
        new PerfDatum("tcp_busiest_pct", 33.3333, "%", "70", "85", 0, 100).ToString().ShouldBe("'tcp_busiest_pct'=33.33%;70;85;0;100");
        new PerfDatum("tcp_busiest_used", 10, Min: 0, Max: 28232).ToString().ShouldBe("'tcp_busiest_used'=10;;;0;28232");
        new PerfDatum("tcp_time_wait", 0, Min: 0).ToString().ShouldBe("'tcp_time_wait'=0;;;0");
        new PerfDatum("x", 5).ToString().ShouldBe("'x'=5");
    }

    [Theory]
    [InlineData(1234567.0, "1234567")]
    [InlineData(0.004, "0")]
    [InlineData(-0.001, "0")]
    [InlineData(99.995, "100")]
    [InlineData(12.5, "12.5")]
    [InlineData(1e15, "1000000000000000")]
    public void Numbers_are_plain_c_locale(double value, string text) => Numbers.Format(value).ShouldBe(text);

    [Theory]
    [InlineData("a'b")]
    [InlineData("a=b")]
    [InlineData("")]
    public void Refuses_labels_that_would_break_the_line(string label) =>
        Should.Throw<InvalidOperationException>(() => new PerfDatum(label, 1).ToString());

    [Fact]
    public void Refuses_units_outside_the_guidelines() =>
        Should.Throw<InvalidOperationException>(() => new PerfDatum("x", 1, "ports").ToString());

    [Fact]
    public void Percent_of_nothing_is_full() => Numbers.Percent(0, 0).ShouldBe(100);
}
