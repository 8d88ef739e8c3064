using System.Globalization;

namespace EphemeralPorts.ProcFs;

/// <summary>
/// <c>/proc/net/sockstat</c>, only as a hint of how many TCP sockets a sock_diag dump walks past.
/// Its <c>TCP:</c> line reads <c>inuse N orphan N tw N alloc N mem N</c>: <c>alloc</c> counts the
/// host's TCP sockets of both families and every namespace (they share one connection hash, which
/// is what a dump walks), <c>tw</c> the TIME_WAIT sockets of the namespace.
/// </summary>
public static class SockstatParser
{
    /// <summary>alloc + tw of the <c>TCP:</c> line; null when there is no such line or it is not numbers.</summary>
    public static long? TcpSockets(string text)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("TCP: ", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line["TCP: ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long? alloc = null, timeWait = null;
            for (var i = 0; i + 1 < fields.Length; i += 2)
            {
                if (!long.TryParse(fields[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
                {
                    return null;
                }

                switch (fields[i])
                {
                    case "alloc":
                        alloc = value;
                        break;
                    case "tw":
                        timeWait = value;
                        break;
                }
            }

            return alloc is { } a && timeWait is { } tw ? a + tw : null;
        }

        return null;
    }
}
