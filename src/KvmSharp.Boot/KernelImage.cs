using KvmSharp.Boot.Elf;
using KvmSharp.Boot.Linux;
using KvmSharp.Boot.Multiboot;
using KvmSharp.Boot.Pvh;

namespace KvmSharp.Boot;

/// <summary>The kernel image formats KvmSharp boots.</summary>
public enum KernelFormat
{
    Unknown,

    /// <summary>A Linux bzImage: the 64-bit boot protocol.</summary>
    BzImage,

    /// <summary>An ELF kernel with a XEN_ELFNOTE_PHYS32_ENTRY note: the PVH boot ABI.</summary>
    PvhElf,

    /// <summary>A multiboot v1 kernel (a.out kludge or ELF).</summary>
    Multiboot,
}

/// <summary>Tells a kernel image's format from its bytes.</summary>
public static class KernelImage
{
    /// <summary>
    /// A bzImage when it has the "HdrS" signature; else an ELF with a PVH entry note; else anything with a
    /// multiboot magic in its first 8192 bytes (its checksum is the loader's to check, with a clear error);
    /// else <see cref="KernelFormat.Unknown"/>, which includes an ELF with neither note nor header.
    /// </summary>
    public static KernelFormat Detect(ReadOnlySpan<byte> file)
    {
        if (BzImage.HasSignature(file))
        {
            return KernelFormat.BzImage;
        }

        if (ElfImage.HasElfMagic(file))
        {
            var elf = ElfImage.TryParse(file, out _);
            if (elf is not null && elf.FindNote(file, PvhLoader.XenNoteName, PvhLoader.XenElfNotePhys32Entry) is not null)
            {
                return KernelFormat.PvhElf;
            }
        }

        return MultibootHeader.FindMagic(file) >= 0 ? KernelFormat.Multiboot : KernelFormat.Unknown;
    }
}
