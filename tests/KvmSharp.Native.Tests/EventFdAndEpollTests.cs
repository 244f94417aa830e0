namespace KvmSharp.Native.Tests;

public class EventFdAndEpollTests
{
    [Fact]
    public void EventFd_AddsSignalsAndResetsOnConsume()
    {
        using var e = new EventFd();

        Assert.Equal(0UL, e.Consume());
        e.Signal();
        e.Signal(41);

        Assert.Equal(42UL, e.Consume());
        Assert.Equal(0UL, e.Consume());
    }

    [Fact]
    public void Epoll_ReportsOnlyTheReadyDescriptor_WithItsToken()
    {
        using var epoll = new Epoll();
        using var a = new EventFd();
        using var b = new EventFd();
        epoll.Add(a.Descriptor, Epoll.Readable, token: 7);
        epoll.Add(b.Descriptor, Epoll.Readable, token: 9);
        var ready = new EpollEvent[4];

        Assert.Equal(0, epoll.Wait(ready, timeoutMs: 0));
        b.Signal();
        int n = epoll.Wait(ready, timeoutMs: 1000);

        Assert.Equal(1, n);
        Assert.Equal(9UL, ready[0].Token);
        Assert.Equal(Epoll.Readable, ready[0].Events & Epoll.Readable);
        epoll.Remove(b.Descriptor);
        Assert.Equal(0, epoll.Wait(ready, timeoutMs: 0));
    }

    [Fact]
    public void Open_MissingFile_ThrowsWithErrno()
    {
        var e = Assert.Throws<NativeErrorException>(() => FileDescriptor.Open("/nonexistent/file", FileOpenFlags.ReadOnly));

        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal("open('/nonexistent/file') failed: No such file or directory (ENOENT)", e.Message);
    }

    [Fact]
    public void AnonymousMapping_IsZeroedAndDiscardable()
    {
        using var m = MemoryMapping.Anonymous(2 * 4096UL);
        unsafe
        {
            var span = new Span<byte>((void*)m.Address, 8192);
            Assert.Equal(-1, span.IndexOfAnyExcept((byte)0));
            span[4096] = 0x5A;
            m.Discard(4096, 4096);
            Assert.Equal(0, span[4096]);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => m.Discard(4096, 8192));
    }
}
