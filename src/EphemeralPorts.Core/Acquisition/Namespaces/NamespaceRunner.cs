using System.Runtime.ExceptionServices;
using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.Namespaces;

/// <summary>What became of one namespace: its result, or why it was not read (refused, or not within the deadline).</summary>
public sealed record NamespaceRun<T>(NetworkNamespace Target, T? Result, string? Skipped);

/// <summary>
/// Runs a function inside network namespaces: on threads of their own that enter a namespace with
/// setns(CLONE_NEWNET), run, and return to where they were (loudly when they cannot). Netlink
/// sockets and /proc/sys/net follow the thread's namespace, /proc/thread-self/net holds its tables;
/// the process's other threads never move. The namespace this check runs in is read without
/// setns, which needs no privilege there.
/// </summary>
public static class NamespaceRunner
{
    /// <summary>Threads of a pool at most: beyond that, more threads only wait on the same hash walks.</summary>
    public const int MaxThreads = 16;

    /// <summary>One thread per CPU this process may run on (its affinity mask), at most <see cref="MaxThreads"/>.</summary>
    public static int DefaultThreads => Math.Clamp(Native.Cpus.Allowed(), 1, MaxThreads);

    /// <summary>
    /// Reads every target with a fixed pool of <paramref name="threads"/> threads, each taking the
    /// next namespace not yet started; <paramref name="work"/> gets the namespace and how to read it
    /// below <paramref name="root"/>: a live host's namespaces are entered (their tables below
    /// <c>thread-self/net</c>; this check's own, <paramref name="ownInode"/>, as it is), a tree's
    /// are read through the <c>PID/net</c> of the process that led to them. A namespace that refuses (setns, or a
    /// <see cref="CheckException"/> of the work) is skipped with the reason; one not done when
    /// <paramref name="deadline"/> has passed is skipped as not read in time (a thread stuck in it
    /// is left to end on its own, the others go on). Any other failure is rethrown, with its stack.
    /// Results come in the order of <paramref name="targets"/>.
    /// </summary>
    public static IReadOnlyList<NamespaceRun<T>> RunAll<T>(IReadOnlyList<NetworkNamespace> targets, ProcFs.ProcRoot root, ulong? ownInode, TimeSpan deadline, int threads, Func<NetworkNamespace, NamespaceView, T> work)
        where T : class
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var done = new NamespaceRun<T>?[targets.Count];
        var failures = new ExceptionDispatchInfo?[targets.Count];
        var next = -1;
        // Not disposed: a thread stuck past the deadline still signals it when it comes back.
        var finished = new CountdownEvent(targets.Count);
        void Loop()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < targets.Count)
            {
                var target = targets[i];
                try
                {
                    // Started past the deadline: not worth entering.
                    Volatile.Write(ref done[i], clock.Elapsed >= deadline
                        ? new NamespaceRun<T>(target, null, "not read within the timeout")
                        : new NamespaceRun<T>(target, Enter(target, root, ownInode, work), null));
                }
                catch (CheckException e)
                {
                    Volatile.Write(ref done[i], new NamespaceRun<T>(target, null, e.Message));
                }
                catch (Exception e)
                {
                    // This thread may not be back in its own namespace: it reads nothing more.
                    Volatile.Write(ref failures[i], ExceptionDispatchInfo.Capture(e));
                    finished.Signal();
                    return;
                }

                finished.Signal();
            }
        }

        var pool = Enumerable.Range(0, Math.Clamp(threads, 1, Math.Max(1, targets.Count)))
            .Select(_ => Worker<bool>.Start("netns", () =>
            {
                Loop();
                return true;
            }))
            .ToList();
        var remaining = deadline - clock.Elapsed;
        finished.Wait(remaining < TimeSpan.Zero ? TimeSpan.Zero : remaining);

        var runs = new List<NamespaceRun<T>>(targets.Count);
        for (var i = 0; i < targets.Count; i++)
        {
            Volatile.Read(ref failures[i])?.Throw();
            runs.Add(Volatile.Read(ref done[i]) ?? new NamespaceRun<T>(targets[i], null, "not read within the timeout"));
        }

        GC.KeepAlive(pool);
        return runs;
    }

    private static T Enter<T>(NetworkNamespace target, ProcFs.ProcRoot root, ulong? ownInode, Func<NetworkNamespace, NamespaceView, T> work)
    {
        if (ownInode is null)
        {
            // A tree: the kernel showed each process's namespace's tables below PID/net; the
            // sysctls are the tree's own, or a fixture's PID/sys.
            var pid = target.Pid ?? throw new CheckException($"{target.Path}: no process of the tree leads to it");
            var sys = root.ListDirectory($"{pid}/sys", out _) is null ? "sys" : $"{pid}/sys";
            return work(target, new NamespaceView(root, $"{pid}/net", sys));
        }

        if (target.Inode == ownInode)
        {
            return work(target, new NamespaceView(root));
        }

        // The inode looked at when the namespace was found: a path swapped since is refused.
        using var entered = (target.RawPath is { } raw ? NamespaceSwitch.Enter(raw, out var errno, target.Inode) : NamespaceSwitch.Enter(target.Path, out errno, target.Inode))
            ?? throw new CheckException($"setns: {NamespaceFinder.Describe(errno)}");
        return work(target, new NamespaceView(root, "thread-self/net"));
    }
}
