namespace KvmSharp.Boot.Elf;

/// <summary>Loads an ELF's PT_LOAD segments at their physical addresses (PVH and multiboot ELF kernels).</summary>
internal static class ElfSegmentLoader
{
    /// <summary>
    /// Checks every PT_LOAD segment lies in RAM at or above 1 MiB (or, with <paramref name="lowBootData"/>, in
    /// conventional memory clear of those ranges) and that <paramref name="entry"/> is inside one of them; returns the
    /// end of the highest segment. Writes nothing.
    /// </summary>
    public static ulong Validate(BootTarget target, ElfImage elf, ulong entry, ReadOnlySpan<BootDataRange> lowBootData = default)
    {
        ulong end = 0;
        bool entryLoaded = false;
        int loadable = 0;
        foreach (var s in elf.Segments)
        {
            if (s.Type != ElfImage.PtLoad || s.MemorySize == 0)
            {
                continue;
            }

            loadable++;
            if (lowBootData.IsEmpty)
            {
                target.RequireLoadable("segment", s.PhysicalAddress, s.MemorySize);
            }
            else
            {
                target.RequireLoadable("segment", s.PhysicalAddress, s.MemorySize, lowBootData);
            }

            end = Math.Max(end, s.PhysicalAddress + s.MemorySize);
            entryLoaded |= entry >= s.PhysicalAddress && entry - s.PhysicalAddress < s.MemorySize;
        }

        if (loadable == 0)
        {
            throw target.Corrupt("the ELF file has no loadable (PT_LOAD) segment");
        }

        if (!entryLoaded)
        {
            throw target.Corrupt($"the entry point 0x{entry:x} is not inside any loadable segment");
        }

        return end;
    }

    /// <summary>Copies p_filesz bytes of each segment and zeroes the rest up to p_memsz. Call <see cref="Validate"/> first.</summary>
    public static void Load(BootTarget target, ElfImage elf, ReadOnlySpan<byte> file)
    {
        foreach (var s in elf.Segments)
        {
            if (s.Type != ElfImage.PtLoad || s.MemorySize == 0)
            {
                continue;
            }

            target.Write(s.PhysicalAddress, file.Slice((int)s.Offset, (int)s.FileSize), "segment");
            target.Zero(s.PhysicalAddress + s.FileSize, s.MemorySize - s.FileSize, "segment");
        }
    }
}
