using System.Globalization;
using System.Runtime.InteropServices;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// Reads one namespace's conntrack state for the NAT kinds: the table's fill (nf_conntrack_count
/// against nf_conntrack_max), its counters (/proc/net/stat/nf_conntrack, or ctnetlink where that
/// file is compiled out) and, in one ctnetlink dump, every entry grouped by the key nf_nat searches
/// ports for (<see cref="NatKey"/>; every entry of a key counts, source-NATed or not). A namespace
/// where nf_conntrack is not loaded, or that tracks nothing, has nothing to read.
/// </summary>
public sealed class NatResource : IResource
{
    public static readonly NatResource Instance = new();

    /// <summary>Counters are one row per CPU: 4096 CPUs of ~200 bytes fit.</summary>
    private const int MaxStatBytes = 1024 * 1024;

    private NatResource()
    {
    }

    public string Name => "the conntrack table";

    public object Read(ResourceRequest request, List<string> notes)
    {
        var view = request.View;
        var root = view.Root;
        var netfilter = $"{view.SysctlDirectory}/net/netfilter/";
        request.Progress(root.Describe(netfilter + "nf_conntrack_count"));
        if (root.ReadSmallFile(netfilter + "nf_conntrack_count", optional: true) is not { } countText)
        {
            return NatReading.None;
        }

        var count = ConntrackTableSize.ParseCount(countText, root.Describe(netfilter + "nf_conntrack_count"));
        if (count == 0)
        {
            // Nothing tracked here (since 5.x conntrack hooks into a namespace only once a rule
            // there needs it): no table to fill, no NAT, and no figures that would only say 0.
            return NatReading.None;
        }

        // One buffer of the shared pool for the ctnetlink reads (hundreds of namespaces keep as many
        // as are read at once, not two each).
        var buffer = ReadBuffers.Rent();
        try
        {
            return Read(request, notes, count, buffer);
        }
        finally
        {
            ReadBuffers.Return(buffer);
        }
    }

    private static NatReading Read(ResourceRequest request, List<string> notes, long count, byte[] buffer)
    {
        var view = request.View;
        var root = view.Root;
        var netfilter = $"{view.SysctlDirectory}/net/netfilter/";
        var maxText = root.ReadSmallFile(netfilter + "nf_conntrack_max", optional: true);
        var max = maxText is null ? 0 : ConntrackTableSize.ParseMax(maxText, root.Describe(netfilter + "nf_conntrack_max"));
        var (statistics, statisticsSource) = Statistics(view, request.Progress, buffer);
        var table = new ConntrackTable(count, max, statistics, statisticsSource);
        var evictable = SoftPortsEvictable(root);
        if (request.Settings.IgnoreNat)
        {
            return new NatReading(table, null, "NAT tuples not read (--ignore-nat)", evictable) { Ignored = true };
        }

        if (!view.IsLiveKernel)
        {
            return new NatReading(table, null, "NAT tuples were not read: they are read from the kernel (ctnetlink), not from a /proc tree", evictable) { Forwarding = Forwarding(view) };
        }

        request.Progress("the conntrack table (ctnetlink dump)");
        var sink = new KeySink();
        try
        {
            // Many entries: received on a thread of its own while this one parses and groups them.
            ConntrackDump.Read(sink, buffer: buffer, overlap: ConntrackDump.OverlapWorthIt(count));
        }
        catch (ConntrackRefusedException e)
        {
            return new NatReading(table, null, e.Reason == ConntrackRefusal.NeedsCapNetAdmin
                ? "NAT tuples were not read: the conntrack dump needs CAP_NET_ADMIN"
                : $"NAT tuples were not read: {e.Message}", evictable) { Forwarding = Forwarding(view) };
        }

        // The range each key's flows are given: the operator's, else the rules in force (read the
        // same way, CAP_NET_ADMIN), else nothing certain. Only keys with a source-NATed entry are
        // analysed: where the dump has none (a host that tracks but does not translate), no rule
        // can apply to anything and none is read.
        var given = request.Settings.NatRange is { } r ? new NatPortRange(r.Low, r.High) : (NatPortRange?)null;
        NatRulesReading? rules = null;
        if (given is null && sink.AnySourceNat)
        {
            request.Progress("the source-NAT rules (nf_tables, iptables-legacy)");
            rules = NatRulesReader.Read();
            notes.AddRange(rules.Notes);
        }

        var keys = sink.Keys(evictable ? SoftPorts.Evictable : SoftPorts.Used, given, rules);
        return new NatReading(table with { Unassured = sink.Unassured }, keys, null, evictable) { UnknownRanges = keys.Count(k => !k.RangeKnown) };
    }

    /// <summary>
    /// The forwarding sysctl that is on, if any: IPv4's ip_forward, else IPv6's conf/all/forwarding
    /// (both world-readable). Read only where the keys could not be, to tell whether their absence
    /// may hide source NAT: nf_nat's rules and entries are readable only with CAP_NET_ADMIN.
    /// </summary>
    private static string? Forwarding(NamespaceView view)
    {
        foreach (var (file, name) in (ReadOnlySpan<(string, string)>)[("net/ipv4/ip_forward", "net.ipv4.ip_forward"), ("net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding")])
        {
            var path = $"{view.SysctlDirectory}/{file}";
            if (view.Root.ReadSmallFile(path, optional: true) is not { } text)
            {
                continue;
            }

            // Anything but a plain 0 may forward: an unreadable value is not taken for "off".
            if (!long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return $"{name} unreadable";
            }

            if (value != 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{name} = {value}");
            }
        }

        return null;
    }

    /// <summary>The counters: the namespace's /proc file where the kernel has it (no privilege needed), else ctnetlink.</summary>
    private static (ConntrackStatistics?, string) Statistics(NamespaceView view, Action<string> progress, byte[] buffer)
    {
        var file = $"{view.TablesDirectory}/stat/nf_conntrack";
        progress(view.Root.Describe(file));
        if (view.Root.ReadSmallFile(file, optional: true, MaxStatBytes) is { } text)
        {
            return (ConntrackStatistics.ParseProcStat(text, view.Root.Describe(file)), view.Root.Describe(file));
        }

        if (!view.IsLiveKernel)
        {
            return (null, $"{view.Root.Describe(file)} (absent)");
        }

        try
        {
            return (ConntrackDump.ReadStatistics(buffer), "ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU)");
        }
        catch (ConntrackRefusedException e)
        {
            return (null, $"not read ({e.Message})");
        }
    }

    /// <summary>
    /// Linux 6.5 (commit 4589725502871) lets a new TCP connection evict a colliding TIME_WAIT or
    /// CLOSE entry with SRC_NAT in the last 32 tries of a window: on such a kernel those ports are
    /// counted as the kernel treats them (<see cref="SoftPorts.Evictable"/>), before it as held.
    /// </summary>
    private static bool SoftPortsEvictable(Acquisition.ProcFs.ProcRoot root)
    {
        string? release;
        try
        {
            release = root.ReadSmallFile("sys/kernel/osrelease", optional: true);
        }
        catch (CheckException)
        {
            return false;
        }

        var parts = (release ?? string.Empty).Trim().Split('.', 3);
        return parts.Length >= 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1].TakeWhile(char.IsAsciiDigit).ToArray(), NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            && (major > 6 || (major == 6 && minor >= 5));
    }

    /// <summary>
    /// Groups a dump's entries by key without an object per entry: the keys in a dictionary, the
    /// held ports in one growing array. Only keys with a source-NATed entry are analysed.
    /// </summary>
    private sealed class KeySink : IConntrackSink
    {
        private readonly Dictionary<NatKey, int> _index = [];
        private readonly List<KeyState> _keys = [];
        private (int Key, ushort Port, bool Soft)[] _holds = new (int, ushort, bool)[1024];
        private int _count;

        /// <summary>Whether any entry was source-NATed: only then is there a key to analyse.</summary>
        public bool AnySourceNat { get; private set; }

        /// <summary>Entries of every protocol without ASSURED: what early_drop() may evict when the table is full.</summary>
        public long Unassured { get; private set; }

        public void Add(in ConntrackEntry entry)
        {
            if (!entry.IsAssured)
            {
                Unassured++;
            }

            // nf_nat picks ports for port-carrying protocols; ICMP ids are another story.
            if (entry.Protocol is not (6 or 17 or 33 or 132 or 136))
            {
                return;
            }

            // One lookup per entry: the slot is filled in where the key is new.
            ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_index, entry.Key, out var known);
            if (!known)
            {
                slot = _keys.Count;
                _keys.Add(new KeyState(entry.Key));
            }

            var key = slot;
            var state = _keys[key];
            state.Entries++;
            if (entry.IsSourceNat)
            {
                state.OriginalPort ??= entry.ClientPort;
                AnySourceNat = true;
            }

            if (_count == _holds.Length)
            {
                Array.Resize(ref _holds, _holds.Length * 2);
            }

            var soft = entry.IsSourceNat && entry.TcpState is TcpConntrackState.TimeWait or TcpConntrackState.Close;
            _holds[_count++] = (key, entry.NatPort, soft);
        }

        /// <param name="softPorts">How this kernel counts soft ports.</param>
        /// <param name="given">The range the operator gave, or null.</param>
        /// <param name="rules">The source-NAT rules read, where no range was given.</param>
        public List<NatKeyUsage> Keys(SoftPorts softPorts, NatPortRange? given, NatRulesReading? rules)
        {
            var searches = new NatPortSearch?[_keys.Count];
            var sources = new (string Why, bool Known)[_keys.Count];
            for (var i = 0; i < _keys.Count; i++)
            {
                if (_keys[i].OriginalPort is not { } original)
                {
                    continue;
                }

                NatPortRange range;
                if (given is { } g)
                {
                    (range, sources[i]) = (g, ("given by the operator", true));
                }
                else if (rules is { Complete: false })
                {
                    // Without the rules the range is a guess: counted against the class default, said so.
                    range = NatPortRange.ClassDefault(original);
                    sources[i] = ($"not known: {string.Join("; ", rules.Refusals.Select(f => f.Message))}", false);
                }
                else
                {
                    var capacity = NatRulesCapacity.For(rules?.Rules ?? [], _keys[i].Key, original);
                    range = capacity.Ports ?? NatPortRange.ClassDefault(original);
                    sources[i] = (capacity.Why, capacity.Source != NatCapacitySource.Unknown);
                }

                searches[i] = new NatPortSearch(range);
            }

            for (var i = 0; i < _count; i++)
            {
                var (key, port, soft) = _holds[i];
                searches[key]?.Hold(port, soft);
            }

            var keys = new List<NatKeyUsage>();
            for (var i = 0; i < _keys.Count; i++)
            {
                if (searches[i] is not { } search)
                {
                    continue;
                }

                // A window of min(R, 128) candidates can only be all held when that many ports are.
                var odds = search.Held >= Math.Min(search.Range.Size, NatPortSearch.MaxAttempts) ? search.FailureProbability(softPorts) : 0;
                var original = _keys[i].OriginalPort!.Value;
                keys.Add(new NatKeyUsage(_keys[i].Key, _keys[i].Entries, search.Held, search.Soft, search.Range, sources[i].Why, odds) { RangeKnown = sources[i].Known });
            }

            keys.Sort((a, b) => b.FailsNow.CompareTo(a.FailsNow) is var c and not 0 ? c
                : b.FailureOdds.CompareTo(a.FailureOdds) is var d and not 0 ? d
                : b.Percent.CompareTo(a.Percent));
            return keys;
        }

        private sealed class KeyState(NatKey key)
        {
            public NatKey Key { get; } = key;

            public int Entries { get; set; }

            public int? OriginalPort { get; set; }
        }
    }
}
