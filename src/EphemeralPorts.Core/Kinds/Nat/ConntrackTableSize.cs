using System.Globalization;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The two numbers of the table fill, parsed from the text of their sysctl files (reading the
/// files is the caller's): /proc/sys/net/netfilter/nf_conntrack_count, the entries of the reading
/// thread's network namespace, and nf_conntrack_max, one limit for the whole host (0444 inside a
/// namespace other than the first). Both are printed by proc_dointvec-style handlers: one decimal
/// number and a newline.
/// </summary>
public static class ConntrackTableSize
{
    /// <summary>nf_conntrack_count: the entries of the namespace (an unsigned int in the kernel).</summary>
    public static long ParseCount(string text, string where) => Parse(text, where, "nf_conntrack_count");

    /// <summary>
    /// nf_conntrack_max: the limit a namespace's count is held against; 0 means no limit
    /// (__nf_conntrack_alloc() checks only when it is set).
    /// </summary>
    public static long ParseMax(string text, string where) => Parse(text, where, "nf_conntrack_max");

    private static long Parse(string text, string where, string name)
    {
        ArgumentNullException.ThrowIfNull(text);
        var value = text.EndsWith('\n') ? text[..^1] : text;
        if (value.Length == 0 || value.Length > 10 || !value.All(char.IsAsciiDigit)
            || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > uint.MaxValue)
        {
            var shown = value.Length <= 20 ? value : value[..20] + "...";
            throw new CheckException($"{where}: {name} should be one unsigned number, found '{shown.ReplaceLineEndings("\\n")}'");
        }

        return number;
    }
}
