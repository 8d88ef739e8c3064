using System.Buffers.Binary;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.SockDiag;

/// <summary>
/// The wire format of NETLINK_SOCK_DIAG (include/uapi/linux/netlink.h, sock_diag.h, inet_diag.h):
/// building a dump request with a kernel-side filter, and reading the replies. No I/O here.
/// </summary>
public static class SockDiagProtocol
{
    public const int NetlinkSockDiag = 4;
    public const ushort SockDiagByFamily = 20;

    /// <summary>TCPDIAG_GETSOCK: the older inet_diag request; its dump has no family filter.</summary>
    public const ushort TcpDiagGetSock = 18;
    public const ushort NlmsgError = 2;
    public const ushort NlmsgDone = 3;
    public const int NlmsgHeaderLength = 16;
    public const int InetDiagMsgLength = 72;
    private const ushort NlmFRequest = 0x1;
    private const ushort NlmFDump = 0x300;
    private const ushort InetDiagReqBytecode = 1;
    private const int ReqV2Length = 56;

    public const byte AfInet = 2;
    public const byte AfInet6 = 10;
    public const byte IpProtoTcp = 6;
    public const byte IpProtoUdp = 17;

    /// <summary>Every TCP state the model needs, 1..13 (TCP_BOUND_INACTIVE included: bound-but-idle sockets).</summary>
    public const uint AllStates = 0x3FFE;

    public const uint ListenState = 1u << 10;
    public const uint BoundInactiveState = 1u << 13;

    /// <summary>
    /// The states of the connection hash alone. A dump whose mask holds TCP_BOUND_INACTIVE walks the
    /// bind hash too, every socket of it (~0.13 us a socket, ~27 ms at 100k connections); one with
    /// TCP_LISTEN walks the listening hash. Neither walk is needed twice.
    /// </summary>
    public const uint ConnectionStates = AllStates & ~(ListenState | BoundInactiveState);

    /// <summary>
    /// A dump request (nlmsghdr + inet_diag_req_v2) with the bytecode of <paramref name="filter"/>,
    /// so that the kernel copies only the sockets that matter.
    /// </summary>
    public static byte[] DumpRequest(byte family, byte protocol, uint states, PortFilter filter, uint sequence)
    {
        var message = Message(SockDiagByFamily, ReqV2Length, filter, sequence, out var request);
        request[0] = family;
        request[1] = protocol;
        request[2] = 0; // idiag_ext: no extensions, only the fixed inet_diag_msg
        BinaryPrimitives.WriteUInt32LittleEndian(request[4..], states);
        WriteBytecode(request[ReqV2Length..], filter);
        return message;
    }

    /// <summary>
    /// A TCP dump request of the older kind (TCPDIAG_GETSOCK with struct inet_diag_req): the kernel
    /// runs it with AF_UNSPEC (inet_diag_dump_compat() in net/ipv4/inet_diag.c), so one walk of the
    /// connection hash reports IPv4 and IPv6 sockets alike, where SOCK_DIAG_BY_FAMILY needs two.
    /// Same state mask and bytecode; the replies are the same inet_diag_msg.
    /// </summary>
    public static byte[] TcpDumpRequestBothFamilies(uint states, PortFilter filter, uint sequence)
    {
        const int reqV1Length = 60; // family, src_len, dst_len, ext, inet_diag_sockid (48), states, dbs
        var message = Message(TcpDiagGetSock, reqV1Length, filter, sequence, out var request);
        request[0] = AfInet; // ignored by the kernel for dumps, checked by nothing
        BinaryPrimitives.WriteUInt32LittleEndian(request[52..], states);
        WriteBytecode(request[reqV1Length..], filter);
        return message;
    }

    private static byte[] Message(ushort type, int requestLength, PortFilter filter, uint sequence, out Span<byte> request)
    {
        var attributeLength = 4 + filter.Length;
        var total = NlmsgHeaderLength + requestLength + attributeLength;
        var message = new byte[total];
        var span = message.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)total);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], NlmFRequest | NlmFDump);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], sequence);
        request = span[NlmsgHeaderLength..];
        return message;
    }

    // The INET_DIAG_REQ_BYTECODE attribute: nlattr header, then the program.
    private static void WriteBytecode(Span<byte> attribute, PortFilter filter)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(attribute, (ushort)(4 + filter.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(attribute[2..], InetDiagReqBytecode);
        filter.Write(attribute[4..]);
    }

    /// <summary>What one received buffer held.</summary>
    public enum Outcome
    {
        More,
        Done,
        Error,
    }

    /// <summary>
    /// Walks the netlink messages of one received buffer and hands each socket to
    /// <paramref name="add"/>. <paramref name="error"/> is the kernel's errno on NLMSG_ERROR.
    /// </summary>
    public static Outcome Parse(ReadOnlySpan<byte> buffer, Transport transport, ISocketSink sink, out int error)
    {
        error = 0;
        while (buffer.Length >= NlmsgHeaderLength)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]);
            if (length < NlmsgHeaderLength || length > buffer.Length)
            {
                throw new InvalidDataException($"netlink message of {length} bytes in a buffer of {buffer.Length}");
            }

            var payload = buffer[NlmsgHeaderLength..length];
            switch (type)
            {
                case NlmsgDone:
                    return Outcome.Done;
                case NlmsgError:
                    error = payload.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(payload) : 0;
                    return error == 0 ? Outcome.Done : Outcome.Error;
                case SockDiagByFamily or TcpDiagGetSock when payload.Length >= InetDiagMsgLength:
                    sink.Add(Socket(payload, transport));
                    break;
            }

            var aligned = (length + 3) & ~3;
            buffer = aligned >= buffer.Length ? default : buffer[aligned..];
        }

        return Outcome.More;
    }

    /// <summary>One inet_diag_msg as a <see cref="SocketEntry"/>: ports and addresses are big-endian.</summary>
    public static SocketEntry Socket(ReadOnlySpan<byte> msg, Transport transport)
    {
        var family = msg[0];
        var state = msg[1];
        var timer = msg[2];
        var id = msg[4..52];
        var sourcePort = BinaryPrimitives.ReadUInt16BigEndian(id);
        var destinationPort = BinaryPrimitives.ReadUInt16BigEndian(id[2..]);
        var source = family == AfInet ? IpAddress.FromBytes(id.Slice(4, 4)) : IpAddress.FromBytes(id.Slice(4, 16));
        var destination = family == AfInet ? IpAddress.FromBytes(id.Slice(20, 4)) : IpAddress.FromBytes(id.Slice(20, 16));
        var expiresMs = BinaryPrimitives.ReadUInt32LittleEndian(msg[52..]);
        var inode = BinaryPrimitives.ReadUInt32LittleEndian(msg[68..]);

        // inet_diag_fill_timewait(): idiag_timer 3 and the time left in milliseconds.
        var timeWaitRemaining = transport == Transport.Tcp && state == TcpState.TimeWait && timer == 3 ? expiresMs : -1L;
        // idiag_if: sk_bound_dev_if (a TIME_WAIT's tw_bound_dev_if), what ss shows as %DEV.
        var boundDevice = (int)BinaryPrimitives.ReadUInt32LittleEndian(id[36..]);
        return new SocketEntry(transport, source, sourcePort, destination, destinationPort, state, timeWaitRemaining, inode) { BoundDevice = boundDevice };
    }
}
