using System.Buffers.Binary;
using System.Text.RegularExpressions;
using EphemeralPorts.Kinds.Nat;
using EphemeralPorts.Plugin;
using EphemeralPorts.Tests.Support;

namespace EphemeralPorts.Tests.Kinds.Nat;

/// <summary>
/// The conntrack counters from both sources and the table-size sysctls, on the files captured with
/// the dump (tests/fixtures/conntrack: an 11th connection through a full 10-port range made
/// insert_failed and drop rise on each CPU that saw one of its SYNs).
/// </summary>
public class ConntrackStatisticsTests
{
    private static readonly string Dir = Path.Combine(Repo.Fixtures, "conntrack");

    private static string Text(string name) => File.ReadAllText(Path.Combine(Dir, name));

    [Fact]
    public void The_captured_cpu_statistics_sum_to_what_conntrack_S_printed()
    {
        var stats = ConntrackStatistics.ParseCpuStatsDump(File.ReadAllBytes(Path.Combine(Dir, "ct-stats-cpu.bin")));

        // conntrack -S: "cpu=N found=... insert_failed=..." per CPU; the oracle, summed by hand here.
        var rows = Text("conntrack-S.txt").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        ulong Sum(string name) => (ulong)rows.Sum(r => long.Parse(Regex.Match(r, $@"\b{name}=(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        stats.Cpus.ShouldBe(rows.Length);
        stats.Found.ShouldBe(Sum("found"));
        stats.Invalid.ShouldBe(Sum("invalid"));
        stats.Insert.ShouldBe(Sum("insert"));
        stats.InsertFailed.ShouldBe(Sum("insert_failed"));
        stats.Drop.ShouldBe(Sum("drop"));
        stats.EarlyDrop.ShouldBe(Sum("early_drop"));
        stats.Error.ShouldBe(Sum("error"));
        stats.SearchRestart.ShouldBe(Sum("search_restart"));
        stats.ClashResolve.ShouldBe(Sum("clash_resolve"));
        stats.ChainTooLong.ShouldBe(Sum("chaintoolong"));
        stats.InsertFailed.ShouldBe(2ul, "the capture's refused connection");
        stats.Entries.ShouldBeNull("ctnetlink's per-CPU dump has no entry count");
    }

    [Fact]
    public void The_captured_proc_file_gives_the_same_counters_and_the_entry_count()
    {
        var proc = ConntrackStatistics.ParseProcStat(Text("proc-stat-nf_conntrack.txt"), "nf_conntrack");
        var netlink = ConntrackStatistics.ParseCpuStatsDump(File.ReadAllBytes(Path.Combine(Dir, "ct-stats-cpu.bin")));
        proc.Cpus.ShouldBe(netlink.Cpus);
        proc.Entries.ShouldBe((ulong)ConntrackTableSize.ParseCount(Text("nf_conntrack_count.txt"), "count"));
        proc.Entries.ShouldBe(16ul);
        (proc with { Entries = null }).ShouldBe(netlink);
    }

    [Fact]
    public void Proc_columns_are_found_by_name_and_summed_over_cpus()
    {
        const string Text = "entries  drop insert_failed  extra\n00000003 00000001 0000000a  ffffffff\n00000003  00000002 00000001 00000000\n";
        var stats = ConntrackStatistics.ParseProcStat(Text, "f");
        stats.ShouldBe(new ConntrackStatistics { Cpus = 2, Entries = 3, Drop = 3, InsertFailed = 11 });
    }

    [Theory]
    [InlineData("", "f: line 1 is not the header naming the columns (no \"entries\")")]
    [InlineData("00000001 00000002\n", "f: line 1 is not the header naming the columns (no \"entries\")")]
    [InlineData("entries drop\n", "f: no CPU rows after the header")]
    [InlineData("entries drop\n00000001\n", "f: line 2 has 1 fields, the header names 2")]
    [InlineData("entries drop\n00000001 0000zz01\n", "f: line 2, column drop: '0000zz01' is not a hex number")]
    [InlineData("entries drop\n00000001 00000001000000000\n", "f: line 2, column drop: '00000001000000000' is not a hex number")]
    [InlineData("entries drop\n00000001 00000001\n\n", "f: line 3 has 0 fields, the header names 2")]
    public void A_damaged_proc_file_is_refused_with_its_line(string text, string message) =>
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseProcStat(text, "f")).Message.ShouldBe(message);

    [Fact]
    public void A_sum_past_64_bits_is_refused_not_wrapped() =>
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseProcStat("entries drop\n0 ffffffffffffffff\n0 1\n", "f"))
            .Message.ShouldBe("f: line 3, column drop: the sum over the CPUs passes 2^64");

    [Theory]
    [InlineData("16\n", 16)]
    [InlineData("0\n", 0)]
    [InlineData("262144", 262144)]
    [InlineData("4294967295\n", 4294967295)]
    public void Table_sizes_parse(string text, long value)
    {
        ConntrackTableSize.ParseCount(text, "c").ShouldBe(value);
        ConntrackTableSize.ParseMax(text, "m").ShouldBe(value);
    }

    [Theory]
    [InlineData("", "''")]
    [InlineData("\n", "''")]
    [InlineData("-1\n", "'-1'")]
    [InlineData("12 34\n", "'12 34'")]
    [InlineData("4294967296\n", "'4294967296'")]
    [InlineData("1\n\n", "'1\\n'")]
    [InlineData("99999999999999999999999999\n", "'99999999999999999999...'")]
    public void A_table_size_that_is_not_one_number_is_refused(string text, string shown)
    {
        Should.Throw<CheckException>(() => ConntrackTableSize.ParseCount(text, "/proc/sys/net/netfilter/nf_conntrack_count"))
            .Message.ShouldBe($"/proc/sys/net/netfilter/nf_conntrack_count: nf_conntrack_count should be one unsigned number, found {shown}");
        Should.Throw<CheckException>(() => ConntrackTableSize.ParseMax(text, "max")).Message.ShouldStartWith("max: nf_conntrack_max should be one unsigned number");
    }

    [Fact]
    public void The_captured_limit_parses() =>
        ConntrackTableSize.ParseMax(Text("nf_conntrack_max.txt"), "max").ShouldBe(262144);

    [Fact]
    public void A_damaged_statistics_dump_is_refused_with_its_offset()
    {
        var dump = File.ReadAllBytes(Path.Combine(Dir, "ct-stats-cpu.bin"));
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseCpuStatsDump(dump[..50]))
            .Message.ShouldBe("ctnetlink dump malformed: netlink message of 100 bytes where 50 remain at byte 0 (message at byte 0)");
        var wrongSize = dump.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(wrongSize.AsSpan(20), 6); // the first CTA_STATS_* attribute
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseCpuStatsDump(wrongSize))
            .Message.ShouldBe("ctnetlink dump malformed: statistics attribute 2 of 2 bytes, not 4 at byte 24 (message at byte 0)");
        var wrongType = dump.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(wrongType.AsSpan(104), 0x0100);
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseCpuStatsDump(wrongType))
            .Message.ShouldBe("ctnetlink dump malformed: message type 0x0100, not conntrack statistics (0x0104) at byte 104 (message at byte 100)");
        Should.Throw<CheckException>(() => ConntrackStatistics.ParseCpuStatsDump(dump[..^20]))
            .Message.ShouldBe("ctnetlink dump malformed: the statistics dump ends without NLMSG_DONE at byte 200 (message at byte 200)");
    }
}
