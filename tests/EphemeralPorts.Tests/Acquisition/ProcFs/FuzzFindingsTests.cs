using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Model;

namespace EphemeralPorts.Tests.Acquisition.ProcFs;

/// <summary>
/// What fuzzing found (README, "Fuzzing"), each kept as the input that showed it. The harness
/// checks, beyond "throws nothing unexpected", what the model relies on: socket counts and times
/// left are never negative. afl-fuzz found the sockstat sum; the timer overflow of the same kind
/// was found by feeding that check the largest values by hand (afl-fuzz had not reached it).
/// </summary>
public class FuzzFindingsTests
{
    [Theory]
    [InlineData("sock\nTCP: inuse 7 or 0 tw 9223372036854775807\n\n\n\n\n", null)] // afl-fuzz's input, 48 s in, as it found it
    [InlineData("TCP: inuse 9223372036854775807 orphan 0 tw 1 alloc 0 mem 0\n", null)]
    [InlineData("TCP: inuse 1 orphan 0 tw 9223372036854775807 alloc 0 mem 0\n", "TCP6: inuse 9223372036854775807\n")]
    public void Sockstat_counts_whose_sum_overflows_give_no_hint(string sockstat, string? sockstat6) =>
        SockstatParser.TcpSockets(sockstat, sockstat6).ShouldBeNull("a sum past long.MaxValue wrapped to a negative socket count");

    [Theory]
    [InlineData("FFFFFFFFFFFFFFFF")]
    [InlineData("8000000000000000")]
    [InlineData("1000000000000000")]
    public void A_time_wait_timer_beyond_any_clock_is_refused(string when)
    {
        var line = $"   0: 0100007F:9C40 0100007F:1388 06 00000000:00000000 03:{when} 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1";
        SocketTableParser.TryParse(System.Text.Encoding.ASCII.GetBytes(line), Transport.Tcp, ipv6: false, out var entry, out var error).ShouldBeFalse($"it became a time left of {entry.TimeWaitRemainingMs} ms");
        error.ShouldBe("timer tm->when is beyond any clock");
    }

    [Fact]
    public void The_largest_timer_a_kernel_prints_for_time_wait_still_reads()
    {
        // TCP_TIMEWAIT_LEN is 60 s: 6000 clock ticks.
        const string line = "   0: 0100007F:9C40 0100007F:1388 06 00000000:00000000 03:00001770 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1";
        SocketTableParser.TryParse(System.Text.Encoding.ASCII.GetBytes(line), Transport.Tcp, ipv6: false, out var entry, out _).ShouldBeTrue();
        entry.TimeWaitRemainingMs.ShouldBe(60_000);
    }
}
