using System.Text.RegularExpressions;
using EphemeralPorts.Cli;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The Icinga 2 CheckCommand in icinga/ stays in step with the plugin: every option is mapped to an
/// <c>ephemeral_ports_*</c> custom variable with a description, and every default there is the
/// plugin's own. Adding an option without mapping it fails here.
/// </summary>
public partial class IcingaCommandTests
{
    private static readonly string Command = File.ReadAllText(Path.Combine(Repo.Root, "icinga", "icinga2", "command-ephemeral_ports.conf"));

    private static IEnumerable<OptionSpec> PluginOptions() =>
        OptionTable.All.Where(o => o.Long is not "help" and not "version");

    [Fact]
    public void Every_option_is_an_argument_with_a_description()
    {
        var blocks = ArgumentBlock().Matches(Command).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        foreach (var option in PluginOptions())
        {
            blocks.ShouldContainKey("--" + option.Long, $"--{option.Long} is not mapped in icinga/icinga2/command-ephemeral_ports.conf");
            var body = blocks["--" + option.Long];
            body.ShouldContain("description = \"");
            body.ShouldContain($"$ephemeral_ports_{option.Long.Replace('-', '_')}$");
        }

        blocks.Keys.Order().ShouldBe(PluginOptions().Select(o => "--" + o.Long).Order(), "no argument for an option the plugin does not have");
    }

    [Fact]
    public void Defaults_in_vars_are_the_plugins_defaults()
    {
        var vars = VarLine().Matches(Command).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.Trim('"'));
        foreach (var option in PluginOptions().Where(o => o.Default is not null))
        {
            var name = option.Long.Replace('-', '_');
            vars.ShouldContainKey(name, $"vars.ephemeral_ports_{name} (the plugin's default {option.Default})");
            vars[name].ShouldBe(Convert.ToString(option.Default, System.Globalization.CultureInfo.InvariantCulture), $"default of --{option.Long}");
        }
    }

    [GeneratedRegex(@"""(--[a-z-]+)"" = \{(.*?)\n        \}", RegexOptions.Singleline)]
    private static partial Regex ArgumentBlock();

    [GeneratedRegex(@"^\s*vars\.ephemeral_ports_([a-z_]+) = (.+)$", RegexOptions.Multiline)]
    private static partial Regex VarLine();
}
