using EphemeralPorts.Model;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Sockets from the text tables <c>net/{tcp,tcp6,udp,udp6}</c> of a /proc tree, one line at a
/// time into the sink. Reads any tree (the host's, one mounted into a container, a fixture) and
/// never refuses; it cannot see sockets that are bound but neither listening nor connected
/// (they are only in the kernel's bind hash, which /proc/net/tcp does not walk).
/// </summary>
public sealed class ProcTableSource : ISocketSource
{
    public static readonly ProcTableSource Instance = new();

    private ProcTableSource()
    {
    }

    public string Name => "proc";

    public IReadOnlyList<BlindSpot> BlindSpots { get; } = [Acquisition.BlindSpots.BoundButIdle, Acquisition.BlindSpots.BoundDevice, .. Acquisition.BlindSpots.KernelInternals];

    public bool CanRead(NamespaceView view) => true;

    public string Describe(NamespaceView view, bool brief) =>
        brief ? $"from {view.Root.Describe(view.TablesDirectory)}" : $"from {view.Root.Describe(view.TablesDirectory)}/{{tcp,tcp6,udp,udp6}}";

    public SourceReading Read(SourceRequest request, ISocketSink sink)
    {
        var (view, _, tcp, udp, progress, _) = request;
        var diagnostics = new List<string>(4);
        if (tcp)
        {
            diagnostics.Add(ReadTable(view, "tcp", Transport.Tcp, ipv6: false, sink, progress));
            diagnostics.Add(ReadTable(view, "tcp6", Transport.Tcp, ipv6: true, sink, progress));
        }

        if (udp)
        {
            diagnostics.Add(ReadTable(view, "udp", Transport.Udp, ipv6: false, sink, progress));
            diagnostics.Add(ReadTable(view, "udp6", Transport.Udp, ipv6: true, sink, progress));
        }

        return new SourceReading($"sockets read {Describe(view, brief: false)}", diagnostics);
    }

    // The IPv6 tables are absent when IPv6 is disabled: that is normal, not an error.
    private static string ReadTable(NamespaceView view, string table, Transport transport, bool ipv6, ISocketSink sink, Action<string>? progress)
    {
        var root = view.Root;
        var relative = $"{view.TablesDirectory}/{table}";
        progress?.Invoke(root.Describe(relative));
        using var reader = root.OpenLines(relative, optional: ipv6);
        if (reader is null)
        {
            return $"read {root.Describe(relative)}: absent (IPv6 disabled?)";
        }

        if (!reader.TryReadLine(out var header))
        {
            throw new CheckException($"{reader.Path}: empty, the kernel always prints a header line");
        }

        if (!SocketTableParser.IsHeader(header))
        {
            throw reader.Error("not a socket table header");
        }

        var sockets = 0;
        while (reader.TryReadLine(out var line))
        {
            if (!SocketTableParser.TryParse(line, transport, ipv6, out var entry, out var error))
            {
                throw reader.Error(error!);
            }

            sink.Add(entry);
            sockets++;
        }

        return $"read {reader.Path}: {sockets} sockets";
    }
}
