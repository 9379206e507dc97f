#!/usr/bin/env bash
# OCI images against real tools, no VM: `minivm image export` output accepted by skopeo and umoci, and what skopeo writes read back by `minivm image inspect`.
#
#   tests/integration/oci_tools.sh BUILD_DIR
#
# Needs BUILD_DIR/minivm, skopeo, umoci, mkfs.ext4 (Debian: skopeo umoci
# e2fsprogs). Prints one PASS/FAIL line per check; exits 1 if any failed.
set -u

build=${1:?usage: $0 BUILD_DIR}
minivm="$build/minivm"
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check NAME CMD...: PASS if CMD succeeds
	local name=$1
	shift
	if "$@" >"$work/out.log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$work/out.log" | tail -5; fi
}

for t in "$minivm" skopeo umoci mkfs.ext4; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "FAIL missing $t"
		exit 1
	fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/minivm-oci-tools.XXXXXX") || exit 1
trap 'chmod -R u+rwX "$work" 2>/dev/null; rm -rf "$work"' EXIT
export TMPDIR="$work"
export SOURCE_DATE_EPOCH=1700000000

# A small root: files, a nested dir, a symlink, a hard link, an empty file, odd modes.
src="$work/src"
mkdir -p "$src/etc" "$src/usr/bin" "$src/data/deep/er"
echo "minivm-oci-test" >"$src/etc/hostname"
printf '#!/bin/sh\necho hi\n' >"$src/usr/bin/hello"
chmod 0755 "$src/usr/bin/hello"
head -c 200000 /dev/urandom >"$src/data/deep/er/blob.bin"
: >"$src/data/empty"
ln -s usr/bin "$src/bin"
ln "$src/etc/hostname" "$src/etc/hostname.link"
chmod 0600 "$src/data/empty"
check "mkfs.ext4 -d makes the source image" \
	mkfs.ext4 -q -F -d "$src" -b 4096 "$work/root.img" 16M

# 1. export, then the real tools.
check "minivm image export to oci:DIR:TAG" "$minivm" image export "$work/root.img" "oci:$work/layout:v1"
check "skopeo inspect oci:DIR:TAG" skopeo inspect "oci:$work/layout:v1"
if skopeo inspect "oci:$work/layout:v1" 2>/dev/null | grep -q '"Architecture": "amd64"'; then
	pass "skopeo sees linux/amd64"
else
	fail "skopeo sees linux/amd64"
fi
check "skopeo copy oci: -> oci-archive:" skopeo copy "oci:$work/layout:v1" "oci-archive:$work/copy.tar:v1"
check "umoci unpack --rootless" umoci unpack --rootless --image "$work/layout:v1" "$work/bundle"
r="$work/bundle/rootfs"
if [ "$(cat "$r/etc/hostname" 2>/dev/null)" = "minivm-oci-test" ] &&
	cmp -s "$src/data/deep/er/blob.bin" "$r/data/deep/er/blob.bin" &&
	[ -x "$r/usr/bin/hello" ] && [ "$(readlink "$r/bin")" = "usr/bin" ] &&
	[ -f "$r/data/empty" ] && [ ! -s "$r/data/empty" ] &&
	[ "$(stat -c %a "$r/data/empty")" = 600 ] &&
	[ "$(stat -c %i "$r/etc/hostname")" = "$(stat -c %i "$r/etc/hostname.link")" ]; then
	pass "umoci's rootfs has the files, modes, symlink and hard link"
else
	fail "umoci's rootfs has the files, modes, symlink and hard link"
fi

# 2. What skopeo wrote, read by minivm (a directory layout and an archive).
check "skopeo copy oci-archive: -> new oci layout" \
	skopeo copy "oci-archive:$work/copy.tar:v1" "oci:$work/skopeo-layout:again"
ours=$("$minivm" image inspect "oci:$work/layout:v1" 2>"$work/err1")
theirs=$("$minivm" image inspect "oci:$work/skopeo-layout:again" 2>"$work/err2")
if [ -n "$theirs" ] && echo "$theirs" | grep -q '^layers 1$'; then
	pass "minivm image inspect reads skopeo's layout"
else
	fail "minivm image inspect reads skopeo's layout"
	sed 's/^/    /' "$work/err2"
fi
if [ -n "$ours" ] && [ "$(echo "$ours" | grep '^files')" = "$(echo "$theirs" | grep '^files')" ]; then
	pass "same file count from both layouts ($(echo "$ours" | grep '^files'))"
else
	fail "same file count from both layouts"
fi
check "minivm image inspect reads skopeo's oci-archive" "$minivm" image inspect "oci-archive:$work/copy.tar:v1"

# 3. minivm's own archive output, read back by skopeo and minivm.
check "minivm image export to oci-archive:FILE" "$minivm" image export "$work/root.img" "oci-archive:$work/ours.tar"
check "skopeo inspect oci-archive: (ours)" skopeo inspect "oci-archive:$work/ours.tar"
check "minivm image inspect oci-archive: (ours)" "$minivm" image inspect "oci-archive:$work/ours.tar"

# 4. Deterministic: the same export twice gives the same manifest digest.
"$minivm" image export "$work/root.img" "oci:$work/layout2:v1" 2>/dev/null
d1=$("$minivm" image inspect "oci:$work/layout:v1" 2>/dev/null | grep '^digest')
d2=$("$minivm" image inspect "oci:$work/layout2:v1" 2>/dev/null | grep '^digest')
if [ -n "$d1" ] && [ "$d1" = "$d2" ]; then pass "export is deterministic ($d1)"; else fail "export is deterministic"; fi

# 5. Refusals: a non-OCI directory is never replaced; a corrupted blob is caught.
mkdir -p "$work/notoci" && echo keep >"$work/notoci/precious"
if ! "$minivm" image export "$work/root.img" "oci:$work/notoci" 2>"$work/err3" &&
	[ "$(cat "$work/notoci/precious")" = keep ] && grep -q "not an OCI image layout" "$work/err3"; then
	pass "export refuses to replace a non-OCI directory"
else
	fail "export refuses to replace a non-OCI directory"
fi
cp -r "$work/layout" "$work/corrupt"
big=$(ls -S "$work/corrupt/blobs/sha256" | head -1)
chmod u+w "$work/corrupt/blobs/sha256/$big"
printf 'X' | dd of="$work/corrupt/blobs/sha256/$big" bs=1 seek=100 conv=notrunc 2>/dev/null
if ! "$minivm" image inspect "oci:$work/corrupt:v1" 2>"$work/err4" && grep -q "digest mismatch" "$work/err4"; then
	pass "a corrupted layer is refused: $(cat "$work/err4")"
else
	fail "a corrupted layer is refused"
fi
# 6. A new layer with OCI whiteouts (what --save writes), through umoci and minivm.
up="$work/up"
mkdir -p "$up/etc" "$up/data/deep"
: >"$up/etc/.wh.hostname"
: >"$up/data/deep/.wh..wh..opq"
echo "made by the agent" >"$up/etc/new.txt"
tar --numeric-owner -C "$up" -cf "$work/up.tar" etc data
check "minivm image append (a layer with whiteouts)" \
	"$minivm" image append "oci:$work/layout:v1" "$work/up.tar" "oci:$work/saved:v2"
check "skopeo inspect the saved image" skopeo inspect "oci:$work/saved:v2"
check "umoci unpack the saved image" umoci unpack --rootless --image "$work/saved:v2" "$work/bundle2"
r="$work/bundle2/rootfs"
if [ ! -e "$r/etc/hostname" ] && [ -e "$r/etc/hostname.link" ] &&
	[ "$(cat "$r/etc/new.txt" 2>/dev/null)" = "made by the agent" ] &&
	[ ! -e "$r/data/deep/er" ] && [ -d "$r/data/deep" ] && [ -x "$r/usr/bin/hello" ]; then
	pass "umoci applies the whiteout, the opaque dir and the new file"
else
	fail "umoci applies the whiteout, the opaque dir and the new file"
fi
n=$("$minivm" image inspect "oci:$work/saved:v2" 2>"$work/err5" | grep '^layers')
[ "$n" = "layers 2" ] && pass "minivm reads the saved image (2 layers)" || { fail "minivm reads the saved image"; cat "$work/err5"; }

"$minivm" image --help >/dev/null && pass "image --help exits 0" || fail "image --help exits 0"
"$minivm" image bogus >/dev/null 2>&1
[ $? -eq 2 ] && pass "bad usage exits 2" || fail "bad usage exits 2"

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all passed"
