using System.Buffers.Binary;

namespace KvmSharp.Cli.Tests;

/// <summary>How a run ends when the guest reboots or triple-faults (docs/machine.md, "How a run ends").</summary>
public class RunEndingTests
{
    private const uint LoadAddress = 0x10_0000;
    private const int HeaderSize = 32;

    /// <summary>A multiboot image with the a.out kludge: header at offset 0, 32-bit code right after it.</summary>
    internal static byte[] MultibootImage(ReadOnlySpan<byte> code, uint loadAddress = LoadAddress)
    {
        var image = new byte[HeaderSize + code.Length];
        const uint Magic = 0x1BADB002;
        const uint Flags = 1u << 16; // addresses in the header
        Span<uint> h =
        [
            Magic, Flags, unchecked(0u - Magic - Flags),
            loadAddress,              // header_addr
            loadAddress,              // load_addr
            0,                        // load_end_addr: the whole file
            0,                        // bss_end_addr: no BSS
            loadAddress + HeaderSize, // entry_addr
        ];
        for (int i = 0; i < h.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(i * 4), h[i]);
        }

        code.CopyTo(image.AsSpan(HeaderSize));
        return image;
    }

    // Guests/echo32.S: echo COM1 input to COM1 output by polling LSR; 'q' writes 0 to isa-debug-exit.
    internal static readonly byte[] EchoGuest =
    [
        0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x01, 0x74, 0xf7, 0x66, 0xba, 0xf8, 0x03, 0xec, 0x3c, 0x71, 0x74, 0x14,
        0x88, 0xc3, 0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x20, 0x74, 0xf7, 0x66, 0xba, 0xf8, 0x03, 0x88, 0xd8, 0xee,
        0xeb, 0xda, 0x31, 0xc0, 0xe7, 0xf4, 0xf4,
    ];

    internal static string WriteImage(ReadOnlySpan<byte> code)
    {
        string kernel = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.mb");
        File.WriteAllBytes(kernel, MultibootImage(code));
        return kernel;
    }

    private static CliResult Boot(ReadOnlySpan<byte> code, string accel, uint loadAddress = LoadAddress)
    {
        KvmTests.RequireFor(accel);
        string kernel = Path.Combine(Path.GetTempPath(), $"kvmsharp-{Guid.NewGuid():N}.mb");
        File.WriteAllBytes(kernel, MultibootImage(code, loadAddress));
        try
        {
            return CliRunner.Run("run", "--kernel", kernel, "--memory", "64M", "--accel", accel, "--console", "file:/dev/null");
        }
        finally
        {
            File.Delete(kernel);
        }
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void I8042Reset_EndsTheRunWithStatus0(string accel)
    {
        // mov $0xFE,%al; out %al,$0x64; 1: hlt; jmp 1b
        var r = Boot([0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd], accel);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(string.Empty, r.Error);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void TripleFault_EndsTheRunWithStatus3(string accel)
    {
        // ud2 with the reset IDT (base 0, all-zero gates): #UD -> #NP -> #DF -> shutdown
        var r = Boot([0x0f, 0x0b], accel);

        Assert.Equal(3, r.ExitCode);
        Assert.Equal("kvmsharp: The guest shut down (triple fault).\n", r.Error);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebugExit_StatusIsValueShiftedOrOne(string accel)
    {
        // mov $0x21,%eax; out %eax,$0xf4 -> (0x21 << 1) | 1 = 0x43
        var r = Boot([0xb8, 0x21, 0x00, 0x00, 0x00, 0xe7, 0xf4, 0xf4], accel);

        Assert.Equal(0x43, r.ExitCode);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void Multiboot_KernelLinkedBelow1MiB_LoadsAndRunsThere(string accel)
    {
        // As QEMU and GRUB load it: at 64 KiB, in conventional memory clear of KvmSharp's boot data.
        // mov $0x10000,%esp (multiboot leaves ESP undefined); call 1f; 1: pop %eax; shr $12,%eax; out %eax,$0xf4: the
        // status says where the code ran. The pop sits at 0x10000 + 32 + 10 = 0x1002A, so the guest writes 0x10 and the
        // status is (0x10 << 1) | 1 = 33 (at 1 MiB it would be 1).
        var r = Boot([0xbc, 0x00, 0x00, 0x01, 0x00, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x58, 0xc1, 0xe8, 0x0c, 0xe7, 0xf4, 0xf4], accel, loadAddress: 0x1_0000);

        Assert.Equal(string.Empty, r.Error);
        Assert.Equal(33, r.ExitCode);
    }

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void BootMarker_AtTheMmioAlias_IsReportedByStats(string accel)
    {
        KvmTests.RequireFor(accel);
        // movb $123,0xD0000000 (what the default guest's /init does with busybox devmem); xor %eax,%eax; out %eax,$0xf4
        string kernel = WriteImage([0xc6, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x7b, 0x31, 0xc0, 0xe7, 0xf4, 0xf4]);
        try
        {
            var r = CliRunner.Run("run", "--kernel", kernel, "--memory", "64M", "--accel", accel, "--console", "file:/dev/null", "--stats");

            Assert.Equal(1, r.ExitCode);
            Assert.Matches(@"\nguest boot time \d+\.\d ms \(from VMM start to the boot timer marker\)\n", r.Output);
            Assert.Contains("MmioWrite                1\n", r.Output);
        }
        finally
        {
            File.Delete(kernel);
        }
    }
}
