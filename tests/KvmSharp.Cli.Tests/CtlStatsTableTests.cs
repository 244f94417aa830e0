using System.Text.Json;
using KvmSharp.Cli.Commands;
using Spectre.Console;

namespace KvmSharp.Cli.Tests;

/// <summary>The table <c>kvmsharp ctl stats [--watch]</c> draws from GET /x/stats: counts, then rates per second.</summary>
public sealed class CtlStatsTableTests
{
    private static JsonElement Stats(long portIn0, long portIn1, long rxFrames) => JsonDocument.Parse($$$"""
        {"state": "Running", "accelerator": "kvm",
         "vcpus": [{"vcpu": 0, "total": {{{portIn0 + 5}}}, "exits": {"PortIn": {{{portIn0}}}, "Halt": 5}},
                   {"vcpu": 1, "total": {{{portIn1}}}, "exits": {"PortIn": {{{portIn1}}}, "Halt": 0}}],
         "devices": {"virtio-net0": {"rx_frames": {{{rxFrames}}} } } }
        """).RootElement.Clone();

    private static string Draw(JsonElement now, JsonElement? previous, double seconds)
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(text),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 80;
        console.Write(CtlCommand.Render(now, previous, seconds));
        return text.ToString();
    }

    [Fact]
    public void OneSample_CountsPerVcpuAndDeviceCounters()
    {
        string table = Draw(Stats(1234, 7, 42), null, 0);

        Assert.Contains("Running on kvm", table, StringComparison.Ordinal);
        Assert.Matches(@"│ exit\s+│\s+vcpu0 │\s+vcpu1 │", table);
        Assert.Matches(@"│ PortIn\s+│\s+1,234 │\s+7 │", table);
        Assert.Matches(@"│ Halt\s+│\s+5 │\s+0 │", table);
        Assert.Matches(@"│ virtio-net0 │ rx_frames │\s+42 │", table);
    }

    [Fact]
    public void TwoSamples_AddTheRatePerSecond()
    {
        string table = Draw(Stats(3234, 7, 50), Stats(1234, 7, 42), 2.0);

        Assert.Matches(@"│ PortIn\s+│\s+3,234 \(1,000/s\) │\s+7 \(0/s\) │", table);
        Assert.Matches(@"│ Halt\s+│\s+5 \(0/s\) │\s+0 \(0/s\) │", table);
    }
}
