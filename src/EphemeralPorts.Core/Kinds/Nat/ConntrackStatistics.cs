using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Kinds.Nat;

/// <summary>
/// The conntrack counters of one network namespace (struct ip_conntrack_stat, per CPU in the
/// kernel), summed over the CPUs. Null is a counter the source did not carry (an older kernel's
/// ctnetlink lacks CTA_STATS_CLASH_RESOLVE and CTA_STATS_CHAIN_TOOLONG; /proc has no
/// "chaintoolong" by that name). What a failure of source NAT or a full table moves:
/// <see cref="InsertFailed"/> and <see cref="Drop"/> for each SYN or datagram nf_nat finds no
/// port for (also for clash races that are not exhaustion), <see cref="Drop"/> and
/// <see cref="EarlyDrop"/> for a full table. Two sources, the same numbers (held equal by a test):
/// /proc/net/stat/nf_conntrack (<see cref="ParseProcStat"/>; readable without privileges, absent
/// when CONFIG_NF_CONNTRACK_PROCFS is off; for a thread inside another namespace read
/// /proc/thread-self/net/stat/nf_conntrack, as /proc/net is the process's) and ctnetlink
/// (<see cref="ConntrackDump.ReadStatistics"/>; always built, needs CAP_NET_ADMIN). Prefer the file.
/// </summary>
public sealed record ConntrackStatistics
{
    /// <summary>How many CPU rows (ctnetlink replies, /proc lines) were summed.</summary>
    public int Cpus { get; init; }

    /// <summary>/proc's "entries" column (nf_conntrack_count of the namespace, the same on every row); ctnetlink's per-CPU dump has none.</summary>
    public ulong? Entries { get; init; }

    public ulong? Found { get; init; }

    public ulong? Invalid { get; init; }

    public ulong? Insert { get; init; }

    public ulong? InsertFailed { get; init; }

    public ulong? Drop { get; init; }

    public ulong? EarlyDrop { get; init; }

    /// <summary>CTA_STATS_ERROR, /proc's "icmp_error".</summary>
    public ulong? Error { get; init; }

    public ulong? SearchRestart { get; init; }

    /// <summary>CTA_STATS_CLASH_RESOLVE, /proc's "clashres".</summary>
    public ulong? ClashResolve { get; init; }

    /// <summary>CTA_STATS_CHAIN_TOOLONG, /proc's "chainlength" column (which prints it).</summary>
    public ulong? ChainTooLong { get; init; }

    // enum ctattr_stats_cpu
    private const ushort CtaStatsFound = 2;
    private const ushort CtaStatsInvalid = 4;
    private const ushort CtaStatsInsert = 8;
    private const ushort CtaStatsInsertFailed = 9;
    private const ushort CtaStatsDrop = 10;
    private const ushort CtaStatsEarlyDrop = 11;
    private const ushort CtaStatsError = 12;
    private const ushort CtaStatsSearchRestart = 13;
    private const ushort CtaStatsClashResolve = 14;
    private const ushort CtaStatsChainTooLong = 15;

    /// <summary>
    /// The replies to IPCTNL_MSG_CT_GET_STATS_CPU in one received buffer, added to
    /// <paramref name="sum"/>: ctnetlink_ct_stat_cpu_fill_info() writes one message per possible
    /// CPU (res_id = the CPU) with big-endian u32 CTA_STATS_* attributes.
    /// </summary>
    public static CtNetlinkParser.Outcome ParseCpuStats(ReadOnlySpan<byte> buffer, ref ConntrackStatistics sum, int streamOffset, out int errno)
    {
        ArgumentNullException.ThrowIfNull(sum);
        var total = new StrongBox<ConntrackStatistics>(sum);
        var outcome = CtNetlinkParser.Walk(buffer, streamOffset, CtNetlink.MsgCtGetStatsCpu, CtNetlink.MsgCtGetStatsCpu, "conntrack statistics", total,
            static (total, payload, payloadAt, messageAt) => total.Value = Add(total.Value!, payload, payloadAt, messageAt), out errno);
        sum = total.Value!;
        return outcome;
    }

    /// <summary>A whole stored IPCTNL_MSG_CT_GET_STATS_CPU dump, ending with NLMSG_DONE.</summary>
    public static ConntrackStatistics ParseCpuStatsDump(ReadOnlySpan<byte> dump)
    {
        var sum = new ConntrackStatistics();
        var outcome = ParseCpuStats(dump, ref sum, 0, out var errno);
        return outcome switch
        {
            CtNetlinkParser.Outcome.Done => sum,
            CtNetlinkParser.Outcome.KernelError => throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"ctnetlink statistics: the kernel answered errno {errno}")),
            _ => throw CtNetlink.Malformed("the statistics dump ends without NLMSG_DONE", dump.Length, dump.Length),
        };
    }

    private static ConntrackStatistics Add(ConntrackStatistics sum, ReadOnlySpan<byte> payload, int payloadAt, int message)
    {
        if (payload.Length < CtNetlink.NfgenmsgLength)
        {
            throw CtNetlink.Malformed($"statistics message of {payload.Length} bytes, shorter than its nfgenmsg", payloadAt, message);
        }

        var row = sum with { Cpus = sum.Cpus + 1 };
        var attributes = new CtNetlink.Attributes(payload[CtNetlink.NfgenmsgLength..], payloadAt + CtNetlink.NfgenmsgLength, message);
        while (attributes.Next(out var type, out var value, out var at))
        {
            if (type is < CtaStatsFound or > CtaStatsChainTooLong)
            {
                continue;
            }

            if (value.Length != 4)
            {
                throw CtNetlink.Malformed(string.Create(CultureInfo.InvariantCulture, $"statistics attribute {type} of {value.Length} bytes, not 4"), at, message);
            }

            ulong n = BinaryPrimitives.ReadUInt32BigEndian(value);
            row = type switch
            {
                CtaStatsFound => row with { Found = (row.Found ?? 0) + n },
                CtaStatsInvalid => row with { Invalid = (row.Invalid ?? 0) + n },
                CtaStatsInsert => row with { Insert = (row.Insert ?? 0) + n },
                CtaStatsInsertFailed => row with { InsertFailed = (row.InsertFailed ?? 0) + n },
                CtaStatsDrop => row with { Drop = (row.Drop ?? 0) + n },
                CtaStatsEarlyDrop => row with { EarlyDrop = (row.EarlyDrop ?? 0) + n },
                CtaStatsError => row with { Error = (row.Error ?? 0) + n },
                CtaStatsSearchRestart => row with { SearchRestart = (row.SearchRestart ?? 0) + n },
                CtaStatsClashResolve => row with { ClashResolve = (row.ClashResolve ?? 0) + n },
                CtaStatsChainTooLong => row with { ChainTooLong = (row.ChainTooLong ?? 0) + n },
                _ => row, // the attributes marked "no longer used" in the uapi header
            };
        }

        return row;
    }

    /// <summary>
    /// The text of /proc/net/stat/nf_conntrack (ct_cpu_seq_show() in nf_conntrack_standalone.c): a
    /// header row naming the columns, then one row of hex numbers per possible CPU. Columns are
    /// found by name, so a kernel that adds or moves one is still read right; the counters are
    /// summed over the rows. <paramref name="where"/> names the file in a refusal.
    /// </summary>
    public static ConntrackStatistics ParseProcStat(string text, string where)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = text.Split('\n');
        var header = lines[0].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (header.Length == 0 || !header.Contains("entries", StringComparer.Ordinal))
        {
            throw new CheckException($"{where}: line 1 is not the header naming the columns (no \"entries\")");
        }

        var sums = new ulong[header.Length];
        var rows = 0;
        ulong? entries = null;
        for (var i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0 && i == lines.Length - 1)
            {
                break; // the newline that ends the last row
            }

            var fields = lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != header.Length)
            {
                throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"{where}: line {i + 1} has {fields.Length} fields, the header names {header.Length}"));
            }

            for (var c = 0; c < fields.Length; c++)
            {
                if (fields[c].Length > 16 || !ulong.TryParse(fields[c], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
                {
                    throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"{where}: line {i + 1}, column {header[c]}: '{Excerpt(fields[c])}' is not a hex number"));
                }

                if (header[c] == "entries")
                {
                    // nr_conntracks of the namespace, printed on every row: not a per-CPU count.
                    entries ??= value;
                    continue;
                }

                // A sum past 2^64 is not a counter any kernel printed (each row is a u32).
                if (sums[c] > ulong.MaxValue - value)
                {
                    throw new CheckException(string.Create(CultureInfo.InvariantCulture, $"{where}: line {i + 1}, column {header[c]}: the sum over the CPUs passes 2^64"));
                }

                sums[c] += value;
            }

            rows++;
        }

        if (rows == 0)
        {
            throw new CheckException($"{where}: no CPU rows after the header");
        }

        ulong? Column(string name)
        {
            var index = Array.IndexOf(header, name);
            return index < 0 ? null : sums[index];
        }

        return new ConntrackStatistics
        {
            Cpus = rows,
            Entries = entries,
            Found = Column("found"),
            Invalid = Column("invalid"),
            Insert = Column("insert"),
            InsertFailed = Column("insert_failed"),
            Drop = Column("drop"),
            EarlyDrop = Column("early_drop"),
            Error = Column("icmp_error"),
            SearchRestart = Column("search_restart"),
            ClashResolve = Column("clashres"),
            ChainTooLong = Column("chainlength"),
        };
    }

    private static string Excerpt(string field) => field.Length <= 20 ? field : field[..20] + "...";
}
