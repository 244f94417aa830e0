namespace KvmSharp.Cli.Tests;

internal static class RepoPaths
{
    /// <summary>The repository root (the folder holding KvmSharp.slnx), found from the test binary's folder.</summary>
    public static string Root { get; } = FindRoot();

    public static string Fixture(params string[] parts) => Path.Combine([Root, "tests", "fixtures", .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KvmSharp.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("KvmSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}
