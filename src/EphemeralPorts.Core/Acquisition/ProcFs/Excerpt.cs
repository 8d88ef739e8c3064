using System.Text;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// What an error message may show of a file's content: a short excerpt, quoted, with everything
/// but printable ASCII escaped (\n, \t, \xNN), so that a file cannot write a second line, a
/// perfdata separator or a terminal control sequence into the plugin's output.
/// </summary>
public static class Excerpt
{
    public const int MaxChars = 40;

    /// <summary>The first <see cref="MaxChars"/> characters of <paramref name="text"/>, escaped and in single quotes.</summary>
    public static string Quote(string text) =>
        "'" + Escape(text.Length > MaxChars ? text[..MaxChars] : text) + (text.Length > MaxChars ? "..." : string.Empty) + "'";

    public static string Escape(string text)
    {
        var clean = true;
        foreach (var c in text)
        {
            clean &= IsPlain(c);
        }

        if (clean)
        {
            return text;
        }

        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            _ = c switch
            {
                '\n' => escaped.Append("\\n"),
                '\t' => escaped.Append("\\t"),
                _ when IsPlain(c) => escaped.Append(c),
                _ => escaped.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)),
            };
        }

        return escaped.ToString();
    }

    /// <summary>
    /// A name the kernel holds as bytes (a file or namespace name), escaped as <see cref="Escape(string)"/>
    /// escapes text: every byte that is not plain printable ASCII as \xNN, so that a name that is
    /// not UTF-8 is still shown, and shown as what it is.
    /// </summary>
    public static string Escape(ReadOnlySpan<byte> name)
    {
        var escaped = new StringBuilder(name.Length + 8);
        foreach (var b in name)
        {
            _ = IsPlain((char)b) ? escaped.Append((char)b) : escaped.Append("\\x").Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }

        return escaped.ToString();
    }

    // Printable ASCII, less the quote, the backslash and the '|' that starts perfdata.
    private static bool IsPlain(char c) => c is >= ' ' and <= '~' and not '\'' and not '\\' and not '|';
}
