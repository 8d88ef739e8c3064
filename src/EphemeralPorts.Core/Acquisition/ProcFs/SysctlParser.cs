using System.Globalization;
using EphemeralPorts.Plugin;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Parsers for the sysctl files of net/ipv4 (text in, value out; no I/O). <paramref name="where"/>
/// names the file in error messages. The checks mirror what the kernel's own handlers accept
/// (ipv4_local_port_range() and proc_do_large_bitmap() in net/ipv4/sysctl_net_ipv4.c, kernel/sysctl.c).
/// </summary>
public static class SysctlParser
{
    /// <summary><c>ip_local_port_range</c>: two ports separated by white space, low ≤ high.</summary>
    public static PortRange ParsePortRange(string text, string where)
    {
        var fields = SingleLine(text, where).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 2)
        {
            throw Error(where, $"expected two ports, found {Quote(text)}");
        }

        var low = ParsePort(fields[0], where);
        var high = ParsePort(fields[1], where);
        if (low > high)
        {
            throw Error(where, $"low port {low} is above high port {high}");
        }

        return new PortRange(low, high);
    }

    /// <summary><c>ip_local_reserved_ports</c>: empty, or comma-separated ports and <c>a-b</c> ranges.</summary>
    public static PortSet ParseReservedPorts(string text, string where)
    {
        var line = SingleLine(text, where).Trim();
        var set = new PortSet();
        if (line.Length == 0)
        {
            return set;
        }

        foreach (var item in line.Split(','))
        {
            var dash = item.IndexOf('-');
            if (dash < 0)
            {
                set.Add(ParsePort(item, where, allowZero: true));
                continue;
            }

            var first = ParsePort(item[..dash], where, allowZero: true);
            var last = ParsePort(item[(dash + 1)..], where, allowZero: true);
            if (first > last)
            {
                throw Error(where, $"range {Quote(item)} runs backwards");
            }

            set.AddRange(first, last);
        }

        return set;
    }

    /// <summary>An integer sysctl such as <c>tcp_tw_reuse</c>, checked against the values it may take.</summary>
    public static int ParseInt(string text, string where, int min, int max)
    {
        var field = SingleLine(text, where).Trim();
        if (!IsDecimal(field, allowSign: true) || !int.TryParse(field, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            throw Error(where, $"expected an integer, found {Quote(field)}");
        }

        if (value < min || value > max)
        {
            throw Error(where, $"{value} is outside {min}..{max}");
        }

        return value;
    }

    private static int ParsePort(string text, string where, bool allowZero = false)
    {
        var field = text.Trim();
        if (!IsDecimal(field, allowSign: false) || field.Length > 5)
        {
            throw Error(where, $"{Quote(field)} is not a port number");
        }

        var port = int.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture);
        if (port > 65535 || (port == 0 && !allowZero))
        {
            throw Error(where, $"port {port} is outside 1-65535");
        }

        return port;
    }

    private static bool IsDecimal(string s, bool allowSign)
    {
        var start = allowSign && s.Length > 0 && s[0] == '-' ? 1 : 0;
        if (s.Length == start || s.Length > 11)
        {
            return false;
        }

        for (var i = start; i < s.Length; i++)
        {
            if (!char.IsAsciiDigit(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static string SingleLine(string text, string where)
    {
        var body = text.EndsWith('\n') ? text[..^1] : text;
        if (body.Contains('\n'))
        {
            throw Error(where, "expected a single line");
        }

        return body;
    }

    private static string Quote(string text) => Excerpt.Quote(text);

    private static CheckException Error(string where, string what) => new($"{where} line 1: {what}");
}
