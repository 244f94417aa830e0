namespace KvmSharp.Devices.Tests.Virtio;

/// <summary>A write-only stream that keeps what it was given (unless told to only count it) and counts flushes.</summary>
internal sealed class RecordingStream(bool keepBytes = true) : Stream
{
    private readonly MemoryStream _bytes = new();

    public int Flushes { get; private set; }

    public long Written { get; private set; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => Written;

    public override long Position
    {
        get => Written;
        set => throw new NotSupportedException();
    }

    public byte[] ToArray() => _bytes.ToArray();

    public override void Flush() => Flushes++;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (keepBytes)
        {
            _bytes.Write(buffer);
        }

        Written += buffer.Length;
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _bytes.Dispose();
        }

        base.Dispose(disposing);
    }
}
