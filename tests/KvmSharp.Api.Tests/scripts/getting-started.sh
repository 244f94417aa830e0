#!/usr/bin/env bash
# Firecracker's getting-started sequence (docs/getting-started.md in Firecracker), with curl over the API socket:
# logger, boot source, root drive, network interface, machine config, InstanceStart, then pause, snapshot, resume,
# Ctrl-Alt-Del. Prints one line per request, "METHOD PATH -> STATUS BODY", for the test to compare.
#
#   bash getting-started.sh API_SOCKET KERNEL ROOTFS LOG_FILE SNAPSHOT_DIR
set -euo pipefail
sock=$1 kernel=$2 rootfs=$3 log=$4 snap=$5

call() {
    local method=$1 path=$2 body=${3:-}
    local out status
    if [ -n "$body" ]; then
        out=$(curl -sS --unix-socket "$sock" -X "$method" "http://localhost$path" \
            -H 'Accept: application/json' -H 'Content-Type: application/json' -d "$body" -w '\n%{http_code}')
    else
        out=$(curl -sS --unix-socket "$sock" -X "$method" "http://localhost$path" -H 'Accept: application/json' -w '\n%{http_code}')
    fi
    status=${out##*$'\n'}
    body=${out%$'\n'*}
    echo "$method $path -> $status $body"
}

call GET /
call PUT /logger "{\"log_path\": \"$log\", \"level\": \"Debug\", \"show_level\": true, \"show_log_origin\": true}"
call PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off\"}"
call PUT /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$rootfs\", \"is_root_device\": true, \"is_read_only\": false}"
call PUT /network-interfaces/net1 '{"iface_id": "net1", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "tap0"}'
call PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 1024}'
call GET /machine-config
call PUT /actions '{"action_type": "InstanceStart"}'
call GET /
call PATCH /vm '{"state": "Paused"}'
call PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$snap/vmstate\", \"mem_file_path\": \"$snap/memory\"}"
call PATCH /vm '{"state": "Resumed"}'
call PUT /actions '{"action_type": "SendCtrlAltDel"}'
call PUT /boot-source "{\"kernel_image_path\": \"$kernel\"}"
