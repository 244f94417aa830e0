namespace KvmSharp.Memory.Tests;

public class DirtyPageBitmapTests
{
    private const ulong Base = 0x10_0000;

    [Fact]
    public void NewBitmap_HasOneWordPer64Pages_AndNothingDirty()
    {
        var bitmap = new DirtyPageBitmap(Base, 100);

        Assert.Equal(Base, bitmap.BaseAddress);
        Assert.Equal(100UL, bitmap.PageCount);
        Assert.Equal(2, bitmap.Words.Length);
        Assert.Equal(0, bitmap.CountDirty());
        Assert.Empty(bitmap.DirtyPageAddresses());
    }

    [Fact]
    public void MarkDirty_SetsTheKernelBitForThePage()
    {
        var bitmap = new DirtyPageBitmap(Base, 128);

        bitmap.MarkDirty(0);
        bitmap.MarkDirty(63);
        bitmap.MarkDirty(64);
        bitmap.MarkDirty(66);

        Assert.Equal(0x8000_0000_0000_0001UL, bitmap.Words[0]);
        Assert.Equal(0b101UL, bitmap.Words[1]);
        Assert.True(bitmap.IsDirty(0));
        Assert.True(bitmap.IsDirty(63));
        Assert.True(bitmap.IsDirty(64));
        Assert.False(bitmap.IsDirty(65));
        Assert.True(bitmap.IsDirty(66));
        Assert.False(bitmap.IsDirty(1));
        Assert.Equal(4, bitmap.CountDirty());
    }

    [Fact]
    public void MarkDirty_Twice_CountsOnce()
    {
        var bitmap = new DirtyPageBitmap(0, 10);

        bitmap.MarkDirty(3);
        bitmap.MarkDirty(3);

        Assert.Equal(1, bitmap.CountDirty());
    }

    [Fact]
    public void DirtyPageAddresses_AreAscendingGuestPhysicalAddresses_FromTheBase()
    {
        var bitmap = new DirtyPageBitmap(Base, 100);
        bitmap.MarkDirty(99);
        bitmap.MarkDirty(0);
        bitmap.MarkDirty(64);
        bitmap.MarkDirty(63);

        Assert.Equal(
            new ulong[] { Base, Base + (63 * 0x1000), Base + (64 * 0x1000), Base + (99 * 0x1000) },
            bitmap.DirtyPageAddresses());
    }

    [Fact]
    public void PagesOutOfRange_AreIgnored()
    {
        var bitmap = new DirtyPageBitmap(Base, 100);

        bitmap.MarkDirty(100);
        bitmap.MarkDirty(127); // still inside the last word's storage, but past PageCount
        bitmap.MarkDirty(ulong.MaxValue);

        Assert.Equal(0, bitmap.CountDirty());
        Assert.Equal(0UL, bitmap.Words[1]);
        Assert.False(bitmap.IsDirty(100));
        Assert.False(bitmap.IsDirty(ulong.MaxValue));
    }

    [Fact]
    public void WordsFilledLikeTheKernelDoes_AreReadBackPerPage()
    {
        var bitmap = new DirtyPageBitmap(0x1_0000_0000, 128);

        bitmap.Words[0] = 0b1001;
        bitmap.Words[1] = 1UL << 35;

        Assert.True(bitmap.IsDirty(0));
        Assert.True(bitmap.IsDirty(3));
        Assert.True(bitmap.IsDirty(99));
        Assert.Equal(3, bitmap.CountDirty());
        Assert.Equal(new ulong[] { 0x1_0000_0000, 0x1_0000_3000, 0x1_0006_3000 }, bitmap.DirtyPageAddresses());
    }

    [Fact]
    public void Clear_ForgetsEveryDirtyPage()
    {
        var bitmap = new DirtyPageBitmap(Base, 70);
        bitmap.MarkDirty(1);
        bitmap.MarkDirty(69);

        bitmap.Clear();

        Assert.Equal(0, bitmap.CountDirty());
        Assert.False(bitmap.IsDirty(69));
        Assert.Empty(bitmap.DirtyPageAddresses());
    }

    [Fact]
    public void EmptyBitmap_HasNoWords()
    {
        var bitmap = new DirtyPageBitmap(Base, 0);

        bitmap.MarkDirty(0);

        Assert.Equal(0, bitmap.Words.Length);
        Assert.False(bitmap.IsDirty(0));
        Assert.Equal(0, bitmap.CountDirty());
    }
}
