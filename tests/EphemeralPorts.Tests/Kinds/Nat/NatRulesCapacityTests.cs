using CsCheck;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>The capacity in force for a NAT key: which rules may apply, the smallest range, the class default, no rule.</summary>
public class NatRulesCapacityTests
{
    private const byte Tcp = 6;
    private const byte Udp = 17;
    private static readonly CtAddress Nat = CtAddress.Parse("10.77.0.1");

    private static NatRule Masq(NatPortRange? ports, int? protocol = null, NatFamily family = NatFamily.IPv4, string origin = "m") =>
        new(family, NatRuleKind.Masquerade, null, ports, NatRangeFlags.None, protocol, null, origin);

    private static NatRule Snat(string low, string high, NatPortRange? ports, string origin = "s") =>
        new(NatFamily.IPv4, NatRuleKind.Snat, new NatAddressRange(CtAddress.Parse(low), CtAddress.Parse(high)), ports, NatRangeFlags.None, null, null, origin);

    [Theory]
    [InlineData(0, 1, 511)]
    [InlineData(511, 1, 511)]
    [InlineData(512, 600, 1023)]
    [InlineData(1023, 600, 1023)]
    [InlineData(1024, 1024, 65535)]
    [InlineData(65535, 1024, 65535)]
    public void A_rule_without_ports_gives_the_class_default_of_each_original_port_as_nf_nat_does(int port, int low, int high) =>
        NatRulesCapacity.For([Masq(null)], Tcp, Nat, port).Ports.ShouldBe(new NatPortRange(low, high));

    [Fact]
    public void Of_several_rules_that_may_apply_the_smallest_range_is_in_force()
    {
        var rules = new[] { Masq(new NatPortRange(30000, 30999), origin: "big"), Masq(new NatPortRange(40000, 40009), origin: "small"), Masq(null, origin: "none") };

        var capacity = NatRulesCapacity.For(rules, Tcp, Nat, 40000);

        capacity.Source.ShouldBe(NatCapacitySource.RuleRange);
        capacity.Ports.ShouldBe(new NatPortRange(40000, 40009));
        capacity.Rule!.Origin.ShouldBe("small");
        capacity.Candidates.Count.ShouldBe(3);
        capacity.Why.ShouldContain("smallest of 3");
    }

    [Fact]
    public void A_rule_without_ports_gives_the_class_default_of_the_original_port()
    {
        var capacity = NatRulesCapacity.For([Masq(null)], Tcp, Nat, 700);

        capacity.Source.ShouldBe(NatCapacitySource.ClassDefault);
        capacity.Ports.ShouldBe(new NatPortRange(600, 1023));
    }

    [Fact]
    public void A_class_default_smaller_than_a_rules_range_is_the_smaller_one()
    {
        // A client port below 512 without --to-ports searches 1-511: smaller than a 1000-port rule's range.
        var capacity = NatRulesCapacity.For([Masq(new NatPortRange(30000, 30999)), Masq(null, origin: "default")], Tcp, Nat, 100);

        capacity.Source.ShouldBe(NatCapacitySource.ClassDefault);
        capacity.Ports.ShouldBe(new NatPortRange(1, 511));
    }

    [Fact]
    public void Rules_of_another_protocol_family_or_address_range_do_not_apply()
    {
        var rules = new[]
        {
            Masq(new NatPortRange(1, 10), protocol: Udp, origin: "udp"),
            Masq(new NatPortRange(1, 10), family: NatFamily.IPv6, origin: "v6"),
            Snat("10.77.0.5", "10.77.0.9", new NatPortRange(1, 10), origin: "other addresses"),
            Snat("10.77.0.1", "10.77.0.3", new NatPortRange(2000, 2099), origin: "ours"),
        };

        var capacity = NatRulesCapacity.For(rules, Tcp, Nat, 40000);

        capacity.Candidates.Select(r => r.Origin).ShouldBe(["ours"]);
        capacity.Ports.ShouldBe(new NatPortRange(2000, 2099));
    }

    [Theory]
    [InlineData("10.77.0.255", "10.77.1.1", "10.77.0.255", true)]
    [InlineData("10.77.0.255", "10.77.1.1", "10.77.1.0", true)]
    [InlineData("10.77.0.255", "10.77.1.1", "10.77.1.1", true)]
    [InlineData("10.77.0.255", "10.77.1.1", "10.77.0.254", false)]
    [InlineData("10.77.0.255", "10.77.1.1", "10.77.1.2", false)]
    [InlineData("10.77.0.255", "10.77.1.1", "::ffff:10.77.1.0", true)]
    [InlineData("10.77.0.255", "10.77.1.1", "fd77::1:0", false)]
    [InlineData("fd77::ffff", "fd77::1:1", "fd77::1:0", true)]
    [InlineData("fd77::ffff", "fd77::1:1", "fd77::1:2", false)]
    public void A_rule_to_an_address_range_gives_its_ports_to_every_address_inside_it_and_to_no_other(string low, string high, string address, bool inside)
    {
        // nf_nat hashes each client to one address of the range (find_best_ips_proto) and searches that
        // address's ports: every address inside is a key with the rule's whole port range. A rule to
        // another single address, with fewer ports, ahead of it, must not be taken for it.
        var family = CtAddress.Parse(low).IsV4Mapped ? NatFamily.IPv4 : NatFamily.IPv6;
        var range = new NatRule(family, NatRuleKind.Snat, new NatAddressRange(CtAddress.Parse(low), CtAddress.Parse(high)), new NatPortRange(40000, 40009), NatRangeFlags.None, Tcp, null, "range");
        var other = CtAddress.Parse(family == NatFamily.IPv4 ? "10.77.9.9" : "fd77::9:9");
        var decoy = new NatRule(family, NatRuleKind.Snat, new NatAddressRange(other, other), new NatPortRange(50000, 50004), NatRangeFlags.None, Tcp, null, "decoy");

        var capacity = NatRulesCapacity.For([decoy, range], Tcp, CtAddress.Parse(address), 45000);

        if (inside)
        {
            capacity.Source.ShouldBe(NatCapacitySource.RuleRange);
            capacity.Ports.ShouldBe(new NatPortRange(40000, 40009));
            capacity.Candidates.Select(r => r.Origin).ShouldBe(["range"]);
        }
        else
        {
            capacity.Source.ShouldBe(NatCapacitySource.NoRuleSeen);
            capacity.Candidates.ShouldBeEmpty();
        }
    }

    [Fact]
    public void A_rule_with_an_unmatched_protocol_or_any_family_applies()
    {
        var capacity = NatRulesCapacity.For([Masq(new NatPortRange(5000, 5099), protocol: null, family: NatFamily.Any)], Udp, CtAddress.Parse("fd77::1"), 40000);

        capacity.Source.ShouldBe(NatCapacitySource.RuleRange);
        capacity.Ports.ShouldBe(new NatPortRange(5000, 5099));
    }

    [Fact]
    public void No_rule_that_can_apply_is_said_and_the_class_default_given()
    {
        var capacity = NatRulesCapacity.For([Masq(new NatPortRange(1, 10), protocol: Udp)], Tcp, Nat, 40000);

        capacity.Source.ShouldBe(NatCapacitySource.NoRuleSeen);
        capacity.Ports.ShouldBe(new NatPortRange(1024, 65535));
        capacity.Rule.ShouldBeNull();
        capacity.Why.ShouldContain("no source-NAT rule seen");
    }

    [Fact]
    public void An_unreadable_range_that_may_apply_makes_the_capacity_unknown_never_the_default()
    {
        var unreadable = Masq(null, origin: "map") with { Unreadable = "the ports come from a map" };

        var capacity = NatRulesCapacity.For([Masq(new NatPortRange(30000, 30999)), unreadable], Tcp, Nat, 40000);

        capacity.Source.ShouldBe(NatCapacitySource.Unknown);
        capacity.Rule!.Origin.ShouldBe("map");
        capacity.Ports.ShouldBe(new NatPortRange(30000, 30999));
        capacity.Why.ShouldContain("could not be read");
    }

    [Fact]
    public void The_captured_rules_give_the_ranges_installed_for_each_key()
    {
        var rules = NftRulesParser.ParseAll(File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "nft-rules.bin"))).Rules;

        // TCP to 10.77.0.1: the snat 40000-40009, masquerade 30000-30009 and the port-less rules may apply: 10 ports.
        NatRulesCapacity.For(rules, Tcp, Nat, 45000).Ports!.Value.Size.ShouldBe(10);
        // Through the kind's own key: the same.
        NatRulesCapacity.For(rules, new NatKey(Nat, CtAddress.Parse("192.0.2.7"), 443, Tcp, 0), 45000).Ports!.Value.Size.ShouldBe(10);
        // UDP from IPv4: masquerade 50000-50099 random, and the port-less masquerades.
        NatRulesCapacity.For(rules, Udp, Nat, 45000).Ports.ShouldBe(new NatPortRange(50000, 50099));
        // UDP over IPv6: the ip6tables-nft SNAT to fd77::2 20100-20109.
        NatRulesCapacity.For(rules, Udp, CtAddress.Parse("fd77::2"), 45000).Ports.ShouldBe(new NatPortRange(20100, 20109));
    }
}

/// <summary>The capacity function on random rule sets: never larger than any rule that may apply, never from one that may not.</summary>
public class NatRulesCapacityPropertyTests
{
    private static readonly CtAddress[] Addresses = [CtAddress.Parse("10.0.0.1"), CtAddress.Parse("10.0.0.9"), CtAddress.Parse("fd00::1")];

    private static readonly Gen<NatRule> ARule =
        Gen.Select(
            Gen.Int[0, 2], Gen.Int[0, 2], Gen.Int[1, 65535], Gen.Int[0, 2000], Gen.Bool, Gen.Int[0, 5],
            (family, protocol, low, width, snat, unreadable) =>
            {
                NatPortRange? ports = width == 0 ? null : new NatPortRange(low, Math.Min(65535, low + width));
                var addresses = snat && family != 2 ? new NatAddressRange(Addresses[0], Addresses[0]) : (NatAddressRange?)null;
                return new NatRule((NatFamily)family, snat ? NatRuleKind.Snat : NatRuleKind.Masquerade, family == 2 ? null : addresses, ports, NatRangeFlags.None,
                    protocol == 0 ? null : protocol == 1 ? 6 : 17, null, "r") { Unreadable = unreadable == 0 ? "map" : null };
            });

    [Fact]
    public void The_capacity_is_the_smallest_range_that_may_apply_and_unknown_when_one_is_unreadable() =>
        Gen.Select(ARule.Array[0, 6], Gen.Int[0, 2], Gen.OneOfConst(6, 17), Gen.Int[0, 65535]).Sample(c =>
        {
            var (rules, address, protocol, originalPort) = c;
            var nat = Addresses[address];
            var capacity = NatRulesCapacity.For(rules, protocol, nat, originalPort);
            var applicable = rules.Where(r => NatRulesCapacity.MayApply(r, protocol, nat)).ToList();

            capacity.Candidates.ShouldBe(applicable);
            if (applicable.Count == 0)
            {
                capacity.Source.ShouldBe(NatCapacitySource.NoRuleSeen);
                capacity.Ports.ShouldBe(NatPortRange.ClassDefault(originalPort));
                return;
            }

            if (applicable.Any(r => r.Unreadable is not null))
            {
                capacity.Source.ShouldBe(NatCapacitySource.Unknown);
                return;
            }

            var sizes = applicable.Select(r => (r.Ports ?? NatPortRange.ClassDefault(originalPort)).Size).ToList();
            capacity.Ports!.Value.Size.ShouldBe(sizes.Min());
            applicable.ShouldContain(capacity.Rule!);
        }, seed: "0N0XIzNsQ0O2", iter: 2000, threads: 1);
}
