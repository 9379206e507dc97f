#!/usr/bin/env bash
# The VMM's metrics on a real VM through the front (issue 11): builds
# tests/integration/metrics_vm.c against build/libminivm.a and runs it
# twice under the boot lock (two boots). For the lead's integration run:
#
#   tests/integration/metrics.sh [BUILD]      (BUILD defaults to build)
#
# metrics_vm_check: exits counted, vda read >= 1 MiB, vsock packets both
# ways, one command started and exited (the VM started on a thread that
# ended at once); then the front SIGKILLs itself and no process of the VM
# may remain.
# metrics_crash_check: the guest panics (minivm-crash): one guest_error
# event through the front, guest_errors 1 in the final counts.
# Exit status: 0 when both pass.
set -eu

build=${1:-build}
bin="$build/tests/metrics_vm"

metrics_build() {
	mkdir -p "$(dirname "$bin")"
	gcc -std=c11 -D_GNU_SOURCE -I. -pthread -Wall -Wextra -Werror -O1 -g \
		-o "$bin" tests/integration/metrics_vm.c "$build/libminivm.a" \
		-luring -lfdt -lcap-ng -lseccomp -lz -lext2fs -lcom_err
}

# The checks, then the front SIGKILLs itself with the VM running: its
# keeper and VMM (argv "minivm-vmm --libminivm-front PID") must be gone
# within 5 s.
metrics_vm_check() {
	local out="$build/tests/metrics_vm.out" pid e
	flock /tmp/minivm-boot.lock sh -c '"$1" "$2" "$3" killself >"$4" & echo $!; wait $!' \
		sh "$bin" "$build/vmlinux" "$build/rootfs.img" "$out" >"$out.pid" && e=0 || e=$?
	cat "$out"
	pid=$(head -n1 "$out.pid")
	[ "$e" = 137 ] && grep -q "metrics_vm: OK, now SIGKILL" "$out" || {
		echo "metrics_vm: exit $e, not the checks then SIGKILL"
		return 1
	}
	for _ in $(seq 1 50); do
		pgrep -f -- "minivm-vmm --libminivm-front $pid\$" >/dev/null || break
		sleep 0.1
	done
	if pgrep -af -- "minivm-vmm --libminivm-front $pid\$"; then
		echo "FAIL: the VM's processes outlived its front (pid $pid)"
		return 1
	fi
	echo "the VM's processes ended with their front (pid $pid)"
}

metrics_crash_check() {
	flock /tmp/minivm-boot.lock "$bin" "$build/vmlinux" "$build/rootfs.img" crash
}

metrics_build
metrics_vm_check
metrics_crash_check
