#!/usr/bin/env bash
# Build minivm's guest kernel from Debian's linux-source-6.1 into
# OUTDIR/vmlinux (ELF with the PVH entry note) and OUTDIR/bzImage.
#
#   kernel-config/build.sh OUTDIR
#
# tinyconfig + kernel-config/minivm.config (verified line by line), the
# patches in kernel-config/patches/ (in order), make -j$(nproc).  Builds are
# cached outside the work tree, keyed by everything that goes into them:
#   ${MINIVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivm}/kernel/
#     src/<package version>/     the extracted source (read-only use)
#     <key>/                     vmlinux, bzImage, config, build.log
# A directory only gets its final name once it is complete (built in a
# temporary directory, then renamed), so an interrupted build never leaves
# anything that looks done.  See kernel-config/README.md.
set -euo pipefail

PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
ARCH=x86_64

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
fragment="$here/minivm.config"
started=$SECONDS

step() { printf '[kernel] %s\n' "$*"; }
die() { printf 'kernel-config/build.sh: error: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || die "usage: kernel-config/build.sh OUTDIR"
outdir=$1

# --- inputs ---------------------------------------------------------------
status=$(dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null || true)
if [[ $status != "install ok installed" || ! -r $TARBALL ]]; then
	die "$PKG is not installed ($TARBALL missing): run 'make deps' first"
fi
version=$(dpkg-query -W -f='${Version}' "$PKG")
missing=()
for tool in make gcc ld flex bison bc lz4 perl xz patch readelf sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -e /usr/include/libelf.h ]] || missing+=("libelf-dev")
[[ -e /usr/include/openssl/ssl.h ]] || missing+=("libssl-dev")
((${#missing[@]} == 0)) || die "missing build tools: ${missing[*]}: run 'make deps' first"
[[ -r $fragment ]] || die "$fragment not found"

shopt -s nullglob
patches=("$here"/patches/*.patch)
shopt -u nullglob

# The key: the package version and the content (and name, hence order) of
# every input file, this script included.
key=$(
	printf '%s %s\n' "$PKG" "$version"
	for f in "$self" "$fragment" "${patches[@]}"; do
		printf '%s %s\n' "${f#"$here"/}" "$(sha256sum <"$f" | cut -d' ' -f1)"
	done | LC_ALL=C sort
)
key=$(printf '%s\n' "$key" | sha256sum | cut -c1-16)

cache=${MINIVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivm}/kernel
final="$cache/$key"
mkdir -p "$cache" "$outdir"

install_outputs() {
	local f
	for f in vmlinux bzImage; do
		cp "$final/$f" "$outdir/.$f.tmp.$$"
		mv -f "$outdir/.$f.tmp.$$" "$outdir/$f"
	done
}

is_complete() {
	[[ -f $1/complete && -f $1/vmlinux && -f $1/bzImage ]]
}

if is_complete "$final"; then
	install_outputs
	step "cache hit $key ($PKG $version): $outdir/vmlinux $outdir/bzImage ($((SECONDS - started)) s)"
	exit 0
fi

# One builder per key at a time; a second `make` waits and then hits.
exec {lockfd}>"$cache/$key.lock"
if ! flock -n "$lockfd"; then
	step "another build of $key is running; waiting for it"
	flock "$lockfd"
fi
if is_complete "$final"; then
	install_outputs
	step "cache hit $key (built meanwhile): $outdir/vmlinux $outdir/bzImage"
	exit 0
fi

tmp=""
cleanup() { if [[ -n $tmp ]]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the pristine source, extracted once per package version -------------
srcroot="$cache/src"
src="$srcroot/$version"
mkdir -p "$srcroot"
exec {srclockfd}>"$srcroot/$version.lock"
flock "$srclockfd"
if [[ ! -f $src/complete ]]; then
	step "extracting $TARBALL ($PKG $version, kept for later builds)"
	rm -rf "$src" "$srcroot/.$version.tmp".*
	tmp=$(mktemp -d "$srcroot/.$version.tmp.XXXXXX")
	tar -C "$tmp" -xf "$TARBALL"
	[[ -f $tmp/$PKG/Makefile ]] || die "$TARBALL does not hold $PKG/"
	mv "$tmp/$PKG" "$tmp/tree"
	touch "$tmp/complete"
	mv -T "$tmp" "$src"
	tmp=""
fi
flock -u "$srclockfd"

# --- a private tree: hard links to the pristine source --------------------
# patch(1), kconfig and make all write new files (and rename them into
# place), so the shared pristine files are never written through the links.
rm -rf "$cache/.$key.tmp".*
tmp=$(mktemp -d "$cache/.$key.tmp.XXXXXX")
tree="$tmp/tree"
log="$tmp/build.log"
step "key $key: $PKG $version, $(basename "$fragment"), ${#patches[@]} patches, build.sh"
step "preparing a build tree in $tmp"
cp -al "$src/tree" "$tree"

run() { # run CMD... with its output in the log; show the log tail on failure
	if ! "$@" >>"$log" 2>&1; then
		printf '\n--- last lines of %s ---\n' "$log" >&2
		tail -n 40 "$log" >&2
		keep="$cache/$key.failed.log"
		cp "$log" "$keep"
		die "failed: $* (full log: $keep)"
	fi
}

for p in "${patches[@]}"; do
	step "patch $(basename "$p")"
	run patch -p1 --forward --no-backup-if-mismatch -d "$tree" -i "$p"
done

mk=(make -C "$tree" ARCH="$ARCH" KBUILD_BUILD_USER=minivm KBUILD_BUILD_HOST=minivm)

step "make tinyconfig + merge $(basename "$fragment") + olddefconfig"
run "${mk[@]}" tinyconfig
run env -C "$tree" ARCH="$ARCH" scripts/kconfig/merge_config.sh -m .config "$fragment"
run "${mk[@]}" olddefconfig

# merge_config.sh only warns when a value does not stick: check every line.
step "verifying $(basename "$fragment") against the final .config"
config="$tree/.config"
bad=()
lineno=0
while IFS= read -r line || [[ -n $line ]]; do
	lineno=$((lineno + 1))
	line=${line%$'\r'}
	if [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ || $line =~ ^(CONFIG_[A-Za-z0-9_]+)=n$ ]]; then
		sym=${BASH_REMATCH[1]}
		got=$(grep -E "^$sym=" "$config" || true)
		[[ -z $got ]] || bad+=("line $lineno: want '$line', got '$got'")
	elif [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.+)$ ]]; then
		sym=${BASH_REMATCH[1]}
		if ! grep -qxF -- "$line" "$config"; then
			got=$(grep -E "^$sym=|^# $sym is not set" "$config" || true)
			bad+=("line $lineno: want '$line', got '${got:-absent (unavailable: a dependency is off)}'")
		fi
	elif [[ -n $line && ! $line =~ ^# ]]; then
		bad+=("line $lineno: not a config line: '$line'")
	fi
done <"$fragment"
if ((${#bad[@]} > 0)); then
	printf '  %s\n' "${bad[@]}" >&2
	cp "$config" "$cache/$key.failed.config"
	die "${#bad[@]} line(s) of $(basename "$fragment") did not stick (final config: $cache/$key.failed.config)"
fi

jobs=$(nproc)
step "make -j$jobs vmlinux bzImage (log: $log; takes minutes)"
run "${mk[@]}" -j"$jobs" vmlinux bzImage

# XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point minivm and QEMU use.
notes=$(readelf -n "$tree/vmlinux")
grep -E '^ +Xen ' <<<"$notes" | grep -qE '0x00000012|PHYS32' ||
	die "$tree/vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"

step "collecting outputs"
cp "$tree/vmlinux" "$tree/arch/x86/boot/bzImage" "$tree/System.map" "$tmp/"
cp "$config" "$tmp/config"
{
	printf 'key %s\n%s %s\n' "$key" "$PKG" "$version"
	printf 'built %s in %s s\n' "$(date -u +%FT%TZ)" "$((SECONDS - started))"
} >"$tmp/inputs"
rm -rf "$tree"
chmod 755 "$tmp"
touch "$tmp/complete"
rm -rf "$final" # only ever an incomplete leftover here (checked above)
mv -T "$tmp" "$final"
tmp=""
rm -f "$cache/$key.failed.log" "$cache/$key.failed.config"

install_outputs
step "built $key in $((SECONDS - started)) s: $outdir/vmlinux $outdir/bzImage"
