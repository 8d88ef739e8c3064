using EphemeralPorts.Acquisition.ProcFs;
using EphemeralPorts.Model;

namespace EphemeralPorts.Acquisition;

/// <summary>
/// A namespace whose own counters prove it holds no socket and no TIME_WAIT
/// (<see cref="Sockstat.ProvesEmpty"/>): nothing there can take a port, so none of the host-wide
/// hashes is walked for it. An empty pod's namespace costs a few small reads instead of a walk
/// of every socket of the host.
/// </summary>
public sealed class ProvenEmpty : ISocketSource
{
    public static readonly ProvenEmpty Instance = new();

    private ProvenEmpty()
    {
    }

    public string Name => "sockstat";

    public IReadOnlyList<BlindSpot> BlindSpots => [];

    public bool CanRead(NamespaceView view) => view.IsLiveKernel;

    private const string Note = "no socket and no TIME_WAIT in the namespace (sockstat): no socket table walked";

    public string Describe(NamespaceView view, bool brief) => "nowhere: sockstat shows no socket and no TIME_WAIT";

    private static readonly string[] Diagnostics = ["sockstat: sockets used 0, TCP tw 0, nothing walked"];

    public SourceReading Read(SourceRequest request, ISocketSink sink) => new(Note, Diagnostics);

    /// <summary>The reading of such a namespace: its empty model.</summary>
    public static ChainReading Reading(PortUsageCalculator empty) => new(empty, Instance, [Note], Diagnostics);
}
