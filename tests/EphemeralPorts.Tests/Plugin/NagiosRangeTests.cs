using System.Diagnostics;
using System.Globalization;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Plugin;

public class NagiosRangeTests
{
    // spec, start, end, inside, canonical form (go-check style: each formats back to itself)
    public static TheoryData<string, double, double, bool, string> Valid => new()
    {
        { "10", 0, 10, false, "10" },
        { "10:", 10, double.PositiveInfinity, false, "10:" },
        { "~:10", double.NegativeInfinity, 10, false, "~:10" },
        { "10:20", 10, 20, false, "10:20" },
        { "@10:20", 10, 20, true, "@10:20" },
        { ":10", 0, 10, false, "10" },
        { "0:10", 0, 10, false, "10" },
        { "~:", double.NegativeInfinity, double.PositiveInfinity, false, "~:" },
        { "70%", 0, 70, false, "70" },
        { "~:70%", double.NegativeInfinity, 70, false, "~:70" },
        { "@10%:20%", 10, 20, true, "@10:20" },
        { "-5:5", -5, 5, false, "-5:5" },
        { "12.5", 0, 12.5, false, "12.5" },
        { " 85 ", 0, 85, false, "85" },
        { "10:10", 10, 10, false, "10:10" },
        { "0.001", 0, 0.001, false, "0.001" },
    };

    [Theory]
    [MemberData(nameof(Valid))]
    public void Parses_and_formats_back(string spec, double start, double end, bool inside, string canonical)
    {
        var range = NagiosRange.Parse(spec);
        range.Start.ShouldBe(start);
        range.End.ShouldBe(end);
        range.Inside.ShouldBe(inside);
        range.ToString().ShouldBe(canonical);
        NagiosRange.Parse(canonical).ShouldBe(range);
    }

    [Theory]
    [InlineData("", "empty range")]
    [InlineData("abc", "'abc' is not a number")]
    [InlineData("20:10", "start 20 is greater than end 10")]
    [InlineData("@", "no end")]
    [InlineData("-5", "start 0 is greater than end -5")]
    [InlineData("1e3", "'1e3' is not a number")]
    [InlineData("0x10", "'0x10' is not a number")]
    [InlineData("inf", "'inf' is not a number")]
    [InlineData("1,5", "'1,5' is not a number")]
    [InlineData("10:20:30", "'20:30' is not a number")]
    [InlineData("~", "'~' is not a number")]
    [InlineData("%", "'%' is not a number")]
    public void Refuses_bad_ranges_with_the_reason(string spec, string reason)
    {
        NagiosRange.TryParse(spec, out var range, out var error).ShouldBeFalse();
        range.ShouldBeNull();
        error.ShouldBe(reason);
    }

    [Theory]
    [InlineData("70", "70")]
    [InlineData("~:70", "70")]
    [InlineData("0:70", "70")]
    [InlineData("70:", "")]
    [InlineData("@0:70", "")]
    [InlineData("10:70", "")]
    [InlineData("~:", "")]
    [InlineData("0.001", "0.001")]
    public void Perfdata_gets_a_plain_number_only_for_upper_bounds(string spec, string perf) =>
        NagiosRange.Parse(spec).PerfDataValue.ShouldBe(perf);

    [Fact]
    public void Critical_is_evaluated_before_warning()
    {
        // An inverted warning that would also match: critical must win.
        var thresholds = new Thresholds(NagiosRange.Parse("@0:100"), NagiosRange.Parse("50"));
        thresholds.Evaluate(60).ShouldBe(ServiceState.Critical);
        thresholds.Evaluate(40).ShouldBe(ServiceState.Warning);
        new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85")).Evaluate(70).ShouldBe(ServiceState.Ok);
        new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85")).Evaluate(70.01).ShouldBe(ServiceState.Warning);
        new Thresholds(NagiosRange.Parse("70"), NagiosRange.Parse("85")).Evaluate(85.01).ShouldBe(ServiceState.Critical);
    }

    /// <summary>
    /// The same ranges and values through python3-nagiosplugin's Range (an independent
    /// implementation, installed by build.sh test): every alert decision must agree.
    /// </summary>
    [Trait(Tier.Key, Tier.Full)]
    [Fact]
    public void Agrees_with_python_nagiosplugin()
    {
        string[] specs = ["10", "10:", "~:10", "10:20", "@10:20", ":10", "~:", "0:", "@~:10", "@10:", "-5:5", "12.5", "@12.5:13", "0", "@0"];
        double[] values = [-10, -5, -0.5, 0, 0.5, 5, 9.99, 10, 10.01, 12.5, 13, 15, 20, 20.5, 100];
        var script = "import sys, nagiosplugin\n"
            + "vals=[float(v) for v in sys.argv[2].split(',')]\n"
            + "for s in sys.argv[1].split(','):\n"
            + "    r=nagiosplugin.Range(s.replace(';',','))\n"
            + "    print(s+' '+''.join('A' if not r.match(v) else '.' for v in vals))\n";
        var output = RunPython(script, string.Join(',', specs), string.Join(',', values.Select(v => v.ToString(CultureInfo.InvariantCulture))));
        var python = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => l.Split(' ')[0], l => l.Split(' ')[1]);
        foreach (var spec in specs)
        {
            var range = NagiosRange.Parse(spec);
            var ours = string.Concat(values.Select(v => range.Alerts(v) ? 'A' : '.'));
            ours.ShouldBe(python[spec], $"range '{spec}' over {string.Join(' ', values)}");
        }
    }

    private static string RunPython(string script, params string[] args)
    {
        // Debian's python3, where python3-nagiosplugin lives; not a pyenv shim earlier on PATH.
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.ShouldBe(0, $"python3-nagiosplugin is needed (build.sh test installs it): {stderr}");
        return stdout;
    }
}
