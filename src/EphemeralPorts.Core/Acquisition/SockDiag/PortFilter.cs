using System.Buffers.Binary;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition.SockDiag;

/// <summary>Bounds on the local (source) or remote (destination) port of a socket, both inclusive.</summary>
public readonly record struct PortBounds(bool Remote, int Low, int High)
{
    public static PortBounds Local(PortRange range) => new(false, range.Low, range.High);

    public static PortBounds RemoteIs(int port) => new(true, port, port);

    public static PortBounds RemoteFrom(int port) => new(true, port, 65535);

    public bool Matches(int localPort, int remotePort)
    {
        var port = Remote ? remotePort : localPort;
        return port >= Low && port <= High;
    }
}

/// <summary>
/// A socket filter the kernel runs before it copies a socket (inet_diag bytecode, INET_DIAG_REQ_BYTECODE):
/// any of its clauses, each a conjunction of port bounds. As inet_diag_bc_run() runs a program, each
/// op either passes (advance by <c>yes</c>) or fails (jump by <c>no</c>); the socket is kept when
/// the run ends exactly at the end of the program. inet_diag_bc_audit() only accepts a program
/// whose <c>no</c> targets lie on the chain of <c>yes</c> steps from its start, so clauses are laid
/// out one after the other, joined by an unconditional jump to the end (the layout <c>ss</c> uses
/// for "or"): clause 1, JMP, clause 2, JMP, ... clause n.
/// </summary>
public sealed class PortFilter
{
    private const byte OpJump = 1;
    private const byte OpSourceGreaterOrEqual = 2;
    private const byte OpSourceLessOrEqual = 3;
    private const byte OpDestinationGreaterOrEqual = 4;
    private const byte OpDestinationLessOrEqual = 5;
    private const int ComparisonLength = 8; // the op, then a second op whose "no" holds the port
    private const int JumpLength = 4;

    private PortFilter(IReadOnlyList<IReadOnlyList<PortBounds>> clauses)
    {
        if (clauses.Count == 0 || clauses.Any(c => c.Count == 0))
        {
            throw new ArgumentException("a filter needs at least one clause, and each clause a bound", nameof(clauses));
        }

        foreach (var bound in clauses.SelectMany(c => c))
        {
            if (bound.Low < 0 || bound.High > 65535 || bound.Low > bound.High)
            {
                throw new ArgumentOutOfRangeException(nameof(clauses), $"port bounds {bound.Low}-{bound.High} are not a range of ports");
            }
        }

        Clauses = clauses;
    }

    public IReadOnlyList<IReadOnlyList<PortBounds>> Clauses { get; }

    /// <summary>Sockets whose local port lies in <paramref name="range"/>.</summary>
    public static PortFilter LocalPortIn(PortRange range) => new([[PortBounds.Local(range)]]);

    /// <summary>Sockets that match every bound of any one clause.</summary>
    public static PortFilter AnyOf(params IReadOnlyList<PortBounds>[] clauses) => new(clauses);

    /// <summary>What the program means: whether the kernel keeps a socket with these ports (the tests hold the bytes to it).</summary>
    public bool Matches(int localPort, int remotePort) => Clauses.Any(c => c.All(b => b.Matches(localPort, remotePort)));

    /// <summary>Length of the program in bytes.</summary>
    public int Length => (Clauses.Sum(c => c.Count) * 2 * ComparisonLength) + ((Clauses.Count - 1) * JumpLength);

    /// <summary>Writes the program (without the netlink attribute header) into <paramref name="code"/>.</summary>
    public void Write(Span<byte> code)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("netlink messages are built for little-endian hosts");
        }

        var length = Length;
        var reject = length + 4; // past the end: the run ends below zero, the socket is dropped
        var at = 0;
        for (var c = 0; c < Clauses.Count; c++)
        {
            var ops = Ops(Clauses[c]).ToList();
            var last = c == Clauses.Count - 1;
            var clauseEnd = at + (ops.Count * ComparisonLength);
            var next = last ? reject : clauseEnd + JumpLength; // where a failed bound sends the run
            foreach (var (op, port) in ops)
            {
                WriteOp(code[at..], op, ComparisonLength, (ushort)(next - at));
                WriteOp(code[(at + 4)..], 0, 0, (ushort)port);
                at += ComparisonLength;
            }

            if (!last)
            {
                // Every bound held: jump (JMP always takes "no") to the end, which keeps the socket.
                WriteOp(code[at..], OpJump, JumpLength, (ushort)(length - at));
                at += JumpLength;
            }
        }
    }

    // Two comparisons a bound, its low then its high end.
    private static IEnumerable<(byte Code, int Port)> Ops(IReadOnlyList<PortBounds> clause)
    {
        foreach (var bound in clause)
        {
            yield return (bound.Remote ? OpDestinationGreaterOrEqual : OpSourceGreaterOrEqual, bound.Low);
            yield return (bound.Remote ? OpDestinationLessOrEqual : OpSourceLessOrEqual, bound.High);
        }
    }

    // struct inet_diag_bc_op { __u8 code; __u8 yes; __u16 no; } in host order.
    private static void WriteOp(Span<byte> at, byte code, byte yes, ushort no)
    {
        at[0] = code;
        at[1] = yes;
        BinaryPrimitives.WriteUInt16LittleEndian(at[2..], no);
    }

    public override string ToString() =>
        string.Join(" or ", Clauses.Select(c => string.Join(" and ", c.Select(b => $"{(b.Remote ? "dport" : "sport")} {(b.Low == b.High ? $"{b.Low}" : $"{b.Low}-{b.High}")}"))));
}
