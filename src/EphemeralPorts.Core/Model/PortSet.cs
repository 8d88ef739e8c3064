using System.Numerics;

namespace EphemeralPorts.Model;

/// <summary>
/// A set of port numbers 0..65535 as an 8 KiB bitmap, made on the first port added: a namespace
/// with nothing in it (most of hundreds of pods) allocates none.
/// </summary>
public sealed class PortSet
{
    private const int Words = 1024;
    private ulong[]? _bits;

    public int Count { get; private set; }

    public bool Contains(int port) => _bits is { } bits && (uint)port <= 65535 && (bits[port >> 6] & (1UL << (port & 63))) != 0;

    /// <summary>Adds a port; false when it was there already.</summary>
    public bool Add(int port)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)port, 65535u, nameof(port));
        _bits ??= new ulong[Words];
        ref var word = ref _bits[port >> 6];
        var mask = 1UL << (port & 63);
        if ((word & mask) != 0)
        {
            return false;
        }

        word |= mask;
        Count++;
        return true;
    }

    /// <summary>Removes a port; false when it was not there.</summary>
    public bool Remove(int port)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)port, 65535u, nameof(port));
        if (_bits is null)
        {
            return false;
        }

        ref var word = ref _bits[port >> 6];
        var mask = 1UL << (port & 63);
        if ((word & mask) == 0)
        {
            return false;
        }

        word &= ~mask;
        Count--;
        return true;
    }

    public void AddRange(int first, int last)
    {
        for (var port = first; port <= last; port++)
        {
            Add(port);
        }
    }

    public int CountIn(PortRange range)
    {
        if (Count == 0)
        {
            return 0;
        }

        var count = 0;
        for (var port = range.Low; port <= range.High; port++)
        {
            if (Contains(port))
            {
                count++;
            }
        }

        return count;
    }

    public IEnumerable<int> Ports()
    {
        for (var word = 0; _bits is not null && word < Words; word++)
        {
            var bits = _bits[word];
            while (bits != 0)
            {
                var bit = BitOperations.TrailingZeroCount(bits);
                yield return (word << 6) | bit;
                bits &= bits - 1;
            }
        }
    }

    /// <summary>Ports in kernel sysctl notation, e.g. <c>40000-40003,40007</c>.</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        int? first = null;
        var previous = -2;
        foreach (var port in Ports())
        {
            if (port != previous + 1)
            {
                Flush();
                first = port;
            }

            previous = port;
        }

        Flush();
        return string.Join(',', parts);

        void Flush()
        {
            if (first is { } f)
            {
                parts.Add(f == previous ? $"{f}" : $"{f}-{previous}");
            }
        }
    }
}
