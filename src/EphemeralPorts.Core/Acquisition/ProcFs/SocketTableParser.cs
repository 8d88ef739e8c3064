using System.Buffers.Binary;
using System.Buffers.Text;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Parses one line of <c>/proc/net/{tcp,tcp6,udp,udp6}</c> as printed by get_tcp4_sock(),
/// get_timewait4_sock(), get_tcp6_sock() (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c) and
/// udp4_format_sock() / __ip6_dgram_sock_seq_show():
/// <code>
///   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
///    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0     0   12345 ...
/// </code>
/// Addresses are the raw network-order words printed with %08X on a host-order integer, so on a
/// little-endian host each 4-byte word reads reversed. The protocol and family are passed in,
/// never guessed from the file name.
/// </summary>
public static class SocketTableParser
{
    /// <summary>USER_HZ: tm->when is printed through jiffies_delta_to_clock_t().</summary>
    private const long MsPerClockTick = 10;

    private const int TimeWaitTimer = 3;

    /// <summary>True when a table's first line is the header the kernel prints.</summary>
    public static bool IsHeader(ReadOnlySpan<byte> line) =>
        line.TrimStart((byte)' ').StartsWith("sl "u8) && line.IndexOf("local_address"u8) >= 0;

    public static bool TryParse(ReadOnlySpan<byte> line, Transport transport, bool ipv6, out SocketEntry entry, out string? error)
    {
        entry = default;
        Span<Range> fields = stackalloc Range[11];
        var count = Split(line, fields);
        if (count < 10)
        {
            error = $"truncated line: {count} fields where at least 10 are expected";
            return false;
        }

        if (line[fields[0]] is not [.., (byte)':'])
        {
            error = "first field is not a slot number ('N:')";
            return false;
        }

        if (!TryEndpoint(line[fields[1]], ipv6, out var localAddress, out var localPort)
            || !TryEndpoint(line[fields[2]], ipv6, out var remoteAddress, out var remotePort))
        {
            error = ipv6
                ? "address is not 32 hex digits ':' 4 hex digits"
                : "address is not 8 hex digits ':' 4 hex digits";
            return false;
        }

        var stateField = line[fields[3]];
        if (stateField.Length != 2 || !TryHex(stateField, out var state))
        {
            error = "state is not 2 hex digits";
            return false;
        }

        var timer = line[fields[5]];
        var colon = timer.IndexOf((byte)':');
        if (colon != 2 || !TryHex(timer[..2], out var timerKind) || timer.Length - 3 is < 1 or > 16 || !TryHex(timer[3..], out var when))
        {
            error = "timer is not 'tr:tm->when' in hex";
            return false;
        }

        // jiffies_delta_to_clock_t() gives a clock_t; one that does not fit a time in milliseconds
        // is no kernel's (and would wrap to a negative time left).
        if (when > long.MaxValue / MsPerClockTick)
        {
            error = "timer tm->when is beyond any clock";
            return false;
        }

        if (!TryDecimal(line[fields[7]], out var uid) || uid > uint.MaxValue || !TryDecimal(line[fields[9]], out var inode) || inode > long.MaxValue)
        {
            error = "uid or inode is not a decimal number";
            return false;
        }

        var timeWaitRemaining = transport == Transport.Tcp && state == TcpState.TimeWait && timerKind == TimeWaitTimer
            ? (long)when * MsPerClockTick
            : -1;
        entry = new SocketEntry(transport, localAddress, (int)localPort, remoteAddress, (int)remotePort, (byte)state, timeWaitRemaining, (long)inode);
        error = null;
        return true;
    }

    private static int Split(ReadOnlySpan<byte> line, Span<Range> fields)
    {
        var count = 0;
        var i = 0;
        while (i < line.Length && count < fields.Length)
        {
            while (i < line.Length && line[i] == (byte)' ')
            {
                i++;
            }

            var start = i;
            while (i < line.Length && line[i] != (byte)' ')
            {
                i++;
            }

            if (i > start)
            {
                fields[count++] = new Range(start, i);
            }
        }

        return count;
    }

    private static bool TryEndpoint(ReadOnlySpan<byte> field, bool ipv6, out IpAddress address, out ulong port)
    {
        address = default;
        port = 0;
        var hexDigits = ipv6 ? 32 : 8;
        if (field.Length != hexDigits + 5 || field[hexDigits] != (byte)':' || !TryHex(field[(hexDigits + 1)..], out port))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[ipv6 ? 16 : 4];
        for (var word = 0; word < hexDigits / 8; word++)
        {
            if (!TryHex(field.Slice(word * 8, 8), out var value))
            {
                return false;
            }

            // The word was printed from host order; put its bytes back in network order.
            var host = (uint)value;
            var network = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(host) : host;
            BinaryPrimitives.WriteUInt32BigEndian(bytes.Slice(word * 4, 4), network);
        }

        address = IpAddress.FromBytes(bytes);
        return true;
    }

    private static bool TryDecimal(ReadOnlySpan<byte> digits, out ulong value) =>
        Utf8Parser.TryParse(digits, out value, out var consumed) && consumed == digits.Length;

    private static bool TryHex(ReadOnlySpan<byte> digits, out ulong value)
    {
        value = 0;
        if (digits.IsEmpty || digits.Length > 16)
        {
            return false;
        }

        foreach (var c in digits)
        {
            int nibble = c switch
            {
                >= (byte)'0' and <= (byte)'9' => c - '0',
                >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
                >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
                _ => -1,
            };
            if (nibble < 0)
            {
                return false;
            }

            value = (value << 4) | (uint)nibble;
        }

        return true;
    }
}
