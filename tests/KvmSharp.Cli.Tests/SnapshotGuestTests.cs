using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using KvmSharp.Hypervisor.Snapshots;

namespace KvmSharp.Cli.Tests;

/// <summary>
/// A snapshot round trip of the default Debian guest through the control API of two <c>kvmsharp serve</c> processes:
/// booted at its shell with a virtio disk and a counter running in guest memory, paused, snapshotted, the first process
/// killed; restored paused in a second process, which snapshots it again at once (every state section equal to the
/// first, but the time-relative fields listed in <see cref="MovingFields"/>), then resumed: the shell answers, the
/// counter goes on from where it was, the disk's data is intact, and Ctrl-Alt-Del sent through the API reboots it
/// (which ends the machine).
/// </summary>
public sealed class SnapshotGuestTests
{
    private static readonly TimeSpan BootTimeout = TestTime.Scaled(TimeSpan.FromMinutes(10));

    /// <summary>
    /// Fields that move between a save and the next save of the same paused machine, because the host clock runs on
    /// while a machine is paused and between two processes (docs/snapshots.md): they are removed before the sections
    /// are compared. Keyed by section id prefix; a dotted path reaches into objects and arrays of objects.
    /// </summary>
    private static readonly Dictionary<string, string[]> MovingFields = new()
    {
        // Software CPU: the TSC counts on from its saved value; the LAPIC timer's "started ticks ago" and "deadline due
        // in", and the PIT's clock (its counters' clocks are shifted onto the restoring PIT's time line by the same amount).
        ["vcpu"] = ["tsc"],
        ["platform"] = ["local_apics.timer_started_ticks_ago", "local_apics.deadline_due_in_ticks", "pit.clock", "pit.channels.load_clock", "pit.channels.reload_clock"],
        // KVM: kvmclock counts on from its saved value; the in-kernel PIT's state holds host ktime (count_load_time).
        ["kvm-vm"] = ["clock", "pit"],
    };

    /// <summary>
    /// MSRs whose value is the time: IA32_TSC, Hyper-V's reference counter (read-only, KVM ignores a host write) and its
    /// vCPU run time (KVM counts it on from the restored value with the vCPU thread's run time).
    /// </summary>
    private static readonly uint[] TimeMsrs = [0x10, 0x4000_0020, 0x4000_0010];

    /// <summary>CMOS bytes that hold the time of day (seconds, minutes, hours, weekday, day, month, year, century).</summary>
    private static readonly int[] RtcTimeBytes = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32];

    [Theory]
    [InlineData("kvm", Traits = [KvmTests.Trait, KvmTests.Kvm])]
    [InlineData("emulator")]
    public void DebianGuest_SnapshotRestoredInANewProcess_GoesOnWithItsShellCounterAndDisk(string accel)
    {
        KvmTests.RequireFor(accel);
        string guest = GuestImages.RequireDefaultGuest();
        string dir = Directory.CreateTempSubdirectory("kvmsharp-snapshot-").FullName;
        try
        {
            string disk = Path.Combine(dir, "data.img");
            byte[] image = new byte[8 << 20];
            new Random(20261207).NextBytes(image.AsSpan(0, 4096));
            File.WriteAllBytes(disk, image);
            string firstState = Path.Combine(dir, "vmstate.bin");
            string firstMemory = Path.Combine(dir, "memory.bin");
            string secondState = Path.Combine(dir, "vmstate2.bin");
            string secondMemory = Path.Combine(dir, "memory2.bin");
            string diskHash;
            long counterAtSnapshot;

            // 1. Boot, write the disk from the guest, start the counter, pause, snapshot.
            string socket1 = Path.Combine(dir, "api1.sock");
            using (var source = GuestSession.Start("serve", "--api-sock", socket1, "--accel", accel))
            using (var api = new UnixApiClient(socket1))
            {
                api.WaitUntilServing(TestTime.Scaled(TimeSpan.FromSeconds(60)));
                api.Expect204(HttpMethod.Put, "machine-config", """{"vcpu_count": 1, "mem_size_mib": 256}""");
                api.Expect204(HttpMethod.Put, "boot-source",
                    $$"""{"kernel_image_path": "{{Path.Combine(guest, "vmlinux")}}", "initrd_path": "{{Path.Combine(guest, "initramfs.cpio.gz")}}", "boot_args": "console=ttyS0 reboot=k panic=-1 kvmsharp.net=off i8042.nopnp i8042.dumbkbd"}""");
                api.Expect204(HttpMethod.Put, "drives/data", $$"""{"drive_id": "data", "path_on_host": "{{disk}}", "is_root_device": false, "is_read_only": false}""");
                api.Expect204(HttpMethod.Put, "actions", """{"action_type": "InstanceStart"}""");
                source.WaitFor("KVMSHARP-GUEST-READY", BootTimeout);
                source.WaitFor("guest# ", GuestSession.CommandTimeout);

                // The guest writes 64 KiB of its own to sector 16 on, and hashes the first 1 MiB of the disk.
                source.Run("dd if=/dev/urandom of=/dev/vda bs=4096 seek=2 count=16 conv=fsync 2>/dev/null");
                diskHash = source.Run("dd if=/dev/vda bs=65536 count=16 2>/dev/null | sha256sum | cut -d' ' -f1");
                Assert.Matches("^[0-9a-f]{64}$", diskHash);
                source.Run("(i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 1; done) & true");
                Thread.Sleep(2500);
                counterAtSnapshot = long.Parse(source.Run("cat /tmp/counter"), System.Globalization.CultureInfo.InvariantCulture);
                Assert.InRange(counterAtSnapshot, 1, 100);

                api.Expect204(HttpMethod.Patch, "vm", """{"state": "Paused"}""");
                Assert.Contains("\"state\":\"Paused\"", api.Get(string.Empty).Replace(" ", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
                api.Expect204(HttpMethod.Put, "snapshot/create", $$"""{"snapshot_path": "{{firstState}}", "mem_file_path": "{{firstMemory}}", "snapshot_type": "Full"}""");
            }

            Assert.Equal(256L << 20, new FileInfo(firstMemory).Length);
            byte[] memoryBefore = SHA256.HashData(File.ReadAllBytes(firstMemory));

            // 2. Restore in a new process, paused; snapshot again at once; resume.
            string socket2 = Path.Combine(dir, "api2.sock");
            using (var restored = GuestSession.Start("serve", "--api-sock", socket2, "--accel", accel))
            using (var api = new UnixApiClient(socket2))
            {
                api.WaitUntilServing(TestTime.Scaled(TimeSpan.FromSeconds(60)));
                api.Expect204(HttpMethod.Put, "snapshot/load",
                    $$"""{"snapshot_path": "{{firstState}}", "mem_backend": {"backend_type": "File", "backend_path": "{{firstMemory}}"}, "resume_vm": false}""");
                Assert.Contains("\"state\":\"Paused\"", api.Get(string.Empty).Replace(" ", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
                api.Expect204(HttpMethod.Put, "snapshot/create", $$"""{"snapshot_path": "{{secondState}}", "mem_file_path": "{{secondMemory}}"}""");
                api.Expect204(HttpMethod.Patch, "vm", """{"state": "Resumed"}""");
                var sinceResume = System.Diagnostics.Stopwatch.StartNew();

                // The counter goes on from its value in the snapshot (not from 0), about one a second since the resume
                // (on KVM the guest's clock shows the time the machine was away, so a sleep due meanwhile ends at once).
                // The bound allows the guest's clock twice the host's pace: once on the software CPU the restored guest
                // counted 15 in about 9 s of host time (2026-12-08, not explained; docs/snapshots.md).
                Assert.Equal("alive 42", restored.Run("echo alive $((6 * 7))"));
                long counter = long.Parse(restored.Run("cat /tmp/counter"), System.Globalization.CultureInfo.InvariantCulture);
                Assert.InRange(counter, counterAtSnapshot, counterAtSnapshot + 2 + (2 * (long)sinceResume.Elapsed.TotalSeconds));
                Thread.Sleep(3000);
                long later = long.Parse(restored.Run("cat /tmp/counter"), System.Globalization.CultureInfo.InvariantCulture);
                Assert.InRange(later, counter + 1, counterAtSnapshot + 2 + (2 * (long)sinceResume.Elapsed.TotalSeconds));
                Assert.Equal(diskHash, restored.Run("dd if=/dev/vda bs=65536 count=16 2>/dev/null | sha256sum | cut -d' ' -f1"));

                // Ctrl-Alt-Del through the API reaches the restored guest's keyboard driver (IRQ 1, set 2 scan codes);
                // with kernel.ctrl-alt-del=1 Linux reboots at once, and a reboot ends the machine with 0.
                restored.Run("echo 1 > /proc/sys/kernel/ctrl-alt-del");
                api.Expect204(HttpMethod.Put, "actions", """{"action_type": "SendCtrlAltDel"}""");
                restored.WaitFor("reboot: Restarting system", GuestSession.CommandTimeout);
                Assert.Equal(0, restored.WaitForExit(GuestSession.CommandTimeout));
            }

            // The guest's disk writes reached the image, and the snapshot's memory file was not changed by the restore.
            Assert.Equal(diskHash, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(disk).AsSpan(0, 1 << 20))));
            Assert.Equal(memoryBefore, SHA256.HashData(File.ReadAllBytes(firstMemory)));
            var firstSections = SnapshotFile.Read(firstState);
            byte[] memory1 = File.ReadAllBytes(firstMemory);
            byte[] memory2 = File.ReadAllBytes(secondMemory);
            MaskKvmWallClock(firstSections, memory1);
            MaskKvmWallClock(firstSections, memory2);
            Assert.Equal(memory1, memory2);
            AssertSameState(firstSections, SnapshotFile.Read(secondState));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// Clears kvmclock's wall-clock structure (version, seconds, nanoseconds: 12 bytes) at the guest-physical address
    /// the guest gave in MSR_KVM_WALL_CLOCK_NEW (or the old MSR_KVM_WALL_CLOCK): KVM writes the host's boot time there
    /// whenever that MSR is set, so restoring the vCPU's MSRs rewrites it (as QEMU's restore does). The software CPU
    /// offers no kvmclock, so its snapshots have no such MSR and nothing is masked.
    /// </summary>
    private static void MaskKvmWallClock(IReadOnlyList<SnapshotSection> sections, byte[] memory)
    {
        var vcpu = sections.FirstOrDefault(s => s.Id == "vcpu0");
        if (vcpu is null || JsonNode.Parse(vcpu.Payload.Span)!["msrs"] is not JsonArray msrs)
        {
            return;
        }

        foreach (var msr in msrs)
        {
            uint index = msr!["index"]!.GetValue<uint>();
            ulong address = msr["value"]!.GetValue<ulong>();
            if (index is 0x4b56_4d00 or 0x11 && address != 0 && address + 12 <= (ulong)memory.Length)
            {
                memory.AsSpan((int)address, 12).Clear();
            }
        }
    }

    private static void AssertSameState(IReadOnlyList<SnapshotSection> first, IReadOnlyList<SnapshotSection> second)
    {
        Assert.Equal(first.Select(s => (s.Id, s.Version)), second.Select(s => (s.Id, s.Version)));
        for (int i = 0; i < first.Count; i++)
        {
            string id = first[i].Id;
            var a = JsonNode.Parse(first[i].Payload.Span)!;
            var b = JsonNode.Parse(second[i].Payload.Span)!;
            Normalize(id, a);
            Normalize(id, b);
            foreach (var (prefix, fields) in MovingFields)
            {
                if (id.StartsWith(prefix, StringComparison.Ordinal))
                {
                    foreach (string field in fields)
                    {
                        Remove(a, field);
                        Remove(b, field);
                    }
                }
            }

            Assert.True(JsonNode.DeepEquals(a, b), $"section '{id}' differs:\n{a.ToJsonString()}\n{b.ToJsonString()}");
        }
    }

    /// <summary>Clears the time-of-day bytes of the CMOS and drops the time MSRs of a KVM vCPU.</summary>
    private static void Normalize(string id, JsonNode node)
    {
        if (id == "rtc" && node["data"] is JsonValue data)
        {
            byte[] bytes = Convert.FromBase64String(data.GetValue<string>());
            foreach (int i in RtcTimeBytes)
            {
                bytes[i] = 0;
            }

            node["data"] = Convert.ToBase64String(bytes);
        }

        if (id.StartsWith("vcpu", StringComparison.Ordinal) && node["msrs"] is JsonArray msrs)
        {
            foreach (var msr in msrs.Where(m => TimeMsrs.Contains(m!["index"]!.GetValue<uint>())).ToList())
            {
                msrs.Remove(msr);
            }

            // KVM on AMD (SVM) keeps only the low 32 bits of IA32_SYSENTER_ESP/EIP when the host sets them (the guest's
            // own writes go straight to the VMCB, all 64 bits); SYSENTER does not exist in long mode on AMD, so the
            // high half is never used. Compare the low halves.
            foreach (var msr in msrs.Where(m => m!["index"]!.GetValue<uint>() is 0x175 or 0x176))
            {
                msr!["value"] = msr["value"]!.GetValue<ulong>() & 0xFFFF_FFFF;
            }
        }
    }

    /// <summary>Removes a dotted property path (<c>local_apics.timer_started_ticks_ago</c>) where it exists; arrays of objects on the way are walked.</summary>
    private static void Remove(JsonNode? node, string path)
    {
        int dot = path.IndexOf('.', StringComparison.Ordinal);
        string head = dot < 0 ? path : path[..dot];
        if (node is JsonArray array)
        {
            foreach (var item in array)
            {
                Remove(item, path);
            }

            return;
        }

        if (node is not JsonObject obj)
        {
            return;
        }

        if (dot < 0)
        {
            obj.Remove(head);
        }
        else
        {
            Remove(obj[head], path[(dot + 1)..]);
        }
    }
}
