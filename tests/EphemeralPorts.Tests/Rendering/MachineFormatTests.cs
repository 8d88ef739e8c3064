using System.Text.Json;
using System.Text.RegularExpressions;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Rendering;

/// <summary>
/// The JSON and Prometheus outputs of the native binary (System.Text.Json source generation under
/// Native AOT) hold together: the JSON's figures match the perfdata of the Nagios output of the
/// same tree, and the Prometheus text passes a strict reading of the exposition format.
/// </summary>
[Trait(Tier.Key, Tier.Full)]
public partial class MachineFormatTests
{
    private static readonly string Tree = Path.Combine(Repo.Fixtures, "format-json", "proc");

    [Fact]
    public void Json_carries_the_figures_behind_every_perfdata_label_and_the_system_ports_fields()
    {
        var nagios = Support.Plugin.Native(["--proc-root", Tree]);
        var json = Support.Plugin.Native(["--proc-root", Tree, "--format", "json"]);
        json.ExitCode.ShouldBe(0, "Zabbix discards exit codes: JSON that was written exits 0");
        json.Stderr.ShouldBeEmpty();
        json.Stdout.TrimEnd('\n').ShouldNotContain('\n');
        using var doc = JsonDocument.Parse(json.Stdout);
        var root = doc.RootElement;
        root.GetProperty("state").GetString().ShouldBe("WARNING");
        root.GetProperty("exitCode").GetInt32().ShouldBe(nagios.ExitCode);
        root.GetProperty("summary").GetString().ShouldBe(nagios.FirstLine[..nagios.FirstLine.IndexOf(" | ", StringComparison.Ordinal)]);
        var perf = root.GetProperty("perfdata");
        foreach (var (label, value) in nagios.Perf)
        {
            perf.GetProperty(label).GetDouble().ShouldBe(value, label);
        }

        root.GetProperty("portMin").GetInt32().ShouldBe(40000);
        root.GetProperty("portMax").GetInt32().ShouldBe(40009);
        root.GetProperty("totalPorts").GetInt32().ShouldBe(10);
        var usedPercent = root.GetProperty("usedPercent").GetDouble();
        usedPercent.ShouldBe(nagios.Perf["tcp_busiest_pct"]);
        root.GetProperty("usedPorts").GetInt32().ShouldBe((int)nagios.Perf["tcp_busiest_used"]);
        root.GetProperty("healthScore").GetDouble().ShouldBe(Math.Round(100 - usedPercent, 2));
        root.GetProperty("warningThreshold").GetDouble().ShouldBe(70);
        root.GetProperty("criticalThreshold").GetDouble().ShouldBe(85);
        var top = root.GetProperty("topConsumers")[0];
        top.GetProperty("localAddr").GetString().ShouldBe("0100007F", "the kernel's own hex for 127.0.0.1");
        top.GetProperty("address").GetString().ShouldBe("127.0.0.1");
        top.GetProperty("count").GetInt32().ShouldBe(7);
        root.GetProperty("tcp").GetProperty("listenersInRange")[0].GetProperty("port").GetInt32().ShouldBe(40005);
        root.GetProperty("advice").GetArrayLength().ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Json_thresholds_that_are_not_upper_bounds_are_null()
    {
        var json = Support.Plugin.Native(["--proc-root", Tree, "--format", "json", "-w", "@50:60", "-c", "90:"]);
        using var doc = JsonDocument.Parse(json.Stdout);
        doc.RootElement.TryGetProperty("warningThreshold", out _).ShouldBeFalse("left out, not a guess");
        doc.RootElement.TryGetProperty("criticalThreshold", out _).ShouldBeFalse();
        doc.RootElement.GetProperty("thresholds").GetProperty("warning").GetString().ShouldBe("@50:60");
    }

    [Fact]
    public void Prometheus_text_is_well_formed_and_matches_the_perfdata()
    {
        var nagios = Support.Plugin.Native(["--proc-root", Tree]);
        var prom = Support.Plugin.Native(["--proc-root", Tree, "--format", "prometheus"]);
        prom.ExitCode.ShouldBe(0);
        prom.Stderr.ShouldBeEmpty();
        var samples = ParseExposition(prom.Stdout);
        samples["ephemeral_ports_up"].ShouldBe(1);
        samples["ephemeral_ports_state"].ShouldBe(nagios.ExitCode);
        samples["ephemeral_ports_tcp_busiest_used"].ShouldBe(nagios.Perf["tcp_busiest_used"]);
        samples["ephemeral_ports_tcp_busiest_ratio"].ShouldBe(Math.Round(nagios.Perf["tcp_busiest_pct"] / 100, 4), 0.0001);
        samples["ephemeral_ports_tcp_busiest_info{source=\"127.0.0.1\",destination=\"127.0.0.1\",port=\"5000\"}"].ShouldBe(1);
        samples["ephemeral_ports_tcp_capacity"].ShouldBe(nagios.Perf["capacity"]);
        samples["ephemeral_ports_udp_used"].ShouldBe(nagios.Perf["udp_used"]);
        samples["ephemeral_ports_tcp_time_wait"].ShouldBe(nagios.Perf["tcp_time_wait"]);
    }

    [Fact]
    public void Prometheus_failure_says_down_and_unknown()
    {
        var prom = Support.Plugin.Native(["--proc-root", "/nonexistent", "--format", "prometheus"]);
        prom.ExitCode.ShouldBe(0);
        var samples = ParseExposition(prom.Stdout);
        samples["ephemeral_ports_up"].ShouldBe(0);
        samples["ephemeral_ports_state"].ShouldBe(3);
    }

    [Fact]
    public void Output_file_is_written_whole_and_stdout_stays_empty()
    {
        var dir = Directory.CreateTempSubdirectory("cep-prom-").FullName;
        try
        {
            var target = Path.Combine(dir, "ephemeral_ports.prom");
            var run = Support.Plugin.Native(["--proc-root", Tree, "--format", "prometheus", "--output", target]);
            run.ExitCode.ShouldBe(0);
            run.Stdout.ShouldBeEmpty();
            File.ReadAllText(target).ShouldBe(Support.Plugin.Native(["--proc-root", Tree, "--format", "prometheus"]).Stdout);
            Directory.GetFiles(dir).ShouldBe([target], "no temporary file is left behind");
            var bad = Support.Plugin.Native(["--proc-root", Tree, "--output", Path.Combine(dir, "missing", "x.prom")]);
            bad.ShouldBeOneUnknownLine("unwritable output");
            bad.Stdout.ShouldContain("cannot write: no such directory");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A strict reading of the text exposition format (version 0.0.4): every sample's metric has
    /// one HELP and one TYPE line before it, names and labels are well formed, values are numbers.
    /// Returns sample (name with labels) → value.
    /// </summary>
    private static Dictionary<string, double> ParseExposition(string text)
    {
        text.ShouldEndWith("\n");
        var help = new HashSet<string>();
        var type = new HashSet<string>();
        var samples = new Dictionary<string, double>();
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            if (HelpOrType().Match(line) is { Success: true } meta)
            {
                var set = meta.Groups[1].Value == "HELP" ? help : type;
                set.Add(meta.Groups[2].Value).ShouldBeTrue($"second {meta.Groups[1].Value} for {meta.Groups[2].Value}");
                if (meta.Groups[1].Value == "TYPE")
                {
                    meta.Groups[3].Value.ShouldBeOneOf("gauge", "counter");
                }

                continue;
            }

            if (line.StartsWith('#'))
            {
                continue;
            }

            var sample = Sample().Match(line);
            sample.Success.ShouldBeTrue($"not a sample line: '{line}'");
            var name = sample.Groups[1].Value;
            help.ShouldContain(name, $"HELP before {name}");
            type.ShouldContain(name, $"TYPE before {name}");
            samples.Add(name + sample.Groups[2].Value, double.Parse(sample.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        return samples;
    }

    [GeneratedRegex(@"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")]
    private static partial Regex HelpOrType();

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)((?:\{[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\\n]|\\.)*""(?:,[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\\n]|\\.)*"")*\})?) (-?[0-9]+(?:\.[0-9]+)?)$")]
    private static partial Regex Sample();
}
