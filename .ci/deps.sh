#!/usr/bin/env bash
# Installs what minivm's build and tests need from Debian 12's packages.
# Idempotent, and quiet when everything is already there.
set -euo pipefail

pkgs=(
	build-essential pkg-config clang libclang-rt-14-dev
	liburing-dev libfdt-dev libcap-ng-dev zlib1g-dev libseccomp-dev check
	linux-source-6.1 bison flex libelf-dev libssl-dev bc lz4 xz-utils cpio
	busybox-static e2fsprogs musl-tools libext2fs-dev
	socat tcpdump iproute2 git skopeo umoci containerd python3-jsonschema
	qemu-system-x86 gnuplot-nox linux-perf
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
