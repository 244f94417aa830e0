namespace KvmSharp.Boot;

/// <summary>
/// What a loader needs: the kernel file (any format <see cref="KernelImage.Detect"/> knows), an optional
/// initrd, the command line, and the guest's RAM size, from which <see cref="PcMemoryLayout"/> derives the
/// memory map. <paramref name="FileName"/> and <paramref name="InitrdName"/> only name the files in errors
/// (and the initrd's multiboot module string).
/// </summary>
public sealed record KernelLoadRequest(
    string FileName,
    byte[] Kernel,
    byte[]? Initrd,
    string? InitrdName,
    string CommandLine,
    ulong RamSize)
{
    /// <summary>
    /// Where the machine put the ACPI RSDP (0 if it has no ACPI tables): passed in boot_params.acpi_rsdp_addr
    /// (Linux) and hvm_start_info.rsdp_paddr (PVH). Multiboot has no field; the guest scans the BIOS area.
    /// </summary>
    public ulong AcpiRsdpAddress { get; init; }

    /// <summary>
    /// The kernel's path as the user gave it (default: <paramref name="FileName"/>). A multiboot kernel's command line
    /// starts with it, then the arguments, as GRUB and QEMU pass it.
    /// </summary>
    public string? KernelPath { get; init; }
}
