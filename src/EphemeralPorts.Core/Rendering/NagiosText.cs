using System.Text;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Rendering;

/// <summary>The plugin's text output: status line with perfdata, then detail lines.</summary>
public static class NagiosText
{
    public const string ServiceName = "EPHEMERAL PORTS";

    public static string Render(CheckResult result)
    {
        var text = new StringBuilder();
        text.Append(ServiceName).Append(' ').Append(result.State.Label()).Append(" - ").Append(Clean(result.Summary));
        if (result.PerfData.Count > 0)
        {
            text.Append(" | ").AppendJoin(' ', result.PerfData);
        }

        text.Append('\n');
        foreach (var line in result.Details)
        {
            text.Append(Clean(line)).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Free text may not carry '|' (it starts perfdata) nor break the line.</summary>
    public static string Clean(string text) =>
        text.Replace('|', '/').Replace('\n', ' ').Replace('\r', ' ');
}
