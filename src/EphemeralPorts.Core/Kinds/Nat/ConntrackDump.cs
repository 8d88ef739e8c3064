using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using EphemeralPorts.Acquisition.SockDiag;
using EphemeralPorts.Native;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>Why the conntrack table could not be read at all: the caller says so and goes on without it.</summary>
public enum ConntrackRefusal
{
    /// <summary>nfnetlink refused the request: the caller lacks CAP_NET_ADMIN in the namespace's user namespace (EPERM).</summary>
    NeedsCapNetAdmin,

    /// <summary>No ctnetlink here: NETLINK_NETFILTER or the conntrack subsystem is missing (module not loaded, compiled out, a sandbox).</summary>
    NotAvailable,
}

/// <summary>
/// A typed refusal to read conntrack through ctnetlink, thrown before any entry reached the sink.
/// For <see cref="ConntrackRefusal.NeedsCapNetAdmin"/> the caller reports "NAT tuples were not read
/// (needs CAP_NET_ADMIN)"; the table fill and the counters stay readable from /proc.
/// </summary>
public sealed class ConntrackRefusedException(ConntrackRefusal reason, int errno, string message) : Exception(message)
{
    public ConntrackRefusal Reason { get; } = reason;

    /// <summary>The errno the kernel answered with.</summary>
    public int Errno { get; } = errno;
}

/// <summary>
/// What to ask the kernel for. Every condition is also checked here on each entry, so the result is
/// the same whether the running kernel filters (and saves copying entries out) or ignores the
/// request's filter attributes (older kernels parse dump requests liberally and skip attributes
/// they do not know) or refuses them (then the dump is asked again without them). A filter never
/// saves the walk: ctnetlink_dump_table() visits every bucket of the one global hash, every
/// namespace's entries included (~9 ms for 262,144 empty buckets).
/// </summary>
public sealed record ConntrackQuery
{
    /// <summary>Everything of the namespace, both families.</summary>
    public static readonly ConntrackQuery All = new();

    /// <summary>AF_INET or AF_INET6 for one family (nfgen_family, filtered by every kernel); AF_UNSPEC (0) for both.</summary>
    public byte Family { get; init; } = CtNetlink.AfUnspec;

    /// <summary>
    /// Status bits that must be set (<c>(status &amp; StatusMask) == StatusValue</c>): CTA_STATUS with
    /// CTA_STATUS_MASK in the request ("netfilter: ctnetlink: allow to filter dump by status bits",
    /// 2022; 5.19 by this reading, 5.15+ in nat-model.md: not pinned down, and it need not be, as
    /// the condition also holds here). Taken and applied by 6.18 (tested). 0 for none.
    /// </summary>
    public ConntrackStatus StatusMask { get; init; }

    public ConntrackStatus StatusValue { get; init; }

    /// <summary>
    /// Only entries whose REPLY tuple goes to this address, the NAT address of a key (CTA_FILTER with
    /// CTA_FILTER_REPLY_FLAGS = CTA_FILTER_FLAG_CTA_IP_DST and a CTA_TUPLE_REPLY holding the address,
    /// since Linux 5.8). Needs <see cref="Family"/> set to the address's family.
    /// </summary>
    public CtAddress? ReplyDestination { get; init; }

    public bool HasKernelFilter => StatusMask != 0 || ReplyDestination is not null;

    /// <summary>The same conditions, in user space.</summary>
    public bool Matches(in ConntrackEntry entry) =>
        (Family == CtNetlink.AfUnspec || entry.IsIPv6 == (Family == CtNetlink.AfInet6))
        && (entry.Status & StatusMask) == (StatusValue & StatusMask)
        && (ReplyDestination is not { } address || entry.NatAddress == address);

    /// <summary>The dump request: nlmsghdr, nfgenmsg, and the filter attributes when <paramref name="withKernelFilter"/>.</summary>
    public byte[] Request(uint sequence, bool withKernelFilter)
    {
        if (ReplyDestination is { } d && (Family == CtNetlink.AfUnspec || d.IsV4Mapped != (Family == CtNetlink.AfInet)))
        {
            throw new ArgumentException("a reply-destination filter needs Family set to that address's family", nameof(withKernelFilter));
        }

        var message = new List<byte>(96);
        Put16(message, 0); // nlmsg_len, set below
        Put16(message, 0);
        Put16(message, CtNetlink.MsgCtGet);
        Put16(message, CtNetlink.NlmFRequest | CtNetlink.NlmFDump);
        Put32(message, sequence);
        Put32(message, 0); // nlmsg_pid: the kernel fills in ours
        message.Add(Family); // nfgenmsg: nfgen_family, version NFNETLINK_V0, res_id 0
        message.Add(0);
        Put16(message, 0);
        if (withKernelFilter && StatusMask != 0)
        {
            // ctnetlink_alloc_filter(): both are big-endian u32 (NLA_U32 in ct_nla_policy, read with ntohl).
            Attribute(message, CtNetlink.CtaStatus, BigEndian((uint)(StatusValue & StatusMask)));
            Attribute(message, CtNetlink.CtaStatusMask, BigEndian((uint)StatusMask));
        }

        if (withKernelFilter && ReplyDestination is { } address)
        {
            // ctnetlink_parse_filter(): the flags are host-order u32 (NLA_U32, nla_get_u32); the
            // tuple it applies to comes as CTA_TUPLE_REPLY, parsed for the flagged fields only.
            var flags = new List<byte>();
            Attribute(flags, CtNetlink.CtaFilterReplyFlags, LittleEndian(CtNetlink.CtaFilterFlagIpDst));
            Attribute(message, CtNetlink.CtaFilter | CtNetlink.NlaFNested, [.. flags]);
            var ip = new List<byte>();
            var bytes = new byte[address.IsV4Mapped ? 4 : 16];
            if (address.IsV4Mapped)
            {
                BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)address.Low);
            }
            else
            {
                BinaryPrimitives.WriteUInt64BigEndian(bytes, address.High);
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), address.Low);
            }

            Attribute(ip, address.IsV4Mapped ? CtNetlink.CtaIpV4Dst : CtNetlink.CtaIpV6Dst, bytes);
            var tuple = new List<byte>();
            Attribute(tuple, CtNetlink.CtaTupleIp | CtNetlink.NlaFNested, [.. ip]);
            Attribute(message, CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, [.. tuple]);
        }

        var result = message.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(result, (uint)result.Length);
        return result;
    }

    private static void Attribute(List<byte> to, int type, byte[] payload)
    {
        Put16(to, (ushort)(4 + payload.Length));
        Put16(to, (ushort)type);
        to.AddRange(payload);
        while (to.Count % 4 != 0)
        {
            to.Add(0);
        }
    }

    private static void Put16(List<byte> to, int value)
    {
        to.Add((byte)value);
        to.Add((byte)(value >> 8));
    }

    private static void Put32(List<byte> to, uint value)
    {
        Put16(to, (ushort)value);
        Put16(to, (ushort)(value >> 16));
    }

    private static byte[] BigEndian(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        return b;
    }

    private static byte[] LittleEndian(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return b;
    }
}

/// <summary>
/// The link under <see cref="ConntrackDump"/>: requests out, the kernel's replies in, one datagram
/// per <see cref="Receive"/>. The kernel's is a NETLINK_NETFILTER socket
/// (<see cref="ConntrackDump.OpenSocket"/>); a test gives recorded replies to drive the reader's own
/// logic (fallbacks, refusals, offsets) without a kernel that behaves that way.
/// </summary>
public interface ICtNetlinkTransport : IDisposable
{
    /// <summary>Sends one request; 0 or the errno.</summary>
    int Send(ReadOnlySpan<byte> request);

    /// <summary>Receives one datagram into <paramref name="buffer"/>; its length, 0 at end of stream, or -errno.</summary>
    int Receive(Span<byte> buffer);
}

/// <summary>
/// What a dump delivered: the entries that reached the sink (after the query's conditions) and the
/// bytes received. <see cref="KernelFiltered"/>: the request carried the query's filter attributes
/// and the kernel took it (a kernel older than the attributes may have ignored them; the entries
/// are the same either way, only <see cref="BytesReceived"/> tells).
/// </summary>
public sealed record ConntrackDumpResult(int Entries, long BytesReceived, bool KernelFiltered);

/// <summary>
/// Reads the conntrack table of the calling thread's network namespace through ctnetlink
/// (NETLINK_NETFILTER, IPCTNL_MSG_CT_GET with NLM_F_DUMP), streaming each entry into a sink through
/// <see cref="CtNetlinkParser"/> from one buffer reused for every recv(), or, for a large table,
/// from chunks a receiving thread fills while the calling thread parses (the sink is only ever
/// called on the calling thread). Needs CAP_NET_ADMIN
/// (nfnetlink_rcv_msg() checks it against the namespace's owner): without it, a
/// <see cref="ConntrackRefusedException"/>. Run it on a thread that entered the namespace to
/// read (NamespaceSwitch / NamespaceRunner); the socket belongs to the namespace it was opened in.
/// The overloads taking an <see cref="ICtNetlinkTransport"/> run the same logic over any link.
/// </summary>
public static class ConntrackDump
{
    /// <summary>
    /// The receive buffer: netlink_dump() sizes its skbs by the largest recv() seen, capped near
    /// 32 KiB, so this is room to spare; a datagram cut short by a smaller buffer is refused as a
    /// truncated message, never read as a shorter dump.
    /// </summary>
    public const int BufferBytes = 256 * 1024;

    /// <summary>
    /// Dumps the table into <paramref name="sink"/>, with <paramref name="query"/>'s conditions
    /// (kernel-side where the kernel takes them, always here). Malformed replies and failures in
    /// the middle of the dump are a <see cref="CheckException"/>; a refusal of the whole request is
    /// a <see cref="ConntrackRefusedException"/>.
    /// </summary>
    /// <param name="sink">Where each entry goes, on the calling thread.</param>
    /// <param name="query">The conditions; everything when null.</param>
    /// <param name="buffer">The receive buffer (<see cref="BufferBytes"/>); a new one when null.</param>
    /// <param name="overlap">
    /// Receive on a thread of its own while this one parses (<see cref="OverlapWorthIt"/>): each
    /// recv() is the kernel filling the next datagram, so parsing one overlaps filling the next.
    /// </param>
    public static ConntrackDumpResult Read(IConntrackSink sink, ConntrackQuery? query = null, byte[]? buffer = null, bool overlap = false)
    {
        using var socket = OpenSocket();
        return Read(socket, sink, query, buffer, overlap);
    }

    /// <summary>As <see cref="Read(IConntrackSink, ConntrackQuery?, byte[]?, bool)"/>, over a given link (which the caller disposes).</summary>
    public static ConntrackDumpResult Read(ICtNetlinkTransport socket, IConntrackSink sink, ConntrackQuery? query = null, byte[]? buffer = null, bool overlap = false)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(sink);
        query ??= ConntrackQuery.All;
        buffer ??= GC.AllocateUninitializedArray<byte>(BufferBytes);
        var filtered = new FilteringSink(sink, query);
        if (query.HasKernelFilter)
        {
            // A kernel that knows the filter attributes but not these flags (or a build without
            // them) refuses the request before sending anything: ask again without them.
            var attempt = Run(socket, query.Request(1, withKernelFilter: true), buffer, filtered, overlap, out var refusedWith);
            if (attempt is not null)
            {
                return attempt with { Entries = filtered.Count, KernelFiltered = true };
            }

            if (refusedWith is not (Errno.Einval or Eopnotsupp))
            {
                throw Refused(refusedWith, "conntrack dump");
            }
        }

        var plain = Run(socket, query.Request(2, withKernelFilter: false), buffer, filtered, overlap, out var errno)
            ?? throw Refused(errno, "conntrack dump");
        return plain with { Entries = filtered.Count, KernelFiltered = false };
    }

    /// <summary>
    /// The per-CPU counters (IPCTNL_MSG_CT_GET_STATS_CPU), summed: what /proc/net/stat/nf_conntrack
    /// shows, for kernels built without CONFIG_NF_CONNTRACK_PROCFS. Same privilege as the dump.
    /// </summary>
    public static ConntrackStatistics ReadStatistics(byte[]? buffer = null)
    {
        using var socket = OpenSocket();
        return ReadStatistics(socket, buffer);
    }

    /// <summary>As <see cref="ReadStatistics(byte[]?)"/>, over a given link (which the caller disposes).</summary>
    public static ConntrackStatistics ReadStatistics(ICtNetlinkTransport socket, byte[]? buffer = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        buffer ??= GC.AllocateUninitializedArray<byte>(BufferBytes);
        var request = new byte[CtNetlink.NlmsgHeaderLength + CtNetlink.NfgenmsgLength];
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(4), CtNetlink.MsgCtGetStatsCpu);
        BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(6), CtNetlink.NlmFRequest | CtNetlink.NlmFDump);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), 3);
        Send(socket, request);
        var sum = new ConntrackStatistics();
        long received = 0;
        while (true)
        {
            var n = Receive(socket, buffer);
            var outcome = ConntrackStatistics.ParseCpuStats(buffer.AsSpan(0, n), ref sum, (int)Math.Min(received, int.MaxValue), out var errno);
            received += n;
            switch (outcome)
            {
                case CtNetlinkParser.Outcome.Done:
                    return sum;
                case CtNetlinkParser.Outcome.KernelError when sum.Cpus == 0:
                    throw Refused(errno, "conntrack statistics");
                case CtNetlinkParser.Outcome.KernelError:
                    throw new CheckException($"ctnetlink statistics: the kernel ended the dump with {Errno.Describe(errno)}");
            }
        }
    }

    private const int Eopnotsupp = 95;

    /// <summary>
    /// Whether a dump of about <paramref name="entries"/> entries (the namespace's
    /// nf_conntrack_count) is worth a receiving thread: parsing beside the kernel's filling gains
    /// more than a thread costs (~0.1 ms) only over a few chunks of datagrams (~170 entries each).
    /// </summary>
    public static bool OverlapWorthIt(long entries) => entries >= OverlapEntries;

    /// <summary>About six 32 KiB datagrams of 192-byte entries: below it the thread costs what it saves.</summary>
    private const long OverlapEntries = 1000;

    /// <summary>Sends one request and reads its dump; null with the errno when the kernel refused it before any entry.</summary>
    private static ConntrackDumpResult? Run(ICtNetlinkTransport socket, byte[] request, byte[] buffer, FilteringSink sink, bool overlap, out int refusedWith)
    {
        Send(socket, request);
        var state = new DumpState(sink);
        if (overlap && RunOverlapped(socket, state) is { } done)
        {
            refusedWith = state.RefusedWith;
            return done.Result;
        }

        while (true)
        {
            var n = Receive(socket, buffer);
            if (state.Take(buffer.AsSpan(0, n)) is { } result)
            {
                refusedWith = state.RefusedWith;
                return result.Result;
            }
        }
    }

    /// <summary>
    /// The receiving thread's side of an overlapped dump: recv() on a thread of its own (the
    /// kernel fills each datagram inside that call, netlink_recvmsg() → netlink_dump()), several
    /// datagrams packed into one chunk, at most <see cref="PendingChunks"/> chunks ahead of the
    /// parser; this thread parses. Null where no thread could be started: the caller then
    /// receives here, as without overlap (the request is sent, nothing was received yet).
    /// </summary>
    private static DumpState.Finished? RunOverlapped(ICtNetlinkTransport socket, DumpState state)
    {
        using var chunks = new Chunks();
        var ended = false;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failed = null;
        DumpState.Finished? finished = null;

        (nint Chunk, int Length)? ReceiveChunk()
        {
            failed?.Throw();
            if (ended)
            {
                return null; // never a recv() past the end: it would wait for a dump that ended
            }

            var chunk = chunks.Take();
            var length = 0;
            try
            {
                // Datagrams one after the other (each 4-aligned, as the parser steps), while the
                // rest of the chunk holds any datagram a kernel sends (netlink_dump() caps its skbs
                // at 32 KiB; 64 KiB pages once gave more), and until the dump ends.
                do
                {
                    var n = Receive(socket, Chunks.Span(chunk, length, Chunks.Bytes - length));
                    ended = EndsDump(Chunks.Span(chunk, length, n));
                    length = (length + n + 3) & ~3;
                }
                while (!ended && Chunks.Bytes - length >= ChunkRoom);
            }
            catch (Exception e)
            {
                // What came before the failure is parsed first, as without overlap; then it is rethrown.
                failed = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }

            return (chunk, length);
        }

        // Done, refused or failed, the receiver is joined before the caller closes the socket under
        // it and the chunks are freed.
        if (!ReadAhead.Run(
            "ctnetlink dump",
            PendingChunks,
            ReceiveChunk,
            c => (finished = state.Take(Chunks.Span(c.Chunk, 0, c.Length))) is not null,
            c => chunks.Give(c.Chunk)))
        {
            return null; // no thread: nothing received, the caller receives itself
        }

        return finished ?? throw new CheckException("ctnetlink: the kernel closed the dump early");
    }

    /// <summary>
    /// The chunks of one overlapped dump, outside the GC heap and cycled between the two threads
    /// (at most <see cref="PendingChunks"/> + 2 of them). Managed 256 KiB arrays would be large
    /// objects, each counted against the budget whose end starts a full collection (the pool's
    /// other users and the grouping's growing arrays draw on it too); these are not. Freed once
    /// the receiver is joined; only the pages the kernel wrote are resident.
    /// </summary>
    private sealed unsafe class Chunks : IDisposable
    {
        public const int Bytes = 256 * 1024;

        private readonly ConcurrentQueue<nint> _free = new();
        private readonly List<nint> _all = [];

        public nint Take()
        {
            if (_free.TryDequeue(out var chunk))
            {
                return chunk;
            }

            chunk = (nint)NativeMemory.Alloc(Bytes);
            lock (_all)
            {
                _all.Add(chunk);
            }

            return chunk;
        }

        public void Give(nint chunk) => _free.Enqueue(chunk);

        public static Span<byte> Span(nint chunk, int from, int length) => new((byte*)chunk + from, length);

        public void Dispose()
        {
            lock (_all)
            {
                _all.ForEach(chunk => NativeMemory.Free((void*)chunk));
                _all.Clear();
            }
        }
    }

    /// <summary>Chunks received and not yet parsed: the receiver runs at most this far ahead (memory stays bounded).</summary>
    private const int PendingChunks = 4;

    /// <summary>Another datagram goes into a chunk only while this much of it is free: four times the largest a kernel sends.</summary>
    private const int ChunkRoom = 128 * 1024;

    /// <summary>
    /// Whether a datagram ends the dump, for the receiver that does not parse: an NLMSG_DONE or an
    /// NLMSG_ERROR among its messages, or headers that do not add up (the parser refuses them; no
    /// more is received after such a datagram, so the receiver never waits on a dump that ended).
    /// </summary>
    private static bool EndsDump(ReadOnlySpan<byte> datagram)
    {
        var offset = 0;
        while (offset < datagram.Length)
        {
            var rest = datagram[offset..];
            if (rest.Length < CtNetlink.NlmsgHeaderLength)
            {
                return true;
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(rest[4..]);
            if (length < CtNetlink.NlmsgHeaderLength || length > (uint)rest.Length || type is CtNetlink.NlmsgDone or CtNetlink.NlmsgError)
            {
                return true;
            }

            offset += ((int)length + 3) & ~3;
        }

        return false;
    }

    /// <summary>One dump's progress through its received bytes, the same whichever thread received them.</summary>
    private sealed class DumpState(FilteringSink sink)
    {
        private readonly long _before = sink.Seen;
        private long _received;

        /// <summary>The errno of a refusal before any entry (then <see cref="Finished.Result"/> is null).</summary>
        public int RefusedWith { get; private set; }

        /// <summary>The end of a dump: its result, or null for a refusal of the request.</summary>
        public sealed record Finished(ConntrackDumpResult? Result);

        /// <summary>Parses received bytes; the end of the dump when they hold it, else null.</summary>
        public Finished? Take(ReadOnlySpan<byte> bytes)
        {
            // Offsets in messages are ints: past 2 GiB of dump they stop growing, which only blurs a message.
            var outcome = CtNetlinkParser.Parse(bytes, sink, (int)Math.Min(_received, int.MaxValue), out var errno);
            _received += bytes.Length;
            switch (outcome)
            {
                case CtNetlinkParser.Outcome.Done:
                    return new Finished(new ConntrackDumpResult(0, _received, false));
                case CtNetlinkParser.Outcome.KernelError when sink.Seen == _before:
                    RefusedWith = errno;
                    return new Finished(null);
                case CtNetlinkParser.Outcome.KernelError:
                    // Entries were delivered: what was counted cannot be taken back, so the whole read fails.
                    throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"ctnetlink dump: the kernel ended it with {Errno.Describe(errno)} after {sink.Seen - _before} entries"));
                default:
                    return null;
            }
        }
    }

    /// <summary>
    /// A NETLINK_NETFILTER socket in the calling thread's network namespace; a
    /// <see cref="ConntrackRefusedException"/> (<see cref="ConntrackRefusal.NotAvailable"/>) where the
    /// kernel has no nfnetlink.
    /// </summary>
    public static ICtNetlinkTransport OpenSocket()
    {
        var socket = NetlinkSocket.Open(CtNetlink.NetlinkNetfilter, out var errno);
        if (socket is not null)
        {
            return new SocketTransport(socket);
        }

        if (errno is Errno.EprotoNoSupport or Errno.EafNoSupport)
        {
            throw new ConntrackRefusedException(ConntrackRefusal.NotAvailable, errno, $"conntrack was not read: socket(AF_NETLINK, NETLINK_NETFILTER) failed: {Errno.Describe(errno)}");
        }

        throw new CheckException($"socket(AF_NETLINK, NETLINK_NETFILTER) failed: {Errno.Describe(errno)}");
    }

    private static void Send(ICtNetlinkTransport socket, byte[] request)
    {
        var error = socket.Send(request);
        if (error != 0)
        {
            throw new CheckException($"ctnetlink: sending the request failed: {Errno.Describe(error)}");
        }
    }

    private static int Receive(ICtNetlinkTransport socket, Span<byte> buffer)
    {
        var n = socket.Receive(buffer);
        return n switch
        {
            < 0 => throw new CheckException($"ctnetlink: receiving the dump failed: {Errno.Describe(-n)}"),
            0 => throw new CheckException("ctnetlink: the kernel closed the dump early"),
            _ => n,
        };
    }

    /// <summary>A refusal of the whole request, typed by what the caller can say about it.</summary>
    private static Exception Refused(int errno, string what) => errno switch
    {
        Errno.Eperm or Errno.Eacces => new ConntrackRefusedException(ConntrackRefusal.NeedsCapNetAdmin, errno, $"{what}: NAT tuples were not read (needs CAP_NET_ADMIN): the kernel answered {Errno.Describe(errno)}"),
        // nfnetlink without the ctnetlink subsystem (not loaded and not loadable here) or a sandbox.
        Errno.Enoent or Errno.Einval or Eopnotsupp or Errno.EprotoNoSupport => new ConntrackRefusedException(ConntrackRefusal.NotAvailable, errno, $"{what}: ctnetlink is not available: the kernel answered {Errno.Describe(errno)}"),
        _ => new CheckException($"{what}: the kernel refused the request: {Errno.Describe(errno)}"),
    };

    private sealed class SocketTransport(NetlinkSocket socket) : ICtNetlinkTransport
    {
        public int Send(ReadOnlySpan<byte> request) => socket.Send(request);

        public int Receive(Span<byte> buffer) => socket.Receive(buffer);

        public void Dispose() => socket.Dispose();
    }

    /// <summary>Applies the query's conditions in user space (the kernel may not have), counting what passes.</summary>
    private sealed class FilteringSink(IConntrackSink inner, ConntrackQuery query) : IConntrackSink
    {
        public int Count { get; private set; }

        /// <summary>Every entry parsed, passed or not: whether the kernel sent anything before an error.</summary>
        public long Seen { get; private set; }

        public void Add(in ConntrackEntry entry)
        {
            Seen++;
            if (query.Matches(entry))
            {
                Count++;
                inner.Add(entry);
            }
        }
    }
}
