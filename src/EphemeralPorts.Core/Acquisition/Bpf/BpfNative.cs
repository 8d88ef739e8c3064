using System.Runtime.InteropServices;

namespace EphemeralPorts.Acquisition.Bpf;

/// <summary>
/// The native BPF reader (src/native/cep_bpf.h), linked statically into the published binary
/// (DirectPInvoke "cep_bpf" with libbpf, libelf, libz, libzstd). A build without it (dotnet test,
/// a platform without the archives) fails to find the library: <see cref="BpfReader"/> says so.
/// The numbers passed across (iterator kinds, flags, modes, the record's) are <see cref="CepAbi"/>'s,
/// made from src/native/cep_abi.h.
/// </summary>
internal static unsafe partial class BpfNative
{
    /// <summary><c>struct cep_reader *cep_reader_open(flags, cache_dir, &amp;err, why, whylen)</c>: NULL (an invalid handle) with err and why on failure.</summary>
    [LibraryImport("cep_bpf", EntryPoint = "cep_reader_open")]
    public static partial BpfReaderHandle Open(int flags, byte* cacheDirectory, int* error, byte* why, nuint whyLength);

    [LibraryImport("cep_bpf", EntryPoint = "cep_reader_iter")]
    public static partial int Iterator(BpfReaderHandle reader, int which);

    [LibraryImport("cep_bpf", EntryPoint = "cep_reader_mode")]
    public static partial int Mode(BpfReaderHandle reader);

    /// <summary>Only <see cref="BpfReaderHandle.ReleaseHandle"/> calls it.</summary>
    [LibraryImport("cep_bpf", EntryPoint = "cep_reader_close")]
    public static partial void CloseReader(nint reader);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_read")]
    public static partial nint Read(int fd, byte* buffer, nuint length);

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_record_size")]
    public static partial int RecordSize();

    [LibraryImport("cep_bpf", EntryPoint = "cep_bpf_record_version")]
    public static partial int RecordVersion();

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);
}

/// <summary>
/// A <c>struct cep_reader *</c>: freed once, by <c>cep_reader_close</c>, when the last user lets go
/// (the marshaller holds a reference for the length of each call, so a reader disposed while a
/// thread makes an iterator is closed after that call returns, never under it).
/// </summary>
internal sealed class BpfReaderHandle : SafeHandle
{
    public BpfReaderHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        BpfNative.CloseReader(handle);
        return true;
    }
}
