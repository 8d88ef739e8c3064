using System.Runtime.ExceptionServices;

namespace EphemeralPorts.Plugin;

/// <summary>
/// A function run on a thread of its own, joined with or without a deadline. What it throws is
/// kept and rethrown on the joining thread with its original stack (ExceptionDispatchInfo).
/// Background threads: one that never returns (a read stuck in the kernel) cannot keep the
/// process alive once the check has answered.
/// </summary>
public sealed class Worker<T>
{
    /// <summary>
    /// A worker's stack: nothing here recurses deeply, and the pthread default (RLIMIT_STACK,
    /// usually 8 MB of address space a thread) is what a small <c>ulimit -v</c> runs out of first.
    /// </summary>
    public const int StackBytes = 1 << 20;

    private readonly Thread _thread;
    private T? _result;
    private ExceptionDispatchInfo? _failure;

    private Worker(string name, Func<T> work)
    {
        _thread = new Thread(() =>
        {
            try
            {
                _result = work();
            }
            catch (Exception e)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
            }
        }, StackBytes)
        {
            IsBackground = true,
            Name = name,
        };
    }

    /// <summary>
    /// Starts <paramref name="work"/> on a thread of its own; where no thread can be started (the
    /// process limit, RLIMIT_NPROC, reached; no memory for a stack) it is done here and now
    /// instead: slower and without a deadline of its own, but an answer rather than an abort.
    /// </summary>
    public static Worker<T> Start(string name, Func<T> work)
    {
        var worker = new Worker<T>(name, work);
        try
        {
            worker._thread.Start();
        }
        catch (Exception) when (worker._thread.ThreadState.HasFlag(ThreadState.Unstarted))
        {
            worker.RunHere(work);
        }

        return worker;
    }

    /// <summary>Whether the work ran on the caller's thread because no thread could be started.</summary>
    public bool RanInline { get; private set; }

    private void RunHere(Func<T> work)
    {
        RanInline = true;
        try
        {
            _result = work();
        }
        catch (Exception e)
        {
            _failure = ExceptionDispatchInfo.Capture(e);
        }
    }

    /// <summary>Runs <paramref name="work"/> on a thread of its own and waits for it.</summary>
    public static T Run(string name, Func<T> work) => Start(name, work).Result;

    /// <summary>Whether the work ended within <paramref name="timeout"/> (<see cref="Timeout.InfiniteTimeSpan"/>: it is joined, however long it takes).</summary>
    public bool Wait(TimeSpan timeout) =>
        RanInline || (timeout == Timeout.InfiniteTimeSpan ? JoinForGood() : _thread.Join(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout));

    private bool JoinForGood()
    {
        _thread.Join();
        return true;
    }

    /// <summary>The result, once the work ended; what it threw is rethrown here.</summary>
    public T Result
    {
        get
        {
            if (!RanInline)
            {
                _thread.Join();
            }

            _failure?.Throw();
            return _result!;
        }
    }
}

/// <summary>Several pieces of work at once.</summary>
public static class Workers
{
    /// <summary>
    /// Runs the first piece on the calling thread and each other on a <see cref="Worker{T}"/>,
    /// waits for all of them, then rethrows the first failure in the order given.
    /// </summary>
    public static void RunAll(string name, IReadOnlyList<Action> work)
    {
        var others = work.Skip(1).Select(w => Worker<bool>.Start(name, () =>
        {
            w();
            return true;
        })).ToList();
        ExceptionDispatchInfo? failure = null;
        try
        {
            if (work.Count > 0)
            {
                work[0]();
            }
        }
        catch (Exception e)
        {
            failure = ExceptionDispatchInfo.Capture(e);
        }

        foreach (var other in others)
        {
            try
            {
                _ = other.Result;
            }
            catch (Exception e)
            {
                failure ??= ExceptionDispatchInfo.Capture(e);
            }
        }

        failure?.Throw();
    }
}
