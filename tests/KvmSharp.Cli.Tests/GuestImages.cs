using System.Text;

namespace KvmSharp.Cli.Tests;

/// <summary>The default guest's files (scripts/build-guest.sh) and what the tests add to them.</summary>
internal static class GuestImages
{
    public static string Directory
        => Environment.GetEnvironmentVariable("KVMSHARP_GUEST_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kvmsharp", "guest");

    /// <summary>The default guest's directory; fails the test when the guest was not built.</summary>
    public static string RequireDefaultGuest()
    {
        string guest = Directory;
        Assert.True(File.Exists(Path.Combine(guest, "manifest.txt")), "The default guest is missing: run scripts/build-guest.sh first (.ci/run does).");
        return guest;
    }

    /// <summary>The compressed initramfs followed by an uncompressed newc archive holding one file (Linux unpacks both).</summary>
    public static byte[] InitramfsWithFile(byte[] initramfs, string path, byte[] contents)
    {
        var archive = new MemoryStream();
        archive.Write(initramfs);
        while (archive.Length % 4 != 0)
        {
            archive.WriteByte(0); // zero padding between archives is skipped by the kernel
        }

        string directory = path[..path.LastIndexOf('/')];
        WriteNewcEntry(archive, directory, 0x41ED, []); // drwxr-xr-x
        WriteNewcEntry(archive, path, 0x81A4, contents); // -rw-r--r--
        WriteNewcEntry(archive, "TRAILER!!!", 0, []);
        return archive.ToArray();
    }

    private static void WriteNewcEntry(MemoryStream archive, string name, int mode, byte[] data)
    {
        byte[] nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        string header = "070701" + string.Concat(new[]
        {
            1, mode, 0, 0, 1, 0, data.Length, 0, 0, 0, 0, nameBytes.Length, 0,
        }.Select(v => v.ToString("X8")));
        archive.Write(Encoding.ASCII.GetBytes(header));
        archive.Write(nameBytes);
        Pad(archive);
        archive.Write(data);
        Pad(archive);
    }

    private static void Pad(MemoryStream archive)
    {
        while (archive.Length % 4 != 0)
        {
            archive.WriteByte(0);
        }
    }
}
