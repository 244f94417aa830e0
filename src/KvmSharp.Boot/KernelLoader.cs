using KvmSharp.Boot.Elf;
using KvmSharp.Boot.Linux;
using KvmSharp.Boot.Multiboot;
using KvmSharp.Boot.Pvh;
using KvmSharp.Memory;

namespace KvmSharp.Boot;

/// <summary>
/// Loads a kernel of any format KvmSharp boots and writes everything its entry needs into guest memory:
/// the image, the boot data of its protocol, the GDT, and for long mode the identity page tables.
/// The VMM then only sets the boot vCPU's registers from <see cref="KernelBootInfo.Entry"/>:
/// <code>
/// var info = KernelLoader.Load(memory, request);
/// vcpu.SetSystemRegisters(info.Entry.InitialSystemRegisters(vcpu.GetSystemRegisters()));
/// vcpu.SetRegisters(info.Entry.InitialRegisters());
/// </code>
/// </summary>
public static class KernelLoader
{
    /// <summary>
    /// Detects the format and loads the kernel. The result is a <see cref="LinuxBootInfo"/>,
    /// <see cref="PvhBootInfo"/> or <see cref="MultibootBootInfo"/>. Throws <see cref="BootImageException"/>
    /// for any image (or initrd, or command line) that cannot be booted; nothing in guest memory is
    /// changed when the image's headers are rejected.
    /// </summary>
    public static KernelBootInfo Load(GuestMemory memory, KernelLoadRequest request)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Kernel);

        KernelBootInfo info = KernelImage.Detect(request.Kernel) switch
        {
            KernelFormat.BzImage => LinuxLoader.Load(memory, request),
            KernelFormat.PvhElf => PvhLoader.Load(memory, request),
            KernelFormat.Multiboot => MultibootLoader.Load(memory, request),
            _ => throw Unrecognized(request),
        };

        if (info.Entry.Mode == BootMode.Long64)
        {
            X86InitialState.WriteTables(memory);
        }
        else
        {
            X86InitialState.WriteGdt(memory);
        }

        return info;
    }

    /// <summary>
    /// Throws the <see cref="BootImageException"/> <see cref="Load"/> would throw when <paramref name="kernel"/> is in
    /// no format KvmSharp boots, without touching guest memory: lets the VMM report a bad kernel before it opens a
    /// hypervisor.
    /// </summary>
    public static void CheckFormat(byte[] kernel, string? fileName)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (KernelImage.Detect(kernel) == KernelFormat.Unknown)
        {
            throw Unrecognized(kernel, fileName);
        }
    }

    private static BootImageException Unrecognized(KernelLoadRequest request) => Unrecognized(request.Kernel, request.FileName);

    private static BootImageException Unrecognized(byte[] file, string? fileName)
    {
        string name = fileName ?? "kernel";
        if (!ElfImage.HasElfMagic(file))
        {
            return new BootImageException(name, "not a Linux bzImage (no 'HdrS' signature at offset 0x202)", BootTarget.FormatAdvice);
        }

        // A malformed ELF gets the reason; a well-formed one lacks a way in.
        ElfImage.Parse(file, name);
        return new BootImageException(
            name,
            "an ELF kernel with neither a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) nor a multiboot header",
            "Pass the kernel's bzImage, or build it with CONFIG_PVH=y.");
    }
}
