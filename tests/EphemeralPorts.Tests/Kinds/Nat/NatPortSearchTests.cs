using System.Diagnostics;
using CsCheck;
using EphemeralPorts.Kinds.Nat;
using Xunit.Abstractions;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// NatPortSearch against <see cref="KernelLoop"/>, a line-by-line transcription of the search loop of
/// <c>nf_nat_l4proto_unique_tuple</c> (net/netfilter/nf_nat_core.c, 6.5+), run for every one of the
/// 65,536 start offsets: the fast computation must give the same integers.
/// </summary>
public class NatPortSearchTests(ITestOutputHelper output)
{
    /// <summary>
    /// How many of the 65,536 offsets make one window of <paramref name="attempts"/> candidates find
    /// nothing, as the kernel's loop walks it: a <c>u16 off</c> that wraps, <c>min + off % range_size</c>,
    /// and from 6.5 <c>nf_nat_used_tuple_harder(tuple, ct, attempts - i)</c>, which may evict a soft
    /// entry when <c>attempts - i &lt;= NF_NAT_HARDER_THRESH</c>.
    /// </summary>
    internal static long KernelLoop(NatPortSearch s, int attempts, SoftPorts soft)
    {
        var min = s.Range.Low;
        var rangeSize = s.Range.Size;
        long failing = 0;
        for (var start = 0; start < 65536; start++)
        {
            var off = (ushort)start;
            var found = false;
            for (var i = 0; i < attempts; i++, off++)
            {
                var port = min + (off % rangeSize);
                var evicts = s.IsSoft(port) && (soft == SoftPorts.Free || (soft == SoftPorts.Evictable && attempts - i <= 32));
                if (!s.IsHeld(port) || evicts)
                {
                    found = true;
                    break;
                }
            }

            if (!found)
            {
                failing++;
            }
        }

        return failing;
    }

    /// <summary>The kernel loop over every window of the search, as many as the fast path reports.</summary>
    private static List<long> KernelWindows(NatPortSearch s, SoftPorts soft)
    {
        var counts = new List<long>();
        foreach (var window in NatPortSearch.Windows(s.Range.Size))
        {
            var failing = KernelLoop(s, window, soft);
            counts.Add(failing);
            if (failing == 0)
            {
                break;
            }
        }

        return counts;
    }

    private static NatPortSearch Search(int low, int high, IEnumerable<int> held, IEnumerable<int>? soft = null)
    {
        var s = new NatPortSearch(new NatPortRange(low, high));
        foreach (var port in held)
        {
            s.Hold(port).ShouldBeTrue();
        }

        foreach (var port in soft ?? [])
        {
            s.Hold(port, soft: true).ShouldBeTrue();
        }

        return s;
    }

    private static void MatchesKernel(NatPortSearch s)
    {
        foreach (var soft in new[] { SoftPorts.Used, SoftPorts.Evictable, SoftPorts.Free })
        {
            var expected = KernelWindows(s, soft);
            s.FailingOffsets(soft).ShouldBe(expected, $"{soft}, range {s.Range}, {s.Held} held, {s.Soft} soft");
        }
    }

    [Theory]
    [InlineData(1, new[] { 1 })]
    [InlineData(10, new[] { 10 })]
    [InlineData(16, new[] { 16 })]
    [InlineData(128, new[] { 128 })]
    [InlineData(129, new[] { 128, 64, 32, 16, 8 })]
    [InlineData(1000, new[] { 128, 64, 32, 16, 8 })]
    [InlineData(64512, new[] { 128, 64, 32, 16, 8 })]
    [InlineData(65536, new[] { 128, 64, 32, 16, 8 })]
    public void Windows_follow_the_attempts_arithmetic(int rangeSize, int[] windows) =>
        NatPortSearch.Windows(rangeSize).ShouldBe(windows);

    [Theory]
    [InlineData(0, 1, 511)]
    [InlineData(1, 1, 511)]
    [InlineData(511, 1, 511)]
    [InlineData(512, 600, 1023)]
    [InlineData(599, 600, 1023)]
    [InlineData(1023, 600, 1023)]
    [InlineData(1024, 1024, 65535)]
    [InlineData(40000, 1024, 65535)]
    [InlineData(65535, 1024, 65535)]
    public void The_class_default_goes_by_the_original_port(int port, int low, int high)
    {
        var range = NatPortRange.ClassDefault(port);
        range.ShouldBe(new NatPortRange(low, high));
        range.ToString().ShouldBe($"{low}-{high}");
    }

    [Fact]
    public void The_default_range_holds_64512_ports() => NatPortRange.ClassDefault(33000).Size.ShouldBe(64512);

    [Theory]
    [InlineData(-1, 10)]
    [InlineData(10, 65536)]
    [InlineData(70000, 1)]
    public void A_range_outside_the_ports_is_refused(int low, int high) =>
        Should.Throw<ArgumentOutOfRangeException>(() => new NatPortRange(low, high)).Message.ShouldContain("not a NAT port range");

    [Fact]
    public void A_bad_original_port_is_refused() =>
        Should.Throw<ArgumentOutOfRangeException>(() => NatPortRange.ClassDefault(65536));

    [Fact]
    public void Ends_in_either_order_make_the_same_range_as_the_kernel_swaps_them() =>
        new NatPortRange(2000, 1000).ShouldBe(new NatPortRange(1000, 2000));

    [Fact]
    public void Holding_counts_each_port_once_and_a_hard_holder_wins()
    {
        var s = new NatPortSearch(new NatPortRange(100, 109));
        s.Hold(99).ShouldBeFalse();
        s.Hold(110).ShouldBeFalse();
        s.Hold(100).ShouldBeTrue();
        s.Hold(100).ShouldBeTrue();
        s.Hold(101, soft: true);
        s.Hold(102, soft: true);
        s.Hold(102);            // a hard entry on the same port: not evictable any more
        s.Hold(100, soft: true); // a soft entry beside a hard one changes nothing
        (s.Held, s.Soft, s.Free).ShouldBe((3, 1, 7));
        s.IsSoft(101).ShouldBeTrue();
        s.IsSoft(102).ShouldBeFalse();
        s.IsSoft(100).ShouldBeFalse();
        s.IsHeld(103).ShouldBeFalse();
        s.IsHeld(99).ShouldBeFalse();
    }

    [Fact]
    public void A_flow_whose_own_port_is_in_range_and_free_keeps_it_unless_the_rule_randomises()
    {
        // 100-249 held, 250-299 free; 350 is out of the range.
        var s = Search(100, 299, Enumerable.Range(100, 150));
        var search = s.FailureProbability();
        search.ShouldBeGreaterThan(0);
        s.FailureProbability(originalPort: 250, randomFully: false).ShouldBe(0);        // kept
        s.FailureProbability(originalPort: 250, randomFully: true).ShouldBe(search);    // random-fully: always a search
        s.FailureProbability(originalPort: 150, randomFully: false).ShouldBe(search);   // its port is taken
        s.FailureProbability(originalPort: 350, randomFully: false).ShouldBe(search);   // out of range

        // A soft holder still blocks the kept port: that check does not evict.
        s.Hold(260, soft: true);
        s.FailureProbability(originalPort: 260, randomFully: false, softPorts: SoftPorts.Free).ShouldBe(s.FailureProbability(SoftPorts.Free));
    }

    [Fact]
    public void A_rule_without_ports_keeps_a_free_port_even_outside_its_class_default()
    {
        // Port 550 searches 600-1023 on a clash, but is kept as it is when free (seen in nat.py classes).
        var range = NatPortRange.ClassDefault(550);
        range.Contains(550).ShouldBeFalse();
        var s = Search(range.Low, range.High, Enumerable.Range(range.Low, range.Size));
        s.FailureProbability().ShouldBe(1.0);
        s.FailureProbability(originalPort: 550, randomFully: false, portsInRule: false).ShouldBe(0);
        s.FailureProbability(originalPort: 550, randomFully: false, portsInRule: true).ShouldBe(1.0);
        s.FailureProbability(originalPort: 550, randomFully: true, portsInRule: false).ShouldBe(1.0);
    }

    [Fact]
    public void A_large_range_keeps_a_short_list_until_a_key_holds_many_ports()
    {
        // Across the change from list to bitsets: duplicates, soft turned hard, soft beside hard.
        var range = NatPortRange.ClassDefault(40000);
        var s = new NatPortSearch(range);
        var random = new Random(11);
        var expected = new Dictionary<int, bool>();
        for (var n = 0; n < 300; n++)
        {
            var port = 60000 + random.Next(0, 200);
            var soft = random.Next(3) == 0;
            s.Hold(port, soft);
            expected[port] = expected.TryGetValue(port, out var was) ? was && soft : soft;
            (s.Held, s.Soft).ShouldBe((expected.Count, expected.Values.Count(v => v)), $"after {n + 1}");
        }

        foreach (var port in Enumerable.Range(59990, 220))
        {
            s.IsHeld(port).ShouldBe(expected.ContainsKey(port));
            s.IsSoft(port).ShouldBe(expected.TryGetValue(port, out var soft) && soft);
        }

        MatchesKernel(s);
    }

    [Fact]
    public void Sparse_keys_of_the_default_range_cost_no_bitsets()
    {
        var range = NatPortRange.ClassDefault(40000);
        var keys = new NatPortSearch[1000];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var k = 0; k < keys.Length; k++)
        {
            keys[k] = new NatPortSearch(range);
            for (var p = 0; p < 10; p++)
            {
                keys[k].Hold(30000 + (k * 10) + p);
            }

            keys[k].FailureProbability().ShouldBe(0);
        }

        // Two 1008-word bitsets would be 16 KiB a key; the short list is 64 ints (with the object and
        // the small lists of the computation, about 1 KiB in all).
        var perKey = (GC.GetAllocatedBytesForCurrentThread() - before) / keys.Length;
        perKey.ShouldBeLessThan(4096);
    }

    /// <summary>Ranges of 128 ports or fewer: one window over the whole range.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(127)]
    [InlineData(128)]
    public void A_small_range_fails_for_certain_exactly_when_every_port_is_held(int rangeSize)
    {
        var low = 40000;
        var full = Search(low, low + rangeSize - 1, Enumerable.Range(low, rangeSize));
        full.AllHeld.ShouldBeTrue();
        full.Free.ShouldBe(0);
        full.FailureProbability().ShouldBe(1.0);
        MatchesKernel(full);

        // One port free, wherever it is: no longer certain, and almost never a failure, since only
        // windows that cross the u16 wrap can miss the free port; none can when R divides 65,536.
        for (var free = 0; free < rangeSize; free += Math.Max(1, rangeSize / 7))
        {
            var s = Search(low, low + rangeSize - 1, Enumerable.Range(low, rangeSize).Where(p => p != low + free));
            s.AllHeld.ShouldBeFalse();
            s.Free.ShouldBe(1);
            var p = s.FailureProbability();
            p.ShouldBeLessThanOrEqualTo((rangeSize - 1) / 65536.0);
            if (65536 % rangeSize == 0)
            {
                p.ShouldBe(0);
            }

            s.FailingOffsets().ShouldBe([KernelLoop(s, rangeSize, SoftPorts.Used)]);
        }
    }

    [Fact]
    public void A_window_crossing_the_u16_wrap_can_miss_the_one_free_port_of_a_10_port_range()
    {
        // 65536 % 10 = 6: offsets 65530-65535 start at ports 0-5 of the range and wrap back to port 0
        // before reaching port 9, so they never try it; 65527-65529 reach it before the wrap.
        var s = Search(5000, 5009, Enumerable.Range(5000, 9));
        s.FailingOffsets().ShouldBe([6L]);
        s.FailureProbability().ShouldBe(6 / 65536.0);
        s.FailingOffsets().ShouldBe([KernelLoop(s, 10, SoftPorts.Used)]);
    }

    [Fact]
    public void An_empty_key_never_fails()
    {
        var s = new NatPortSearch(NatPortRange.ClassDefault(40000));
        s.FailureProbability().ShouldBe(0);
        s.Odds().ShouldBe(new NatOdds(0, 0, 0));
    }

    [Fact]
    public void A_key_holding_fewer_ports_than_half_the_first_window_cannot_fail()
    {
        // The short cut must agree with the loop right at its edge: 63 ports of a 1000-port range.
        var sparse = Search(20000, 20999, Enumerable.Range(20000, 63));
        sparse.FailingOffsets().ShouldBe([0L]);
        MatchesKernel(sparse);
        var edge = Search(20000, 20999, Enumerable.Range(20000, 64));
        MatchesKernel(edge);
    }

    /// <summary>
    /// The shape of the documented 1000-port case (950 of 1000 held, ~10% of searching flows
    /// failing): the 50 free ports in five blocks of ten, 200 apart.
    /// </summary>
    [Fact]
    public void Nine_hundred_fifty_of_a_thousand_held_in_runs_of_190_fail_about_one_flow_in_eight()
    {
        var free = Enumerable.Range(0, 5).SelectMany(b => Enumerable.Range(20000 + (b * 200) + 190, 10)).ToHashSet();
        var s = Search(20000, 20999, Enumerable.Range(20000, 1000).Where(p => !free.Contains(p)));
        s.Held.ShouldBe(950);
        MatchesKernel(s);

        // By hand, ignoring the u16 wrap: each 190-run fails windows of w from 191 - w starts, so
        // (5 × 63 / 1000)(5 × 127 / 1000)(5 × 159 / 1000)(5 × 175 / 1000)(5 × 183 / 1000) ≈ 0.1276.
        s.FailureProbability().ShouldBe(0.1276, 0.001);
    }

    [Fact]
    public void The_count_of_held_ports_does_not_decide_the_odds_their_layout_does()
    {
        var contiguous = Search(20000, 20999, Enumerable.Range(20000, 950));
        var spread = Search(20000, 20999, Enumerable.Range(0, 1000).Where(i => i % 20 != 0).Select(i => 20000 + i));
        contiguous.Held.ShouldBe(spread.Held);
        contiguous.FailureProbability().ShouldBeGreaterThan(0.5);
        spread.FailureProbability().ShouldBe(0);   // a free port every 20: every window of 32+ finds one
        MatchesKernel(contiguous);
        MatchesKernel(spread);
    }

    [Fact]
    public void Soft_ports_change_the_odds_only_where_the_kernel_may_evict()
    {
        // 200-port range, all held; ports 0-99 soft. Windows of 128 and 64 may evict only in their last 32.
        var s = Search(30000, 30199, Enumerable.Range(30100, 100), Enumerable.Range(30000, 100));
        s.Soft.ShouldBe(100);
        s.AllHeld.ShouldBeTrue();
        var odds = s.Odds();
        odds.SoftUsed.ShouldBe(1.0);
        odds.SoftFree.ShouldBeLessThan(odds.SoftEvictable);
        odds.SoftEvictable.ShouldBeLessThan(odds.SoftUsed);
        odds.For(SoftPorts.Evictable).ShouldBe(odds.SoftEvictable);
        MatchesKernel(s);
    }

    [Fact]
    public void A_range_of_32_or_fewer_is_all_eviction_tail()
    {
        var s = Search(100, 131, Enumerable.Range(100, 31), [131]);
        s.FailureProbability(SoftPorts.Used).ShouldBe(1.0);
        s.FailureProbability(SoftPorts.Evictable).ShouldBe(s.FailureProbability(SoftPorts.Free));
        MatchesKernel(s);
    }

    [Theory]
    [InlineData(129)]
    [InlineData(255)]
    [InlineData(1000)]
    [InlineData(4096)]
    [InlineData(65520)]   // 65536 % R = 16 < 128: windows crossing the wrap repeat ports
    [InlineData(65536)]
    public void Ranges_whose_size_does_or_does_not_divide_65536_match_the_kernel_loop(int rangeSize)
    {
        var random = new Random(rangeSize);
        var s = new NatPortSearch(new NatPortRange(0, rangeSize - 1));
        // Long held runs broken by a few free ports, some soft: every window size fails somewhere.
        for (var p = 0; p < rangeSize; p++)
        {
            if (p % 300 >= 3)
            {
                s.Hold(p, soft: random.Next(50) == 0);
            }
        }

        // And the start of the range held, so that windows crossing the wrap can fail too.
        for (var p = 0; p < 140 && p < rangeSize; p++)
        {
            s.Hold(p);
        }

        MatchesKernel(s);
    }

    /// <summary>Random ranges and layouts (clustered, with soft ports) against the kernel loop.</summary>
    [Fact]
    public void Random_layouts_match_the_kernel_loop()
    {
        var layouts =
            from size in Gen.Int[1, 700]
            from density in Gen.Double[0.80, 1.0]
            from clump in Gen.Int[1, 60]
            from softShare in Gen.Double[0, 0.3]
            from seed in Gen.Int
            select (size, density, clump, softShare, seed);
        layouts.Sample(c =>
        {
            var random = new Random(c.seed);
            var low = random.Next(0, 65536 - c.size + 1);
            var s = new NatPortSearch(new NatPortRange(low, low + c.size - 1));
            for (var p = 0; p < c.size; p += c.clump)
            {
                if (random.NextDouble() < c.density)
                {
                    for (var k = p; k < Math.Min(c.size, p + c.clump); k++)
                    {
                        s.Hold(low + k, soft: random.NextDouble() < c.softShare);
                    }
                }
            }

            MatchesKernel(s);
        }, seed: "0N0XIzNsQ0O2", iter: 40, threads: 1);
    }

    /// <summary>
    /// Large ranges (a class default's 64,512 ports, say), where only the held runs are visited:
    /// blocks at random places, at the range's two ends (its wrap) and where offsets cross 65535.
    /// </summary>
    [Fact]
    public void Large_ranges_with_blocks_match_the_kernel_loop()
    {
        var layouts =
            from size in Gen.Int[20000, 64512]
            from blocks in Gen.Int[1, 6]
            from softShare in Gen.Double[0, 0.3]
            from seed in Gen.Int
            select (size, blocks, softShare, seed);
        layouts.Sample(c =>
        {
            var random = new Random(c.seed);
            var low = random.Next(1, 65536 - c.size + 1);
            var s = new NatPortSearch(new NatPortRange(low, low + c.size - 1));
            void Block(int from, int count)
            {
                for (var k = from; k < from + count && k < c.size; k++)
                {
                    s.Hold(low + k, soft: random.NextDouble() < c.softShare);
                }
            }

            Block(0, random.Next(0, 300));
            Block(c.size - random.Next(1, 300), 300);
            Block(65536 % c.size, random.Next(0, 200));
            Block(Math.Max(0, (65536 - 128) % c.size - 50), random.Next(0, 300));
            for (var b = 0; b < c.blocks; b++)
            {
                Block(random.Next(0, c.size), random.Next(64, 400));
            }

            MatchesKernel(s);
        }, seed: "0N0XIzNsQ0O2", iter: 8, threads: 1);
    }

    /// <summary>
    /// The whole search run with random offsets, many times: the product over the windows is the
    /// failure rate (the windows' offsets are independent draws).
    /// </summary>
    [Fact]
    public void Simulated_searches_fail_at_the_predicted_rate()
    {
        var free = Enumerable.Range(0, 5).SelectMany(b => Enumerable.Range(20000 + (b * 200) + 190, 10)).ToHashSet();
        var s = Search(20000, 20999, Enumerable.Range(20000, 1000).Where(p => !free.Contains(p)));
        var predicted = s.FailureProbability();
        var random = new Random(7);
        const int Trials = 200_000;
        var failed = 0;
        for (var t = 0; t < Trials; t++)
        {
            if (!SearchOnce(s, random))
            {
                failed++;
            }
        }

        // Five standard deviations of a binomial: with a fixed seed this is a fixed number anyway.
        var sigma = Math.Sqrt(predicted * (1 - predicted) / Trials);
        ((double)failed / Trials).ShouldBe(predicted, 5 * sigma);
    }

    private static bool SearchOnce(NatPortSearch s, Random random)
    {
        var rangeSize = s.Range.Size;
        var attempts = Math.Min(rangeSize, 128);
        var off = (ushort)random.Next(65536);
        while (true)
        {
            for (var i = 0; i < attempts; i++, off++)
            {
                if (!s.IsHeld(s.Range.Low + (off % rangeSize)))
                {
                    return true;
                }
            }

            if (attempts >= rangeSize || attempts < 16)
            {
                return false;
            }

            attempts /= 2;
            off = (ushort)random.Next(65536);
        }
    }

    /// <summary>Not an asserted timing: the figure for the lead, printed with the test's output.</summary>
    [Fact]
    public void The_cost_on_the_default_range_with_50k_ports_held_is_measured()
    {
        var random = new Random(3);
        var range = NatPortRange.ClassDefault(40000);
        var keys = new List<NatPortSearch>();
        for (var k = 0; k < 20; k++)
        {
            var s = new NatPortSearch(range);
            // Clients' kept ports: one long block (first failures come at ~44% occupancy of the range),
            // then ports held at random up to 50,000, a tenth of them soft.
            for (var p = 1024; p < 1024 + 20_000 + (k * 500); p++)
            {
                s.Hold(p);
            }

            for (var tries = 0; s.Held < 50_000 && tries < 1_000_000; tries++)
            {
                s.Hold(random.Next(1024, 65536), soft: random.Next(10) == 0);
            }

            s.Held.ShouldBeGreaterThanOrEqualTo(50_000);
            keys.Add(s);
        }

        foreach (var s in keys)
        {
            s.Odds();   // warm up
        }

        var clock = Stopwatch.StartNew();
        const int Rounds = 10;
        var sum = 0.0;
        for (var round = 0; round < Rounds; round++)
        {
            foreach (var s in keys)
            {
                sum += s.FailureProbability(SoftPorts.Used);
            }
        }

        clock.Stop();
        var each = clock.Elapsed.TotalMilliseconds / (Rounds * keys.Count);
        output.WriteLine($"FailureProbability on 64,512 ports with >=50,000 held: {each:F3} ms per key ({Rounds * keys.Count} calls, mean odds {sum / (Rounds * keys.Count):F4})");
        sum.ShouldBeGreaterThan(0);
    }
}
