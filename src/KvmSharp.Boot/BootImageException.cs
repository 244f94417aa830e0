namespace KvmSharp.Boot;

/// <summary>
/// A kernel or initrd image that cannot be booted: malformed, truncated, of an unsupported format or
/// protocol, or too large for the guest's RAM. The message is one line for the user:
/// "'&lt;file name&gt;': &lt;problem&gt;. &lt;what to do&gt;".
/// </summary>
public sealed class BootImageException : Exception
{
    public BootImageException(string fileName, string problem, string advice)
        : base($"'{fileName}': {problem}. {advice}")
    {
        FileName = fileName;
        Problem = problem;
        Advice = advice;
    }

    /// <summary>The file the problem is in (the kernel or the initrd), as the user named it.</summary>
    public string FileName { get; }

    /// <summary>What is wrong, without the file name or the advice.</summary>
    public string Problem { get; }

    /// <summary>What the user can do about it.</summary>
    public string Advice { get; }
}
