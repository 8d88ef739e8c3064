using System.Text;
using EphemeralPorts.Native;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// One open native BPF reader (src/native/cep_bpf.h): a pinned copy from an earlier run, or the
/// embedded CO-RE program loaded (and pinned, or cached, for later runs). It makes an iterator per
/// namespace and protocol; disposing it frees what it loaded (pins stay for later runs).
/// </summary>
public sealed class BpfReader : IDisposable
{
    private readonly BpfReaderHandle _handle;

    private BpfReader(BpfReaderHandle handle, int mode, string note)
    {
        _handle = handle;
        Mode = mode;
        Note = note;
    }

    /// <summary>How it reads: one of <see cref="CepAbi.Mode"/>.</summary>
    public int Mode { get; }

    /// <summary>How it was opened, in words (for -v).</summary>
    public string Note { get; }

    /// <summary>Opens a reader; the kernel's (or this build's) refusal as <see cref="SourceRefusedException"/> with its reason.</summary>
    public static unsafe BpfReader Open(int flags = 0)
    {
        var why = new byte[512];
        BpfReaderHandle handle;
        int error;
        try
        {
            if (BpfNative.RecordSize() != CepAbi.Record.Size || BpfNative.RecordVersion() != CepAbi.Record.Version)
            {
                throw new SourceRefusedException($"the linked BPF reader writes records of another layout ({BpfNative.RecordSize()} bytes, version {BpfNative.RecordVersion()})");
            }

            fixed (byte* text = why)
            {
                handle = BpfNative.Open(flags, null, &error, text, (nuint)why.Length);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new SourceRefusedException("this build has no BPF reader (libcep_bpf is not linked in)");
        }

        var said = Encoding.UTF8.GetString(why, 0, Math.Max(0, Array.IndexOf(why, (byte)0))).Trim();
        if (handle.IsInvalid)
        {
            handle.Dispose();
            throw new SourceRefusedException(said.Length > 0 ? said : $"cep_reader_open: {Errno.Describe(error)}");
        }

        var mode = BpfNative.Mode(handle);
        var how = mode switch
        {
            CepAbi.Mode.Pinned => "a pinned iterator",
            CepAbi.Mode.LoadedPinned => "the program, loaded and pinned for later runs",
            CepAbi.Mode.Cached => "the program, loaded for this run from the load cache (no BTF parsed)",
            _ => "the program, loaded for this run",
        };
        return new BpfReader(handle, mode, said.Length > 0 ? $"{how} ({said})" : how);
    }

    /// <summary>
    /// A new iterator fd over <paramref name="which"/> (<see cref="CepAbi.Iter"/>) of the calling
    /// thread's network namespace, to be read to its end and closed by the caller.
    /// </summary>
    public int Iterator(int which)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        var fd = BpfNative.Iterator(_handle, which);
        if (fd < 0)
        {
            throw new SourceRefusedException($"creating the iter/{(which == CepAbi.Iter.Tcp ? "tcp" : "udp")} iterator failed: {Errno.Describe(-fd)}");
        }

        return fd;
    }

    public void Dispose() => _handle.Dispose();
}

/// <summary>
/// A run's one reader of something costly to open (the BPF reader): opened on first use and at
/// most once, however many namespaces and threads ask; a refusal is kept with its reason, so every
/// namespace is told the same and nothing is tried twice. Disposing it disposes what it opened;
/// a use after that is an <see cref="ObjectDisposedException"/> (a thread the run abandoned at its
/// timeout stops there). Disposing never waits for an open under way (the run's answer at its
/// timeout must not): what that open returns is disposed as it returns.
/// </summary>
public sealed class OpenOnce<T> : IDisposable
    where T : class, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Func<T> _open;
    private T? _opened;
    private SourceRefusedException? _refusal;
    private int _disposed;

    public OpenOnce(Func<T> open) => _open = open;

    /// <summary>What was opened, opening it now if nothing asked before; a refusal as <see cref="SourceRefusedException"/>, the same each time.</summary>
    public T Get()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (Volatile.Read(ref _opened) is { } opened)
            {
                return opened;
            }

            if (_refusal is not null)
            {
                throw new SourceRefusedException(_refusal.Message);
            }

            T fresh;
            try
            {
                fresh = _open();
            }
            catch (SourceRefusedException e)
            {
                _refusal = e;
                throw;
            }

            // Published, then the flag read (both full fences): a Dispose that ran meanwhile
            // either takes it from _opened or is seen here, and whoever takes it disposes it.
            _ = Interlocked.Exchange(ref _opened, fresh);
            if (Interlocked.CompareExchange(ref _disposed, 0, 0) != 0)
            {
                Interlocked.Exchange(ref _opened, null)?.Dispose();
                throw new ObjectDisposedException(GetType().FullName);
            }

            return fresh;
        }
    }

    public void Dispose()
    {
        _ = Interlocked.Exchange(ref _disposed, 1);
        Interlocked.Exchange(ref _opened, null)?.Dispose();
    }
}
