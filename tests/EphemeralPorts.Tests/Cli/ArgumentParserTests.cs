using System.Reflection;
using CommandLine;
using EphemeralPorts.Cli;

namespace EphemeralPorts.Tests.Cli;

public class ArgumentParserTests
{
    [Fact]
    public void The_written_out_list_of_value_options_is_what_Options_declares()
    {
        var declared = typeof(Options).GetProperties()
            .Select(p => (Property: p, Option: p.GetCustomAttribute<OptionAttribute>()))
            .Where(p => p.Option is not null && p.Property.PropertyType != typeof(bool) && !p.Option.FlagCounter)
            .Select(p => (Short: p.Option!.ShortName.Length > 0 ? p.Option.ShortName[0] : (char?)null, Long: p.Option.LongName))
            .OrderBy(o => o.Long, StringComparer.Ordinal)
            .ToList();
        declared.ShouldNotBeEmpty();
        ArgumentParser.ValueOptions.OrderBy(o => o.Long, StringComparer.Ordinal).ToList().ShouldBe(declared);
    }
}
