using System.Text.RegularExpressions;
using EphemeralPorts.Cli;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Cli;

/// <summary>
/// The Icinga 2 CheckCommand in icinga/ stays in step with the plugin: every option is mapped to an
/// <c>ephemeral_ports_*</c> custom variable with a description that names the plugin's own default,
/// no var sets a default, and there is no lambda. Adding an option without mapping it fails here.
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
    public void No_var_has_a_default_and_each_description_says_the_plugins()
    {
        // An unset var passes nothing, so the plugin's own default applies and the command line
        // holds only what a service sets: what the sudoers rule's exact lists depend on.
        VarLine().Matches(Command).Select(m => m.Value.Trim()).ShouldBeEmpty("no vars.ephemeral_ports_* default in the CheckCommand");
        var blocks = ArgumentBlock().Matches(Command).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        foreach (var option in PluginOptions().Where(o => o.Default is not null))
        {
            var value = Convert.ToString(option.Default, System.Globalization.CultureInfo.InvariantCulture);
            blocks["--" + option.Long].ShouldContain($"(default: {value})", Case.Sensitive, $"description of --{option.Long}");
        }
    }

    [Fact]
    public void No_lambda_so_that_Director_can_import_it()
    {
        Command.ShouldNotContain("{{", Case.Sensitive, "Icinga Director cannot import a function");
        Command.ShouldNotContain("macro(", Case.Sensitive);
    }

    [GeneratedRegex(@"""(--[a-z-]+)"" = \{(.*?)\n        \}", RegexOptions.Singleline)]
    private static partial Regex ArgumentBlock();

    [GeneratedRegex(@"^\s*vars\.ephemeral_ports_([a-z_]+) = (.+)$", RegexOptions.Multiline)]
    private static partial Regex VarLine();
}
