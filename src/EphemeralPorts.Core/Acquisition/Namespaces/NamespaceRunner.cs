using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.Namespaces;

/// <summary>A namespace that was not read before its deadline.</summary>
public sealed class NamespaceTimeoutException(string message) : Exception(message);

/// <summary>
/// Runs a function inside a network namespace: on a thread of its own that enters it with
/// setns(CLONE_NEWNET) and returns to where it was (loudly when it cannot). Netlink sockets
/// and /proc/sys/net follow the thread's namespace, /proc/thread-self/net holds its tables;
/// the process's other threads never move. The namespace this check runs in is read without
/// setns, which needs no privilege there.
/// </summary>
public static class NamespaceRunner
{
    /// <summary>
    /// <paramref name="work"/> gets the directory below /proc where the namespace's tables are.
    /// Refusals (setns, or what the work throws as <see cref="CheckException"/>) come back as
    /// <see cref="CheckException"/>; a namespace not done by <paramref name="deadline"/> as
    /// <see cref="NamespaceTimeoutException"/> (its thread is left to end on its own).
    /// </summary>
    public static T Run<T>(NetworkNamespace target, ulong ownInode, TimeSpan deadline, Func<string, T> work)
    {
        var worker = Worker<T>.Start("netns", () =>
        {
            if (target.Inode == ownInode)
            {
                return work("net");
            }

            using var entered = NamespaceSwitch.Enter(target.Path, out var errno)
                ?? throw new CheckException($"setns: {NamespaceFinder.Describe(errno)}");
            return work("thread-self/net");
        });
        if (!worker.Wait(deadline))
        {
            throw new NamespaceTimeoutException($"not read within the timeout");
        }

        return worker.Result;
    }
}
