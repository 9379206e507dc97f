#!/usr/bin/env bash
# The VMM's metrics on a real VM through the front (issue 11): builds
# tests/integration/metrics_vm.c against build/libminivm.a and runs it
# twice under the boot lock (two boots). For the lead's integration run:
#
#   tests/integration/metrics.sh [BUILD]      (BUILD defaults to build)
#
# metrics_vm_check: exits counted, vda read >= 1 MiB, vsock packets both
# ways, one command started and exited, final counts after the end.
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

metrics_vm_check() {
	flock /tmp/minivm-boot.lock "$bin" "$build/vmlinux" "$build/rootfs.img"
}

metrics_crash_check() {
	flock /tmp/minivm-boot.lock "$bin" "$build/vmlinux" "$build/rootfs.img" crash
}

metrics_build
metrics_vm_check
metrics_crash_check
