using EphemeralPorts.Native;

namespace EphemeralPorts.Cli;

/// <summary>
/// The process's standard descriptors at its two ends. A plugin started with one of them closed
/// (<c>&gt;&amp;-</c>, a careless daemon) would hand that number to the first file it opens, and
/// write its output into it; at the end, a thread stuck in the kernel (a read of a hung FUSE or
/// NFS tree) keeps the descriptor table, and with it the monitoring core's pipe, alive.
/// </summary>
internal static class StandardStreams
{
    private const int FGetfd = 1;

    /// <summary>
    /// Fills descriptors 0-2 that are closed with /dev/null (or, where there is none, a read-only
    /// descriptor of "/", which any write refuses) so that nothing else gets their numbers.
    /// Returns whether standard output was open.
    /// </summary>
    public static bool Guard()
    {
        var stdoutOpen = true;
        for (var fd = 0; fd <= 2; fd++)
        {
            if (Libc.syscall(Libc.SysFcntl, fd, FGetfd, 0, 0) >= 0)
            {
                continue;
            }

            stdoutOpen &= fd != 1;

            // open(2) returns the lowest free number: this one, since those below are open.
            var filler = Libc.Openat(Libc.AtFdcwd, "/dev/null", Libc.ORdwr, 0);
            if (filler < 0)
            {
                filler = Libc.Openat(Libc.AtFdcwd, "/", Libc.ORdonly | Libc.ODirectory, 0);
            }

            if (filler >= 0 && filler != fd)
            {
                Libc.Close(filler);
            }
        }

        return stdoutOpen;
    }

    /// <summary>
    /// Ends the process with <paramref name="code"/> at once, once the answer is written: standard
    /// output and error are closed first, so the reader sees the end of the output even when a
    /// thread stuck in the kernel delays the process's own end; exit_group(2) then ends every
    /// thread without waiting for the runtime's shutdown.
    /// </summary>
    public static int Exit(int code)
    {
        Libc.Close(1);
        Libc.Close(2);
        Libc.syscall(Libc.SysExitGroup, code, 0, 0, 0);
        return code;
    }
}
