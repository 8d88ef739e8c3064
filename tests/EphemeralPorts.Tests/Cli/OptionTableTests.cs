using EphemeralPorts.Cli;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// Options.cs is the one table of options: everything else is derived from it. These tests fail
/// for an option that is only half added (no help, no sample to prove it is bound, not bound,
/// missing from the usage line or the reading rule).
/// </summary>
public class OptionTableTests
{
    public static TheoryData<string> Options() => [.. OptionTable.All.Select(o => o.Long)];

    private static OptionSpec Option(string name) => OptionTable.All.Single(o => o.Long == name);

    private static string Bound(params string[] args) => ArgumentParser.Parse(args).Settings!.ToString();

    // The words that give an option a value other than its default.
    private static string[] Given(OptionSpec option) =>
        option.Counter ? [option.Plugin.Sample ?? "-vv"]
        : option.TakesValue ? ["--" + option.Long, option.Plugin.Sample!]
        : ["--" + option.Long];

    [Fact]
    public void Every_property_of_Options_is_in_the_table()
    {
        OptionTable.All.Count.ShouldBe(typeof(Options).GetProperties().Length);
        OptionTable.All.Select(o => o.Long).ShouldBeUnique();
        OptionTable.All.Where(o => o.Short is not null).Select(o => o.Short).ShouldBeUnique();
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void Every_option_has_help_and_a_value_option_a_meta_value_and_a_sample(string name)
    {
        var option = Option(name);
        option.Help.ShouldNotBeNullOrWhiteSpace();
        if (option.TakesValue)
        {
            option.MetaValue.ShouldNotBeNullOrWhiteSpace($"--{name} takes a value: the usage line shows its MetaValue");
            option.Plugin.Sample.ShouldNotBeNullOrWhiteSpace($"--{name} takes a value: [PluginOption(Sample = ...)] proves it is bound");
            option.Plugin.Sample.ShouldNotBe(Convert.ToString(option.Default, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void Every_option_changes_the_settings_it_is_bound_to(string name)
    {
        var option = Option(name);
        if (name is "help" or "version")
        {
            ArgumentParser.Parse(["--" + name]).Text.ShouldNotBeNullOrEmpty();
            return;
        }

        Bound(Given(option)).ShouldNotBe(Bound(), $"--{name} given a value other than its default left the settings as they were: bind it in SettingsBinder");
    }

    [Fact]
    public void The_defaults_of_the_table_are_what_the_parser_applies()
    {
        SettingsBinder.Bind(OptionTable.Defaults()).ToString().ShouldBe(Bound());
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void The_usage_line_names_every_option(string name)
    {
        var option = Option(name);
        var usage = OptionTable.Usage(ArgumentParser.ProgramName, 92);
        if (option.Plugin.Usage)
        {
            (usage.Contains($"[{option.Name}", StringComparison.Ordinal) || usage.Contains($"| {option.Name}", StringComparison.Ordinal)).ShouldBeTrue($"--{name} is not in the usage line: {usage}");
        }
        else
        {
            usage.ShouldNotContain(option.Name + " ");
        }

        usage.Split('\n').ShouldAllBe(line => line.Length <= 92);
        ArgumentParser.Parse(["--help"]).Text!.ShouldContain(usage);
    }
}
