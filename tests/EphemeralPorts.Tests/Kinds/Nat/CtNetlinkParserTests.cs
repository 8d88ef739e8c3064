using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;
using CsCheck;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>Entries collected for a test (a real caller streams them; tests look at them all).</summary>
internal sealed class ListSink : IConntrackSink
{
    public List<ConntrackEntry> Entries { get; } = [];

    public void Add(in ConntrackEntry entry) => Entries.Add(entry);
}

/// <summary>
/// <see cref="CtNetlinkParser"/> on a real ctnetlink dump of a router's namespace, captured by
/// tests/fixtures/conntrack/capture.py (see the README there), held against what
/// <c>conntrack -L -o extended</c> printed at the same moment; and on that dump corrupted in each way
/// the parser must refuse, by hand and at random.
/// </summary>
public partial class CtNetlinkParserTests
{
    private static readonly string Dir = Path.Combine(Repo.Fixtures, "conntrack");

    private static byte[] Dump() => File.ReadAllBytes(Path.Combine(Dir, "ct-dump.bin"));

    private static List<ConntrackEntry> ParseAll(byte[] dump)
    {
        var sink = new ListSink();
        CtNetlinkParser.ParseDump(dump, sink).ShouldBe(sink.Entries.Count);
        return sink.Entries;
    }

    /// <summary>One line of conntrack -L -o extended, in the entry's terms (what the line shows of it).</summary>
    private static string Describe(ConntrackEntry e) => string.Create(CultureInfo.InvariantCulture,
        $"{(e.IsIPv6 ? "ipv6" : "ipv4")} {e.Protocol} {e.TcpState?.ToString() ?? "-"} client={e.Client}:{e.ClientPort} reply={e.Destination}:{e.DestinationPort}->{e.NatAddress}:{e.NatPort} assured={e.IsAssured} zone={e.Zone}");

    private static readonly Dictionary<string, TcpConntrackState> States = new(StringComparer.Ordinal)
    {
        ["ESTABLISHED"] = TcpConntrackState.Established,
        ["TIME_WAIT"] = TcpConntrackState.TimeWait,
        ["CLOSE_WAIT"] = TcpConntrackState.CloseWait,
        ["SYN_SENT"] = TcpConntrackState.SynSent,
        ["CLOSE"] = TcpConntrackState.Close,
    };

    [GeneratedRegex(@"^(?<family>ipv4|ipv6)\s+\d+\s+\S+\s+(?<proto>\d+)\s+\d+\s+(?<state>[A-Z_]+\s+)?src=(?<osrc>\S+) dst=\S+ (?:sport=(?<osport>\d+) dport=\d+|type=\d+ code=\d+ id=(?<oid>\d+)) src=(?<rsrc>\S+) dst=(?<rdst>\S+) (?:sport=(?<rsport>\d+) dport=(?<rdport>\d+)|type=\d+ code=\d+ id=(?<rid>\d+))")]
    private static partial Regex ListingLine();

    /// <summary>What conntrack(8) printed, in the same terms (its text is the oracle, read independently of the parser).</summary>
    private static List<string> Listing()
    {
        var lines = File.ReadAllLines(Path.Combine(Dir, "conntrack-L-extended.txt")).Where(l => l.Length > 0).ToList();
        lines.Count.ShouldBeGreaterThan(0);
        return [.. lines.Select(line =>
        {
            var m = ListingLine().Match(line);
            m.Success.ShouldBeTrue(line);
            var icmp = m.Groups["oid"].Success;
            var state = m.Groups["state"].Success ? States[m.Groups["state"].Value.Trim()].ToString() : "-";
            var zone = Regex.Match(line, @" zone=(\d+)") is { Success: true } z ? z.Groups[1].Value : "0";
            var clientPort = icmp ? m.Groups["oid"].Value : m.Groups["osport"].Value;
            var destinationPort = icmp ? "0" : m.Groups["rsport"].Value;
            var natPort = icmp ? m.Groups["rid"].Value : m.Groups["rdport"].Value;
            return $"{m.Groups["family"].Value} {m.Groups["proto"].Value} {state} client={m.Groups["osrc"].Value}:{clientPort} reply={m.Groups["rsrc"].Value}:{destinationPort}->{m.Groups["rdst"].Value}:{natPort} assured={(line.Contains("[ASSURED]", StringComparison.Ordinal) ? "True" : "False")} zone={zone}";
        })];
    }

    [Fact]
    public void The_captured_dump_gives_exactly_the_entries_conntrack_listed()
    {
        var entries = ParseAll(Dump());
        entries.Select(Describe).Order(StringComparer.Ordinal).ToList()
            .ShouldBe(Listing().Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public void The_full_key_of_the_capture_holds_all_ten_ports_of_its_range_and_the_routers_own_connection()
    {
        var entries = ParseAll(Dump());
        var key = new NatKey(CtAddress.Parse("203.0.113.1"), CtAddress.Parse("203.0.113.2"), 8080, CtNetlink.IpProtoTcp, 0);
        var ofKey = entries.Where(e => e.Key == key).ToList();
        ofKey.Count.ShouldBe(11, "ten client connections fill 40000-40009, and the router's own one holds a port too");

        var translated = ofKey.Where(e => e.IsSourceNat).ToList();
        translated.Select(e => (int)e.NatPort).Order().ShouldBe(Enumerable.Range(40000, 10));
        translated.ShouldAllBe(e => e.Client == CtAddress.Parse("198.51.100.2") && e.IsAssured);
        translated.Count(e => e.TcpState == TcpConntrackState.TimeWait).ShouldBe(1);
        translated.Count(e => e.TcpState == TcpConntrackState.Established).ShouldBe(9);

        // nf_nat made a null binding for the router's own connection: no SRC_NAT, same key.
        var local = ofKey.Single(e => !e.IsSourceNat);
        local.Client.ShouldBe(CtAddress.Parse("203.0.113.1"));
        local.ClientPort.ShouldBe(local.NatPort);
        (local.Status & ConntrackStatus.SourceNatDone).ShouldBe(ConntrackStatus.SourceNatDone);
    }

    [Fact]
    public void The_capture_holds_udp_a_zone_icmp_and_ipv6_each_with_its_own_key()
    {
        var entries = ParseAll(Dump());
        entries.Count.ShouldBe(16);
        var udp = entries.Where(e => e.Protocol == CtNetlink.IpProtoUdp).ToList();
        udp.Count.ShouldBe(3);
        udp.ShouldAllBe(e => e.TcpState == null && e.IsSourceNat && e.NatPort >= 40000 && e.NatPort <= 40009);
        udp.Single(e => e.DestinationPort == 5354).Zone.ShouldBe((ushort)7);
        udp.Where(e => e.DestinationPort == 5353).ShouldAllBe(e => e.Zone == 0);

        var icmp = entries.Single(e => e.Protocol == CtNetlink.IpProtoIcmp);
        icmp.DestinationPort.ShouldBe((ushort)0);
        icmp.NatPort.ShouldBe(icmp.ClientPort, "the kernel kept the echo id");

        var v6 = entries.Single(e => e.IsIPv6);
        v6.Key.ShouldBe(new NatKey(CtAddress.Parse("2001:db8:2::1"), CtAddress.Parse("2001:db8:2::2"), 8080, CtNetlink.IpProtoTcp, 0));
        v6.Client.ToString().ShouldBe("2001:db8:1::2");
        v6.IsSourceNat.ShouldBeTrue("masquerade");
    }

    [Fact]
    public void Entries_arrive_buffer_by_buffer_with_the_same_result()
    {
        // The reader feeds one recv() at a time: split the dump at every message boundary.
        var dump = Dump();
        var whole = ParseAll(dump);
        var sink = new ListSink();
        var offset = 0;
        var outcome = CtNetlinkParser.Outcome.More;
        while (outcome == CtNetlinkParser.Outcome.More)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(offset));
            outcome = CtNetlinkParser.Parse(dump.AsSpan(offset, length), sink, offset, out _);
            offset += (length + 3) & ~3;
        }

        outcome.ShouldBe(CtNetlinkParser.Outcome.Done);
        offset.ShouldBe(dump.Length);
        sink.Entries.ShouldBe(whole);
    }

    [Fact]
    public void The_entry_is_compact()
    {
        System.Runtime.CompilerServices.Unsafe.SizeOf<ConntrackEntry>().ShouldBe(64);
    }

    // ---- malformed input: the kind of damage and where it is, one line ----

    private static byte[] Edited(Action<byte[]> edit)
    {
        var dump = Dump();
        edit(dump);
        return dump;
    }

    private static string Refusal(byte[] dump)
    {
        var e = Should.Throw<CheckException>(() => CtNetlinkParser.ParseDump(dump, new ListSink()));
        e.Message.ShouldNotContain("\n");
        return e.Message;
    }

    // The first message of the capture: 212 bytes; nfgenmsg at 16; CTA_TUPLE_ORIG at 20 (its
    // CTA_TUPLE_IP at 24, CTA_IP_V4_SRC at 28, CTA_TUPLE_PROTO at 44), CTA_TUPLE_REPLY at 72,
    // CTA_STATUS at 124. The layout is asserted first, so a recapture that moves it fails here.
    [Fact]
    public void The_first_message_has_the_layout_the_corruption_tests_rely_on()
    {
        var dump = Dump();
        BinaryPrimitives.ReadUInt32LittleEndian(dump).ShouldBe(212u);
        BinaryPrimitives.ReadUInt16LittleEndian(dump.AsSpan(4)).ShouldBe(CtNetlink.MsgCtNew);
        dump[16].ShouldBe(CtNetlink.AfInet);
        BinaryPrimitives.ReadUInt16LittleEndian(dump.AsSpan(22)).ShouldBe((ushort)(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested));
        BinaryPrimitives.ReadUInt16LittleEndian(dump.AsSpan(74)).ShouldBe((ushort)(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested));
        BinaryPrimitives.ReadUInt16LittleEndian(dump.AsSpan(126)).ShouldBe(CtNetlink.CtaStatus);
        // NLMSG_DONE carries an int (0): 20 bytes.
        BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(dump.Length - 20)).ShouldBe(20u);
        BinaryPrimitives.ReadUInt16LittleEndian(dump.AsSpan(dump.Length - 20 + 4)).ShouldBe(CtNetlink.NlmsgDone);
    }

    [Fact]
    public void A_dump_cut_inside_a_message_is_refused_at_that_message() =>
        Refusal(Dump()[..100]).ShouldBe("ctnetlink dump malformed: netlink message of 212 bytes where 100 remain at byte 0 (message at byte 0)");

    [Fact]
    public void A_dump_cut_inside_a_header_is_refused() =>
        Refusal(Dump()[..220]).ShouldBe("ctnetlink dump malformed: 8 bytes left where a netlink header (16) should be at byte 212 (message at byte 212)");

    [Fact]
    public void An_absurd_message_length_is_refused_not_cast_negative() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt32LittleEndian(d, uint.MaxValue)))
            .ShouldStartWith("ctnetlink dump malformed: netlink message of 4294967295 bytes where");

    [Fact]
    public void A_message_length_under_its_header_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt32LittleEndian(d, 8)))
            .ShouldStartWith("ctnetlink dump malformed: netlink message of 8 bytes where");

    [Fact]
    public void An_attribute_running_past_its_message_is_refused_where_it_starts() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(20), 0xFFF0)))
            .ShouldBe("ctnetlink dump malformed: attribute of 65520 bytes where 192 remain at byte 20 (message at byte 0)");

    [Fact]
    public void A_nested_attribute_running_past_its_nest_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(24), 200)))
            .ShouldBe("ctnetlink dump malformed: attribute of 200 bytes where 48 remain at byte 24 (message at byte 0)");

    [Fact]
    public void An_attribute_shorter_than_its_header_is_refused_instead_of_looping() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(124), 0)))
            .ShouldBe("ctnetlink dump malformed: attribute of 0 bytes where 88 remain at byte 124 (message at byte 0)");

    [Fact]
    public void An_entry_without_its_reply_tuple_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(74), 0x8000 | 0x3F00)))
            .ShouldBe("ctnetlink dump malformed: conntrack entry without CTA_TUPLE_REPLY at byte 16 (message at byte 0)");

    [Fact]
    public void An_entry_without_its_status_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(126), 0x3F00)))
            .ShouldBe("ctnetlink dump malformed: conntrack entry without CTA_STATUS at byte 16 (message at byte 0)");

    [Fact]
    public void A_tuple_without_its_source_address_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(30), 0x3F00)))
            .ShouldBe("ctnetlink dump malformed: CTA_TUPLE_ORIG without its source address at byte 24 (message at byte 0)");

    [Fact]
    public void A_status_of_the_wrong_size_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(124), 6)))
            .ShouldBe("ctnetlink dump malformed: CTA_STATUS of 2 bytes, not 4 at byte 128 (message at byte 0)");

    [Fact]
    public void An_ipv6_entry_with_ipv4_addresses_is_refused() =>
        Refusal(Edited(d => d[16] = CtNetlink.AfInet6))
            .ShouldBe("ctnetlink dump malformed: CTA_TUPLE_ORIG address of 4 bytes (type 1) in an IPv6 entry at byte 32 (message at byte 0)");

    [Fact]
    public void An_entry_of_an_unknown_family_is_refused() =>
        Refusal(Edited(d => d[16] = 7))
            .ShouldBe("ctnetlink dump malformed: conntrack entry of address family 7 at byte 16 (message at byte 0)");

    [Fact]
    public void A_message_of_another_type_is_refused() =>
        Refusal(Edited(d => BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(4), 0x0102)))
            .ShouldBe("ctnetlink dump malformed: message type 0x0102, not a conntrack entry (0x0100) at byte 4 (message at byte 0)");

    [Fact]
    public void A_dump_without_its_done_message_is_refused()
    {
        var dump = Dump();
        Refusal(dump[..^20]).ShouldBe($"ctnetlink dump malformed: the dump ends without NLMSG_DONE at byte {dump.Length - 20} (message at byte {dump.Length - 20})");
    }

    [Fact]
    public void Bytes_after_the_done_message_are_refused()
    {
        var dump = Dump();
        Refusal([.. dump, .. dump[..16]]).ShouldBe($"ctnetlink dump malformed: 16 bytes after NLMSG_DONE at byte {dump.Length} (message at byte {dump.Length})");
    }

    private static byte[] ErrorMessage(int error, int payloadBytes = 20)
    {
        var message = new byte[16 + payloadBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), CtNetlink.NlmsgError);
        if (payloadBytes >= 4)
        {
            BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(16), error);
        }

        return message;
    }

    [Fact]
    public void The_kernels_error_is_an_outcome_with_its_errno_and_a_refusal_of_a_stored_dump()
    {
        var refused = ErrorMessage(-1);
        CtNetlinkParser.Parse(refused, new ListSink(), 0, out var errno).ShouldBe(CtNetlinkParser.Outcome.KernelError);
        errno.ShouldBe(1);
        Should.Throw<CheckException>(() => CtNetlinkParser.ParseDump(refused, new ListSink()))
            .Message.ShouldBe("ctnetlink dump: the kernel ended it with errno 1 after 0 entries");

        // An error after entries: they were delivered, and the dump still fails as a whole.
        var dump = Dump();
        var midway = new ListSink();
        Should.Throw<CheckException>(() => CtNetlinkParser.ParseDump([.. dump[..212], .. ErrorMessage(-105)], midway))
            .Message.ShouldBe("ctnetlink dump: the kernel ended it with errno 105 after 1 entries");
    }

    [Fact]
    public void An_error_message_without_its_errno_or_with_a_positive_one_is_refused()
    {
        Refusal(ErrorMessage(0, payloadBytes: 2)).ShouldBe("ctnetlink dump malformed: NLMSG_ERROR of 2 bytes, without its errno at byte 0 (message at byte 0)");
        Refusal(ErrorMessage(5)).ShouldBe("ctnetlink dump malformed: NLMSG_ERROR with error 5, not a negative errno at byte 16 (message at byte 0)");
    }

    [Fact]
    public void Offsets_in_refusals_count_from_the_start_of_the_whole_dump()
    {
        // The reader passes where each buffer starts: the second message of a dump read in two.
        var dump = Dump();
        var second = dump[212..];
        BinaryPrimitives.WriteUInt16LittleEndian(second.AsSpan(4), 0x0777);
        Should.Throw<CheckException>(() => CtNetlinkParser.Parse(second, new ListSink(), 212, out _))
            .Message.ShouldBe("ctnetlink dump malformed: message type 0x0777, not a conntrack entry (0x0100) at byte 216 (message at byte 212)");
    }

    /// <summary>
    /// Random truncations and bit flips of the capture: the parser gives entries or a one-line
    /// CheckException, never another exception, and ends (a fixed seed: the same cases every run).
    /// </summary>
    [Fact]
    public void Any_truncation_or_bit_flips_give_entries_or_a_one_line_refusal()
    {
        var dump = Dump();
        Gen.Select(Gen.Int[0, dump.Length], Gen.Int[0, (dump.Length * 8) - 1].Array[0, 12])
            .Sample((cut, flips) =>
            {
                var data = dump[..cut];
                foreach (var bit in flips.Where(b => b / 8 < data.Length))
                {
                    data[bit / 8] ^= (byte)(1 << (bit % 8));
                }

                try
                {
                    var sink = new ListSink();
                    CtNetlinkParser.ParseDump(data, sink);
                    // What the model relies on: an IPv4 entry's addresses are all IPv4.
                    sink.Entries.Where(e => !e.IsIPv6).ShouldAllBe(e => e.NatAddress.IsV4Mapped && e.Client.IsV4Mapped && e.Destination.IsV4Mapped);
                }
                catch (CheckException e)
                {
                    e.Message.ShouldNotContain("\n");
                    e.Message.ShouldStartWith("ctnetlink dump");
                }
            }, seed: "0N0XIzNsQ0O2", iter: 3000, threads: 1);
    }
}

/// <summary>
/// What the capture does not hold, built the way ctnetlink_fill_info() writes it: a zone of the
/// reply direction only, ICMPv6, entries typed IPCTNL_MSG_CT_GET, NLMSG_NOOP between entries.
/// </summary>
public class CtNetlinkShapeTests
{
    private static byte[] Attr(int type, params byte[][] payload)
    {
        var body = payload.SelectMany(p => p).ToArray();
        var a = new byte[(4 + body.Length + 3) & ~3];
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)(4 + body.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(2), (ushort)type);
        body.CopyTo(a, 4);
        return a;
    }

    private static byte[] Be16(int v) => [(byte)(v >> 8), (byte)v];

    private static byte[] Tuple(string src, string dst, byte protocol, byte[][] proto, int? zone = null)
    {
        var s = System.Net.IPAddress.Parse(src).GetAddressBytes();
        var d = System.Net.IPAddress.Parse(dst).GetAddressBytes();
        var v6 = s.Length == 16;
        var parts = new List<byte[]>
        {
            Attr(CtNetlink.CtaTupleIp | CtNetlink.NlaFNested, Attr(v6 ? CtNetlink.CtaIpV6Src : CtNetlink.CtaIpV4Src, s), Attr(v6 ? CtNetlink.CtaIpV6Dst : CtNetlink.CtaIpV4Dst, d)),
            Attr(CtNetlink.CtaTupleProto | CtNetlink.NlaFNested, [Attr(CtNetlink.CtaProtoNum, [protocol]), .. proto]),
        };
        if (zone is { } z)
        {
            parts.Add(Attr(CtNetlink.CtaTupleZone, Be16(z)));
        }

        return [.. parts.SelectMany(p => p)];
    }

    private static byte[] Message(ushort type, byte family, params byte[][] attributes)
    {
        var body = new byte[] { family, 0, 0, 0 }.Concat(attributes.SelectMany(a => a)).ToArray();
        var m = new byte[16 + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)m.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(m.AsSpan(4), type);
        body.CopyTo(m, 16);
        return m;
    }

    private static readonly byte[] Done = [20, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    private static byte[] Status(ConntrackStatus s) => Attr(CtNetlink.CtaStatus, [(byte)((uint)s >> 24), (byte)((uint)s >> 16), (byte)((uint)s >> 8), (byte)s]);

    [Fact]
    public void A_tuple_in_the_kernels_own_shape_reads_as_the_same_tuple_in_any_other()
    {
        // The usual IPv4 shape is read in place; the same tuple with its addresses in the other
        // order, or without NLA_F_NESTED on its nests (kernels before 5.2's nla_nest_start()), or
        // with a zone, is walked attribute by attribute: the same entry each time.
        var ports = new[] { Attr(CtNetlink.CtaProtoSrcPort, Be16(40001)), Attr(CtNetlink.CtaProtoDstPort, Be16(443)) };
        var reply = new[] { Attr(CtNetlink.CtaProtoSrcPort, Be16(443)), Attr(CtNetlink.CtaProtoDstPort, Be16(61001)) };
        var client = System.Net.IPAddress.Parse("10.0.0.2").GetAddressBytes();
        var server = System.Net.IPAddress.Parse("192.0.2.9").GetAddressBytes();
        var swapped = new byte[][]
        {
            Attr(CtNetlink.CtaTupleIp | CtNetlink.NlaFNested, Attr(CtNetlink.CtaIpV4Dst, server), Attr(CtNetlink.CtaIpV4Src, client)),
            Attr(CtNetlink.CtaTupleProto | CtNetlink.NlaFNested, [Attr(CtNetlink.CtaProtoNum, [6]), .. ports]),
        }.SelectMany(a => a).ToArray();
        var usual = Tuple("10.0.0.2", "192.0.2.9", 6, ports);
        var flagless = usual.ToArray();
        flagless[3] &= 0x3F; // CTA_TUPLE_IP's type byte: NLA_F_NESTED off
        flagless[23] &= 0x3F; // CTA_TUPLE_PROTO's
        usual.Length.ShouldBe(48, "the shape read in place");

        ConntrackEntry Read(byte[] orig, int? zone = null)
        {
            var entry = Message(CtNetlink.MsgCtNew, CtNetlink.AfInet,
                Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, orig),
                Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("192.0.2.9", "192.0.2.1", 6, reply, zone)),
                Status(ConntrackStatus.SourceNat | ConntrackStatus.Confirmed));
            var sink = new ListSink();
            CtNetlinkParser.ParseDump([.. entry, .. Done], sink).ShouldBe(1);
            return sink.Entries.Single();
        }

        var expected = Read(usual);
        expected.Client.ShouldBe(CtAddress.Parse("10.0.0.2"));
        expected.ClientPort.ShouldBe((ushort)40001);
        expected.Key.ShouldBe(new NatKey(CtAddress.Parse("192.0.2.1"), CtAddress.Parse("192.0.2.9"), 443, 6, 0));
        expected.NatPort.ShouldBe((ushort)61001);
        Read(swapped).ShouldBe(expected);
        Read(flagless).ShouldBe(expected);
        Read(usual, zone: 7).Key.ShouldBe(expected.Key with { Zone = 7 });
    }

    [Fact]
    public void A_zone_of_the_reply_direction_only_comes_from_the_reply_tuple()
    {
        var ports = new[] { Attr(CtNetlink.CtaProtoSrcPort, Be16(5000)), Attr(CtNetlink.CtaProtoDstPort, Be16(53)) };
        var reply = new[] { Attr(CtNetlink.CtaProtoSrcPort, Be16(53)), Attr(CtNetlink.CtaProtoDstPort, Be16(61000)) };
        var entry = Message(CtNetlink.MsgCtGet, CtNetlink.AfInet,
            Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, Tuple("10.0.0.2", "192.0.2.9", 17, ports, zone: 3)),
            Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("192.0.2.9", "192.0.2.1", 17, reply, zone: 4)),
            Status(ConntrackStatus.SourceNat | ConntrackStatus.Confirmed));
        var noop = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(noop, 16);
        BinaryPrimitives.WriteUInt16LittleEndian(noop.AsSpan(4), CtNetlink.NlmsgNoop);
        var sink = new ListSink();
        CtNetlinkParser.ParseDump([.. entry, .. noop, .. Done], sink).ShouldBe(1);
        var e = sink.Entries.Single();
        e.Key.ShouldBe(new NatKey(CtAddress.Parse("192.0.2.1"), CtAddress.Parse("192.0.2.9"), 53, 17, 4));
        e.NatPort.ShouldBe((ushort)61000);
        e.ClientPort.ShouldBe((ushort)5000);
        e.TcpState.ShouldBeNull();
        e.IsSourceNat.ShouldBeTrue();
        e.IsAssured.ShouldBeFalse();

        // CTA_ZONE holds for both directions and wins over a tuple's own.
        var both = Message(CtNetlink.MsgCtNew, CtNetlink.AfInet,
            Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, Tuple("10.0.0.2", "192.0.2.9", 17, ports)),
            Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("192.0.2.9", "192.0.2.1", 17, reply, zone: 4)),
            Attr(CtNetlink.CtaZone, Be16(9)),
            Status(ConntrackStatus.None));
        var zoned = new ListSink();
        CtNetlinkParser.ParseDump([.. both, .. Done], zoned);
        zoned.Entries.Single().Zone.ShouldBe((ushort)9);
    }

    [Fact]
    public void An_icmpv6_entry_uses_its_echo_id_as_the_port()
    {
        var id = new[] { Attr(CtNetlink.CtaProtoIcmpv6Id, Be16(777)), Attr(8, [128]), Attr(9, [0]) };
        var entry = Message(CtNetlink.MsgCtNew, CtNetlink.AfInet6,
            Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, Tuple("2001:db8:1::2", "2001:db8:2::2", 58, id)),
            Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("2001:db8:2::2", "2001:db8:2::1", 58, id)),
            Status(ConntrackStatus.SourceNat));
        var sink = new ListSink();
        CtNetlinkParser.ParseDump([.. entry, .. Done], sink);
        var e = sink.Entries.Single();
        (e.IsIPv6, e.Protocol, e.NatPort, e.ClientPort, e.DestinationPort).ShouldBe((true, (byte)58, (ushort)777, (ushort)777, (ushort)0));
        e.NatAddress.ToString().ShouldBe("2001:db8:2::1");
    }

    [Fact]
    public void A_tcp_tuple_without_ports_is_refused()
    {
        var entry = Message(CtNetlink.MsgCtNew, CtNetlink.AfInet,
            Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, Tuple("10.0.0.2", "192.0.2.9", 6, [Attr(CtNetlink.CtaProtoSrcPort, Be16(1))])),
            Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("192.0.2.9", "192.0.2.1", 6, [])),
            Status(ConntrackStatus.None));
        Should.Throw<CheckException>(() => CtNetlinkParser.ParseDump([.. entry, .. Done], new ListSink()))
            .Message.ShouldBe("ctnetlink dump malformed: CTA_TUPLE_ORIG of protocol 6 without its ports at byte 24 (message at byte 0)");
    }

    [Fact]
    public void Tuples_that_differ_in_protocol_are_refused()
    {
        var ports = new[] { Attr(CtNetlink.CtaProtoSrcPort, Be16(1)), Attr(CtNetlink.CtaProtoDstPort, Be16(2)) };
        var entry = Message(CtNetlink.MsgCtNew, CtNetlink.AfInet,
            Attr(CtNetlink.CtaTupleOrig | CtNetlink.NlaFNested, Tuple("10.0.0.2", "192.0.2.9", 6, ports)),
            Attr(CtNetlink.CtaTupleReply | CtNetlink.NlaFNested, Tuple("192.0.2.9", "192.0.2.1", 17, ports)),
            Status(ConntrackStatus.None));
        Should.Throw<CheckException>(() => CtNetlinkParser.ParseDump([.. entry, .. Done], new ListSink()))
            .Message.ShouldBe("ctnetlink dump malformed: conntrack entry whose tuples differ in protocol (6, 17) at byte 16 (message at byte 0)");
    }
}
