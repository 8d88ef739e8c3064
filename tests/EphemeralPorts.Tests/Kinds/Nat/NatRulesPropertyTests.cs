using CsCheck;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// Random truncations and bit flips of the captured dumps: the parsers give rules or a one-line
/// <see cref="CheckException"/>, never another exception and never a hang. CsCheck draws the
/// cases from a fixed seed; a failure prints the seed of the case to replay.
/// </summary>
public class NatRulesPropertyTests
{
    private static readonly byte[] Nft = File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "nft-rules.bin"));
    private static readonly byte[] Info4 = File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "legacy-ipv4-info.bin"));
    private static readonly byte[] Entries4 = File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "legacy-ipv4-entries.bin"));
    private static readonly byte[] Info6 = File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "legacy-ipv6-info.bin"));
    private static readonly byte[] Entries6 = File.ReadAllBytes(Path.Combine(Repo.Fixtures, "natrules", "legacy-ipv6-entries.bin"));

    /// <summary>Bit flips at positions given as fractions of the length, then a cut at a fraction (1: none).</summary>
    private static readonly Gen<(double[] Flips, int[] Bits, double Cut)> ACorruption =
        Gen.Select(Gen.Double[0, 1].Array[0, 6], Gen.Int[0, 7].Array[6], Gen.OneOf(Gen.Double[0, 1], Gen.Const(1.0)));

    private static byte[] Corrupt(byte[] data, (double[] Flips, int[] Bits, double Cut) c)
    {
        var copy = (byte[])data.Clone();
        for (var i = 0; i < c.Flips.Length; i++)
        {
            var at = Math.Min((int)(c.Flips[i] * copy.Length), copy.Length - 1);
            copy[at] ^= (byte)(1 << c.Bits[i]);
        }

        return copy[..(int)(c.Cut * copy.Length)];
    }

    private static void RulesOrCheckException(Action parse)
    {
        try
        {
            parse();
        }
        catch (CheckException e)
        {
            e.Message.ShouldNotContain('\n');
            e.Message.Length.ShouldBeLessThan(400);
        }
    }

    [Fact]
    public void Corrupted_nft_dumps_give_rules_or_a_check_exception() =>
        ACorruption.Sample(c => RulesOrCheckException(() =>
        {
            var parser = NftRulesParser.ParseAll(Corrupt(Nft, c));
            foreach (var rule in parser.Rules)
            {
                _ = rule.Describe();
            }
        }), seed: "0N0XIzNsQ0O2", iter: 3000, threads: 1);

    [Fact]
    public void Corrupted_legacy_tables_give_rules_or_a_check_exception() =>
        Gen.Select(ACorruption, Gen.Bool, Gen.Bool).Sample(c => RulesOrCheckException(() =>
        {
            var (corruption, ipv6, corruptInfo) = c;
            var info = ipv6 ? Info6 : Info4;
            var entries = ipv6 ? Entries6 : Entries4;
            var rules = corruptInfo
                ? XtTablesParser.Parse(Corrupt(info, corruption), entries, ipv6 ? NatFamily.IPv6 : NatFamily.IPv4)
                : XtTablesParser.Parse(info, Corrupt(entries, corruption), ipv6 ? NatFamily.IPv6 : NatFamily.IPv4);
            foreach (var rule in rules)
            {
                _ = rule.Describe();
            }
        }), seed: "0N0XIzNsQ0O2", iter: 3000, threads: 1);

    [Fact]
    public void Every_truncation_of_the_nft_dump_is_refused_or_ends_early_never_misread()
    {
        // A dump cut at a message boundary is "not done"; cut inside a message it is malformed.
        for (var cut = 0; cut < Nft.Length; cut++)
        {
            var parser = new NftRulesParser();
            try
            {
                parser.Feed(Nft.AsSpan(0, cut));
                parser.Done.ShouldBeFalse($"cut at {cut}");
            }
            catch (CheckException)
            {
            }
        }
    }
}
