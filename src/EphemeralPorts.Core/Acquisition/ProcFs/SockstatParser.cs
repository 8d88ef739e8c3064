using System.Globalization;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// <c>/proc/net/sockstat</c> and <c>sockstat6</c>, only as a hint of how many TCP sockets a
/// sock_diag dump of the namespace reports at most. Their <c>TCP:</c> and <c>TCP6:</c> lines count
/// the namespace's hashed sockets (<c>inuse</c>, listeners and connections) and its TIME_WAIT
/// sockets (<c>tw</c>, both families); <c>alloc</c> is the whole host's and is left aside.
/// </summary>
public static class SockstatParser
{
    /// <summary>
    /// TCP inuse + tw of <paramref name="sockstat"/> and TCP6 inuse of <paramref name="sockstat6"/>
    /// (absent when IPv6 is disabled); null when a line is missing or is not numbers.
    /// </summary>
    public static long? TcpSockets(string sockstat, string? sockstat6)
    {
        if (Field(sockstat, "TCP:", "inuse") is not { } inuse || Field(sockstat, "TCP:", "tw") is not { } timeWait)
        {
            return null;
        }

        // No namespace holds 2^63 sockets: a sum that would wrap is no count (afl-fuzz found it).
        var ipv4 = inuse > long.MaxValue - timeWait ? (long?)null : inuse + timeWait;
        if (sockstat6 is null || ipv4 is null)
        {
            return ipv4;
        }

        return Field(sockstat6, "TCP6:", "inuse") is { } inuse6 && inuse6 <= long.MaxValue - ipv4 ? ipv4 + inuse6 : null;
    }

    // The value after `name` on the line that starts with `prefix` ("TCP: inuse 1 orphan 0 tw 35 ...").
    private static long? Field(string text, string prefix, string name)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(prefix + " ", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line[(prefix.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 0; i + 1 < fields.Length; i += 2)
            {
                if (fields[i] == name)
                {
                    return long.TryParse(fields[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
                }
            }

            return null;
        }

        return null;
    }
}
