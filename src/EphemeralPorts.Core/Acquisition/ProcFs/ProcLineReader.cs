using EphemeralPorts.Plugin;

namespace EphemeralPorts.Acquisition.ProcFs;

/// <summary>
/// Reads a /proc table line by line into a reused buffer, so a scan of 400k lines allocates
/// nothing per line. The span handed out is valid until the next call.
/// </summary>
public sealed class ProcLineReader : IDisposable
{
    /// <summary>The longest line a kernel socket table prints is about 180 bytes.</summary>
    public const int MaxLineLength = 4096;

    private readonly Stream _stream;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(64 * 1024);
    private int _start;
    private int _end;
    private bool _eof;

    public ProcLineReader(Stream stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    public string Path { get; }

    /// <summary>1-based number of the line last returned.</summary>
    public int LineNumber { get; private set; }

    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (newline >= 0)
            {
                if (newline - _start > MaxLineLength)
                {
                    throw new CheckException($"{Path} line {LineNumber + 1}: longer than {MaxLineLength} bytes");
                }

                line = Take(newline, newline + 1);
                return true;
            }

            if (_end - _start > MaxLineLength)
            {
                throw new CheckException($"{Path} line {LineNumber + 1}: longer than {MaxLineLength} bytes");
            }

            if (_eof)
            {
                if (_start == _end)
                {
                    line = default;
                    return false;
                }

                // A last line without its newline: hand it out; a truncated line fails in the parser.
                line = Take(_end, _end);
                return true;
            }

            Fill();
        }
    }

    private ReadOnlySpan<byte> Take(int lineEnd, int next)
    {
        LineNumber++;
        var span = new ReadOnlySpan<byte>(_buffer, _start, lineEnd - _start);
        _start = next;
        return span;
    }

    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        try
        {
            var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0)
            {
                _eof = true;
            }

            _end += read;
        }
        catch (IOException e)
        {
            throw new CheckException($"{Path} line {LineNumber + 1}: read error: {e.Message}", e);
        }
    }

    public CheckException Error(string what) => new($"{Path} line {LineNumber}: {what}");

    public void Dispose() => _stream.Dispose();
}
