using KvmSharp.Boot.Linux;
using KvmSharp.Boot.Multiboot;
using KvmSharp.Boot.Pvh;
using KvmSharp.Hypervisor;

namespace KvmSharp.Boot.Tests;

public class KernelLoaderTests
{
    private const ulong MiB = Guest.MiB;

    [Fact]
    public void Detect_TellsEachFormatApart()
    {
        var plainElf = PvhLoaderTests.Elf64();
        plainElf.Segments.RemoveAt(2);

        Assert.Equal(KernelFormat.BzImage, KernelImage.Detect(new BzImageBuilder().Build()));
        Assert.Equal(KernelFormat.BzImage, KernelImage.Detect(new BzImageBuilder { Version = 0x0200 }.Build()));
        Assert.Equal(KernelFormat.PvhElf, KernelImage.Detect(PvhLoaderTests.Elf64().Build()));
        Assert.Equal(KernelFormat.Multiboot, KernelImage.Detect(MultibootLoaderTests.Elf32().Build()));
        Assert.Equal(KernelFormat.Multiboot, KernelImage.Detect(MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080)));
        Assert.Equal(KernelFormat.Unknown, KernelImage.Detect(plainElf.Build()));
        Assert.Equal(KernelFormat.Unknown, KernelImage.Detect(ElfBuilder.Pattern(0x600, 0x11)));
        Assert.Equal(KernelFormat.Unknown, KernelImage.Detect([]));
    }

    [Fact]
    public void Load_BzImage_WritesPageTablesAndReturnsALongModeEntry()
    {
        using var memory = Guest.Ram(64 * MiB);

        var info = KernelLoader.Load(memory, Guest.Request(new BzImageBuilder().Build()));

        var linux = Assert.IsType<LinuxBootInfo>(info);
        Assert.Equal(KernelFormat.BzImage, info.Format);
        Assert.Equal(0x100_0200UL, linux.EntryPoint);
        Assert.Equal(0xA003UL, memory.Read<ulong>(X86InitialState.Pml4Address));
        Assert.Equal(0x00AF_9B00_0000_FFFFUL, memory.Read<ulong>(X86InitialState.GdtAddress + 0x10));

        var regs = info.Entry.InitialRegisters();
        var sregs = info.Entry.InitialSystemRegisters(default);
        Assert.Equal(0x100_0200UL, regs.Rip);
        Assert.Equal(0x7000UL, regs.Rsi);
        Assert.Equal(0UL, regs.Rax);
        Assert.Equal(0UL, regs.Rbx);
        Assert.Equal(0x2UL, regs.Rflags);
        Assert.Equal((ushort)0x10, sregs.Cs.Selector);
        Assert.Equal(X86SystemRegisters.EferLma, sregs.Efer & X86SystemRegisters.EferLma);
    }

    [Fact]
    public void Load_Pvh_WritesTheGdtButNoPageTablesAndReturnsAProtectedModeEntry()
    {
        using var memory = Guest.Ram(64 * MiB);

        var info = KernelLoader.Load(memory, Guest.Request(PvhLoaderTests.Elf64().Build()));

        Assert.IsType<PvhBootInfo>(info);
        Assert.Equal(KernelFormat.PvhElf, info.Format);
        Assert.Equal(0x00CF_9B00_0000_FFFFUL, memory.Read<ulong>(X86InitialState.GdtAddress + 0x08));
        Assert.Equal(0xCCCC_CCCC_CCCC_CCCCUL, memory.Read<ulong>(X86InitialState.Pml4Address));
        var regs = info.Entry.InitialRegisters();
        var sregs = info.Entry.InitialSystemRegisters(default);
        Assert.Equal(0x100_0040UL, regs.Rip);
        Assert.Equal(0x6000UL, regs.Rbx);
        Assert.Equal(0UL, regs.Rsi);
        Assert.Equal((ushort)0x08, sregs.Cs.Selector);
        Assert.Equal(0UL, sregs.Cr0 & X86SystemRegisters.Cr0Pg);
    }

    [Fact]
    public void Load_Multiboot_ReturnsEaxMagicAndEbxInfo()
    {
        using var memory = Guest.Ram(64 * MiB);

        var info = KernelLoader.Load(memory, Guest.Request(MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080)));

        Assert.IsType<MultibootBootInfo>(info);
        var regs = info.Entry.InitialRegisters();
        Assert.Equal(BootMode.Protected32, info.Entry.Mode);
        Assert.Equal(0x10_0080UL, regs.Rip);
        Assert.Equal(0x2BAD_B002UL, regs.Rax);
        Assert.Equal(0x8000UL, regs.Rbx);
    }

    [Fact]
    public void Load_UnknownFile_SaysWhatToPass()
    {
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(memory, Guest.Request(ElfBuilder.Pattern(0x600, 0x11))));

        Assert.Equal("'vmlinuz': not a Linux bzImage (no 'HdrS' signature at offset 0x202). Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.", e.Message);
        Assert.Equal("vmlinuz", e.FileName);
        Assert.Equal("not a Linux bzImage (no 'HdrS' signature at offset 0x202)", e.Problem);
    }

    [Fact]
    public void CheckFormat_RejectsWhatLoadRejects_AndPassesEachBootableFormat()
    {
        var plainElf = PvhLoaderTests.Elf64();
        plainElf.Segments.RemoveAt(2);

        var unknown = Assert.Throws<BootImageException>(() => KernelLoader.CheckFormat(ElfBuilder.Pattern(0x600, 0x11), "vmlinuz"));
        var noEntry = Assert.Throws<BootImageException>(() => KernelLoader.CheckFormat(plainElf.Build(), "vmlinux"));
        KernelLoader.CheckFormat(new BzImageBuilder().Build(), "vmlinuz");
        KernelLoader.CheckFormat(PvhLoaderTests.Elf64().Build(), "vmlinux");
        KernelLoader.CheckFormat(MultibootLoaderTests.Elf32().Build(), "kernel.elf");

        Assert.Equal("'vmlinuz': not a Linux bzImage (no 'HdrS' signature at offset 0x202). Pass a bzImage, an ELF vmlinux with a PVH note, or a multiboot kernel.", unknown.Message);
        Assert.Equal("'vmlinux': an ELF kernel with neither a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) nor a multiboot header. Pass the kernel's bzImage, or build it with CONFIG_PVH=y.", noEntry.Message);
    }

    [Fact]
    public void Load_PlainElf_AsksForABzImageOrPvh()
    {
        var elf = PvhLoaderTests.Elf64();
        elf.Segments.RemoveAt(2);
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(memory, Guest.Request(elf.Build(), fileName: "vmlinux")));

        Assert.Equal("'vmlinux': an ELF kernel with neither a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) nor a multiboot header. Pass the kernel's bzImage, or build it with CONFIG_PVH=y.", e.Message);
    }

    [Fact]
    public void Load_MalformedElf_GivesTheElfProblem()
    {
        var elf = PvhLoaderTests.Elf64();
        elf.PhnumOverride = 0;
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(memory, Guest.Request(elf.Build(), fileName: "vmlinux")));

        Assert.Equal("'vmlinux': e_phnum is 0 (expected 1 to 64 program headers). The file is corrupt or truncated; rebuild or re-download the kernel.", e.Message);
    }

    [Fact]
    public void Load_OldBzImage_GoesToTheLinuxLoaderForItsMessage()
    {
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(memory, Guest.Request(new BzImageBuilder { Version = 0x0206 }.Build())));

        Assert.Equal("'vmlinuz': boot protocol 2.06 is too old (KvmSharp needs 2.12 or later, the first with xloadflags and a 64-bit entry point). Use a Linux 3.8 or later kernel.", e.Message);
    }

    [Fact]
    public void Load_MultibootWithBadChecksum_ReportsTheChecksum()
    {
        byte[] file = MultibootImages.Aout(0x600, 0x10_0400, 0, 0x10_0080);
        file[0x48] ^= 1;
        using var memory = Guest.Ram(64 * MiB);

        var e = Assert.Throws<BootImageException>(() => KernelLoader.Load(memory, Guest.Request(file, fileName: "kernel.bin")));

        Assert.StartsWith("'kernel.bin': the multiboot header at offset 0x40 has a bad checksum", e.Message, StringComparison.Ordinal);
    }
}
