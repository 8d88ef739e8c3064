using System.Buffers.Binary;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The reader's own logic over a recorded link: the captured dump replayed as the kernel sent it,
/// and the kernel behaviours this host's kernel does not show (refusing the filter attributes, an
/// error in the middle of a dump, a closed socket).
/// </summary>
public class ConntrackReaderTests
{
    private static readonly string Dir = Path.Combine(Repo.Fixtures, "conntrack");

    /// <summary>Answers each request with the next script of datagrams; records the requests.</summary>
    private sealed class RecordedLink(params List<byte[]>[] answers) : ICtNetlinkTransport
    {
        private readonly Queue<List<byte[]>> _answers = new(answers);
        private readonly Queue<byte[]> _pending = new();

        public List<byte[]> Requests { get; } = [];

        /// <summary>The threads that called recv().</summary>
        public HashSet<int> Receivers { get; } = [];

        /// <summary>recv() calls with nothing left to give: on a kernel's socket such a call would wait for ever.</summary>
        public int Overreads { get; private set; }

        public int Send(ReadOnlySpan<byte> request)
        {
            Requests.Add(request.ToArray());
            _answers.Dequeue().ForEach(_pending.Enqueue);
            return 0;
        }

        public int Receive(Span<byte> buffer)
        {
            Receivers.Add(Environment.CurrentManagedThreadId);
            if (!_pending.TryDequeue(out var datagram))
            {
                Overreads++;
                return 0;
            }

            datagram.CopyTo(buffer);
            return datagram.Length;
        }

        public void Dispose()
        {
        }
    }

    /// <summary>The captured dump as datagrams of a few messages each, as recv() would give them.</summary>
    private static List<byte[]> Datagrams(int messagesEach = 3)
    {
        var dump = File.ReadAllBytes(Path.Combine(Dir, "ct-dump.bin"));
        var datagrams = new List<byte[]>();
        var offset = 0;
        while (offset < dump.Length)
        {
            var start = offset;
            for (var i = 0; i < messagesEach && offset < dump.Length; i++)
            {
                offset += ((int)BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(offset)) + 3) & ~3;
            }

            datagrams.Add(dump[start..offset]);
        }

        return datagrams;
    }

    private static byte[] Error(int errno)
    {
        var m = new byte[36];
        BinaryPrimitives.WriteUInt32LittleEndian(m, 36);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(4), CtNetlink.NlmsgError);
        BinaryPrimitives.WriteInt32LittleEndian(m.AsSpan(16), -errno);
        return m;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_replayed_dump_gives_the_captured_entries_and_its_byte_count(bool overlap)
    {
        var link = new RecordedLink(Datagrams());
        var sink = new ListSink();
        var result = ConntrackDump.Read(link, sink, overlap: overlap);
        result.Entries.ShouldBe(16);
        result.BytesReceived.ShouldBe(new FileInfo(Path.Combine(Dir, "ct-dump.bin")).Length);
        result.KernelFiltered.ShouldBeFalse();
        sink.Entries.Count.ShouldBe(16);

        // The request: IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, nfgenmsg for AF_UNSPEC, nothing else.
        var request = link.Requests.Single();
        request.Length.ShouldBe(20);
        BinaryPrimitives.ReadUInt16LittleEndian(request.AsSpan(4)).ShouldBe(CtNetlink.MsgCtGet);
        BinaryPrimitives.ReadUInt16LittleEndian(request.AsSpan(6)).ShouldBe((ushort)0x301);
        request[16].ShouldBe(CtNetlink.AfUnspec);
    }

    [Theory]
    [InlineData(22, false)] // EINVAL
    [InlineData(95, false)] // EOPNOTSUPP: flag bits the kernel does not know (ctnetlink_parse_filter)
    [InlineData(22, true)]
    [InlineData(95, true)]
    public void A_kernel_that_refuses_the_filter_is_asked_again_without_it_and_the_filter_holds_in_user_space(int errno, bool overlap)
    {
        var link = new RecordedLink([Error(errno)], Datagrams());
        var sink = new ListSink();
        var query = new ConntrackQuery { StatusMask = ConntrackStatus.SourceNat, StatusValue = ConntrackStatus.SourceNat };
        var result = ConntrackDump.Read(link, sink, query, overlap: overlap);
        link.Overreads.ShouldBe(0);

        link.Requests.Count.ShouldBe(2);
        link.Requests[0].Length.ShouldBeGreaterThan(20, "the first request carries CTA_STATUS and CTA_STATUS_MASK");
        link.Requests[1].Length.ShouldBe(20, "the second asks for everything");
        result.KernelFiltered.ShouldBeFalse();
        sink.Entries.ShouldAllBe(e => e.IsSourceNat);
        sink.Entries.Count.ShouldBe(15, "all 16 captured entries but the router's own connection");
        result.Entries.ShouldBe(15);
    }

    [Fact]
    public void A_reply_destination_filter_is_sent_as_CTA_FILTER_with_the_address_in_the_reply_tuple()
    {
        var link = new RecordedLink([.. Datagrams()]);
        var query = new ConntrackQuery { Family = CtNetlink.AfInet, ReplyDestination = CtAddress.Parse("203.0.113.1") };
        var sink = new ListSink();
        ConntrackDump.Read(link, sink, query).KernelFiltered.ShouldBeTrue();
        sink.Entries.ShouldAllBe(e => !e.IsIPv6 && e.NatAddress == CtAddress.Parse("203.0.113.1"));
        sink.Entries.Count.ShouldBe(15, "all but the IPv6 entry");

        // nfgenmsg AF_INET; CTA_FILTER { CTA_FILTER_REPLY_FLAGS = CTA_IP_DST }; CTA_TUPLE_REPLY { CTA_TUPLE_IP { CTA_IP_V4_DST 203.0.113.1 } }.
        var request = link.Requests.Single();
        request[16].ShouldBe(CtNetlink.AfInet);
        request[20..].ShouldBe(new byte[]
        {
            12, 0, 25, 0x80, /* */ 8, 0, 2, 0, 2, 0, 0, 0,
            16, 0, 2, 0x80, /* */ 12, 0, 1, 0x80, /* */ 8, 0, 2, 0, 203, 0, 113, 1,
        });
        BinaryPrimitives.ReadUInt32LittleEndian(request).ShouldBe((uint)request.Length);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Refusals_of_the_whole_request_are_typed_by_what_the_caller_can_say(bool overlap)
    {
        var eperm = Should.Throw<ConntrackRefusedException>(() => ConntrackDump.Read(new RecordedLink([Error(1)]), new ListSink(), overlap: overlap));
        eperm.Reason.ShouldBe(ConntrackRefusal.NeedsCapNetAdmin);
        var missing = Should.Throw<ConntrackRefusedException>(() => ConntrackDump.Read(new RecordedLink([Error(95)]), new ListSink(), overlap: overlap));
        missing.Reason.ShouldBe(ConntrackRefusal.NotAvailable);
        missing.Message.ShouldStartWith("conntrack dump: ctnetlink is not available: the kernel answered");

        // A filtered request refused for want of privilege is not retried: the answer would be the same.
        var link = new RecordedLink([Error(1)], Datagrams());
        Should.Throw<ConntrackRefusedException>(() => ConntrackDump.Read(link, new ListSink(), new ConntrackQuery { StatusMask = ConntrackStatus.Assured, StatusValue = ConntrackStatus.Assured }, overlap: overlap))
            .Reason.ShouldBe(ConntrackRefusal.NeedsCapNetAdmin);
        link.Requests.Count.ShouldBe(1);

        Should.Throw<CheckException>(() => ConntrackDump.Read(new RecordedLink([Error(12)]), new ListSink(), overlap: overlap))
            .Message.ShouldStartWith("conntrack dump: the kernel refused the request: ");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_error_after_entries_fails_the_whole_read(bool overlap)
    {
        var datagrams = Datagrams();
        var link = new RecordedLink([datagrams[0], Error(105)]);
        Should.Throw<CheckException>(() => ConntrackDump.Read(link, new ListSink(), overlap: overlap))
            .Message.ShouldBe($"ctnetlink dump: the kernel ended it with {EphemeralPorts.Native.Errno.Describe(105)} after 3 entries");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_link_closed_before_the_end_fails_the_read_and_offsets_count_over_datagrams(bool overlap)
    {
        var datagrams = Datagrams();
        Should.Throw<CheckException>(() => ConntrackDump.Read(new RecordedLink(datagrams[..2]), new ListSink(), overlap: overlap))
            .Message.ShouldBe("ctnetlink: the kernel closed the dump early");

        // A damaged message in the second datagram is named by its place in the whole dump.
        var second = datagrams[1].ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(second.AsSpan(4), 0x0777);
        var offset = datagrams[0].Length;
        var damaged = new RecordedLink([datagrams[0], second, .. datagrams[2..]]);
        Should.Throw<CheckException>(() => ConntrackDump.Read(damaged, new ListSink(), overlap: overlap))
            .Message.ShouldBe($"ctnetlink dump malformed: message type 0x0777, not a conntrack entry (0x0100) at byte {offset + 4} (message at byte {offset})");
    }

    [Fact]
    public void An_overlapped_dump_receives_on_a_thread_of_its_own_and_never_past_the_end()
    {
        // Many small datagrams: several chunks, so the receiver waits for the parser's room too.
        var datagrams = Datagrams(messagesEach: 1);
        var many = Enumerable.Repeat(datagrams[..^1], 40).SelectMany(d => d).Append(datagrams[^1]).ToList();
        var link = new RecordedLink(many);
        var sink = new ListSink();
        var result = ConntrackDump.Read(link, sink, overlap: true);
        result.Entries.ShouldBe(40 * 16);
        sink.Entries.Count.ShouldBe(40 * 16);
        link.Receivers.ShouldNotContain(Environment.CurrentManagedThreadId);
        link.Overreads.ShouldBe(0, "the receiver stops at NLMSG_DONE: on a kernel's socket another recv() would wait for ever");
        sink.Entries.Take(16).ShouldBe(sink.Entries.Skip(16 * 39), "the datagrams are parsed in the order they came");

        var serial = new RecordedLink(many);
        ConntrackDump.Read(serial, new ListSink());
        serial.Receivers.ShouldBe([Environment.CurrentManagedThreadId]);
    }

    [Fact]
    public void An_overlapped_dump_stops_receiving_after_a_datagram_whose_headers_do_not_add_up()
    {
        // The second datagram's first message claims more bytes than it has: the parser refuses
        // it, and the receiver, which cannot find the dump's end in it, receives nothing more.
        var datagrams = Datagrams();
        var second = datagrams[1].ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(second, (uint)second.Length + 4);
        var link = new RecordedLink([datagrams[0], second]);
        Should.Throw<CheckException>(() => ConntrackDump.Read(link, new ListSink(), overlap: true))
            .Message.ShouldStartWith("ctnetlink dump malformed: netlink message of");
        link.Overreads.ShouldBe(0);
    }

    [Fact]
    public void The_replayed_statistics_sum_over_the_cpus()
    {
        var stats = ConntrackDump.ReadStatistics(new RecordedLink([File.ReadAllBytes(Path.Combine(Dir, "ct-stats-cpu.bin"))]));
        stats.Cpus.ShouldBe(2);
        stats.InsertFailed.ShouldBe(2ul);
        Should.Throw<ConntrackRefusedException>(() => ConntrackDump.ReadStatistics(new RecordedLink([Error(1)])))
            .Reason.ShouldBe(ConntrackRefusal.NeedsCapNetAdmin);
    }
}
