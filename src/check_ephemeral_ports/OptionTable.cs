using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Text;
using CommandLine;

namespace EphemeralPorts.Cli;

/// <summary>What the plugin knows of an option beyond what CommandLineParser needs.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class PluginOptionAttribute : Attribute
{
    /// <summary>A valid value other than the default, with which OptionTableTests prove the option is bound.</summary>
    public string? Sample { get; init; }

    /// <summary>Options that exclude each other share a group: one bracket in the usage line.</summary>
    public string? Group { get; init; }

    /// <summary>Whether the usage line shows it (not --help and --version).</summary>
    public bool Usage { get; init; } = true;
}

/// <summary>One option as the table holds it.</summary>
public sealed record OptionSpec(char? Short, string Long, bool TakesValue, bool Counter, string? MetaValue, object? Default, string Help, PluginOptionAttribute Plugin, PropertyInfo Property)
{
    /// <summary>How the option is written on the command line: the short name where there is one.</summary>
    public string Name => Short is { } s ? $"-{s}" : $"--{Long}";
}

/// <summary>
/// Every option of <see cref="Options"/>, read once from its attributes: the one place an option
/// is written down; the parser's checks, the usage line and the Icinga
/// CheckCommand test all read this table.
/// </summary>
public static class OptionTable
{
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Options))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(PluginOptionAttribute))]
    private static List<OptionSpec> Read()
    {
        var table = new List<OptionSpec>();
        foreach (var property in typeof(Options).GetProperties())
        {
            var option = property.GetCustomAttribute<OptionAttribute>()
                ?? throw new InvalidOperationException($"Options.{property.Name} has no [Option]");
            var plugin = property.GetCustomAttribute<PluginOptionAttribute>()
                ?? throw new InvalidOperationException($"Options.{property.Name} has no [PluginOption]");
            var takesValue = property.PropertyType != typeof(bool) && !option.FlagCounter;
            table.Add(new OptionSpec(
                option.ShortName.Length > 0 ? option.ShortName[0] : null,
                option.LongName,
                takesValue,
                option.FlagCounter,
                option.MetaValue,
                option.Default,
                option.HelpText,
                plugin,
                property));
        }

        return table;
    }

    public static IReadOnlyList<OptionSpec> All { get; } = Read();

    /// <summary>The option a command-line word names (<c>-w</c>, <c>--warning</c>, <c>--warning=70</c>), or null.</summary>
    public static OptionSpec? Find(string word)
    {
        if (word.StartsWith("--", StringComparison.Ordinal))
        {
            var name = word.AsSpan(2);
            var equals = name.IndexOf('=');
            var bare = (equals < 0 ? name : name[..equals]).ToString();
            return All.FirstOrDefault(o => o.Long == bare);
        }

        return word.Length >= 2 && word[0] == '-' ? All.FirstOrDefault(o => o.Short == word[1]) : null;
    }

    /// <summary>The options as the parser leaves them when none is given.</summary>
    public static Options Defaults()
    {
        var options = new Options();
        foreach (var option in All)
        {
            if (option.Default is { } value)
            {
                option.Property.SetValue(options, value);
            }
        }

        return options;
    }

    /// <summary>
    /// The usage line of --help: every option in the order declared, those of a group in one
    /// bracket, wrapped at <paramref name="width"/> under the program's name.
    /// </summary>
    public static string Usage(string program, int width)
    {
        var words = new List<string>();
        foreach (var group in All.Where(o => o.Plugin.Usage).GroupBy(o => o.Plugin.Group ?? o.Long))
        {
            words.Add("[" + string.Join(" | ", group.Select(Synopsis)) + "]");
        }

        var lead = $"Usage: {program} ";
        var indent = new string(' ', 9);
        var text = new StringBuilder(lead);
        var column = lead.Length;
        var lineStart = true;
        foreach (var word in words)
        {
            if (!lineStart && column + 1 + word.Length > width)
            {
                text.Append('\n').Append(indent);
                column = indent.Length;
                lineStart = true;
            }

            if (!lineStart)
            {
                text.Append(' ');
                column++;
            }

            text.Append(word);
            column += word.Length;
            lineStart = false;
        }

        return text.ToString();
    }

    private static string Synopsis(OptionSpec option) =>
        option.Counter ? $"{option.Name}..." : option.TakesValue ? $"{option.Name} {option.MetaValue}" : option.Name;
}
