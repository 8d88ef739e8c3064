using System.Buffers.Binary;
using EphemeralPorts.Model;
using EphemeralPorts.Acquisition.SockDiag;

namespace EphemeralPorts.Tests.Acquisition.SockDiag;

/// <summary>
/// The bytecode a <see cref="PortFilter"/> writes, run the way net/ipv4/inet_diag.c runs it
/// (inet_diag_bc_run) after checking it the way the kernel checks a program before accepting the
/// request (inet_diag_bc_audit, valid_cc). The kernel itself runs every filter in the oracle and
/// lane tests; these pin down the edges of each bound without a namespace.
/// </summary>
public class PortFilterTests
{
    private static readonly PortRange Range = new(40000, 42998);

    public static TheoryData<string> Filters() => ["local", "first lane", "second lane", "three clauses"];

    private static PortFilter Make(string name)
    {
        var split = SockDiagScanner.SplitPort(Range);
        return name switch
        {
            "local" => PortFilter.LocalPortIn(Range),
            "first lane" => PortFilter.AnyOf([PortBounds.Local(new PortRange(Range.Low, split - 1))], [PortBounds.Local(Range), PortBounds.RemoteIs(0)]),
            "second lane" => PortFilter.AnyOf([PortBounds.Local(new PortRange(split, Range.High)), PortBounds.RemoteFrom(1)]),
            _ => PortFilter.AnyOf([PortBounds.Local(new PortRange(100, 200))], [PortBounds.RemoteIs(443)], [PortBounds.Local(Range), PortBounds.RemoteFrom(1000)]),
        };
    }

    [Theory]
    [MemberData(nameof(Filters))]
    public void The_kernel_would_accept_the_program(string name)
    {
        var filter = Make(name);
        var code = new byte[filter.Length];
        filter.Write(code);
        Audit(code).ShouldBeTrue();
    }

    [Theory]
    [MemberData(nameof(Filters))]
    public void The_program_keeps_exactly_the_sockets_the_filter_describes(string name)
    {
        var filter = Make(name);
        var code = new byte[filter.Length];
        filter.Write(code);
        var split = SockDiagScanner.SplitPort(Range);
        int[] locals = [0, 99, 100, 200, 201, 5000, Range.Low - 1, Range.Low, Range.Low + 1, split - 1, split, split + 1, Range.High - 1, Range.High, Range.High + 1, 65535];
        int[] remotes = [0, 1, 443, 999, 1000, 5000, 65535];
        foreach (var local in locals)
        {
            foreach (var remote in remotes)
            {
                Run(code, local, remote).ShouldBe(filter.Matches(local, remote), $"{filter}: sport {local} dport {remote}");
            }
        }
    }

    [Fact]
    public void The_two_lanes_share_every_socket_of_the_range_between_them_and_nothing_else()
    {
        var first = Make("first lane");
        var second = Make("second lane");
        var split = SockDiagScanner.SplitPort(Range);
        split.ShouldBe(Range.Low + 999);
        foreach (var local in new[] { Range.Low - 1, Range.Low, split - 1, split, Range.High, Range.High + 1 })
        {
            foreach (var remote in new[] { 0, 1, 80 })
            {
                var lanes = (first.Matches(local, remote) ? 1 : 0) + (second.Matches(local, remote) ? 1 : 0);
                lanes.ShouldBe(Range.Contains(local) ? 1 : 0, $"sport {local} dport {remote}");
            }
        }

        first.Matches(split + 5, 0).ShouldBeTrue("listeners and bound-but-idle sockets of the upper part go to the first lane");
    }

    [Fact]
    public void Bounds_that_are_no_range_of_ports_are_refused()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => PortFilter.AnyOf([new PortBounds(false, 5, 4)]));
        Should.Throw<ArgumentOutOfRangeException>(() => PortFilter.AnyOf([new PortBounds(true, 0, 65536)]));
        Should.Throw<ArgumentException>(() => PortFilter.AnyOf());
        Should.Throw<ArgumentException>(() => PortFilter.AnyOf([]));
    }

    // inet_diag_bc_run(): each op passes or fails; a pass moves on by "yes", a failure by "no";
    // kept when the run ends exactly at the end.
    private static bool Run(byte[] code, int sport, int dport)
    {
        var at = 0;
        var len = code.Length;
        while (len > 0)
        {
            var op = code[at];
            var port = op is >= 2 and <= 5 ? BinaryPrimitives.ReadUInt16LittleEndian(code.AsSpan(at + 6)) : 0;
            var yes = op switch
            {
                0 => true, // NOP
                1 => false, // JMP
                2 => sport >= port,
                3 => sport <= port,
                4 => dport >= port,
                5 => dport <= port,
                _ => throw new InvalidOperationException($"op {op}"),
            };
            var step = yes ? code[at + 1] : BinaryPrimitives.ReadUInt16LittleEndian(code.AsSpan(at + 2));
            len -= step;
            at += step;
        }

        return len == 0;
    }

    // inet_diag_bc_audit(): along the chain of "yes" steps, every op is known, each port comparison
    // has its second word, every "no" lands on an op of that chain or just past the end (4 bytes
    // further rejects), and the chain ends exactly at the end.
    private static bool Audit(byte[] code)
    {
        var at = 0;
        var len = code.Length;
        while (len > 0)
        {
            var op = code[at];
            var yes = code[at + 1];
            var no = BinaryPrimitives.ReadUInt16LittleEndian(code.AsSpan(at + 2));
            int minLength;
            switch (op)
            {
                case >= 2 and <= 5:
                    if (len < 8)
                    {
                        return false;
                    }

                    minLength = 8;
                    break;
                case 0 or 1:
                    minLength = 4;
                    break;
                default:
                    return false;
            }

            if (op != 0)
            {
                if (no < minLength || no > len + 4 || (no & 3) != 0)
                {
                    return false;
                }

                if (no < len && !ValidTarget(code, len - no))
                {
                    return false;
                }
            }

            if (yes < minLength || yes > len + 4 || (yes & 3) != 0)
            {
                return false;
            }

            at += yes;
            len -= yes;
        }

        return len == 0;
    }

    // valid_cc(): a target, given as the length left after it, is on the "yes" chain from the start.
    private static bool ValidTarget(byte[] code, int left)
    {
        var at = 0;
        var len = code.Length;
        while (len >= 0)
        {
            if (left > len)
            {
                return false;
            }

            if (left == len)
            {
                return true;
            }

            var yes = code[at + 1];
            if (yes < 4 || (yes & 3) != 0)
            {
                return false;
            }

            len -= yes;
            at += yes;
        }

        return false;
    }
}
