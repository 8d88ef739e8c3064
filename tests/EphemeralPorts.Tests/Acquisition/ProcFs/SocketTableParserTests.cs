using System.Text;
using EphemeralPorts.Model;
using EphemeralPorts.Acquisition.ProcFs;

namespace EphemeralPorts.Tests.Acquisition.ProcFs;

/// <summary>
/// Lines are real kernel output: copied from /proc/net/{tcp,tcp6,udp,udp6} of a Linux 6.18
/// x86_64 host (little-endian), in a namespace where a Python script made each socket.
/// </summary>
public class SocketTableParserTests
{
    private static SocketEntry Parse(string line, Transport transport, bool ipv6)
    {
        SocketTableParser.TryParse(Encoding.ASCII.GetBytes(line), transport, ipv6, out var entry, out var error).ShouldBeTrue(error);
        return entry;
    }

    [Fact]
    public void Ipv4_listener_reverses_the_address_word()
    {
        var e = Parse("   0: 0100007F:1388 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 29301 2 00000000b82ee069 100 0 0 10 0                     ", Transport.Tcp, ipv6: false);
        e.LocalAddress.ToString().ShouldBe("127.0.0.1");
        e.LocalPort.ShouldBe(5000);
        e.RemoteAddress.IsUnspecified.ShouldBeTrue();
        e.RemotePort.ShouldBe(0);
        e.State.ShouldBe(TcpState.Listen);
        e.Inode.ShouldBe(29301);
        e.TimeWaitRemainingMs.ShouldBe(-1);
    }

    [Fact]
    public void Time_wait_line_has_its_remaining_time_in_clock_ticks()
    {
        // get_timewait4_sock(): timer 3, 0x1752 = 5970 ticks of 10 ms left of the 60 s.
        var e = Parse("   1: 0100007F:896A 0100007F:1388 06 00000000:00000000 03:00001752 00000000     0        0 0 3 0000000063786450                                      ", Transport.Tcp, ipv6: false);
        e.State.ShouldBe(TcpState.TimeWait);
        e.LocalPort.ShouldBe(0x896A);
        e.RemoteAddress.ToString().ShouldBe("127.0.0.1");
        e.RemotePort.ShouldBe(5000);
        e.TimeWaitRemainingMs.ShouldBe(59_700);
    }

    [Fact]
    public void Ipv6_reverses_each_of_the_four_words()
    {
        var e = Parse("   1: 00000000000000000000000001000000:1770 00000000000000000000000001000000:91C8 01 00000000:00000000 00:00000000 00000000     0        0 0 1 000000008026b0db 20 0 0 10 -1", Transport.Tcp, ipv6: true);
        e.LocalAddress.ToString().ShouldBe("::1");
        e.LocalAddress.IsV4.ShouldBeFalse();
        e.LocalAddress.IsLoopback.ShouldBeTrue();
        e.LocalPort.ShouldBe(6000);
        e.RemotePort.ShouldBe(0x91C8);
        e.State.ShouldBe(TcpState.Established);
    }

    [Fact]
    public void V4_mapped_socket_in_tcp6_is_the_same_address_as_in_tcp()
    {
        var mapped = Parse("   3: 0000000000000000FFFF00000100007F:920C 0000000000000000FFFF00000100007F:1388 01 00000000:00000000 00:00000000 00000000     0        0 29305 2 00000000fadda1d2 20 0 0 10 -1", Transport.Tcp, ipv6: true);
        var plain = Parse("   3: 0100007F:920A 0100007F:1388 08 00000000:00000001 00:00000000 00000000     0        0 29303 2 00000000fe2889de 20 4 0 10 -1                     ", Transport.Tcp, ipv6: false);
        mapped.LocalAddress.IsV4.ShouldBeTrue();
        mapped.LocalAddress.ToString().ShouldBe("127.0.0.1");
        mapped.RemoteAddress.ShouldBe(plain.RemoteAddress);
        mapped.LocalAddress.ShouldBe(plain.LocalAddress);
    }

    [Fact]
    public void Udp_lines_with_wide_slot_numbers()
    {
        var v4 = Parse("14962: 00000000:C9FF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 29307 2 000000002742709f 0         ", Transport.Udp, ipv6: false);
        v4.Transport.ShouldBe(Transport.Udp);
        v4.LocalPort.ShouldBe(0xC9FF);
        v4.State.ShouldBe((byte)7);
        var v6 = Parse(" 1204: 00000000000000000000000001000000:D441 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 29308 2 000000001cddf429 0", Transport.Udp, ipv6: true);
        v6.RemoteAddress.ToString().ShouldBe("::1");
        v6.RemotePort.ShouldBe(53);
    }

    [Fact]
    public void Global_ipv6_address_keeps_its_byte_order()
    {
        // 2001:db8::1 is 20010DB8 00000000 00000000 00000001 in network order; each word printed reversed.
        var e = Parse("   0: B80D0120000000000000000001000000:9C40 B80D0120000000000000000002000000:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 20 0 0 10 -1", Transport.Tcp, ipv6: true);
        e.LocalAddress.ToString().ShouldBe("2001:db8::1");
        e.RemoteAddress.ToString().ShouldBe("2001:db8::2");
        e.RemoteAddress.WithPort(e.RemotePort).ShouldBe("[2001:db8::2]:443");
    }

    [Theory]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A", false, "truncated line: 4 fields where at least 10 are expected")]
    [InlineData("   0: 0100007G:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", false, "address is not 8 hex digits ':' 4 hex digits")]
    [InlineData("   0: 0100007F:11388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", false, "address is not 8 hex digits ':' 4 hex digits")]
    [InlineData("   0: 0100007F1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", false, "address is not 8 hex digits ':' 4 hex digits")]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", true, "address is not 32 hex digits ':' 4 hex digits")]
    [InlineData("   0: 0100007F:1388 00000000:0000 XY 00000000:00000000 00:00000000 00000000 0 0 1", false, "state is not 2 hex digits")]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 0000000000 00000000 0 0 1", false, "timer is not 'tr:tm->when' in hex")]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 root 0 1", false, "uid or inode is not a decimal number")]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 -1", false, "uid or inode is not a decimal number")]
    [InlineData("   0 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", false, "first field is not a slot number ('N:')")]
    public void Refuses_garbage_with_the_reason(string line, bool ipv6, string reason)
    {
        SocketTableParser.TryParse(Encoding.ASCII.GetBytes(line), Transport.Tcp, ipv6, out _, out var error).ShouldBeFalse();
        error.ShouldBe(reason);
    }

    [Theory]
    [InlineData("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", true)]
    [InlineData("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops", true)]
    [InlineData("   0: 0100007F:1388 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 29301", false)]
    [InlineData("garbage", false)]
    public void Recognises_the_kernel_header(string line, bool header) =>
        SocketTableParser.IsHeader(Encoding.ASCII.GetBytes(line)).ShouldBe(header);
}
