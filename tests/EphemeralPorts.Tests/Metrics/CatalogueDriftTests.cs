using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using EphemeralPorts.Cli;
using EphemeralPorts.Metrics;
using EphemeralPorts.Rendering;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Metrics;

/// <summary>
/// What is written about the figures outside the code is held to the metric catalogue: the
/// README's perfdata table, the integration tests' label list, the Zabbix templates' JSONPaths,
/// the Prometheus rules' series and --help's perfdata list. A figure renamed, added or dropped
/// in one place only fails here.
/// </summary>
public partial class CatalogueDriftTests
{
    private static string Read(params string[] path) => File.ReadAllText(Path.Combine([Repo.Root, .. path]));

    [Fact]
    public void The_catalogue_names_each_figure_once_per_format()
    {
        MetricCatalogue.All.Select(m => m.Prometheus).OfType<string>().ShouldBeUnique();
        MetricCatalogue.All.Select(m => m.PerNamespace?.Name).OfType<string>().ShouldBeUnique();
        MetricCatalogue.All.Select(m => m.Json).OfType<string>().ShouldBeUnique();
        MetricCatalogue.PerNamespace.Select(m => m.PerNamespace!.Position).ShouldBe(Enumerable.Range(0, MetricCatalogue.PerNamespace.Count()));

        // One label per figure, but for 'capacity', published with two meanings: then only one
        // of its figures may be shown in any reading.
        foreach (var group in MetricCatalogue.Perfdata.GroupBy(m => m.Perfdata!.Label).Where(g => g.Count() > 1))
        {
            group.Key.ShouldBe("capacity");
            foreach (var (name, report) in Reports.All())
            {
                Headline.PerfData(report).Count(p => p.Label == group.Key).ShouldBeLessThanOrEqualTo(1, name);
            }
        }

        MetricCatalogue.Perfdata.Select(m => m.Perfdata!.Position).Distinct().ShouldBe(Enumerable.Range(1, MetricCatalogue.Perfdata.DistinctBy(m => m.Perfdata!.Label).Count()));
    }

    [Fact]
    public void Every_figure_is_shown_in_some_reading()
    {
        // A declaration no shape of report renders would be dead: the shapes cover them all.
        var shown = Reports.All().SelectMany(r => MetricCatalogue.All.Where(m => m.Value(MetricSource.Of(r.Report)) is not null)).ToHashSet();
        MetricCatalogue.All.Where(m => !shown.Contains(m)).Select(m => m.Prometheus ?? m.Json).ShouldBeEmpty();
    }

    [Fact]
    public void Every_kind_has_its_runbook_sections()
    {
        // The plugin links #ID-warning and #ID-critical of the worst kind: each must exist.
        var runbook = Read("docs", "runbook.md");
        foreach (var kind in EphemeralPorts.Kinds.ExhaustionKinds.All)
        {
            runbook.ShouldContain($"<a id=\"{kind.Id}-warning\"></a>", Case.Sensitive, kind.Id);
            runbook.ShouldContain($"<a id=\"{kind.Id}-critical\"></a>", Case.Sensitive, kind.Id);
        }
    }

    // --- README ---------------------------------------------------------------------------------

    [Fact]
    public void The_README_perfdata_table_is_the_catalogue_s_perfdata()
    {
        var readme = Read("README.md");
        var start = readme.IndexOf("### Perfdata (a stable interface", StringComparison.Ordinal);
        start.ShouldBeGreaterThan(0);
        var section = readme[start..readme.IndexOf("\n### ", start + 1, StringComparison.Ordinal)];
        var rows = section.Split('\n')
            .Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .Select(l => string.Join(" | ", l.Trim('|').Split('|').Select(c => c.Trim())))
            .ToList();
        var expected = MetricCatalogue.Perfdata.Select(m =>
        {
            var p = m.Perfdata!;
            var label = p.Condition is { } when ? $"`{p.Label}` {when}" : $"`{p.Label}`";
            return string.Join(" | ", label, m.Unit, p.Meaning, m.Thresholded ? "yes" : string.Empty, p.Bounds);
        }).ToList();
        rows.ShouldBe(expected, "README.md's perfdata table, row by row (label, unit, meaning, warn;crit, min;max)");
    }

    // --- tests/integration/lib/common.sh -------------------------------------------------------

    [Fact]
    public void The_integration_tests_labels_are_the_catalogue_s_of_a_default_run()
    {
        var line = Read("tests", "integration", "lib", "common.sh").Split('\n').Single(l => l.StartsWith("perfdata_labels=", StringComparison.Ordinal));
        var labels = line["perfdata_labels=".Length..].Trim('"').Split(' ');

        // A default run (TCP and UDP) has every label but those of a reading or option it does
        // not use: bind(addr, 0) needs the BPF reading, the namespace counts --all-namespaces, NAT
        // and conntrack a namespace whose conntrack table holds entries.
        var expected = MetricCatalogue.Perfdata
            .Where(m => m.Kind != EphemeralPorts.Kinds.BindAddress.BindKind.Figures && m.Kind != MetricKind.Namespaces
                && m.Kind != EphemeralPorts.Kinds.Nat.NatTupleKind.Figures && m.Kind != EphemeralPorts.Kinds.Nat.ConntrackTableKind.Figures)
            .Select(m => m.Perfdata!.Label).Distinct();
        labels.ShouldBe(expected, "perfdata_labels in tests/integration/lib/common.sh");

        var run = Headline.PerfData(Reports.Of("idle-default-range")).Select(p => p.Label);
        run.ShouldBe(labels, "the labels a default run prints");

        // Where the conntrack table holds entries a root run adds the table's labels and the count of NAT
        // tuples (the busiest tuple's only where one exists).
        var conntrack = Read("tests", "integration", "lib", "common.sh").Split('\n').Single(l => l.StartsWith("conntrack_labels=", StringComparison.Ordinal));
        conntrack["conntrack_labels=".Length..].Trim('"').Split(' ').ShouldBe(
            MetricCatalogue.Perfdata.Where(m => m.Kind == EphemeralPorts.Kinds.Nat.ConntrackTableKind.Figures && m != EphemeralPorts.Kinds.Nat.NatMetrics.AllNamespacesEntries).Select(m => m.Perfdata!.Label)
                .Append(EphemeralPorts.Kinds.Nat.NatMetrics.NatTuples.Perfdata!.Label),
            "conntrack_labels in tests/integration/lib/common.sh");
    }

    // --- JSON and the Zabbix templates ---------------------------------------------------------

    [Fact]
    public void Each_figure_s_JSON_path_holds_its_value()
    {
        foreach (var (name, report) in Reports.All())
        {
            using var document = JsonDocument.Parse(JsonReport.Render(report));
            var source = MetricSource.Of(report);
            foreach (var metric in MetricCatalogue.All.Where(m => m.Json is not null))
            {
                var element = Find(document.RootElement, metric.Json!);
                if (metric.Value(source) is { } value)
                {
                    element.ShouldNotBeNull($"{name}: $.{metric.Json}");
                    element.Value.GetDouble().ShouldBe(Math.Round(value, 2), $"{name}: $.{metric.Json}");
                }
                else
                {
                    element.ShouldBeNull($"{name}: $.{metric.Json} where the figure does not exist");
                }
            }

            var perfdata = document.RootElement.GetProperty("perfdata");
            perfdata.EnumerateObject().Select(p => p.Name).ShouldBe(Headline.PerfData(report).Select(p => p.Label), name);
        }
    }

    private static JsonElement? Find(JsonElement root, string path)
    {
        var element = root;
        foreach (var name in path.Split('.'))
        {
            if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out element))
            {
                return null;
            }
        }

        return element;
    }

    public static TheoryData<string> ZabbixFiles() =>
        [.. Directory.GetFiles(Path.Combine(Repo.Root, "icinga", "zabbix"), "*.yaml").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(ZabbixFiles))]
    public void Every_Zabbix_JSONPath_names_a_field_the_plugin_writes(string file)
    {
        var template = Read("icinga", "zabbix", file);
        var paths = ItemJsonPath().Matches(template).Select(m => m.Groups[1].Value).ToList();
        paths.ShouldNotBeEmpty();
        var lists = new List<Type>();
        // A kind that writes its own section (IExhaustionKind.Json) has no DTO: its paths are the
        // catalogue's figures, which Each_figure_s_JSON_path_holds_its_value holds to the output.
        var sections = EphemeralPorts.Kinds.ExhaustionKinds.All.Select(k => k.JsonKey + ".").ToList();
        var declaredInSections = MetricCatalogue.All.Select(m => m.Json).OfType<string>().Where(j => sections.Any(s => j.StartsWith(s, StringComparison.Ordinal))).ToHashSet();
        var listPaths = new HashSet<string>();
        foreach (var path in paths)
        {
            Type? type;
            if (KindOf(path) is { } kind)
            {
                if (kind.JsonShape is null)
                {
                    declaredInSections.ShouldContain(path[2..], $"{file}: {path} is no figure of the catalogue");
                    continue;
                }

                // A section written from a type: its names, lists and rows are that type's.
                type = Resolve(kind.JsonShape, "$." + path[(kind.JsonKey.Length + 3)..], out var unknownInSection);
                unknownInSection.ShouldBeNull($"{file}: {path} names '{unknownInSection}', which the {kind.JsonKey} section does not have");
            }
            else
            {
                type = Resolve(typeof(JsonDocumentModel), path, out var unknown);
                unknown.ShouldBeNull($"{file}: {path} names '{unknown}', which the JSON document does not have");
            }

            if (ElementType(type) is { } element)
            {
                lists.Add(element);
                listPaths.Add(path[2..]);
            }
        }

        // Low-level discovery's macro paths are relative to a row of the list discovered.
        foreach (Match m in MacroPath().Matches(template))
        {
            lists.Any(t => Resolve(t, m.Groups[1].Value, out _) != null).ShouldBeTrue($"{file}: lld macro path {m.Groups[1].Value}");
        }

        // The figures the items read are the catalogue's, under its JSON names.
        var figures = paths.Where(p => !p.Contains('[', StringComparison.Ordinal)).Select(p => p[2..]);
        var declared = MetricCatalogue.All.Select(m => m.Json).OfType<string>().ToHashSet();
        var dtoOnly = new HashSet<string> { "summary", "usedPercent", "healthScore", "topDestinations" };
        figures.Where(f => !declared.Contains(f) && !dtoOnly.Contains(f) && !listPaths.Contains(f)).ShouldBeEmpty($"{file}: items reading a number the catalogue does not declare");
    }

    [Fact]
    public void A_kind_s_figures_are_names_of_its_section_s_shape()
    {
        var shaped = EphemeralPorts.Kinds.ExhaustionKinds.All.Where(k => k.JsonShape is not null).ToList();
        shaped.ShouldNotBeEmpty();
        foreach (var kind in shaped)
        {
            foreach (var json in MetricCatalogue.All.Select(m => m.Json).OfType<string>().Where(j => j.StartsWith(kind.JsonKey + ".", StringComparison.Ordinal)))
            {
                Resolve(kind.JsonShape!, "$." + json[(kind.JsonKey.Length + 1)..], out var unknown);
                unknown.ShouldBeNull($"{json}: the catalogue's figure is not a name of {kind.JsonShape!.Name}");
            }
        }
    }

    /// <summary>The kind whose JSON section <paramref name="path"/> reads, if any.</summary>
    private static EphemeralPorts.Kinds.IExhaustionKind? KindOf(string path) =>
        EphemeralPorts.Kinds.ExhaustionKinds.All.FirstOrDefault(k => path.StartsWith("$." + k.JsonKey + ".", StringComparison.Ordinal));

    [Fact]
    public void The_Zabbix_README_names_fields_the_plugin_writes()
    {
        var sections = EphemeralPorts.Kinds.ExhaustionKinds.All.Select(k => "$." + k.JsonKey + ".").ToList();
        var declared = MetricCatalogue.All.Select(m => m.Json).OfType<string>().ToHashSet();
        foreach (Match m in ReadmePath().Matches(Read("icinga", "zabbix", "README.md")))
        {
            if (KindOf(m.Groups[1].Value) is { JsonShape: { } shape } kind)
            {
                Resolve(shape, "$." + m.Groups[1].Value[(kind.JsonKey.Length + 3)..], out var unknownInSection);
                unknownInSection.ShouldBeNull($"icinga/zabbix/README.md: {m.Groups[1].Value}");
                continue;
            }

            if (sections.Any(s => m.Groups[1].Value.StartsWith(s, StringComparison.Ordinal)))
            {
                declared.ShouldContain(m.Groups[1].Value[2..], $"icinga/zabbix/README.md: {m.Groups[1].Value}");
                continue;
            }

            Resolve(typeof(JsonDocumentModel), m.Groups[1].Value, out var unknown);
            unknown.ShouldBeNull($"icinga/zabbix/README.md: {m.Groups[1].Value}");
        }
    }

    /// <summary>
    /// The type a JSONPath leads to in the document's model (camelCase properties), through list
    /// rows and filters (whose <c>@.field</c>s must be a row's); <paramref name="unknown"/> is the
    /// first name it does not have.
    /// </summary>
    private static Type? Resolve(Type root, string path, out string? unknown)
    {
        unknown = null;
        var type = root;
        var rest = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        foreach (Match step in PathStep().Matches(rest))
        {
            var name = step.Groups["name"].Value;
            if (name.EndsWith("()", StringComparison.Ordinal))
            {
                continue; // a Zabbix function (first(), length() ...)
            }

            if (Property(ElementType(type) ?? type, name) is not { } property)
            {
                unknown = name;
                return null;
            }

            type = property.PropertyType;
            if (step.Groups["filter"].Success)
            {
                foreach (Match field in FilterField().Matches(step.Groups["filter"].Value))
                {
                    if (Property(ElementType(type) ?? type, field.Groups[1].Value) is null)
                    {
                        unknown = field.Groups[1].Value;
                        return null;
                    }
                }
            }
        }

        return type;
    }

    private static PropertyInfo? Property(Type type, string camelName) =>
        (Nullable.GetUnderlyingType(type) ?? type).GetProperties().SingleOrDefault(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name) == camelName);

    private static Type? ElementType(Type? type) =>
        type is { IsGenericType: true } && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? type.GetGenericArguments()[0] : null;

    // --- Prometheus rules ------------------------------------------------------------------------

    [Fact]
    public void The_Prometheus_rules_use_series_the_plugin_writes()
    {
        var names = MetricCatalogue.All.SelectMany(m => new[] { m.Prometheus, m.PerNamespace?.Name }).OfType<string>().Select(n => "ephemeral_ports_" + n).ToHashSet();
        foreach (var file in new[] { "ephemeral_ports.rules.yml", "ephemeral_ports.rules.test.yml" })
        {
            var used = SeriesName().Matches(Read("icinga", "prometheus", file)).Select(m => m.Value).Distinct().ToList();
            used.ShouldNotBeEmpty();
            used.Where(n => !names.Contains(n)).ShouldBeEmpty($"icinga/prometheus/{file}: series the catalogue does not declare");
        }
    }

    // --- --help ---------------------------------------------------------------------------------

    [Fact]
    public void Help_lists_the_catalogue_s_perfdata_labels_in_order()
    {
        var help = ArgumentParser.Parse(["--help"]).Text!;
        var start = help.IndexOf("\nPerfdata: ", StringComparison.Ordinal);
        start.ShouldBeGreaterThan(0);
        var paragraph = help[start..help.IndexOf("\n\n", start, StringComparison.Ordinal)];
        var labels = MetricCatalogue.Perfdata.Select(m => m.Perfdata!.Label).Distinct().ToList();
        LabelWord().Matches(paragraph).Select(m => m.Value).Where(labels.Contains).ShouldBe(labels);
        paragraph.Split('\n').ShouldAllBe(l => l.Length <= 95);
    }

    [GeneratedRegex(@"^\s*- '?(\$\.[^'\n]*?)'?\s*$", RegexOptions.Multiline)]
    private static partial Regex ItemJsonPath();

    [GeneratedRegex(@"^\s*path: '?(\$\.[A-Za-z.]+)'?\s*$", RegexOptions.Multiline)]
    private static partial Regex MacroPath();

    [GeneratedRegex(@"`(\$\.[A-Za-z.]+)`")]
    private static partial Regex ReadmePath();

    [GeneratedRegex(@"(?<name>[A-Za-z]+(\(\))?)(?<filter>\[[^\]]*\])?")]
    private static partial Regex PathStep();

    [GeneratedRegex(@"@\.([A-Za-z]+)")]
    private static partial Regex FilterField();

    [GeneratedRegex(@"\bephemeral_ports_[a-z][a-z_]*")]
    private static partial Regex SeriesName();

    [GeneratedRegex(@"(?<![-\w])[a-z_]+")]
    private static partial Regex LabelWord();
}
