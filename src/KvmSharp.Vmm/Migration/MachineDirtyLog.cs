using KvmSharp.Kvm;
using KvmSharp.Memory;

namespace KvmSharp.Vmm.Migration;

/// <summary>
/// One dirty-page log over a machine's RAM, whichever the backend: the VMM's own writes (devices, loaders, the
/// software CPU's stores) from <see cref="GuestMemory"/>'s log, and on KVM the vCPUs' writes from each memory slot's
/// KVM_GET_DIRTY_LOG (the slot logs with KVM_MEM_LOG_DIRTY_PAGES; each get also clears and write-protects again).
/// <see cref="Collect"/> gives what was written since the previous call, one bitmap per RAM region (docs/migration.md).
/// </summary>
public sealed class MachineDirtyLog : IDisposable
{
    private readonly GuestMemory _memory;
    private readonly KvmVm? _kvm;
    private readonly uint[] _slots;
    private bool _running;

    public MachineDirtyLog(Machine machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        _memory = machine.Memory;
        _kvm = machine.VirtualMachine as KvmVm;
        _slots = new uint[_memory.Regions.Count];
        if (_kvm is not null)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                var region = _memory.Regions[i];
                _slots[i] = _kvm.Slots.FirstOrDefault(s => s.GuestPhysicalAddress == region.GuestPhysicalAddress && s.Size == region.Size)?.Slot
                    ?? throw new InvalidOperationException($"No KVM memory slot maps the RAM region at 0x{region.GuestPhysicalAddress:x}.");
            }
        }
    }

    /// <summary>Starts logging: every page clean from now on.</summary>
    public void Start()
    {
        _memory.StartDirtyLog();
        if (_kvm is not null)
        {
            foreach (uint slot in _slots)
            {
                _kvm.SetDirtyLogging(slot, true);
            }
        }

        _running = true;
    }

    /// <summary>One empty bitmap per RAM region, for <see cref="Collect"/>.</summary>
    public DirtyPageBitmap[] CreateBitmaps() => _memory.CreateDirtyBitmaps();

    /// <summary>Adds to <paramref name="into"/> every page written since <see cref="Start"/> or the previous collect.</summary>
    public void Collect(DirtyPageBitmap[] into)
    {
        ArgumentNullException.ThrowIfNull(into);
        if (!_running)
        {
            throw new InvalidOperationException("The dirty log is not running: call Start first.");
        }

        if (_kvm is not null)
        {
            for (int i = 0; i < _slots.Length; i++)
            {
                into[i].UnionWith(_kvm.GetDirtyLog(_slots[i]));
            }
        }

        _memory.CollectDirty(into);
    }

    /// <summary>Stops logging (the slots write at full speed again).</summary>
    public void Stop()
    {
        if (!_running)
        {
            return;
        }

        _running = false;
        if (_kvm is not null)
        {
            foreach (uint slot in _slots)
            {
                _kvm.SetDirtyLogging(slot, false);
            }
        }

        _memory.StopDirtyLog();
    }

    public void Dispose() => Stop();
}
