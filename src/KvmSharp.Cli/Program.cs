using KvmSharp.Cli;

var app = new CliApp(Console.Out, Console.Error, Console.OpenStandardOutput);
try
{
    return app.Run(args);
}
catch (Exception e)
{
    // Every expected failure is turned into a one-line message by the verbs; this is the last resort for bugs.
    return app.Fail(ExitCodes.VmmError, $"internal error: {e.GetType().Name}: {e.Message}. Please report it with the command you ran.");
}
