using System.Buffers.Binary;
using System.Globalization;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The wire format of ctnetlink (include/uapi/linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h,
/// net/netfilter/nf_conntrack_netlink.c). No I/O. Numbers in nlmsghdr and nlattr headers are in
/// host order (little-endian on both targets); attribute payloads are in network order.
/// </summary>
public static class CtNetlink
{
    public const int NetlinkNetfilter = 12;
    public const byte SubsysCtnetlink = 1;

    public const ushort NlmsgNoop = 1;
    public const ushort NlmsgError = 2;
    public const ushort NlmsgDone = 3;
    public const ushort NlmsgOverrun = 4;
    public const int NlmsgHeaderLength = 16;
    public const int NfgenmsgLength = 4;
    public const ushort NlmFRequest = 0x1;
    public const ushort NlmFDump = 0x300;

    /// <summary>NFNL_SUBSYS_CTNETLINK &lt;&lt; 8 | IPCTNL_MSG_CT_NEW: what ctnetlink_dump_table() answers a dump with (6.x).</summary>
    public const ushort MsgCtNew = SubsysCtnetlink << 8 | 0;

    /// <summary>IPCTNL_MSG_CT_GET: the dump request; some kernels echo it as the type of the entries.</summary>
    public const ushort MsgCtGet = SubsysCtnetlink << 8 | 1;

    /// <summary>IPCTNL_MSG_CT_GET_STATS_CPU: one reply per possible CPU (ctnetlink_ct_stat_cpu_dump).</summary>
    public const ushort MsgCtGetStatsCpu = SubsysCtnetlink << 8 | 4;

    /// <summary>nla_type's flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER) masked off: NLA_TYPE_MASK.</summary>
    public const ushort NlaTypeMask = 0x3FFF;
    public const ushort NlaFNested = 0x8000;

    public const byte AfUnspec = 0;
    public const byte AfInet = 2;
    public const byte AfInet6 = 10;

    // enum ctattr_type
    public const ushort CtaTupleOrig = 1;
    public const ushort CtaTupleReply = 2;
    public const ushort CtaStatus = 3;
    public const ushort CtaProtoinfo = 4;
    public const ushort CtaZone = 18;
    public const ushort CtaFilter = 25;
    public const ushort CtaStatusMask = 26;

    // enum ctattr_tuple
    public const ushort CtaTupleIp = 1;
    public const ushort CtaTupleProto = 2;
    public const ushort CtaTupleZone = 3;

    // enum ctattr_ip
    public const ushort CtaIpV4Src = 1;
    public const ushort CtaIpV4Dst = 2;
    public const ushort CtaIpV6Src = 3;
    public const ushort CtaIpV6Dst = 4;

    // enum ctattr_l4proto
    public const ushort CtaProtoNum = 1;
    public const ushort CtaProtoSrcPort = 2;
    public const ushort CtaProtoDstPort = 3;
    public const ushort CtaProtoIcmpId = 4;
    public const ushort CtaProtoIcmpv6Id = 7;

    // enum ctattr_protoinfo, ctattr_protoinfo_tcp
    public const ushort CtaProtoinfoTcp = 1;
    public const ushort CtaProtoinfoTcpState = 1;

    // enum ctattr_filter and its flags (include/uapi/linux/netfilter/nfnetlink_conntrack.h since 5.8)
    public const ushort CtaFilterOrigFlags = 1;
    public const ushort CtaFilterReplyFlags = 2;
    public const uint CtaFilterFlagIpDst = 1 << 1;

    public const byte IpProtoIcmp = 1;
    public const byte IpProtoTcp = 6;
    public const byte IpProtoUdp = 17;
    public const byte IpProtoDccp = 33;
    public const byte IpProtoIcmpv6 = 58;
    public const byte IpProtoSctp = 132;
    public const byte IpProtoUdplite = 136;

    /// <summary>The protocols whose tuples carry ports (nf_ct_port_tuple_to_nlattr).</summary>
    public static bool HasPorts(byte protocol) =>
        protocol is IpProtoTcp or IpProtoUdp or IpProtoDccp or IpProtoSctp or IpProtoUdplite;

    /// <summary>A one-line refusal of malformed input, naming the byte and the message it is in.</summary>
    internal static CheckException Malformed(string what, int at, int message) =>
        new(string.Create(CultureInfo.InvariantCulture, $"ctnetlink dump malformed: {what} at byte {at} (message at byte {message})"));

    /// <summary>
    /// The attributes of one level, nla_for_each_attr() with the checks of nla_ok() turned into
    /// refusals: a header that does not fit, a length under 4 or past the end. Each step moves at
    /// least 4 bytes on, so no input loops.
    /// </summary>
    internal ref struct Attributes
    {
        private ReadOnlySpan<byte> _rest;
        private int _offset;
        private readonly int _message;

        public Attributes(ReadOnlySpan<byte> span, int offset, int message)
        {
            _rest = span;
            _offset = offset;
            _message = message;
        }

        public bool Next(out ushort type, out ReadOnlySpan<byte> payload, out int payloadOffset)
        {
            if (_rest.IsEmpty)
            {
                type = 0;
                payload = default;
                payloadOffset = 0;
                return false;
            }

            if (_rest.Length < 4)
            {
                throw Malformed($"{_rest.Length} bytes left where an attribute header (4) should be", _offset, _message);
            }

            var length = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            if (length < 4 || length > _rest.Length)
            {
                throw Malformed($"attribute of {length} bytes where {_rest.Length} remain", _offset, _message);
            }

            type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]) & NlaTypeMask);
            payload = _rest[4..length];
            payloadOffset = _offset + 4;
            // NLA_ALIGN: the kernel pads every attribute to 4 bytes (the last one may end the message unpadded).
            var aligned = Math.Min((length + 3) & ~3, _rest.Length);
            _rest = _rest[aligned..];
            _offset += aligned;
            return true;
        }
    }
}

/// <summary>
/// Reads the replies to an IPCTNL_MSG_CT_GET dump, one received buffer at a time, into a sink: no
/// list of messages, no allocation per entry. Each entry mirrors what ctnetlink_fill_info() writes
/// (net/netfilter/nf_conntrack_netlink.c): nfgenmsg with the entry's family, CTA_TUPLE_ORIG and
/// CTA_TUPLE_REPLY (each from ctnetlink_dump_tuples(): a CTA_TUPLE_IP nest of CTA_IP_V4_* or
/// CTA_IP_V6_*, a CTA_TUPLE_PROTO nest of CTA_PROTO_NUM and the ports or ICMP id, and a
/// CTA_TUPLE_ZONE where the zone is per direction), CTA_ZONE (ctnetlink_dump_zone_id(), sent only
/// for a zone other than 0), CTA_STATUS (big-endian u32) and CTA_PROTOINFO (for TCP a
/// CTA_PROTOINFO_TCP nest whose CTA_PROTOINFO_TCP_STATE is the state); the rest (timeout, mark,
/// counters, id, use, ...) is skipped. Anything that breaks that shape is refused with a
/// <see cref="CheckException"/> naming the byte and the message; nothing else is thrown.
/// </summary>
public static class CtNetlinkParser
{
    public enum Outcome
    {
        /// <summary>The buffer ended without NLMSG_DONE: the dump goes on in the next one.</summary>
        More,

        /// <summary>NLMSG_DONE (or an NLMSG_ERROR acknowledging with 0): the dump is complete.</summary>
        Done,

        /// <summary>NLMSG_ERROR with an errno: the kernel refused or ended the dump.</summary>
        KernelError,
    }

    /// <summary>
    /// Parses the messages of one received buffer. <paramref name="streamOffset"/> is where the
    /// buffer starts in the whole dump, for the messages of a refusal. On
    /// <see cref="Outcome.KernelError"/>, <paramref name="errno"/> is the positive errno.
    /// </summary>
    public static Outcome Parse(ReadOnlySpan<byte> buffer, IConntrackSink sink, int streamOffset, out int errno)
    {
        ArgumentNullException.ThrowIfNull(sink);
        return Walk(buffer, streamOffset, CtNetlink.MsgCtNew, CtNetlink.MsgCtGet, "a conntrack entry", sink, static (sink, payload, payloadAt, messageAt) => sink.Add(Entry(payload, payloadAt, messageAt)), out errno);
    }

    /// <summary>What a walk does with one message of the wanted type: its payload, where that starts and where the message does (a static lambda and a state: nothing allocated per buffer).</summary>
    public delegate void MessageHandler<in TState>(TState state, ReadOnlySpan<byte> payload, int payloadAt, int messageAt);

    /// <summary>
    /// Walks the netlink messages of one recv() buffer (netlink_dump() fills one skb per call):
    /// NLMSG_DONE and an acknowledging NLMSG_ERROR end the dump, a kernel's NLMSG_ERROR ends it with
    /// its errno, NLMSG_NOOP is skipped, each message of type <paramref name="wanted"/> (or
    /// <paramref name="alsoWanted"/>) goes to <paramref name="handle"/>, any other type is malformed
    /// input. Offsets in messages count from <paramref name="streamOffset"/>.
    /// </summary>
    public static Outcome Walk<TState>(ReadOnlySpan<byte> buffer, int streamOffset, ushort wanted, ushort alsoWanted, string what, TState state, MessageHandler<TState> handle, out int errno)
    {
        ArgumentNullException.ThrowIfNull(handle);
        errno = 0;
        var offset = 0;
        while (offset < buffer.Length)
        {
            var at = streamOffset + offset;
            var rest = buffer[offset..];
            if (rest.Length < CtNetlink.NlmsgHeaderLength)
            {
                throw CtNetlink.Malformed($"{rest.Length} bytes left where a netlink header (16) should be", at, at);
            }

            // Compared as unsigned: a length of 0xFFFFFFFF must not become -1.
            var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            if (length < CtNetlink.NlmsgHeaderLength || length > (uint)rest.Length)
            {
                throw CtNetlink.Malformed($"netlink message of {length} bytes where {rest.Length} remain", at, at);
            }

            var type = BinaryPrimitives.ReadUInt16LittleEndian(rest[4..]);
            var payload = rest[CtNetlink.NlmsgHeaderLength..(int)length];
            if (type == CtNetlink.NlmsgDone)
            {
                return Outcome.Done;
            }

            if (type == CtNetlink.NlmsgError)
            {
                if (payload.Length < 4)
                {
                    throw CtNetlink.Malformed($"NLMSG_ERROR of {payload.Length} bytes, without its errno", at, at);
                }

                // struct nlmsgerr: a negative errno, 0 for an acknowledgement.
                var error = BinaryPrimitives.ReadInt32LittleEndian(payload);
                if (error == 0)
                {
                    return Outcome.Done;
                }

                if (error > 0 || error < -4095)
                {
                    throw CtNetlink.Malformed($"NLMSG_ERROR with error {error}, not a negative errno", at + CtNetlink.NlmsgHeaderLength, at);
                }

                errno = -error;
                return Outcome.KernelError;
            }

            if (type == wanted || type == alsoWanted)
            {
                handle(state, payload, at + CtNetlink.NlmsgHeaderLength, at);
            }
            else if (type != CtNetlink.NlmsgNoop)
            {
                throw CtNetlink.Malformed(string.Create(CultureInfo.InvariantCulture, $"message type 0x{type:x4}, not {what} (0x{wanted:x4})"), at + 4, at);
            }

            // NLMSG_ALIGN; the last message of a buffer may end it unpadded.
            offset += Math.Min(((int)length + 3) & ~3, rest.Length);
        }

        return Outcome.More;
    }

    /// <summary>
    /// A whole stored dump (the recv() buffers one after the other, as the capture tool writes
    /// them): every entry into <paramref name="sink"/>; a refusal when the kernel's error ends it,
    /// when it stops before NLMSG_DONE, or when bytes follow NLMSG_DONE. Returns the entries.
    /// </summary>
    public static int ParseDump(ReadOnlySpan<byte> dump, IConntrackSink sink)
    {
        var counter = new CountingSink(sink);
        var outcome = Parse(dump, counter, 0, out var errno);
        if (outcome == Outcome.More)
        {
            throw CtNetlink.Malformed("the dump ends without NLMSG_DONE", dump.Length, dump.Length);
        }

        if (outcome == Outcome.KernelError)
        {
            throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"ctnetlink dump: the kernel ended it with errno {errno} after {counter.Count} entries"));
        }

        var consumed = EndOfFirstTerminator(dump);
        if (consumed < dump.Length)
        {
            throw CtNetlink.Malformed($"{dump.Length - consumed} bytes after NLMSG_DONE", consumed, consumed);
        }

        return counter.Count;
    }

    /// <summary>The end of the first NLMSG_DONE or NLMSG_ERROR of a dump that <see cref="Parse"/> accepted.</summary>
    private static int EndOfFirstTerminator(ReadOnlySpan<byte> dump)
    {
        var offset = 0;
        while (true)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(dump[offset..]);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(dump[(offset + 4)..]);
            offset += Math.Min((length + 3) & ~3, dump.Length - offset);
            if (type is CtNetlink.NlmsgDone or CtNetlink.NlmsgError)
            {
                return offset;
            }
        }
    }

    /// <summary>One entry: the payload of a message of type IPCTNL_MSG_CT_NEW, from its nfgenmsg on.</summary>
    private static ConntrackEntry Entry(ReadOnlySpan<byte> payload, int payloadAt, int message)
    {
        if (payload.Length < CtNetlink.NfgenmsgLength)
        {
            throw CtNetlink.Malformed($"conntrack message of {payload.Length} bytes, shorter than its nfgenmsg", payloadAt, message);
        }

        // nfgenmsg.nfgen_family = nf_ct_l3num(ct).
        var family = payload[0];
        if (family is not (CtNetlink.AfInet or CtNetlink.AfInet6))
        {
            throw CtNetlink.Malformed(string.Create(CultureInfo.InvariantCulture, $"conntrack entry of address family {family}"), payloadAt, message);
        }

        var ipv6 = family == CtNetlink.AfInet6;
        Tuple orig = default, reply = default;
        var hasOrig = false;
        var hasReply = false;
        uint? status = null;
        ushort? zone = null;
        TcpConntrackState? tcpState = null;
        var attributes = new CtNetlink.Attributes(payload[CtNetlink.NfgenmsgLength..], payloadAt + CtNetlink.NfgenmsgLength, message);
        while (attributes.Next(out var type, out var value, out var at))
        {
            switch (type)
            {
                case CtNetlink.CtaTupleOrig:
                    orig = ReadTuple(value, at, message, ipv6, "CTA_TUPLE_ORIG");
                    hasOrig = true;
                    break;
                case CtNetlink.CtaTupleReply:
                    reply = ReadTuple(value, at, message, ipv6, "CTA_TUPLE_REPLY");
                    hasReply = true;
                    break;
                case CtNetlink.CtaStatus:
                    status = BigEndian32(value, at, message, "CTA_STATUS");
                    break;
                case CtNetlink.CtaZone:
                    zone = BigEndian16(value, at, message, "entry", "CTA_ZONE");
                    break;
                case CtNetlink.CtaProtoinfo:
                    tcpState = ReadTcpState(value, at, message) ?? tcpState;
                    break;
            }
        }

        if (!hasOrig || !hasReply)
        {
            throw CtNetlink.Malformed($"conntrack entry without {(hasOrig ? "CTA_TUPLE_REPLY" : "CTA_TUPLE_ORIG")}", payloadAt, message);
        }

        if (status is not { } bits)
        {
            throw CtNetlink.Malformed("conntrack entry without CTA_STATUS", payloadAt, message);
        }

        if (orig.Protocol != reply.Protocol)
        {
            throw CtNetlink.Malformed(string.Create(CultureInfo.InvariantCulture, $"conntrack entry whose tuples differ in protocol ({orig.Protocol}, {reply.Protocol})"), payloadAt, message);
        }

        // The zone of the reply direction: CTA_ZONE holds for both (NF_CT_DEFAULT_ZONE_DIR); a
        // zone of one direction only comes inside that direction's tuple.
        var replyZone = zone ?? reply.Zone;
        var icmp = orig.Protocol is CtNetlink.IpProtoIcmp or CtNetlink.IpProtoIcmpv6;
        return new ConntrackEntry(
            ipv6,
            orig.Protocol,
            replyZone,
            reply.Destination,
            icmp ? reply.IcmpId : reply.DestinationPort,
            reply.Source,
            icmp ? (ushort)0 : reply.SourcePort,
            orig.Source,
            icmp ? orig.IcmpId : orig.SourcePort,
            (ConntrackStatus)bits,
            tcpState);
    }

    private struct Tuple
    {
        public CtAddress Source;
        public CtAddress Destination;
        public ushort SourcePort;
        public ushort DestinationPort;
        public ushort IcmpId;
        public byte Protocol;
        public ushort Zone;
    }

    /// <summary>The inverse of ctnetlink_dump_tuples(): CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_TUPLE_ZONE.</summary>
    private static Tuple ReadTuple(ReadOnlySpan<byte> nest, int nestAt, int message, bool ipv6, string name)
    {
        if (!ipv6 && nest.Length == PortTupleV4Bytes && PortTupleV4(nest) is { } common)
        {
            return common;
        }

        var tuple = default(Tuple);
        bool source = false, destination = false, protocol = false, sourcePort = false, destinationPort = false;
        var attributes = new CtNetlink.Attributes(nest, nestAt, message);
        while (attributes.Next(out var type, out var value, out var at))
        {
            switch (type)
            {
                case CtNetlink.CtaTupleIp:
                    // ipv4_tuple_to_nlattr() / ipv6_tuple_to_nlattr(): source and destination of the entry's family.
                    var ip = new CtNetlink.Attributes(value, at, message);
                    while (ip.Next(out var ipType, out var address, out var addressAt))
                    {
                        switch (ipType)
                        {
                            case CtNetlink.CtaIpV4Src or CtNetlink.CtaIpV4Dst or CtNetlink.CtaIpV6Src or CtNetlink.CtaIpV6Dst:
                                var v6Attribute = ipType is CtNetlink.CtaIpV6Src or CtNetlink.CtaIpV6Dst;
                                if (v6Attribute != ipv6 || address.Length != (ipv6 ? 16 : 4))
                                {
                                    throw CtNetlink.Malformed($"{name} address of {address.Length} bytes (type {ipType}) in an {(ipv6 ? "IPv6" : "IPv4")} entry", addressAt, message);
                                }

                                if (ipType is CtNetlink.CtaIpV4Src or CtNetlink.CtaIpV6Src)
                                {
                                    tuple.Source = CtAddress.FromBytes(address);
                                    source = true;
                                }
                                else
                                {
                                    tuple.Destination = CtAddress.FromBytes(address);
                                    destination = true;
                                }

                                break;
                        }
                    }

                    break;
                case CtNetlink.CtaTupleProto:
                    // ctnetlink_dump_tuples_proto(): CTA_PROTO_NUM, then the l4proto's tuple_to_nlattr.
                    var proto = new CtNetlink.Attributes(value, at, message);
                    while (proto.Next(out var protoType, out var field, out var fieldAt))
                    {
                        switch (protoType)
                        {
                            case CtNetlink.CtaProtoNum:
                                if (field.Length < 1)
                                {
                                    throw CtNetlink.Malformed($"{name} CTA_PROTO_NUM without its byte", fieldAt, message);
                                }

                                tuple.Protocol = field[0];
                                protocol = true;
                                break;
                            case CtNetlink.CtaProtoSrcPort:
                                tuple.SourcePort = BigEndian16(field, fieldAt, message, name, "CTA_PROTO_SRC_PORT");
                                sourcePort = true;
                                break;
                            case CtNetlink.CtaProtoDstPort:
                                tuple.DestinationPort = BigEndian16(field, fieldAt, message, name, "CTA_PROTO_DST_PORT");
                                destinationPort = true;
                                break;
                            case CtNetlink.CtaProtoIcmpId or CtNetlink.CtaProtoIcmpv6Id:
                                tuple.IcmpId = BigEndian16(field, fieldAt, message, name, "CTA_PROTO_ICMP_ID");
                                break;
                        }
                    }

                    break;
                case CtNetlink.CtaTupleZone:
                    tuple.Zone = BigEndian16(value, at, message, name, "CTA_TUPLE_ZONE");
                    break;
            }
        }

        if (!source || !destination)
        {
            throw CtNetlink.Malformed($"{name} without its {(source ? "destination" : "source")} address", nestAt, message);
        }

        if (!protocol)
        {
            throw CtNetlink.Malformed($"{name} without CTA_PROTO_NUM", nestAt, message);
        }

        if (CtNetlink.HasPorts(tuple.Protocol) && !(sourcePort && destinationPort))
        {
            throw CtNetlink.Malformed(string.Create(CultureInfo.InvariantCulture, $"{name} of protocol {tuple.Protocol} without its ports"), nestAt, message);
        }

        return tuple;
    }

    /// <summary>
    /// The payload of an IPv4 tuple with ports and no zone as every kernel writes it, attribute
    /// for attribute (ipv4_tuple_to_nlattr(), then ctnetlink_dump_tuples_proto() with
    /// nf_ct_port_tuple_to_nlattr()): CTA_TUPLE_IP { CTA_IP_V4_SRC, CTA_IP_V4_DST },
    /// CTA_TUPLE_PROTO { CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT }, 48 bytes.
    /// </summary>
    private const int PortTupleV4Bytes = 48;

    /// <summary>
    /// <see cref="ReadTuple"/> for the shape nearly every entry has (<see cref="PortTupleV4Bytes"/>):
    /// seven attribute headers compared where that shape puts them (length and type; the flag bits
    /// masked off, as <see cref="CtNetlink.Attributes"/> does) and the fields read in place, instead
    /// of walking three levels of attributes. Anything else, malformed input included, is null:
    /// the walk then reads or refuses it, so the result is the walk's either way.
    /// </summary>
    private static Tuple? PortTupleV4(ReadOnlySpan<byte> nest)
    {
        const uint Mask = 0x3FFF_FFFF; // nla_len, and nla_type without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        static uint Header(int length, int type) => (uint)length | ((uint)type << 16);
        if ((BinaryPrimitives.ReadUInt32LittleEndian(nest) & Mask) != Header(20, CtNetlink.CtaTupleIp)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[4..]) & Mask) != Header(8, CtNetlink.CtaIpV4Src)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[12..]) & Mask) != Header(8, CtNetlink.CtaIpV4Dst)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[20..]) & Mask) != Header(28, CtNetlink.CtaTupleProto)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[24..]) & Mask) != Header(5, CtNetlink.CtaProtoNum)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[32..]) & Mask) != Header(6, CtNetlink.CtaProtoSrcPort)
            || (BinaryPrimitives.ReadUInt32LittleEndian(nest[40..]) & Mask) != Header(6, CtNetlink.CtaProtoDstPort))
        {
            return null;
        }

        return new Tuple
        {
            Source = CtAddress.FromBytes(nest.Slice(8, 4)),
            Destination = CtAddress.FromBytes(nest.Slice(16, 4)),
            Protocol = nest[28],
            SourcePort = BinaryPrimitives.ReadUInt16BigEndian(nest[36..]),
            DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(nest[44..]),
        };
    }

    /// <summary>CTA_PROTOINFO: tcp_to_nlattr() writes CTA_PROTOINFO_TCP with CTA_PROTOINFO_TCP_STATE first.</summary>
    private static TcpConntrackState? ReadTcpState(ReadOnlySpan<byte> nest, int nestAt, int message)
    {
        TcpConntrackState? state = null;
        var protoinfo = new CtNetlink.Attributes(nest, nestAt, message);
        while (protoinfo.Next(out var type, out var value, out var at))
        {
            if (type != CtNetlink.CtaProtoinfoTcp)
            {
                continue;
            }

            var tcp = new CtNetlink.Attributes(value, at, message);
            while (tcp.Next(out var tcpType, out var field, out var fieldAt))
            {
                if (tcpType == CtNetlink.CtaProtoinfoTcpState)
                {
                    if (field.Length < 1)
                    {
                        throw CtNetlink.Malformed("CTA_PROTOINFO_TCP_STATE without its byte", fieldAt, message);
                    }

                    state = (TcpConntrackState)field[0];
                }
            }
        }

        return state;
    }

    // The name comes in two parts so that the hot path builds no string: only a refusal does.
    private static ushort BigEndian16(ReadOnlySpan<byte> value, int at, int message, string where, string name) =>
        value.Length == 2 ? BinaryPrimitives.ReadUInt16BigEndian(value) : throw CtNetlink.Malformed($"{where} {name} of {value.Length} bytes, not 2", at, message);

    private static uint BigEndian32(ReadOnlySpan<byte> value, int at, int message, string name) =>
        value.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(value) : throw CtNetlink.Malformed($"{name} of {value.Length} bytes, not 4", at, message);

    private sealed class CountingSink(IConntrackSink inner) : IConntrackSink
    {
        public int Count { get; private set; }

        public void Add(in ConntrackEntry entry)
        {
            Count++;
            inner.Add(entry);
        }
    }
}
