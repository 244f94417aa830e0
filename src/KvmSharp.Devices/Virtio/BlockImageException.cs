namespace KvmSharp.Devices.Virtio;

/// <summary>What is wrong with a disk image the user named.</summary>
public enum BlockImageProblem
{
    NotFound,
    IsDirectory,
    NotFileOrBlockDevice,
    Empty,
    NotSectorMultiple,
    PermissionDenied,
    ReadOnlyFileSystem,
    Locked,
    LockingUnsupported,
    OpenFailed,
}

/// <summary>
/// A disk image that cannot be attached. The message is one line for the user: what is wrong with which file, then
/// what to do about it.
/// </summary>
public sealed class BlockImageException : Exception
{
    public BlockImageException(string path, BlockImageProblem problem, string message, int errno = 0, int? holderPid = null)
        : base(message)
    {
        Path = path;
        Problem = problem;
        Errno = errno;
        HolderPid = holderPid;
    }

    /// <summary>The image path as the user gave it.</summary>
    public string Path { get; }

    public BlockImageProblem Problem { get; }

    /// <summary>The errno behind the problem, or 0.</summary>
    public int Errno { get; }

    /// <summary>For <see cref="BlockImageProblem.Locked"/>: the pid of a process holding a conflicting lock, when the host lets us see it.</summary>
    public int? HolderPid { get; }
}
