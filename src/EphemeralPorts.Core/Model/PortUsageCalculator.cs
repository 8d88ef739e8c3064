namespace EphemeralPorts.Model;

/// <summary>
/// The capacity formula of docs/kernel-model.md, fed one socket at a time by any source.
/// <code>
/// capacity_T = |R| - |Reserved| - |Excl|
/// used_T     = distinct ports of R \ Reserved \ Excl held by tuple T, reusable TIME_WAIT excepted
/// UDP        = distinct UDP local ports of R \ Reserved, against |R| - |Reserved|
/// bind(A, 0) = ports of R \ Reserved held by a TCP socket on A or on a wildcard covering A
/// </code>
/// Excl (ports taken by bind()/listen()) is only known once every socket was seen, so each socket
/// of a tuple is kept in its tuple's list as one packed (kind, port) number, 4 bytes and no object
/// per socket; <see cref="Finish"/> counts each tuple's distinct (kind, port) pairs against a
/// bitmap, which drops duplicates (a /proc table read while it changes can show a socket twice)
/// and sockets on excluded ports (inbound children and TIME_WAITs of an in-range listener are no
/// outbound tuple). Linear in the sockets: no sort.
/// </summary>
public sealed class PortUsageCalculator(KernelSettings settings, bool recordInodes = false, Func<int, string>? deviceName = null) : ISocketSink
{
    // Interface names of the devices sockets are bound to, looked up once each.
    private readonly Dictionary<int, string> _devices = [];
    private readonly Func<int, string> _deviceName = deviceName ?? (index => $"if{index}");

    // UDP sockets' own IP_LOCAL_PORT_RANGE: each a capacity of its own (udp_lib_get_port()).
    private readonly HashSet<PortRange> _udpOwnRanges = [];

    // With --processes only: (tuple id, socket inode) of every socket counted for a tuple.
    private readonly List<(int TupleId, long Inode)>? _inodes = recordInodes ? [] : null;

    // With --processes only: the inodes of the connections whose port bind(addr, 0) chose, per address.
    private readonly Dictionary<IpAddress, HashSet<long>>? _boundInodes = recordInodes ? [] : null;
    private readonly PortRange _range = settings.Range;
    private readonly PortSet _reserved = settings.Reserved;
    private readonly Dictionary<TupleKey, int> _tupleIds = [];
    private readonly List<TupleAccumulator> _tuples = [];
    private readonly PortSet _exclusivePorts = new();
    private readonly HashSet<ExclusivePort> _exclusive = [];
    private readonly PortSet _tcpPortsInUse = new();
    private readonly PortSet _udpPorts = new();
    private readonly int[] _states = new int[256];
    private int _udpSockets;

    // bind(addr, 0): the ports of the range each local address (or a wildcard) holds, and how
    // many connections there took their port by bind() before connect().
    private readonly Dictionary<IpAddress, AddressAccumulator> _addresses = [];
    private readonly PortSet _v4Wildcard = new();
    private readonly PortSet _v6WildcardDual = new();
    private readonly PortSet _v6WildcardOnly = new();
    private readonly PortSet _listenerPorts = new();

    public void Add(in SocketEntry socket)
    {
        if (!_range.Contains(socket.LocalPort))
        {
            return;
        }

        if (socket.Transport == Transport.Udp)
        {
            AddUdp(socket);
        }
        else
        {
            AddTcp(socket);
        }
    }

    private void AddUdp(in SocketEntry socket)
    {
        _udpSockets++;
        if (!_reserved.Contains(socket.LocalPort))
        {
            _udpPorts.Add(socket.LocalPort);
        }

        if (socket.OwnRange is { } own && Narrowed(own) is { } narrowed)
        {
            _udpOwnRanges.Add(narrowed);
        }
    }

    private void AddTcp(in SocketEntry socket)
    {
        _tcpPortsInUse.Add(socket.LocalPort);
        _states[socket.State]++;
        if (_reserved.Contains(socket.LocalPort))
        {
            return;
        }

        NoteBind(socket);
        if (HoldsPortForEveryTuple(socket))
        {
            // A SO_REUSEPORT group or many idle sockets on one port are one entry; the list is for
            // naming, the count of ports is what costs.
            _exclusivePorts.Add(socket.LocalPort);
            // Listed: the listeners and idle sockets; connections holding a bucket count, unnamed.
            if (_exclusive.Count < MaxListedExclusive && (socket.State == TcpState.Listen || IsBoundOnly(socket)))
            {
                _exclusive.Add(new ExclusivePort(socket.LocalPort, socket.LocalAddress, socket.State));
            }

            return;
        }

        var key = new TupleKey(socket.LocalAddress, socket.RemoteAddress, socket.RemotePort, socket.BoundDevice == 0 ? null : DeviceName(socket.BoundDevice));
        if (!_tupleIds.TryGetValue(key, out var id))
        {
            id = _tuples.Count;
            _tupleIds.Add(key, id);
            _tuples.Add(new TupleAccumulator(key));
        }

        var kind = socket.State != TcpState.TimeWait ? Counted
            : settings.IsReusableTimeWait(socket) ? ReusableTimeWait
            : BlockingTimeWait;
        _tuples[id].Ports.Add((kind << 16) | socket.LocalPort);
        if (socket.OwnRange is { } own && Narrowed(own) is { } narrowed && !_tuples[id].OwnRanges.Contains(narrowed))
        {
            _tuples[id].OwnRanges.Add(narrowed);
        }
        if (_inodes is not null && socket.Inode != 0)
        {
            _inodes.Add((id, socket.Inode));
        }
    }

    private string DeviceName(int index)
    {
        if (!_devices.TryGetValue(index, out var name))
        {
            name = _deviceName(index);
            _devices.Add(index, name);
        }

        return name;
    }

    private const int Counted = 0;
    private const int BlockingTimeWait = 1;
    private const int ReusableTimeWait = 2;
    private const int MaxListedExclusive = 1000;

    /// <summary>
    /// The socket inodes of each tuple's sockets (recorded with <c>recordInodes</c>), in one pass;
    /// a TIME_WAIT socket has none, it belongs to no process any more.
    /// </summary>
    public IReadOnlyList<IReadOnlySet<long>> InodesOf(IReadOnlyList<TupleKey> tuples)
    {
        var sets = tuples.Select(_ => new HashSet<long>()).ToList();
        var index = new Dictionary<int, int>();
        for (var i = 0; i < tuples.Count; i++)
        {
            if (_tupleIds.TryGetValue(tuples[i], out var id))
            {
                index[id] = i;
            }
        }

        foreach (var (id, inode) in _inodes ?? [])
        {
            if (index.TryGetValue(id, out var i))
            {
                sets[i].Add(inode);
            }
        }

        return sets;
    }

    /// <summary>The socket inodes of the connections from <paramref name="address"/> whose port bind(addr, 0) chose (recorded with <c>recordInodes</c>).</summary>
    public IReadOnlySet<long> BoundInodesOf(IpAddress address) =>
        _boundInodes is not null && _boundInodes.TryGetValue(address, out var set) ? set : new HashSet<long>();

    // Listeners, sockets bound but neither listening nor connected (not in /proc/net/tcp), and
    // every socket whose port came through a bind bucket (bind() before connect(), accepted
    // children: seen by BPF only) own their bucket: __inet_hash_connect() skips the port for every
    // destination, whatever the socket's state now.
    private static bool HoldsPortForEveryTuple(in SocketEntry socket) =>
        socket.State == TcpState.Listen
        || IsBoundOnly(socket)
        || socket.PortFromBind;

    private static bool IsBoundOnly(in SocketEntry socket) =>
        socket.State == TcpState.BoundInactive
        || (socket.State == TcpState.Close && socket.RemotePort == 0 && socket.RemoteAddress.IsUnspecified);

    // inet_csk_find_open_port() gives bind(A, 0) a port only where no TCP socket, in any state,
    // holds it on A or on a wildcard that covers A (docs/kernel-model.md, fact 3).
    private void NoteBind(in SocketEntry socket)
    {
        if (socket.LocalAddress.IsUnspecified)
        {
            (socket.LocalAddress.IsV4 ? _v4Wildcard : socket.V6Only ? _v6WildcardOnly : _v6WildcardDual).Add(socket.LocalPort);
            return;
        }

        if (!_addresses.TryGetValue(socket.LocalAddress, out var address))
        {
            address = new AddressAccumulator();
            _addresses.Add(socket.LocalAddress, address);
        }

        address.Ports.Add(socket.LocalPort);

        if (socket.State == TcpState.Listen)
        {
            _listenerPorts.Add(socket.LocalPort);
        }
        else if (socket.Origin == PortOrigin.BindAnyPort && !IsBoundOnly(socket))
        {
            // The Go LocalAddr case: a connection (or its TIME_WAIT) whose port bind(addr, 0)
            // chose. An accepted child has its listener's bucket too: told apart at the end by
            // the listener on its port.
            address.BoundConnectionPorts.Add(socket.LocalPort);
            if (_boundInodes is not null && socket.Inode != 0)
            {
                (_boundInodes.TryGetValue(socket.LocalAddress, out var set) ? set : _boundInodes[socket.LocalAddress] = []).Add(socket.Inode);
            }
        }
    }

    private sealed class AddressAccumulator
    {
        public PortSet Ports { get; } = new();

        /// <summary>The local port of each connection whose bucket bind(addr, 0) or listen() made.</summary>
        public List<int> BoundConnectionPorts { get; } = [];
    }

    /// <summary>
    /// The model of what was added. <paramref name="seesPortOrigin"/>: the source showed how each
    /// port was got (BPF), so the bind(addr, 0) figure can be given; otherwise it is left out.
    /// </summary>
    public PortUsage Finish(bool tcp = true, bool udp = true, bool seesPortOrigin = false)
    {
        var reservedInRange = _reserved.CountIn(_range);
        var available = _range.Size - reservedInRange;
        return new PortUsage(settings, reservedInRange, tcp ? FinishTcp(available, seesPortOrigin) : null, udp ? FinishUdp(available) : null);
    }

    // The whole range, or a socket's own range where that is fuller: udp_lib_get_port() searches
    // only the socket's range (inet_sk_get_local_port_range()), so its sockets fail there first.
    private UdpUsage FinishUdp(int available)
    {
        var worst = new UdpUsage(_udpPorts.Count, available, _udpSockets);
        foreach (var own in _udpOwnRanges.OrderBy(r => r.Low).ThenBy(r => r.High))
        {
            int capacity = 0, used = 0;
            for (var port = own.Low; port <= own.High; port++)
            {
                capacity += _reserved.Contains(port) ? 0 : 1;
                used += _udpPorts.Contains(port) ? 1 : 0;
            }

            if (Plugin.Numbers.Percent(used, capacity) > worst.Percent)
            {
                worst = new UdpUsage(used, capacity, _udpSockets) { OwnRange = own };
            }
        }

        return worst;
    }

    /// <summary>
    /// The port an odd-sized range guarantees no tuple (<see cref="KernelSettings.RangeSizeIsOdd"/>):
    /// 1 when an end port the scan may skip is one a connection could use, else 0.
    /// </summary>
    private int OddRangeLoss(Func<int, bool> usable) =>
        settings.RangeSizeIsOdd && (usable(_range.Low) || usable(_range.High)) ? 1 : 0;

    // Per local address with a connection whose port bind(addr, 0) chose: the ports of the range,
    // less reserved ones, that bind(addr, 0) can no longer take.
    private BindUsage FinishBind(int available)
    {
        var addresses = new List<AddressBindUsage>();
        foreach (var (address, ports) in _addresses)
        {
            // Connections on a listener's port are its accepted children, not bind() before connect().
            var bound = ports.BoundConnectionPorts.Count(p => !_listenerPorts.Contains(p));
            if (bound == 0)
            {
                continue;
            }

            var used = 0;
            for (var port = _range.Low; port <= _range.High; port++)
            {
                if (!_reserved.Contains(port) && (ports.Ports.Contains(port) || _v6WildcardDual.Contains(port)
                    || (address.IsV4 ? _v4Wildcard.Contains(port) : _v6WildcardOnly.Contains(port))))
                {
                    used++;
                }
            }

            // inet_csk_find_open_port() scans an odd-sized range like connect() does: an end port
            // may be skipped, so bind(addr, 0) is guaranteed one port less.
            var capacity = available - OddRangeLoss(port => !_reserved.Contains(port));
            addresses.Add(new AddressBindUsage(address, Math.Min(used, capacity), capacity, bound));
        }

        addresses.Sort(static (a, b) => a.Used != b.Used ? b.Used.CompareTo(a.Used) : a.Address.CompareTo(b.Address));
        return new BindUsage(addresses);
    }

    private TcpUsage FinishTcp(int available, bool seesPortOrigin)
    {
        // Bitmaps emptied again after each tuple: a port counts once among the tuple's used ports
        // (whatever kinds of socket hold it), and once per kind of TIME_WAIT.
        var used = new PortSet();
        PortSet[] seen = [new(), new(), new()];
        int timeWait = 0, reusableTimeWait = 0;
        foreach (var tuple in _tuples)
        {
            tuple.Used = tuple.TimeWait = tuple.ReusableTimeWait = 0;

            // A connect() bound to a device meets the sockets bound to it and those bound to none
            // (inet_sk_bound_dev_eq()); one bound to none meets only those bound to none. So a
            // device's tuple counts the unbound tuple's ports too (in its used figure, not in the
            // host's TIME_WAIT totals, which count each socket once).
            var unbound = tuple.Key.Device is not null && _tupleIds.TryGetValue(tuple.Key.Unbound, out var baseId) ? _tuples[baseId] : null;
            foreach (var packed in unbound?.Ports ?? [])
            {
                var port = packed & 0xFFFF;
                if (!_exclusivePorts.Contains(port) && packed >> 16 != ReusableTimeWait && used.Add(port))
                {
                    tuple.Used++;
                }
            }

            foreach (var packed in tuple.Ports)
            {
                var port = packed & 0xFFFF;
                var kind = packed >> 16;
                if (_exclusivePorts.Contains(port))
                {
                    continue;
                }

                if (kind != ReusableTimeWait && used.Add(port))
                {
                    tuple.Used++;
                }

                if (kind != Counted && seen[kind].Add(port))
                {
                    tuple.TimeWait++;
                    timeWait++;
                    tuple.ReusableTimeWait += kind == ReusableTimeWait ? 1 : 0;
                    reusableTimeWait += kind == ReusableTimeWait ? 1 : 0;
                }
            }

            foreach (var packed in tuple.Ports.Concat(unbound?.Ports ?? []))
            {
                used.Remove(packed & 0xFFFF);
                seen[packed >> 16].Remove(packed & 0xFFFF);
            }
        }

        var tuples = new List<TupleUsage>(_tuples.Count);
        foreach (var tuple in _tuples)
        {
            if (tuple.Used > 0 || tuple.TimeWait > 0)
            {
                tuples.Add(new TupleUsage(tuple.Key, tuple.Used, tuple.TimeWait, tuple.ReusableTimeWait));
            }

            if (tuple.OwnRanges.Count > 0)
            {
                tuples.AddRange(NarrowedUsages(tuple));
            }
        }

        // Busiest first: by the share of its own capacity (the same for every tuple but those with
        // a narrowed range), then by ports used.
        var shared = available - _exclusivePorts.Count - OddRangeLoss(port => !_reserved.Contains(port) && !_exclusivePorts.Contains(port));
        tuples.Sort((a, b) =>
        {
            var byShare = Plugin.Numbers.Percent(b.Used, b.OwnCapacity ?? shared).CompareTo(Plugin.Numbers.Percent(a.Used, a.OwnCapacity ?? shared));
            if (byShare != 0)
            {
                return byShare;
            }

            var byUsed = b.Used.CompareTo(a.Used);
            return byUsed != 0 ? byUsed : a.Tuple.CompareTo(b.Tuple);
        });

        var exclusive = _exclusive
            .OrderBy(static e => e.Port)
            .ThenBy(static e => e.Address)
            .ToList();
        return new TcpUsage(
            shared,
            tuples,
            _tcpPortsInUse.Count,
            timeWait,
            reusableTimeWait,
            new SortedDictionary<byte, int>(Enumerable.Range(0, 256).Where(st => _states[st] > 0).ToDictionary(st => (byte)st, st => _states[st])),
            exclusive,
            _exclusivePorts.Count)
        {
            Bind = seesPortOrigin ? FinishBind(available) : null,
        };
    }

    // IP_LOCAL_PORT_RANGE narrows the namespace's range for one socket (inet_sk_get_local_port_range():
    // the socket's bounds, where they lie inside the namespace's); null where it narrows nothing.
    private PortRange? Narrowed(PortRange own)
    {
        var low = own.Low > _range.Low && own.Low <= _range.High ? own.Low : _range.Low;
        var high = own.High < _range.High && own.High >= low ? own.High : _range.High;
        return low == _range.Low && high == _range.High ? null : new PortRange(low, high);
    }

    // For a tuple whose sockets narrow their range: connect() on such a socket has the ports of its
    // range that are neither reserved nor lost to every tuple, less those the tuple holds there.
    private IEnumerable<TupleUsage> NarrowedUsages(TupleAccumulator tuple)
    {
        foreach (var own in tuple.OwnRanges)
        {
            var capacity = 0;
            for (var port = own.Low; port <= own.High; port++)
            {
                capacity += _reserved.Contains(port) || _exclusivePorts.Contains(port) ? 0 : 1;
            }

            var used = new PortSet();
            var timeWait = 0;
            var reusable = 0;
            foreach (var packed in tuple.Ports)
            {
                var port = packed & 0xFFFF;
                var kind = packed >> 16;
                if (!own.Contains(port) || _exclusivePorts.Contains(port))
                {
                    continue;
                }

                if (kind != ReusableTimeWait)
                {
                    used.Add(port);
                }

                timeWait += kind != Counted ? 1 : 0;
                reusable += kind == ReusableTimeWait ? 1 : 0;
            }

            yield return new TupleUsage(tuple.Key, used.Count, timeWait, reusable) { OwnRange = own, OwnCapacity = capacity };
        }
    }

    private sealed class TupleAccumulator(TupleKey key)
    {
        public TupleKey Key { get; } = key;

        /// <summary>The narrowed ranges (IP_LOCAL_PORT_RANGE) its sockets have, each its own capacity.</summary>
        public List<PortRange> OwnRanges { get; } = [];

        /// <summary>Every socket of the tuple as (kind &lt;&lt; 16) | local port.</summary>
        public List<int> Ports { get; } = [];

        public int Used { get; set; }

        public int TimeWait { get; set; }

        public int ReusableTimeWait { get; set; }
    }
}
