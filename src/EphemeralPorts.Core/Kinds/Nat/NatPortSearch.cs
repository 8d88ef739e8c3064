using System.Buffers;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>How to count the ports held by entries the kernel may evict (see <see cref="NatPortSearch"/>).</summary>
public enum SoftPorts
{
    /// <summary>
    /// As held: what a kernel before 6.5 does, what UDP (and any flow not opened by a TCP SYN)
    /// meets on every kernel, and what 6.5+ does when no soft entry passes the sequence test.
    /// </summary>
    Used,

    /// <summary>
    /// As 6.5+ kernels treat them when every soft entry passes the sequence test: held for the first
    /// <c>attempts - 32</c> candidates of each window, free for its last 32 (the whole window when it
    /// has 32 candidates or fewer). The best a new TCP connection can hope for.
    /// </summary>
    Evictable,

    /// <summary>As free everywhere: as if the soft entries were gone (a bound, not a kernel behaviour).</summary>
    Free,
}

/// <summary>The odds that the next flow of a key finds no source port, under each way of counting soft ports.</summary>
public sealed record NatOdds(double SoftUsed, double SoftEvictable, double SoftFree)
{
    public double For(SoftPorts soft) => soft switch
    {
        SoftPorts.Used => SoftUsed,
        SoftPorts.Evictable => SoftEvictable,
        _ => SoftFree,
    };
}

/// <summary>
/// The model of nf_nat's source-port search for one key (NAT address, destination address,
/// destination port, protocol, zone): which ports of the range in force are held, and the odds that
/// the next flow of the key that needs a port finds none. Pure: the caller feeds the ports held by
/// the key's conntrack entries (every entry whose REPLY tuple is the key's, SRC_NAT or not, since
/// <c>nf_nat_used_tuple</c> asks <c>nf_conntrack_tuple_taken</c> and that sees all of them).
/// </summary>
/// <remarks>
/// <para>What the kernel does (net/netfilter/nf_nat_core.c), step by step:</para>
/// <list type="number">
/// <item><c>get_unique_tuple</c> first keeps the flow's own source port when it lies in the range
/// and its tuple is free (not with <c>random</c>/<c>random-fully</c>, <c>NF_NAT_RANGE_PROTO_RANDOM_ALL</c>).
/// Only the flows that miss this one chance search; the odds here are those of a flow that searches.
/// A one-port range returns its port here even when it is taken (the clash then drops the packet).</item>
/// <item><c>nf_nat_l4proto_unique_tuple</c> searches in windows. <c>attempts = min(range_size, 128)</c>
/// (<c>NF_NAT_MAX_ATTEMPTS</c>); the candidates of a window are <c>min + off % range_size</c> for
/// <c>off</c> a <c>u16</c> that starts random (<c>get_random_u16</c>; <c>prandom_u32</c> truncated to
/// 16 bits before 6.1, the same distribution) and is incremented, so it wraps from 65535 to 0:
/// candidate <c>i</c> is <c>((off + i) &amp; 0xffff) % R</c>. Where 65,536 is not a multiple of
/// <c>R</c> the residues are not uniform (the first <c>65536 % R</c> ports are one offset likelier)
/// and a window crossing the wrap jumps back to port <c>min</c>, repeating ports and skipping others.
/// That is why the odds count the 65,536 offsets rather than the <c>R</c> ports.</item>
/// <item>A window with no free candidate is followed, while <c>attempts &lt; range_size</c> and
/// <c>attempts &gt;= 16</c>, by one of half the size from a new random offset: 128, 64, 32, 16, 8
/// (248 candidates) for a range over 128 ports, a single window of <c>R</c> for 128 or fewer
/// (<see cref="Windows"/>). The offsets are independent, so the odds of finding nothing are the
/// product over the windows of the share of offsets whose window is all held.
/// (Commit a504b703bb1d "netfilter: nat: limit port clash resolution attempts": mainline in the 5.x
/// series, taken into 4.9.y (4.9.300), 4.14.y and 4.19.y in February 2022; 4.4 never had it. Before
/// it the whole range was walked, from a shared rover in old 4.x, so a flow failed only when every
/// port was held, <see cref="AllHeld"/>, short of the same u16-wrap edge. In 4.x <c>--random</c>
/// (<c>NF_NAT_RANGE_PROTO_RANDOM</c>, not <c>-fully</c>) started the first window at
/// <c>secure_port</c>, a keyed hash of the tuple's source address (already the NAT address),
/// destination address and destination port: the same start for every flow of a key, so there the
/// first window is one fixed set of ports, not a fresh draw. Since 5.0 <c>--random</c> is random.)</item>
/// <item>Since 6.5 (commit 4589725502871 "netfilter: snat: evict closing tcp entries on reply tuple
/// collision") the check is <c>nf_nat_used_tuple_harder(tuple, ct, attempts - i)</c>: for the last
/// 32 candidates of a window (<c>NF_NAT_HARDER_THRESH</c>, <c>attempts - i &lt;= 32</c>), and only when
/// the new conntrack is TCP in SYN_SENT, a colliding entry found by its REPLY tuple is killed and its
/// port taken when <c>nf_nat_may_kill</c> allows (TCP state TIME_WAIT or later, i.e. TIME_WAIT or
/// CLOSE; SRC_NAT set; neither FIXED_TIMEOUT nor DYING) and <c>nf_seq_has_advanced</c> holds (the new
/// SYN's end sequence is after the old entry's original-direction <c>td_end</c>, as a signed 32-bit
/// difference). An offloaded entry is killed but its port still counts as taken. Such entries are
/// "soft" here (<see cref="Hold"/>); the router's own connections carry no SRC_NAT and are never
/// soft. <see cref="SoftPorts"/> chooses how to count them.</item>
/// </list>
/// <para>Cost: O(R) per window (a run-length pass over the range, then each residue weighed by how
/// many of the 65,536 offsets start there; the fewer than 128 offsets whose window crosses the wrap
/// are walked one by one), not O(65,536 × 128).</para>
/// </remarks>
public sealed class NatPortSearch
{
    /// <summary><c>NF_NAT_MAX_ATTEMPTS</c>: the largest window.</summary>
    public const int MaxAttempts = 128;

    /// <summary><c>NF_NAT_HARDER_THRESH</c> (6.5+): how many last candidates of a window may evict.</summary>
    public const int HarderThreshold = MaxAttempts / 4;

    /// <summary>The window sizes are halved only while at least this large.</summary>
    public const int SmallestHalved = 16;

    /// <summary>The values of the <c>u16</c> start offset.</summary>
    public const int Offsets = 65536;

    /// <summary>
    /// Ranges up to this many ports get their bitsets at once (at most 1 KiB); larger ones start
    /// with a short list and grow bitsets only past <see cref="FewPorts"/> held ports.
    /// </summary>
    private const int EagerBits = 4096;

    /// <summary>
    /// A key holding fewer than 64 ports of a range over 128 cannot fail (see
    /// <see cref="FailingOffsets"/>), and most keys of a host are such keys: they cost a list of 64
    /// ints, not the 16 KiB of bitsets a 64,512-port range needs.
    /// </summary>
    private const int FewPorts = 64;

    private ulong[]? held;
    private ulong[]? soft;

    // Until the bitsets exist: the held ports as offsets into the range, a soft one stored as its
    // complement (negative).
    private int[]? few;

    public NatPortSearch(NatPortRange range)
    {
        Range = range;
        if (range.Size <= EagerBits)
        {
            Grow();
        }
        else
        {
            few = new int[FewPorts];
        }
    }

    public NatPortRange Range { get; }

    /// <summary>Ports of the range held by an entry of the key (soft ones included).</summary>
    public int Held { get; private set; }

    /// <summary>Held ports whose every holder is an entry a 6.5+ kernel may evict.</summary>
    public int Soft { get; private set; }

    public int Free => Range.Size - Held;

    /// <summary>
    /// Every port held: the next searching flow certainly fails (counting soft ports as held). For a
    /// range of 128 ports or fewer (one window of the whole range) this is nearly the whole story:
    /// with a port free a flow still fails only when its window crosses the <c>u16</c> wrap and so
    /// misses the free ports, at most <c>(R - 1) / 65536</c>, and never when <c>R</c> divides 65,536.
    /// </summary>
    public bool AllHeld => Held == Range.Size;

    /// <summary>
    /// Marks a port held by an entry of the key; <paramref name="soft"/> when that entry is one a
    /// 6.5+ kernel may evict (TCP TIME_WAIT or CLOSE with SRC_NAT). A port held by any entry that is
    /// not soft stays hard. Returns false, and changes nothing, for a port outside the range (an entry
    /// made under another rule or class: it does not compete for this range).
    /// </summary>
    public bool Hold(int port, bool soft = false)
    {
        if (!Range.Contains(port))
        {
            return false;
        }

        var index = port - Range.Low;
        if (few is not null)
        {
            var at = Find(index);
            if (at >= 0)
            {
                if (!soft && few[at] < 0)
                {
                    few[at] = index;
                    Soft--;
                }

                return true;
            }

            if (Held < FewPorts)
            {
                few[Held++] = soft ? ~index : index;
                Soft += soft ? 1 : 0;
                return true;
            }

            Grow();
        }

        var word = index >> 6;
        var bit = 1UL << (index & 63);
        if ((held![word] & bit) == 0)
        {
            held[word] |= bit;
            Held++;
            if (soft)
            {
                this.soft![word] |= bit;
                Soft++;
            }
        }
        else if (!soft && (this.soft![word] & bit) != 0)
        {
            this.soft[word] &= ~bit;
            Soft--;
        }

        return true;
    }

    public bool IsHeld(int port) =>
        Range.Contains(port) && (few is null ? Bit(held!, port - Range.Low) : Find(port - Range.Low) >= 0);

    public bool IsSoft(int port)
    {
        if (!Range.Contains(port))
        {
            return false;
        }

        if (few is null)
        {
            return Bit(soft!, port - Range.Low);
        }

        var at = Find(port - Range.Low);
        return at >= 0 && few[at] < 0;
    }

    private int Find(int index)
    {
        for (var i = 0; i < Held; i++)
        {
            if (few![i] == index || few[i] == ~index)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Makes the bitsets and moves the short list into them.</summary>
    private void Grow()
    {
        held = new ulong[(Range.Size + 63) / 64];
        soft = new ulong[held.Length];
        if (few is null)
        {
            return;
        }

        foreach (var entry in few.AsSpan(0, Held))
        {
            var index = entry < 0 ? ~entry : entry;
            held[index >> 6] |= 1UL << (index & 63);
            if (entry < 0)
            {
                soft[index >> 6] |= 1UL << (index & 63);
            }
        }

        few = null;
    }

    /// <summary>
    /// The sizes of the windows a search tries, in order: the <c>attempts</c> arithmetic of
    /// <c>nf_nat_l4proto_unique_tuple</c> (<c>min(R, 128)</c>, then halved, rounding down, while it is
    /// below <c>R</c> and at least 16).
    /// </summary>
    public static IReadOnlyList<int> Windows(int rangeSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rangeSize, 1);
        var windows = new List<int>(5);
        var attempts = Math.Min(rangeSize, MaxAttempts);
        while (true)
        {
            windows.Add(attempts);
            if (attempts >= rangeSize || attempts < SmallestHalved)
            {
                return windows;
            }

            attempts /= 2;
        }
    }

    /// <summary>The odds under each way of counting soft ports.</summary>
    public NatOdds Odds() =>
        Soft == 0
            ? Same(FailureProbability(SoftPorts.Used))
            : new NatOdds(FailureProbability(SoftPorts.Used), FailureProbability(SoftPorts.Evictable), FailureProbability(SoftPorts.Free));

    /// <summary>
    /// The probability that the next flow of the key that searches (see the remarks) finds no port:
    /// the product over <see cref="Windows"/> of the share of the 65,536 start offsets whose window
    /// holds no free candidate.
    /// </summary>
    public double FailureProbability(SoftPorts softPorts = SoftPorts.Used)
    {
        var probability = 1.0;
        foreach (var failing in FailingOffsets(softPorts))
        {
            probability *= failing / (double)Offsets;
        }

        return probability;
    }

    /// <summary>
    /// The probability for one flow whose original source port is known: 0 when <c>get_unique_tuple</c>
    /// keeps that port, else that of the search. It keeps it when the rule is not
    /// <c>random</c>/<c>random-fully</c> (<c>NF_NAT_RANGE_PROTO_RANDOM_ALL</c>) and no entry of the key
    /// holds it, and, when the rule names ports (<paramref name="portsInRule"/>), the port is in
    /// them; a rule without ports keeps any free port, even one outside its class default (512-599,
    /// seen kept). Such a port is not tracked here (<see cref="Hold"/> refuses it), so it counts as
    /// free. The kept-port check is <c>nf_nat_used_tuple</c>, which never evicts, so a soft port
    /// counts as held there whatever <paramref name="softPorts"/> says.
    /// </summary>
    public double FailureProbability(int originalPort, bool randomFully, bool portsInRule = true, SoftPorts softPorts = SoftPorts.Used)
    {
        var kept = !randomFully && (Range.Contains(originalPort) ? !IsHeld(originalPort) : !portsInRule);
        return kept ? 0 : FailureProbability(softPorts);
    }

    /// <summary>
    /// For each window of <see cref="Windows"/>, how many of the 65,536 start offsets give a window
    /// with no free candidate. Exact integers (the tests hold them to a transcription of the kernel's
    /// loop); stops early with a zero once a window cannot fail.
    /// </summary>
    public IReadOnlyList<long> FailingOffsets(SoftPorts softPorts = SoftPorts.Used)
    {
        var windows = Windows(Range.Size);
        var counts = new List<long>(windows.Count);
        // A failing window of w candidates holds at least w / 2 distinct ports (one crossing the wrap
        // is two runs of residues, the longer at least half), so a key holding fewer than that cannot
        // fail: most keys of a host are answered without a pass over the range.
        var counted = softPorts == SoftPorts.Free ? Held - Soft : Held;
        if (counted == 0 || counted < (windows[0] + 1) / 2)
        {
            counts.Add(0);
            return counts;
        }

        if (few is not null)
        {
            Grow();
        }

        // Runs of consecutive held ports (and of hard ones) starting at each position of the range
        // followed by its first 127 ports again, capped at 255: enough for any window that does not
        // cross the u16 wrap, whatever residue it starts at. Filled only inside the runs, found a
        // word at a time, and only the held runs' positions are visited after: the cost follows the
        // held ports, not the range (50 keys of a 64,512-port class range cost 22 ms a run walked
        // position by position).
        var length = Range.Size + MaxAttempts - 1;
        var runHeld = ArrayPool<byte>.Shared.Rent(length);
        var runHard = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var heldRuns = Runs(runHeld, length, hard: false);
            Runs(runHard, length, hard: true);
            foreach (var window in windows)
            {
                var failing = Failing(window, softPorts, runHeld, runHard, heldRuns);
                counts.Add(failing);
                if (failing == 0)
                {
                    break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(runHeld);
            ArrayPool<byte>.Shared.Return(runHard);
        }

        return counts;
    }

    /// <summary>
    /// Fills <paramref name="runs"/>[j] with the number of consecutive held (or hard) positions from
    /// j on, in the range followed by its first ports again (position j is port j % size), capped at
    /// 255, zero elsewhere; returns the maximal runs as [start, end) of those positions.
    /// </summary>
    private List<(int Start, int End)> Runs(byte[] runs, int length, bool hard)
    {
        var size = Range.Size;
        Array.Clear(runs, 0, length);
        var found = new List<(int Start, int End)>();
        var j = 0;
        while (true)
        {
            j = Next(j, size, set: true, hard);
            if (j >= size)
            {
                break;
            }

            var end = Next(j, size, set: false, hard);
            found.Add((j, end));
            j = end;
        }

        // The positions past the range repeat its ports (more than once where it is small).
        for (var k = size; k < length; k++)
        {
            if (!IsHeldAt(k % size, hard))
            {
                continue;
            }

            if (found.Count > 0 && found[^1].End == k)
            {
                found[^1] = (found[^1].Start, k + 1);
            }
            else
            {
                found.Add((k, k + 1));
            }
        }

        foreach (var (start, end) in found)
        {
            for (var k = start; k < end; k++)
            {
                runs[k] = (byte)Math.Min(end - k, byte.MaxValue);
            }
        }

        return found;
    }

    /// <summary>The first position from <paramref name="from"/> below <paramref name="limit"/> whose bit is <paramref name="set"/> (or limit).</summary>
    private int Next(int from, int limit, bool set, bool hard)
    {
        if (from >= limit)
        {
            return limit;
        }

        var w = from >> 6;
        var word = Word(w, set, hard) & (~0UL << (from & 63));
        while (word == 0)
        {
            if (++w << 6 >= limit)
            {
                return limit;
            }

            word = Word(w, set, hard);
        }

        return Math.Min(limit, (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(word));
    }

    private ulong Word(int w, bool set, bool hard)
    {
        var bits = hard ? held![w] & ~soft![w] : held![w];
        return set ? bits : ~bits;
    }

    private bool IsHeldAt(int index, bool hard) => Bit(held!, index) && (!hard || !Bit(soft!, index));

    /// <summary>
    /// The offsets whose window of <paramref name="window"/> candidates fails: the first
    /// <c>head</c> candidates must be held, the last <c>tail</c> held in the sense of the mode
    /// (hard only, for <see cref="SoftPorts.Evictable"/> in the eviction tail and everywhere for
    /// <see cref="SoftPorts.Free"/>).
    /// </summary>
    private long Failing(int window, SoftPorts softPorts, byte[] runHeld, byte[] runHard, List<(int Start, int End)> heldRuns)
    {
        var size = Range.Size;
        var tail = softPorts == SoftPorts.Evictable ? Math.Min(HarderThreshold, window) : window;
        var head = window - tail;
        var tailRuns = softPorts == SoftPorts.Used ? runHeld : runHard;

        // Offsets 0 .. Offsets - window do not wrap: the window is the ports start, start+1, ...
        // (mod R) for start = off % R, and `last / R + 1` offsets (fewer for the last residues)
        // start at each residue. A failing window starts on a held port: only those are looked at.
        var last = Offsets - window;
        long failing = 0;
        var residues = Math.Min(size - 1, last);
        foreach (var (runStart, runEnd) in heldRuns)
        {
            for (var start = runStart; start < runEnd && start <= residues; start++)
            {
                if ((head == 0 || runHeld[start] >= head) && tailRuns[start + head] >= tail)
                {
                    failing += ((last - start) / size) + 1;
                }
            }
        }

        // The window - 1 offsets whose window crosses 65535 → 0: the candidates are the ports from
        // off % R on (65536 - off of them), then those from 0 on.
        for (var off = last + 1; off < Offsets; off++)
        {
            var first = Offsets - off;
            if (Holds(off % size, 0, first, head, runHeld, tailRuns) && Holds(0, first, window - first, head, runHeld, tailRuns))
            {
                failing++;
            }
        }

        return failing;
    }

    /// <summary>
    /// Whether <paramref name="count"/> consecutive candidates, the <paramref name="candidate"/>-th
    /// of the window first, from position <paramref name="at"/> on, are all taken: the head's held,
    /// the tail's taken in the mode's sense.
    /// </summary>
    private static bool Holds(int at, int candidate, int count, int head, byte[] runHeld, byte[] tailRuns)
    {
        var inHead = Math.Clamp(head - candidate, 0, count);
        var inTail = count - inHead;
        return (inHead == 0 || runHeld[at] >= inHead) && (inTail == 0 || tailRuns[at + inHead] >= inTail);
    }

    private static NatOdds Same(double p) => new(p, p, p);

    private static bool Bit(ulong[] bits, int index) => (bits[index >> 6] & (1UL << (index & 63))) != 0;
}
