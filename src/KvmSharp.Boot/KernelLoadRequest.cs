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
    ulong RamSize);
