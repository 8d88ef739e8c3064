using System.Runtime.InteropServices;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// The native BPF reader (src/native/cep_bpf.h), linked statically into the published binary
/// (DirectPInvoke "cep_bpf" with libbpf, libelf, libz, libzstd). A build without it (dotnet test,
/// a platform without the archives) fails to find the library: <see cref="BpfReader"/> says so.
/// </summary>
internal static unsafe partial class BpfNative
{
    public const int Tcp = 0;
    public const int Udp = 1;

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_open")]
    public static partial int Open(int flags, byte* why, nuint whyLength);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_iter")]
    public static partial int Iterator(int handle, int which);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_read")]
    public static partial nint Read(int fd, byte* buffer, nuint length);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_mode")]
    public static partial int Mode(int handle);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_record_size")]
    public static partial int RecordSize();

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_record_version")]
    public static partial int RecordVersion();

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);
}
