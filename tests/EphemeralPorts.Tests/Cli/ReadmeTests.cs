using System.Text.RegularExpressions;
using EphemeralPorts.Check;
using EphemeralPorts.Cli;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The README's usage section is held to the binary's own option table (<see cref="OptionTable"/>),
/// the table <c>--help</c>, the man page and the parser are made from: an option added, renamed or
/// given another default without the README is a failure here, not a stale statement.
/// </summary>
public partial class ReadmeTests
{
    private static readonly string Readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));

    private static string Section(string heading)
    {
        var start = Readme.IndexOf($"\n## {heading}\n", StringComparison.Ordinal);
        start.ShouldBeGreaterThan(0, $"README has a section ## {heading}");
        var end = Readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return Readme[start..(end < 0 ? Readme.Length : end)];
    }

    private static string Words(string text) => Regex.Replace(text, @"\s+", " ").Trim();

    [Fact]
    public void The_usage_block_is_the_binary_s_usage_line()
    {
        var usage = Section("Usage");
        var block = usage[(usage.IndexOf("```\n", StringComparison.Ordinal) + 4)..];
        block = block[..block.IndexOf("```", StringComparison.Ordinal)];
        Words(block).ShouldBe(Words(OptionTable.Usage("check_ephemeral_ports", 92)["Usage: ".Length..]));
    }

    /// <summary>Each option's row: its names, its default and its meaning.</summary>
    private static Dictionary<string, (string Names, string Default)> Rows()
    {
        var rows = new Dictionary<string, (string, string)>();
        foreach (Match m in OptionRow().Matches(Section("Usage")))
        {
            var names = m.Groups["names"].Value;
            var longName = LongName().Match(names).Groups[1].Value;
            rows[longName] = (names, m.Groups["default"].Value.Trim().Trim('`'));
        }

        return rows;
    }

    [Fact]
    public void The_option_table_has_a_row_for_every_option_and_no_other()
    {
        var rows = Rows();
        rows.Keys.Order(StringComparer.Ordinal).ShouldBe(OptionTable.All.Select(o => o.Long).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_row_gives_the_option_s_default_and_its_short_name()
    {
        var rows = Rows();
        foreach (var option in OptionTable.All)
        {
            var (names, shown) = rows[option.Long];
            var expected = option.Default switch
            {
                null or false => string.Empty,
                var d => Convert.ToString(d, System.Globalization.CultureInfo.InvariantCulture)!,
            };
            shown.ShouldBe(expected, $"--{option.Long}'s default");
            if (option.Short is { } s)
            {
                names.ShouldContain($"`-{s}`", Case.Sensitive, $"--{option.Long}'s short name");
            }
        }
    }

    [Fact]
    public void The_sources_listed_are_the_sources_the_binary_knows()
    {
        var known = Enum.GetNames<SourceChoice>().Select(n => n.ToLowerInvariant()).ToList();
        var row = Rows()["source"].Names;
        row.ShouldContain($"`--source {string.Join("\\|", known)}`");
        var help = OptionTable.All.Single(o => o.Long == "source");
        help.MetaValue.ShouldBe(string.Join('|', known));
        foreach (var source in known.Where(k => k != "auto"))
        {
            Section("Usage").ShouldContain($"`{source}`", Case.Sensitive, $"the --source row says what {source} reads");
        }
    }

    [Fact]
    public void No_statement_the_code_has_outgrown_is_left()
    {
        // Each of these was true once and is not any more.
        Readme.ShouldNotContain("auto|netlink|proc");
        Readme.ShouldNotContain("`auto` is netlink");
        Readme.ShouldNotContain("(coming)");
        Readme.ShouldNotContain("runs fine as `nagios`");
    }

    [Theory]
    [InlineData("tcp-tuple")]
    [InlineData("bind")]
    [InlineData("udp")]
    public void Every_runbook_section_the_plugin_points_to_exists(string part)
    {
        var runbook = File.ReadAllText(Path.Combine(Repo.Root, "docs", "runbook.md"));
        foreach (var state in new[] { "warning", "critical" })
        {
            runbook.ShouldContain($"<a id=\"{part}-{state}\"></a>");
        }

        EphemeralPorts.Kinds.ExhaustionKinds.Runbook.ShouldBe("/usr/share/doc/check-ephemeral-ports/runbook.md");
        File.ReadAllText(Path.Combine(Repo.Root, "src", "packaging", "manifest")).ShouldContain("docs/runbook.md");
    }

    [GeneratedRegex(@"^\| (?<names>`-[^|]*(?:\\\|[^|]*)*) \|(?<default>[^|]*)\| ", RegexOptions.Multiline)]
    private static partial Regex OptionRow();

    [GeneratedRegex(@"`--([a-z-]+)")]
    private static partial Regex LongName();
}
