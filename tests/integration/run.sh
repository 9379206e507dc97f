#!/usr/bin/env bash
# Integration tests: real boots of the project's kernel and rootfs under minivm.
# Boots are expensive where guest kernels are emulated (a minute or more
# each), so each boot checks several things. Boots run one at a time: on a
# 2-core host, a 2-vCPU guest beside another VM starved both (one boot
# needed 5x its usual time and another did not finish in 15 minutes).
#
# usage: tests/integration/run.sh BUILD_DIR
set -uo pipefail

B=${1:-build}
MINIVM=$B/minivm
T=$(mktemp -d "${TMPDIR:-/tmp}/minivm-it.XXXXXX")
# The work directory (consoles, logs) is kept when a test fails.
trap '[ "$fail" -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"' EXIT
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# check NAME CONDITION-COMMAND...: one assertion.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}

# vm NAME ARGS...: runs minivm in the background; status in $T/NAME.rc,
# stdout in $T/NAME.out, stderr in $T/NAME.err, console in $T/NAME.console.
vm() {
	local name=$1
	shift
	(
		start=$(date +%s%N)
		timeout "$BOOT_TIMEOUT" "$MINIVM" --console "$T/$name.console" "$@" \
			>"$T/$name.out" 2>"$T/$name.err" </dev/null
		echo $? >"$T/$name.rc"
		echo $((($(date +%s%N) - start) / 1000000)) >"$T/$name.ms"
	) &
}

rc() { cat "$T/$1.rc"; }
ms() { cat "$T/$1.ms"; }
has() { grep -q -- "$2" "$T/$1"; }

# timing NAME PHASE: the value in ms printed by --timings
timing() { awk -v p="$2" '$2 == "timing" && $3 == p { print $4 }' "$T/$1.err"; }

positive() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }

for f in minivm vmlinux bzImage rootfs.img; do
	if [ ! -e "$B/$f" ]; then
		echo "missing $B/$f: run make first"
		echo "0 passed, 1 failed"
		exit 1
	fi
done

echo "== errors that must come before any boot"
"$MINIVM" --kernel "$T/nonexistent" --rootfs "$B/rootfs.img" >"$T/e1.out" 2>"$T/e1.err"
e=$?
check "missing kernel: exit 125" [ "$e" = 125 ]
check "missing kernel: names the file" grep -q "nonexistent" "$T/e1.err"

head -c 100000 /dev/urandom >"$T/junk.bin"
timeout 20 "$MINIVM" --kernel "$T/junk.bin" --rootfs "$B/rootfs.img" >"$T/e2.out" 2>"$T/e2.err"
e=$?
check "not a kernel: exit 125" [ "$e" = 125 ]
check "not a kernel: says so" grep -qi "not a linux kernel" "$T/e2.err"

truncate -s 16M "$T/notfs.img"
timeout 20 "$MINIVM" --kernel "$B/vmlinux" --rootfs "$T/notfs.img" >"$T/e3.out" 2>"$T/e3.err"
e=$?
check "rootfs not a filesystem: exit 125" [ "$e" = 125 ]
check "rootfs not a filesystem: says so" grep -q "no ext4 superblock" "$T/e3.err"

timeout 20 "$MINIVM" --kernel "$B/vmlinux" --mem 12 >"$T/e4.out" 2>"$T/e4.err"
e=$?
check "bad --mem: exit 125" [ "$e" = 125 ]
timeout 20 "$MINIVM" --kernel "$B/vmlinux" --bogus >"$T/e5.out" 2>"$T/e5.err"
e=$?
check "unknown flag: exit 125" [ "$e" = 125 ]
check "unknown flag: names it" grep -q -- "--bogus" "$T/e5.err"

echo "== boots (one at a time)"
# Boot 1 checks many things at once: a disk of test files (ext4, read-only)
# carries the guest-side script, so the kernel command line stays short.
mkdir -p "$T/files"
head -c 1048576 /dev/urandom >"$T/files/pattern.bin"
cat >"$T/files/t.sh" <<'GUEST'
echo cpus-online=$(cat /sys/devices/system/cpu/online)
echo hello from the guest
# a pattern written to a writable disk, read back in the guest
dd if=/tmp/t/pattern.bin of=/dev/vdb bs=65536 conv=fsync 2>/dev/null && echo vdb-write=ok
dd if=/dev/vdb iflag=direct bs=65536 count=16 2>/dev/null | cmp -s - /tmp/t/pattern.bin && echo vdb-readback=ok
# a read-only disk refuses writes
if dd if=/tmp/t/pattern.bin of=/dev/vdc bs=4096 count=1 conv=fsync 2>/dev/null; then
	echo vdc-write=succeeded
else
	echo vdc-write=refused
fi
echo rng-current=$(cat /sys/class/misc/hw_random/rng_current)
echo hwrng-bytes=$(head -c 64 /dev/hwrng | wc -c)
echo root-mounted=$(awk '$2 == "/" { print $1 "," $3 }' /proc/mounts)
exit 3
GUEST
mkfs.ext4 -q -F -d "$T/files" "$T/files.img" 8M >/dev/null
truncate -s 8M "$T/data.img"
head -c 1048576 /dev/urandom >"$T/ro.img"
ro_sum=$(sha256sum <"$T/ro.img")
vm pvh2 --kernel "$B/vmlinux" --rootfs "$B/rootfs.img" --cpus 2 --timings \
	--disk "$T/data.img" --disk "$T/ro.img,ro" --disk "$T/files.img,ro" \
	--run "/bin/sh -c 'mkdir /tmp/t && mount -o ro /dev/vdd /tmp/t && exec /bin/sh /tmp/t/t.sh'"
wait
# 2: bzImage (64-bit boot protocol), 1 vCPU, exits 3
vm bz1 --kernel "$B/bzImage" --rootfs "$B/rootfs.img" --run "/bin/sh -c 'exit 3'"
wait

check "vmlinux: minivm exits with the guest's status 3 (got $(rc pvh2))" [ "$(rc pvh2)" = 3 ]
check "vmlinux: program output on the console" has pvh2.console "hello from the guest"
check "--cpus 2: guest reports CPUs 0-1 online" has pvh2.console "cpus-online=0-1"
for p in vmm_setup kernel init workload total; do
	v=$(timing pvh2 "$p")
	check "--timings prints $p (${v:-none} ms) > 0" positive "${v:-0}"
done
sum=$(awk '$2 == "timing" && $3 != "total" { s += $4 } END { print s }' "$T/pvh2.err")
total=$(timing pvh2 total)
check "--timings phases sum to the total ($sum vs $total ms)" \
	awk -v s="$sum" -v t="$total" 'BEGIN { d = s - t; if (d < 0) d = -d; exit !(t > 0 && d <= 0.01 * t + 1) }'
check "--timings total within the wall time ($total ms <= $(ms pvh2) ms)" \
	awk -v t="$total" -v w="$(ms pvh2)" 'BEGIN { exit !(t <= w) }'
check "root disk mounted from virtio-blk" has pvh2.console "root-mounted=/dev/root,ext4"
check "disk: guest wrote the pattern" has pvh2.console "vdb-write=ok"
check "disk: guest read the pattern back" has pvh2.console "vdb-readback=ok"
check "disk: the host file holds the pattern" cmp -s <(head -c 1048576 "$T/data.img") "$T/files/pattern.bin"
check "read-only disk: the guest's write failed" has pvh2.console "vdc-write=refused"
check "read-only disk: the host file is unchanged" [ "$(sha256sum <"$T/ro.img")" = "$ro_sum" ]
check "virtio-rng: the guest's hwrng is virtio" has pvh2.console "rng-current=virtio_rng"
check "virtio-rng: /dev/hwrng yields bytes" has pvh2.console "hwrng-bytes=64"
check "bzImage: minivm exits with the guest's status 3 (got $(rc bz1))" [ "$(rc bz1)" = 3 ]

# 3: the guest crashes: init exits, so the kernel panics and (panic=-1) resets
vm crash --kernel "$B/vmlinux" --rootfs "$B/rootfs.img" --cmdline "init=/bin/false"
wait
check "guest panic: crash exit code 123 (got $(rc crash))" [ "$(rc crash)" = 123 ]
check "guest panic: minivm says the guest crashed" has crash.err "guest crashed"
check "guest panic: the kernel's panic is on the console" has crash.console "Kernel panic"

echo "== boot wall times (ms): pvh2 $(ms pvh2), bz1 $(ms bz1), crash $(ms crash)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
