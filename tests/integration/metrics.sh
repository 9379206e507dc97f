#!/usr/bin/env bash
# The VMM's metrics on a real VM through the front (issue 11): builds
# tests/integration/metrics_vm.c against build/libminivm.a and runs it
# once under the boot lock. For the lead's integration run:
#
#   tests/integration/metrics.sh [BUILD]      (BUILD defaults to build)
#
# Exit status: the program's (0: exits counted, vda read >= 1 MiB, vsock
# packets both ways, one command started and exited).
set -eu

build=${1:-build}
bin="$build/tests/metrics_vm"

metrics_vm_check() {
	mkdir -p "$(dirname "$bin")"
	gcc -std=c11 -D_GNU_SOURCE -I. -pthread -Wall -Wextra -Werror -O1 -g \
		-o "$bin" tests/integration/metrics_vm.c "$build/libminivm.a" \
		-luring -lfdt -lcap-ng -lseccomp -lz -lext2fs -lcom_err
	flock /tmp/minivm-boot.lock "$bin" "$build/vmlinux" "$build/rootfs.img"
}

metrics_vm_check
