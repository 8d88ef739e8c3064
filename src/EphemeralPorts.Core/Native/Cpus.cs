using System.Numerics;
using System.Runtime.InteropServices;

namespace EphemeralPorts.Native;

/// <summary>The CPUs this process may run on.</summary>
public static partial class Cpus
{
    /// <summary>
    /// sched_getaffinity(2): the CPUs of the affinity mask (taskset, cpusets of a container).
    /// Called directly: Environment.ProcessorCount first parses /proc/self/mountinfo for cgroup
    /// quotas, which on a host with hundreds of namespaces is long (~5 ms measured with 200).
    /// </summary>
    public static unsafe int Allowed()
    {
        // cpu_set_t holds 1024 CPUs; a bigger machine answers EINVAL, and a larger mask is asked.
        var mask = stackalloc byte[8192];
        for (var bytes = 128; bytes <= 8192; bytes *= 4)
        {
            var written = sched_getaffinity(0, (nuint)bytes, mask);
            if (written > 0)
            {
                var count = 0;
                for (var i = 0; i + 8 <= written; i += 8)
                {
                    count += BitOperations.PopCount(*(ulong*)(mask + i));
                }

                return Math.Max(1, count);
            }
        }

        return 1;
    }

    // The raw system call returns the mask's size in bytes; glibc's wrapper returns 0. Through
    // glibc: 0 on success, the mask filled up to its size.
    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static unsafe partial int SchedGetAffinity(int pid, nuint size, byte* mask);

    private static unsafe int sched_getaffinity(int pid, nuint size, byte* mask)
    {
        new Span<byte>(mask, (int)size).Clear();
        return SchedGetAffinity(pid, size, mask) == 0 ? (int)size : -1;
    }
}
