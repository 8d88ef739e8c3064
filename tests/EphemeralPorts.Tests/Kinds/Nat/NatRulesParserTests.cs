using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;
using static EphemeralPorts.Tests.Kinds.Nat.NftBytes;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The rule parsers on the kernel's own bytes (tests/fixtures/natrules: captured by capture.sh from
/// rules made with nft, iptables-nft and iptables-legacy; provenance.txt says where and how) and on
/// hand-made messages for what no capture holds.
/// </summary>
public class NatRulesParserTests
{
    private static string Fixture(string name) => Path.Combine(Repo.Fixtures, "natrules", name);

    private static string[] Expected(string name) => File.ReadAllLines(Fixture(name)).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void The_captured_nft_dump_gives_the_native_and_iptables_nft_rules_that_were_installed()
    {
        var parser = NftRulesParser.ParseAll(File.ReadAllBytes(Fixture("nft-rules.bin")));

        parser.Error.ShouldBe(0);
        parser.Interrupted.ShouldBeFalse();
        parser.Rules.Select(r => r.Describe()).ShouldBe(Expected("expected-nft.txt"));
    }

    [Fact]
    public void The_captured_nft_dump_reads_the_xtables_targets_of_iptables_nft_from_their_structs()
    {
        var rules = NftRulesParser.ParseAll(File.ReadAllBytes(Fixture("nft-rules.bin"))).Rules;

        // -j SNAT --to-source [fd77::2]:20100-20109 --random-fully through ip6tables-nft: SNAT revision 1, struct nf_nat_range.
        var v6 = rules.Single(r => r.Origin == "nft table ip6 nat chain POSTROUTING");
        v6.Addresses!.Value.Low.ShouldBe(CtAddress.Parse("fd77::2"));
        v6.Ports.ShouldBe(new NatPortRange(20100, 20109));
        v6.Flags.ShouldBe(NatRangeFlags.FullyRandom);
        v6.Protocol.ShouldBe(17);
    }

    [Fact]
    public void The_captured_legacy_tables_give_their_snat_and_masquerade_targets_with_their_chains()
    {
        XtTablesParser.Parse(File.ReadAllBytes(Fixture("legacy-ipv4-info.bin")), File.ReadAllBytes(Fixture("legacy-ipv4-entries.bin")), NatFamily.IPv4)
            .Select(r => r.Describe()).ShouldBe(Expected("expected-legacy-ipv4.txt"));
        XtTablesParser.Parse(File.ReadAllBytes(Fixture("legacy-ipv6-info.bin")), File.ReadAllBytes(Fixture("legacy-ipv6-entries.bin")), NatFamily.IPv6)
            .Select(r => r.Describe()).ShouldBe(Expected("expected-legacy-ipv6.txt"));
    }

    [Fact]
    public void Ports_loaded_by_a_map_lookup_are_unreadable_not_taken_from_an_earlier_immediate()
    {
        // immediate reg1 = 40000, then a lookup (not modelled) that may write reg1, then snat reading reg1.
        var dump = Dump(Rule(2,
            Immediate(1, Port(40000)),
            Expr("lookup", Str(1, "map0"), U32(2, 1), U32(3, 1)),
            Expr("nat", U32(1, 0), U32(2, 2), U32(5, 1))));

        var rule = NftRulesParser.ParseAll(dump).Rules.ShouldHaveSingleItem();
        rule.Unreadable.ShouldNotBeNull();
        rule.Ports.ShouldBeNull();
    }

    [Fact]
    public void A_port_in_a_32_bit_register_is_read_from_its_word()
    {
        // NFT_REG32_02 (10) is word 6, inside NFT_REG_1 (words 4-7).
        var dump = Dump(Rule(2, Immediate(10, Port(1000)), Immediate(11, Port(1009)), Expr("masq", U32(1, 2), U32(2, 10), U32(3, 11))));

        NftRulesParser.ParseAll(dump).Rules.ShouldHaveSingleItem().Ports.ShouldBe(new NatPortRange(1000, 1009));
    }

    [Fact]
    public void A_range_given_upside_down_is_taken_in_either_order_as_the_kernel_does()
    {
        // nf_nat_l4proto_unique_tuple() swaps max < min; port 0 is a port to it.
        var dump = Dump(Rule(2, Immediate(1, Port(9)), Immediate(2, Port(0)), Expr("masq", U32(2, 1), U32(3, 2))));

        NftRulesParser.ParseAll(dump).Rules.ShouldHaveSingleItem().Ports.ShouldBe(new NatPortRange(0, 9));
    }

    [Fact]
    public void Without_a_maximum_register_the_range_is_the_minimum_alone()
    {
        // nft_masq_init(): NFTA_MASQ_REG_PROTO_MAX absent means the minimum's register.
        var dump = Dump(Rule(2, Immediate(1, Port(5000)), Expr("masq", U32(2, 1))));

        NftRulesParser.ParseAll(dump).Rules.ShouldHaveSingleItem().Ports.ShouldBe(new NatPortRange(5000, 5000));
    }

    [Fact]
    public void Unknown_expressions_dnat_and_other_families_give_no_rule()
    {
        var dump = Dump(
            Rule(2, Expr("someday", U32(1, 7)), Expr("nat", U32(1, 1), U32(2, 2))),
            Rule(7, Expr("masq")));

        var parser = NftRulesParser.ParseAll(dump);
        parser.Rules.ShouldBeEmpty();
        parser.Done.ShouldBeTrue();
    }

    [Fact]
    public void A_negated_protocol_match_leaves_the_rule_open_to_every_protocol()
    {
        var dump = Dump(Rule(2,
            Expr("meta", U32(2, 16), U32(1, 1)),
            Expr("cmp", U32(1, 1), U32(2, 1), Nest(3, Attr(1, [6]))),
            Expr("masq")));

        NftRulesParser.ParseAll(dump).Rules.ShouldHaveSingleItem().Protocol.ShouldBeNull();
    }

    [Fact]
    public void An_interrupted_dump_and_a_kernel_error_are_told_apart_from_a_complete_one()
    {
        NftRulesParser.ParseAll([.. Message((10 << 8) | 6, 0x12, 2, Str(1, "t")), .. Done()]).Interrupted.ShouldBeTrue();
        var refused = NftRulesParser.ParseAll(Error(1));
        refused.Error.ShouldBe(1);
        refused.Rules.ShouldBeEmpty();
    }

    public static TheoryData<string, byte[], string> Malformed => new()
    {
        { "a header cut short", Dump(Rule(2, Expr("masq")))[..10], "less than a netlink header" },
        { "a message longer than the buffer", Rule(2, Expr("masq"))[..^4], "netlink message of" },
        { "a truncated expression", Dump(Rule(2, Expr("masq", U32(1, 2))[..^2])), "attribute" },
        { "a register value of 2 bytes", Dump(Rule(2, Expr("nat", U32(1, 0), Attr(2, [0, 2])))), "NFTA_NAT_FAMILY of 2 bytes" },
        { "a register that does not exist", Dump(Rule(2, Expr("masq", U32(2, 99)))), "register 99 does not exist" },
        { "an immediate beyond the registers", Dump(Rule(2, Immediate(23, new byte[16]), Expr("masq"))), "do not fit register 23" },
        { "an expression without a name", Dump(Rule(2, Nest(1, Nest(2)))), "without NFTA_EXPR_NAME" },
        { "a truncated attribute in a rule without NAT", Dump(Rule(2, Expr("counter", U32(1, 0)[..6]))), "attribute" },
        { "a dump without its end", Rule(2, Expr("masq")), "without NLMSG_DONE" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_nft_dumps_are_one_line_refusals_that_say_what_and_where(string what, byte[] dump, string message)
    {
        var e = Should.Throw<CheckException>(() => NftRulesParser.ParseAll(dump), what);
        e.Message.ShouldContain(message, Case.Sensitive, what);
        e.Message.ShouldStartWith("nft rule dump:", Case.Sensitive, what);
        e.Message.ShouldNotContain('\n');
    }

    [Fact]
    public void Malformed_legacy_tables_are_one_line_refusals()
    {
        var info = File.ReadAllBytes(Fixture("legacy-ipv4-info.bin"));
        var entries = File.ReadAllBytes(Fixture("legacy-ipv4-entries.bin"));

        Should.Throw<CheckException>(() => XtTablesParser.Parse(info, entries[..^8], NatFamily.IPv4)).Message.ShouldContain("bytes of entries");
        Should.Throw<CheckException>(() => XtTablesParser.Parse(info[..40], entries, NatFamily.IPv4)).Message.ShouldContain("struct ipt_getinfo");

        // next_offset 0 would walk the same entry for ever: refused.
        var looping = (byte[])entries.Clone();
        looping[90] = 0;
        looping[91] = 0;
        Should.Throw<CheckException>(() => XtTablesParser.Parse(info, looping, NatFamily.IPv4)).Message.ShouldContain("next_offset 0");
    }

    [Fact]
    public void A_target_revision_the_reader_does_not_know_is_an_unreadable_rule_not_an_error()
    {
        var rule = XtNatTarget.Parse("SNAT", 3, NatFamily.IPv4, new byte[48], 6, null, "x");

        rule.Unreadable.ShouldNotBeNull();
        rule.Ports.ShouldBeNull();
    }

    [Fact]
    public void A_compat_range_with_more_than_one_range_is_refused_as_the_kernel_does()
    {
        var data = new byte[24];
        data[0] = 2;

        Should.Throw<CheckException>(() => XtNatTarget.Parse("MASQUERADE", 0, NatFamily.IPv4, data, null, null, "x")).Message.ShouldContain("rangesize 2");
    }
}
