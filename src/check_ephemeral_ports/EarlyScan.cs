namespace EphemeralPorts.Cli;

/// <summary>
/// The common case reads this host's namespace with the default source, /proc root and
/// protocols: that reading does not depend on the thresholds or the output options, so it starts
/// on its own thread before the command line is parsed, and parsing (CommandLineParser's
/// reflection, about 2 ms) overlaps with the scan. With any option that changes what is read, no
/// early scan starts; <c>--source</c> is checked once parsed (<see cref="Fits"/>). It only reads;
/// if the arguments turn out bad or ask for another reading, its result is dropped.
/// </summary>
public sealed class EarlyScan
{
    // Options that change what or where is read; with any of them the scan waits for the settings.
    private static readonly string[] AcquisitionOptions =
        ["--proc-root", "--protocol", "--all-namespaces", "--netns", "--pid", "--processes", "-h", "--help", "-V", "--version"];

    private readonly Thread _thread;
    private Scanner.Acquisition? _result;
    private Exception? _failure;
    private string _step = "starting";

    private EarlyScan(Settings defaults)
    {
        _thread = new Thread(() =>
        {
            try
            {
                _result = Scanner.Acquire(defaults, s => Volatile.Write(ref _step, s));
            }
            catch (Exception e)
            {
                _failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "early scan",
        };
        _thread.Start();
    }

    /// <summary>Where the scan is, for a timeout message.</summary>
    public string Step => Volatile.Read(ref _step);

    /// <summary>Starts the scan when the arguments leave every acquisition option at its default.</summary>
    public static EarlyScan? StartIfDefault(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (AcquisitionOptions.Any(o => arg == o || arg.StartsWith(o + "=", StringComparison.Ordinal)))
            {
                return null;
            }

            // Only a guess to save work: --source proc would discard a netlink reading. Whatever
            // the value, the parsed settings decide (Fits) whether the early reading is used.
            var source = arg == "--source" && i + 1 < args.Count ? args[i + 1]
                : arg.StartsWith("--source=", StringComparison.Ordinal) ? arg["--source=".Length..]
                : null;
            if (source is not null && source is not "auto" and not "netlink")
            {
                return null;
            }
        }

        return new EarlyScan(SettingsBinder.Bind(new Options()));
    }

    /// <summary>
    /// Whether the early reading is what <paramref name="settings"/> ask for: it read with
    /// <c>--source auto</c>, which is also <c>--source netlink</c> when netlink was not refused.
    /// </summary>
    public bool Fits(Settings settings)
    {
        _thread.Join();
        return settings.Source == SocketSource.Auto
            || (settings.Source == SocketSource.Netlink && _result is { ThroughNetlink: true });
    }

    /// <summary>The reading, once done; a failure is rethrown on the calling thread.</summary>
    public Scanner.Acquisition Wait()
    {
        _thread.Join();
        if (_failure is not null)
        {
            throw _failure;
        }

        return _result!;
    }
}
