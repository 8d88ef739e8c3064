using System.Diagnostics;
using EphemeralPorts.Acquisition;
using EphemeralPorts.Acquisition.Bpf;

namespace EphemeralPorts.Check;

/// <summary>
/// One run of the check, owned in one place: the host it reads, its one deadline, where it is
/// (for the timeout's message), and what it opened for the run (closed when the run is disposed).
/// The pipeline runs on one thread that is abandoned at the timeout; the namespace pool and the
/// reading lanes it starts take their deadline from here.
/// </summary>
public sealed class RunContext : IDisposable
{
    private readonly Stopwatch _clock;
    private readonly List<IDisposable> _owned = [];
    private string _step = "starting";
    private bool _abandoned;

    /// <param name="host">What the run reads.</param>
    /// <param name="timeout">The whole run's time (-t), counted from <paramref name="clock"/>'s start.</param>
    /// <param name="clock">Started when the run began (before the command line was parsed); a new one when null.</param>
    public RunContext(Host host, TimeSpan timeout, Stopwatch? clock = null)
    {
        Host = host;
        Timeout = timeout;
        _clock = clock ?? Stopwatch.StartNew();
        Bpf = Own(BpfSource.NewReader());
    }

    public Host Host { get; }

    /// <summary>The run's one BPF reader: opened the first time a namespace is read through it (never, where no namespace is), closed with the run.</summary>
    public OpenOnce<BpfReader> Bpf { get; }

    public TimeSpan Timeout { get; }

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>What is left of the timeout (never negative).</summary>
    public TimeSpan Remaining => Timeout - Elapsed is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero;

    /// <summary>
    /// When reading must be done (counted from the run's start): a tenth of the timeout is kept for
    /// evaluating and answering, so a namespace not read by then is reported as skipped.
    /// </summary>
    public TimeSpan ReadingDeadline => Timeout - (Timeout / 10);

    /// <summary>Where the run is, for the message of a timeout.</summary>
    public string Step => Volatile.Read(ref _step);

    /// <summary>Says where the run is now (any thread of it).</summary>
    public void Report(string step) => Volatile.Write(ref _step, step);

    /// <summary>Something the run opened, closed with it.</summary>
    public T Own<T>(T resource)
        where T : IDisposable
    {
        lock (_owned)
        {
            _owned.Add(resource);
        }

        return resource;
    }

    /// <summary>
    /// The pipeline's thread was left behind at the timeout and may still use what the run
    /// opened: nothing is closed under it (the process ends within moments).
    /// </summary>
    public void Abandon()
    {
        lock (_owned)
        {
            _abandoned = true;
        }
    }

    public void Dispose()
    {
        lock (_owned)
        {
            if (_abandoned)
            {
                return;
            }

            for (var i = _owned.Count - 1; i >= 0; i--)
            {
                _owned[i].Dispose();
            }

            _owned.Clear();
        }
    }
}
