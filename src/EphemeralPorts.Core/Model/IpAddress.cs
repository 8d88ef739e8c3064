using System.Buffers.Binary;
using System.Net;

namespace EphemeralPorts.Model;

/// <summary>
/// An IPv4 or IPv6 address as 128 bits in network order. IPv4 is held in its v4-mapped form
/// (<c>::ffff:a.b.c.d</c>), so a v4-mapped socket from <c>/proc/net/tcp6</c> and a plain IPv4 socket
/// from <c>/proc/net/tcp</c> land on the same tuple, as they do in the kernel's connection hash.
/// </summary>
public readonly record struct IpAddress(ulong High, ulong Low) : IComparable<IpAddress>
{
    private const ulong V4MappedPrefix = 0x0000_FFFF_0000_0000UL;

    public static IpAddress FromV4(uint networkOrderValue) => new(0, V4MappedPrefix | networkOrderValue);

    public static IpAddress FromBytes(ReadOnlySpan<byte> bytes) => bytes.Length switch
    {
        4 => FromV4(BinaryPrimitives.ReadUInt32BigEndian(bytes)),
        16 => new IpAddress(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..])),
        _ => throw new ArgumentException("an address has 4 or 16 bytes", nameof(bytes)),
    };

    public static IpAddress Parse(string text) => FromBytes(IPAddress.Parse(text).GetAddressBytes());

    /// <summary>IPv4, or IPv4 reached through a v4-mapped IPv6 socket.</summary>
    public bool IsV4 => High == 0 && (Low & 0xFFFF_FFFF_0000_0000UL) == V4MappedPrefix;

    public bool IsUnspecified => IsV4 ? (uint)Low == 0 : High == 0 && Low == 0;

    /// <summary>127.0.0.0/8 or ::1, as <c>tcp_twsk_unique()</c> tests for <c>tcp_tw_reuse = 2</c>.</summary>
    public bool IsLoopback => IsV4 ? (Low & 0xFF00_0000UL) == 0x7F00_0000UL : High == 0 && Low == 1;

    public int CompareTo(IpAddress other)
    {
        var c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }

    public override string ToString()
    {
        if (IsV4)
        {
            var v4 = (uint)Low;
            return $"{v4 >> 24}.{(v4 >> 16) & 0xFF}.{(v4 >> 8) & 0xFF}.{v4 & 0xFF}";
        }

        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        return new IPAddress(bytes).ToString();
    }

    /// <summary>
    /// The address as /proc/net/tcp prints it: network-order 32-bit words, each printed from a
    /// host-order integer (so reversed on little-endian hosts); 8 hex digits for IPv4, 32 for IPv6.
    /// </summary>
    public string ToKernelHex()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        var words = IsV4 ? bytes[12..] : bytes;
        var hex = new System.Text.StringBuilder(words.Length * 2);
        for (var i = 0; i < words.Length; i += 4)
        {
            var network = BinaryPrimitives.ReadUInt32BigEndian(words.Slice(i, 4));
            var host = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(network) : network;
            hex.Append(host.ToString("X8", System.Globalization.CultureInfo.InvariantCulture));
        }

        return hex.ToString();
    }

    /// <summary>The address with a port, IPv6 in brackets.</summary>
    public string WithPort(int port) => IsV4 ? $"{this}:{port}" : $"[{this}]:{port}";
}
