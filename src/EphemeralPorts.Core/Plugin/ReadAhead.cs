using System.Collections.Concurrent;

namespace EphemeralPorts.Plugin;

/// <summary>
/// Reading on a thread of its own while the calling thread takes what was read, for reads in
/// which the kernel makes the next piece (a BPF iterator's read(), a netlink dump's recv()): taking
/// one overlaps the making of the next. The reader runs at most <c>pending</c> chunks ahead (memory
/// stays bounded) and is stopped and joined before <see cref="Run{T}"/> returns, however it ends,
/// so the caller may then close what was read from and free the chunks.
/// </summary>
public static class ReadAhead
{
    /// <summary>
    /// Reads with <paramref name="read"/> on a <see cref="Worker{T}"/> until it returns null, hands
    /// each chunk to <paramref name="take"/> on this thread in order, until that returns true (the
    /// end found), and gives every chunk, taken or left, to <paramref name="recycle"/>. A failure
    /// of <paramref name="read"/> is rethrown here after the chunks before it were taken.
    /// </summary>
    /// <returns>False where no thread could be started: nothing was read, the caller reads itself.</returns>
    public static bool Run<T>(string name, int pending, Func<T?> read, Func<T, bool> take, Action<T> recycle)
        where T : struct
    {
        var caller = Environment.CurrentManagedThreadId;
        using var stop = new CancellationTokenSource();
        using var chunks = new BlockingCollection<T>();
        using var room = new SemaphoreSlim(pending);
        var reader = Worker<bool>.Start(name, () =>
        {
            if (Environment.CurrentManagedThreadId == caller)
            {
                return false; // ran inline: it would wait for room that only this thread makes
            }

            try
            {
                while (WaitForRoom(room, stop.Token) && read() is { } chunk)
                {
                    chunks.Add(chunk);
                }

                return true;
            }
            finally
            {
                chunks.CompleteAdding();
            }
        });

        if (reader.RanInline)
        {
            return false;
        }

        try
        {
            foreach (var chunk in chunks.GetConsumingEnumerable())
            {
                bool ended;
                try
                {
                    ended = take(chunk);
                }
                finally
                {
                    recycle(chunk);
                    room.Release();
                }

                if (ended)
                {
                    return true;
                }
            }
        }
        finally
        {
            // Ended, or failed: the reader stops at its next wait for room and is joined, and what
            // it read that was not taken goes back.
            stop.Cancel();
            _ = reader.Wait(Timeout.InfiniteTimeSpan);
            while (chunks.TryTake(out var left))
            {
                recycle(left);
            }
        }

        _ = reader.Result; // a failed read is rethrown here
        return true;
    }

    private static bool WaitForRoom(SemaphoreSlim room, CancellationToken stop)
    {
        try
        {
            room.Wait(stop);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
