using System.Diagnostics.CodeAnalysis;
using CommandLine;
using CommandLine.Text;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Cli;

/// <summary>What the command line asks for: a check with its settings, or a text to print (help, version).</summary>
public sealed record Invocation(Settings? Settings, string? Text);

/// <summary>
/// Command-line parsing with CommandLineParser, made safe for Native AOT and for plugin use: its
/// reflection needs <see cref="Options"/> kept whole, and its default parser writes help to stderr,
/// so we use our own <see cref="Parser"/> that writes nothing and turn its errors into one line.
/// </summary>
public static class ArgumentParser
{
    public const string ProgramName = "check_ephemeral_ports";

    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Options))]
    public static Invocation Parse(IReadOnlyList<string> args, ActingUser? invoker = null)
    {
        CheckWords(args);

        using var parser = new Parser(settings =>
        {
            settings.HelpWriter = null;
            settings.AutoHelp = false;
            settings.AutoVersion = false;
            settings.CaseSensitive = true;
            settings.CaseInsensitiveEnumValues = false;
            settings.IgnoreUnknownArguments = false;
            // -vvv counts; a repeated -w takes the last value, as getopt does in the C plugins.
            settings.AllowMultiInstance = true;
            settings.EnableDashDash = false;
        });
        var result = parser.ParseArguments<Options>(args);
        if (result is NotParsed<Options> notParsed)
        {
            var sentences = SentenceBuilder.Create();
            var reasons = notParsed.Errors.Select(e => sentences.FormatError(e)).Where(s => s.Length > 0).Distinct();
            throw new CheckException($"bad arguments: {string.Join(" ", reasons)} (see --help)");
        }

        var options = ((Parsed<Options>)result).Value;
        if (options.Help)
        {
            return new Invocation(null, HelpText(result));
        }

        if (options.Version)
        {
            return new Invocation(null, $"{ProgramName} {Version}\n");
        }

        return new Invocation(SettingsBinder.Bind(options, invoker), null);
    }

    public static string Version => ProductInfo.Version;

    private static readonly HashSet<string> TakesValue =
        [.. OptionTable.All.Where(o => o.TakesValue).SelectMany(o => o.Short is { } c ? new[] { "--" + o.Long, $"-{c}" } : ["--" + o.Long])];

    private static readonly string ShortWithValue = new([.. OptionTable.All.Where(o => o.TakesValue && o.Short is not null).Select(o => o.Short!.Value)]);

    // CommandLineParser drops positional words silently and lets a value option without its value
    // fall back to the default: both would hide a broken command definition, so refuse them here.
    private static void CheckWords(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (TakesValue.Contains(arg))
            {
                if (i + 1 >= args.Count || IsOptionName(args[i + 1]))
                {
                    throw new CheckException($"option {arg} needs a value (see --help)");
                }

                i++;
            }
            else if (arg.Length == 0 || !arg.StartsWith('-') || arg is "-" or "--")
            {
                throw new CheckException($"unexpected argument '{arg}' (see --help)");
            }
            else if (arg.Length > 2 && arg[1] != '-' && !ShortWithValue.Contains(arg[1]) && arg.AsSpan(1).ContainsAnyExcept('v'))
            {
                // CommandLineParser counts -vx as -v and drops the x: only -vv... may be grouped.
                throw new CheckException($"unknown option in '{arg}': only -v may be repeated in one word (see --help)");
            }
            else if (arg.StartsWith("--", StringComparison.Ordinal) && arg.EndsWith('='))
            {
                throw new CheckException($"option {arg[..^1]} needs a value (see --help)");
            }
        }
    }

    private static bool IsOptionName(string word) =>
        word.Length >= 2 && word[0] == '-' && (char.IsAsciiLetter(word[1]) || word[1] == '-');

    private static string HelpText(ParserResult<Options> result)
    {
        var help = new HelpText($"{ProgramName} {Version}", string.Empty)
        {
            AutoHelp = false,
            AutoVersion = false,
            AddDashesToOption = true,
            AdditionalNewLineAfterOption = false,
            MaximumDisplayWidth = 100,
        };
        help.AddPreOptionsLines(HelpTexts.Before);
        help.AddOptions(result);
        help.AddPostOptionsLines(HelpTexts.After);
        return help.ToString().Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd() + "\n";
    }
}
