using EphemeralPorts.Native;

namespace EphemeralPorts.Cli;

/// <summary>
/// The process's standard output and its end. (Closed standard descriptors are filled before the
/// runtime starts, by src/build/process-start.c.) At the end, a thread stuck in the kernel (a read
/// of a hung FUSE or NFS tree) keeps the descriptor table, and with it the monitoring core's pipe,
/// alive: so the descriptors are closed and the code reported to the supervisor first.
/// </summary>
internal static class StandardStreams
{
    /// <summary>
    /// Standard output as a stream that writes to descriptor 1 itself: Console's stream would dup
    /// the descriptor and set up terminal and signal handling (a pipe and a thread), each of
    /// which a small <c>ulimit -n</c> refuses, for a plugin whose output goes to a pipe.
    /// </summary>
    public static Stream Output() => new DescriptorOutput();

    /// <summary>
    /// Ends the process with <paramref name="code"/> at once, once the answer is written: standard
    /// output and error are closed first, so the reader sees the end of the output even when a
    /// thread stuck in the kernel delays the process's own end; the code goes to the supervisor;
    /// exit_group(2) then ends every thread without waiting for the runtime's shutdown.
    /// </summary>
    public static int Exit(int code)
    {
        Libc.Close(1);
        Libc.Close(2);

        // The supervisor (src/build/process-start.c) waits for this byte and exits with it: the
        // process the monitoring core started is gone even if this one cannot end yet.
        if (int.TryParse(Environment.GetEnvironmentVariable("CEP_REPORT_FD"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var report) && report > 2)
        {
            Libc.WriteAll(report, [(byte)code]);
            Libc.Close(report);
        }

        Libc.syscall(Libc.SysExitGroup, code, 0, 0, 0);
        return code;
    }

    private sealed class DescriptorOutput : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (!Libc.WriteAll(1, buffer))
            {
                throw new IOException($"standard output: {Errno.Describe(Libc.LastError)}");
            }
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
