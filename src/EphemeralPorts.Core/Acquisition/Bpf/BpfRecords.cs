using System.Buffers.Binary;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// The records of src/native/cep_record.h (host byte order) as socket entries, with what only the
/// kernel's structures show: the bind bucket, a TIME_WAIT's own timestamps and age, the socket's
/// own port range. Size, offsets and bits are <see cref="CepAbi"/>'s (made from cep_abi.h).
/// </summary>
public static class BpfRecords
{
    public const int Size = CepAbi.Record.Size;
    public const int Version = CepAbi.Record.Version;

    private const byte AfInet = 2;
    private const byte IpProtoUdp = 17;

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
        var family = r[CepAbi.Off.Family];
        var state = r[CepAbi.Off.State];
        var transport = r[CepAbi.Off.Protocol] == IpProtoUdp ? Transport.Udp : Transport.Tcp;
        var flags = r[CepAbi.Off.Flags];
        var fastReuse = (sbyte)r[CepAbi.Off.Fastreuse];
        var fastReusePort = (sbyte)r[CepAbi.Off.Fastreuseport];
        var localPort = BinaryPrimitives.ReadUInt16LittleEndian(r[CepAbi.Off.Lport..]);
        var remotePort = BinaryPrimitives.ReadUInt16LittleEndian(r[CepAbi.Off.Rport..]);
        var rangeLow = BinaryPrimitives.ReadUInt16LittleEndian(r[CepAbi.Off.RangeLo..]);
        var rangeHigh = BinaryPrimitives.ReadUInt16LittleEndian(r[CepAbi.Off.RangeHi..]);
        var userLocks = r[CepAbi.Off.Userlocks];
        var timeWaitAge = BinaryPrimitives.ReadUInt32LittleEndian(r[CepAbi.Off.TwAgeMs..]);
        var inode = BinaryPrimitives.ReadUInt32LittleEndian(r[CepAbi.Off.Inode..]);
        var addressLength = family == AfInet ? 4 : 16;
        var local = IpAddress.FromBytes(r.Slice(CepAbi.Off.Laddr, addressLength));
        var remote = IpAddress.FromBytes(r.Slice(CepAbi.Off.Raddr, addressLength));

        // The bind bucket: -1/-1 were made by connect() (IP_BIND_ADDRESS_NO_PORT too), anything
        // else by bind()/listen(); a port the program named sets SOCK_BINDPORT_LOCK.
        var origin = transport == Transport.Udp || fastReuse == CepAbi.Record.NoBucket ? PortOrigin.Unknown
            : fastReuse == -1 && fastReusePort == -1 ? PortOrigin.Connect
            : (userLocks & CepAbi.UserLock.Bindport) != 0 ? PortOrigin.BindFixedPort
            : PortOrigin.BindAnyPort;
        var timeWait = transport == Transport.Tcp && state == TcpState.TimeWait;
        return new SocketEntry(transport, local, localPort, remote, remotePort, state, -1, inode)
        {
            Origin = origin,
            NegotiatedTimestamps = timeWait ? (flags & CepAbi.Flag.TwTimestamps) != 0 : null,
            TimeWaitAgeMs = timeWait ? timeWaitAge : -1,
            OwnRange = rangeLow != 0 && rangeHigh >= rangeLow ? new PortRange(rangeLow, rangeHigh) : null,
            V6Only = (flags & CepAbi.Flag.V6only) != 0,
            BoundDevice = (int)BinaryPrimitives.ReadUInt32LittleEndian(r[CepAbi.Off.BoundDevIf..]),
        };
    }
}
