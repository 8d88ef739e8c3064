using System.Buffers.Binary;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// The 68-byte records of src/native/cep_record.h (version 2, host byte order) as socket entries,
/// with what only the kernel's structures show: the bind bucket, a TIME_WAIT's own timestamps and
/// age, the socket's own port range.
/// </summary>
public static class BpfRecords
{
    public const int Size = 68;
    public const int Version = 2;

    private const byte AfInet = 2;
    private const byte IpProtoUdp = 17;
    private const byte FlagV6Only = 0x08;
    private const byte FlagTimeWaitTimestamps = 0x40;
    private const byte UserLockPort = 0x08;
    private const sbyte NoBucket = -128;

    /// <summary>Feeds every whole record of <paramref name="records"/> to <paramref name="sink"/>; returns how many.</summary>
    public static int Parse(ReadOnlySpan<byte> records, ISocketSink sink)
    {
        var count = 0;
        for (; records.Length >= Size; records = records[Size..], count++)
        {
            sink.Add(Entry(records[..Size]));
        }

        return count;
    }

    public static SocketEntry Entry(ReadOnlySpan<byte> r)
    {
        var family = r[0];
        var state = r[1];
        var transport = r[2] == IpProtoUdp ? Transport.Udp : Transport.Tcp;
        var flags = r[3];
        var fastReuse = (sbyte)r[4];
        var fastReusePort = (sbyte)r[5];
        var localPort = BinaryPrimitives.ReadUInt16LittleEndian(r[6..]);
        var remotePort = BinaryPrimitives.ReadUInt16LittleEndian(r[8..]);
        var rangeLow = BinaryPrimitives.ReadUInt16LittleEndian(r[10..]);
        var rangeHigh = BinaryPrimitives.ReadUInt16LittleEndian(r[12..]);
        var userLocks = r[14];
        var timeWaitAge = BinaryPrimitives.ReadUInt32LittleEndian(r[16..]);
        var inode = BinaryPrimitives.ReadUInt32LittleEndian(r[20..]);
        var addressLength = family == AfInet ? 4 : 16;
        var local = IpAddress.FromBytes(r.Slice(28, addressLength));
        var remote = IpAddress.FromBytes(r.Slice(44, addressLength));

        // The bind bucket: -1/-1 were made by connect() (IP_BIND_ADDRESS_NO_PORT too), anything
        // else by bind()/listen(); a port the program named sets SOCK_BINDPORT_LOCK.
        var origin = transport == Transport.Udp || fastReuse == NoBucket ? PortOrigin.Unknown
            : fastReuse == -1 && fastReusePort == -1 ? PortOrigin.Connect
            : (userLocks & UserLockPort) != 0 ? PortOrigin.BindFixedPort
            : PortOrigin.BindAnyPort;
        var timeWait = transport == Transport.Tcp && state == TcpState.TimeWait;
        return new SocketEntry(transport, local, localPort, remote, remotePort, state, -1, inode)
        {
            Origin = origin,
            NegotiatedTimestamps = timeWait ? (flags & FlagTimeWaitTimestamps) != 0 : null,
            TimeWaitAgeMs = timeWait ? timeWaitAge : -1,
            OwnRange = rangeLow != 0 && rangeHigh >= rangeLow ? new PortRange(rangeLow, rangeHigh) : null,
            V6Only = (flags & FlagV6Only) != 0,
            BoundDevice = (int)BinaryPrimitives.ReadUInt32LittleEndian(r[64..]),
        };
    }
}
