using System.Text;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>The plugin's text output: a status line with perfdata, then detail lines.</summary>
public static class NagiosText
{
    public const string ServiceName = "EPHEMERAL PORTS";

    /// <summary>How every status line starts, in every format that carries one.</summary>
    public static string Prefix(ServiceState state) => $"{ServiceName} {state.Label()} - ";

    /// <summary>The first line, without its newline: state, summary, and all perfdata (Icinga 2 reads it from this line only).</summary>
    public static string StatusLine(ServiceState state, string summary, IReadOnlyList<PerfDatum> perfData)
    {
        var text = new StringBuilder(Prefix(state)).Append(Clean(summary));
        if (perfData.Count > 0)
        {
            text.Append(" | ").AppendJoin(' ', perfData);
        }

        return text.ToString();
    }

    public static string Render(string statusLine, IEnumerable<string> details)
    {
        var text = new StringBuilder(statusLine).Append('\n');
        foreach (var line in details)
        {
            text.Append(Clean(line)).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>A whole output of one line: a state and a message (a failure, a refused argument).</summary>
    public static string Line(ServiceState state, string message) =>
        Render(StatusLine(state, message.Length > MaxMessageChars ? message[..MaxMessageChars] + "..." : message, []), []);

    /// <summary>
    /// A one-line answer's message at most: with the prefix the line stays within 1 KB, what an
    /// NRPE v2 packet carries and the bound of the default output (a long argument quoted in an
    /// error cannot make it larger).
    /// </summary>
    public const int MaxMessageChars = 960;

    /// <summary>
    /// Free text may not carry '|' (it starts perfdata) nor break the line, nor carry a control
    /// character (a terminal escape, a tab) from a name it quotes: those are shown as \xNN.
    /// </summary>
    public static string Clean(string text)
    {
        text = text.Replace('|', '/').Replace('\n', ' ').Replace('\r', ' ');
        if (!text.Any(char.IsControl))
        {
            return text;
        }

        var clean = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            _ = char.IsControl(c) ? clean.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)) : clean.Append(c);
        }

        return clean.ToString();
    }
}
