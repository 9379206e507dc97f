#!/bin/bash
# Snapshot and restore (issue 10). Sourced by run.sh (uses $B, $T, $MINIVM,
# $BOOT_TIMEOUT, ok, bad, check), or run alone: tests/integration/snapshot.sh
# build [KERNEL ROOTFS]. Two boots (one snapshot, one template), the rest
# restores: a restored VM runs commands; 4 clones at once write their own
# data, see nobody else's and leave the snapshot's files unchanged; clones
# read different random bytes; a truncated memory file, a flipped state
# byte and another version are each refused with their own error.
# Boots are serialized with the benchmark's lock (/tmp/minivm-boot.lock).

if ! declare -F check >/dev/null; then
	# Standalone.
	set -uo pipefail
	B=${1:-build}
	MINIVM=$B/minivm
	SNAP_KERNEL=${2:-${SNAP_KERNEL:-$B/vmlinux}}
	SNAP_ROOTFS=${3:-${SNAP_ROOTFS:-$B/rootfs.img}}
	T=$(mktemp -d "${TMPDIR:-/tmp}/minivm-snap.XXXXXX")
	BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
	. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
	SNAP_STANDALONE=1
else
	SNAP_KERNEL=${SNAP_KERNEL:-$B/vmlinux}
	SNAP_ROOTFS=${SNAP_ROOTFS:-$B/rootfs.img}
	SNAP_STANDALONE=0
fi

SN=$T/snapshots
mkdir -p "$SN/run"

# sn NAME ARGS...: one minivm run, waited for; output in $T/NAME.{out,err,rc}.
sn() {
	local name=$1
	shift
	TMPDIR=$SN/run timeout "$BOOT_TIMEOUT" "$MINIVM" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
# snb NAME ARGS...: a boot, serialized with other boots.
snb() {
	local name=$1
	shift
	TMPDIR=$SN/run flock /tmp/minivm-boot.lock timeout "$BOOT_TIMEOUT" "$MINIVM" "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}
src() { cat "$T/$1.rc"; }
snap_sums() { (cd "$1" && sha256sum state memory disk*.img 2>/dev/null); }
errline() { tail -n2 "$T/$1.err" | tr '\n' ' '; }

# Boot 1: snapshot once the agent is ready, then the command as usual.
S=$SN/base
snb snap --kernel "$SNAP_KERNEL" --rootfs "$SNAP_ROOTFS" --snapshot-after-ready "$S" \
	-- sh -c 'echo after-snapshot'
check "snapshot: the boot's command ran after the snapshot (exit $(src snap): $(errline snap))" \
	grep -q after-snapshot "$T/snap.out"
check "snapshot: DIR has state, memory and the scratch disk's copy" \
	test -s "$S/state" -a -s "$S/memory" -a -f "$S/disk1.img"
check "snapshot: no temporary file left" test -z "$(ls -A "$S" | grep '\.tmp$')"
mem_kib=$(du -k "$S/memory" | cut -f1)
check "snapshot: the memory file is sparse ($mem_kib KiB on disk for 256 MiB)" test "$mem_kib" -lt 131072
before=$(snap_sums "$S")

# A restore runs commands.
sn rest1 --restore "$S" --timings -- sh -c 'echo restored-ok; cat /proc/uptime; echo 6*7 | bc 2>/dev/null || echo 42'
check "restore: the command ran (exit $(src rest1): $(errline rest1))" \
	test "$(src rest1)" = 0 -a -n "$(grep restored-ok "$T/rest1.out")"
check "restore: --timings reports the VMM and guest phases" \
	grep -q 'timing restore_agent_ready' "$T/rest1.err"
sn rest2 --restore "$S" -- sh -c 'exit 7'
check "restore: the command's exit status is minivm's (got $(src rest2))" test "$(src rest2)" = 7

# 4 clones at once: each writes its own data to the disk (overlay on its
# own scratch copy) and to RAM (/tmp), waits for the others, and reads back.
for i in 1 2 3 4; do
	(sn "clone$i" --restore "$S" -- sh -c "
		test -e /clone.txt && echo SAW-OTHER-DISK; test -e /tmp/clone.txt && echo SAW-OTHER-RAM
		echo clone$i >/clone.txt; echo clone$i >/tmp/clone.txt; sync; sleep 5
		echo disk=\$(cat /clone.txt) ram=\$(cat /tmp/clone.txt)
		echo rand=\$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')") &
done
wait
clones_ok=1
for i in 1 2 3 4; do
	grep -q "disk=clone$i ram=clone$i" "$T/clone$i.out" || clones_ok=0
	grep -q 'SAW-OTHER' "$T/clone$i.out" && clones_ok=0
	[ "$(src "clone$i")" = 0 ] || clones_ok=0
done
check "4 clones at once: each sees only its own disk and RAM data (exits $(for i in 1 2 3 4; do printf '%s ' "$(src "clone$i")"; done))" \
	test "$clones_ok" = 1
rands=$(cat "$T"/clone?.out | sed -n 's/^rand=//p' | sort -u | wc -l)
check "clones read different bytes from /dev/urandom ($rands distinct of 4)" test "$rands" = 4
check "the snapshot's files are unchanged after the clones (sha256)" test "$(snap_sums "$S")" = "$before"
check "no run directory left" test -z "$(ls -A "$SN/run")"

# Each corruption refused with its own error (copies keep mtimes; the
# identity check would refuse any copied memory file: the state file's
# checks come first, and the truncation is reported as such).
bad_copy() { rm -rf "$SN/bad" && cp -a --sparse=always "$S" "$SN/bad"; }
bad_copy && truncate -s 100M "$SN/bad/memory"
sn trunc --restore "$SN/bad" -- true
check "a truncated memory file is refused as such ($(errline trunc))" \
	test "$(src trunc)" = 125 -a -n "$(grep 'memory file is 104857600 bytes.*truncated' "$T/trunc.err")"
bad_copy && printf '\x55' | dd of="$SN/bad/state" bs=1 seek=300 conv=notrunc 2>/dev/null
sn flip --restore "$SN/bad" -- true
check "a flipped byte in the state file is refused ($(errline flip))" \
	test "$(src flip)" = 125 -a -n "$(grep 'checksum mismatch' "$T/flip.err")"
bad_copy && printf '\x02' | dd of="$SN/bad/state" bs=1 seek=8 conv=notrunc 2>/dev/null
sn ver --restore "$SN/bad" -- true
check "another format version is refused ($(errline ver))" \
	test "$(src ver)" = 125 -a -n "$(grep 'format version 2 is not supported' "$T/ver.err")"
sn none --restore "$SN/nothing-here" -- true
check "a missing snapshot is refused ($(errline none))" \
	test "$(src none)" = 125 -a -n "$(grep 'cannot open' "$T/none.err")"
rm -rf "$SN/bad"

# Boot 2: a template, then a run from it.
export MINIVM_CACHE=$SN/cache
snb tcreate template create t1 --kernel "$SNAP_KERNEL" --rootfs "$SNAP_ROOTFS"
check "template create: exit 0 and the template's files ($(errline tcreate))" \
	test "$(src tcreate)" = 0 -a -s "$MINIVM_CACHE/templates/t1/state"
sn tuse --template t1 -- sh -c 'echo from-template'
check "--template t1 runs the command (exit $(src tuse): $(errline tuse))" \
	grep -q from-template "$T/tuse.out"
sn tmiss --template nope -- true
check "--template of a missing template is refused" test "$(src tmiss)" = 125
unset MINIVM_CACHE

if [ "$SNAP_STANDALONE" = 1 ]; then
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"
	[ "$fail" -eq 0 ]
fi
