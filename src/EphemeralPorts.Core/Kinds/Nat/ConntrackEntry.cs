using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// An address of a conntrack tuple, IPv4 or IPv6, in 16 bytes: an IPv4 address is held
/// v4-mapped (::ffff:a.b.c.d), so one comparison serves both families. The same layout as the
/// socket model's address, kept here so that this kind depends on nothing but itself.
/// </summary>
public readonly record struct CtAddress(ulong High, ulong Low) : IComparable<CtAddress>
{
    private const ulong V4MappedPrefix = 0x0000_FFFF_0000_0000UL;

    /// <summary>From the 4 or 16 bytes of a CTA_IP_* attribute (network byte order).</summary>
    public static CtAddress FromBytes(ReadOnlySpan<byte> bytes) => bytes.Length switch
    {
        4 => new CtAddress(0, V4MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(bytes)),
        16 => new CtAddress(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..])),
        _ => throw new ArgumentException($"an address has 4 or 16 bytes, not {bytes.Length}", nameof(bytes)),
    };

    /// <summary>Dotted or colon notation (tests and configuration; not on the dump path).</summary>
    public static CtAddress Parse(string text) => FromBytes(IPAddress.Parse(text).GetAddressBytes());

    public bool IsV4Mapped => High == 0 && (Low >> 32) == 0xFFFF;

    public int CompareTo(CtAddress other) => High != other.High ? High.CompareTo(other.High) : Low.CompareTo(other.Low);

    /// <summary>The address as conntrack(8) prints it: dotted quad for IPv4, RFC 5952 for IPv6.</summary>
    public override string ToString()
    {
        if (IsV4Mapped)
        {
            var v4 = (uint)Low;
            return string.Create(CultureInfo.InvariantCulture, $"{v4 >> 24}.{(v4 >> 16) & 0xFF}.{(v4 >> 8) & 0xFF}.{v4 & 0xFF}");
        }

        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        return new IPAddress(bytes).ToString();
    }
}

/// <summary>The ct->status bits the NAT analysis reads (include/uapi/linux/netfilter/nf_conntrack_common.h, enum ip_conntrack_status).</summary>
[Flags]
public enum ConntrackStatus : uint
{
    None = 0,
    Expected = 1 << 0,
    SeenReply = 1 << 1,

    /// <summary>IPS_ASSURED: early_drop never evicts such an entry when the table is full.</summary>
    Assured = 1 << 2,
    Confirmed = 1 << 3,

    /// <summary>IPS_SRC_NAT: the ORIG tuple's source was rewritten (the reply tuple's destination is the NAT address).</summary>
    SourceNat = 1 << 4,
    DestinationNat = 1 << 5,
    SourceNatDone = 1 << 7,
    DestinationNatDone = 1 << 8,
    Dying = 1 << 9,
}

/// <summary>enum tcp_conntrack (include/uapi/linux/netfilter/nf_conntrack_tcp.h): conntrack's own TCP states, not the socket's.</summary>
public enum TcpConntrackState : byte
{
    None = 0,
    SynSent = 1,
    SynReceived = 2,
    Established = 3,
    FinWait = 4,
    CloseWait = 5,
    LastAck = 6,
    TimeWait = 7,
    Close = 8,

    /// <summary>TCP_CONNTRACK_SYN_SENT2 (was TCP_CONNTRACK_LISTEN): a simultaneous open.</summary>
    SynSent2 = 9,
}

/// <summary>
/// The key a source-NAT port is unique within (nf_nat_used_tuple: a new mapping is refused when
/// its reply tuple is taken): the NAT address, the destination, the destination port, the
/// protocol and the conntrack zone. Read from an entry's REPLY tuple.
/// </summary>
public readonly record struct NatKey(CtAddress NatAddress, CtAddress Destination, ushort DestinationPort, byte Protocol, ushort Zone);

/// <summary>
/// One conntrack entry, as much of it as the source-NAT and table analyses need (64 bytes, no
/// reference: a dump of 100k entries allocates nothing per entry). The NAT side is read from the
/// REPLY tuple, where nf_nat wrote it: reply.dst is the address the client was translated to (the
/// router's own address for a connection of its own), reply.dst port the port it holds there,
/// reply.src the destination and reply.src port the destination port. The client is the ORIG
/// tuple's source. For ICMP and ICMPv6 the echo id stands in for both the client and the NAT port
/// (nf_nat maps the id; CTA_PROTO_ICMP_ID is in both tuples) and the destination port is 0.
/// </summary>
public readonly record struct ConntrackEntry
{
    // Declared largest first: structs are laid out sequentially, and this order leaves no padding.
    private readonly CtAddress _nat;
    private readonly CtAddress _destination;
    private readonly CtAddress _client;
    private readonly ConntrackStatus _status;
    private readonly ushort _natPort;
    private readonly ushort _destinationPort;
    private readonly ushort _clientPort;
    private readonly ushort _zone;
    private readonly byte _protocol;
    private readonly bool _ipv6;
    private readonly TcpConntrackState? _tcpState;

    public ConntrackEntry(
        bool isIPv6,
        byte protocol,
        ushort zone,
        CtAddress natAddress,
        ushort natPort,
        CtAddress destination,
        ushort destinationPort,
        CtAddress client,
        ushort clientPort,
        ConntrackStatus status,
        TcpConntrackState? tcpState)
    {
        _ipv6 = isIPv6;
        _protocol = protocol;
        _zone = zone;
        _nat = natAddress;
        _natPort = natPort;
        _destination = destination;
        _destinationPort = destinationPort;
        _client = client;
        _clientPort = clientPort;
        _status = status;
        _tcpState = tcpState;
    }

    /// <summary>The entry's family (nfgenmsg.nfgen_family AF_INET6); its addresses are all of it.</summary>
    public bool IsIPv6 => _ipv6;

    /// <summary>The layer-4 protocol number (CTA_PROTO_NUM): 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...</summary>
    public byte Protocol => _protocol;

    /// <summary>The conntrack zone that holds the reply direction: CTA_ZONE, or the reply tuple's CTA_TUPLE_ZONE; 0 when neither is sent.</summary>
    public ushort Zone => _zone;

    /// <summary>reply.dst: the source address after NAT (the router's own address for its own connections).</summary>
    public CtAddress NatAddress => _nat;

    /// <summary>reply.dst port: the port this entry holds on its key.</summary>
    public ushort NatPort => _natPort;

    /// <summary>reply.src: the address the connection goes to.</summary>
    public CtAddress Destination => _destination;

    /// <summary>reply.src port.</summary>
    public ushort DestinationPort => _destinationPort;

    /// <summary>orig.src: the client before NAT.</summary>
    public CtAddress Client => _client;

    /// <summary>orig.src port: the client's own port before NAT.</summary>
    public ushort ClientPort => _clientPort;

    public ConntrackStatus Status => _status;

    /// <summary>CTA_PROTOINFO_TCP_STATE; null where the kernel sent none (every protocol but TCP).</summary>
    public TcpConntrackState? TcpState => _tcpState;

    public bool IsSourceNat => (_status & ConntrackStatus.SourceNat) != 0;

    public bool IsAssured => (_status & ConntrackStatus.Assured) != 0;

    public NatKey Key => new(_nat, _destination, _destinationPort, _protocol, _zone);
}

/// <summary>Where parsed entries go, one at a time, so that a dump needs no list of them.</summary>
public interface IConntrackSink
{
    void Add(in ConntrackEntry entry);
}
