#!/usr/bin/env bash
# Build the guest root filesystem OUTDIR/rootfs.img: static /sbin/init, busybox, test helpers; ext4, no root needed.
#
#   rootfs/build.sh OUTDIR
#
# Rebuilds only when its inputs or the image itself changed (both hashes are
# kept in OUTDIR/rootfs.img.inputs). The image is reproducible: fixed UUID and hash
# seed, every timestamp SOURCE_DATE_EPOCH (default fixed), every owner set
# explicitly, so the same inputs give the same bytes whoever builds it.
# Knobs (all part of the input hash): ROOTFS_CC (musl-gcc if installed, else
# gcc), ROOTFS_SIZE_MIB (64), SOURCE_DATE_EPOCH.
set -euo pipefail
umask 022

die() { echo "rootfs/build.sh: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
IMG=$OUT/rootfs.img
STAMP=$IMG.inputs

# musl over glibc: guest kernel code is emulated here, and a static glibc
# init took 2.7 s from exec to its first line against 0.8 s for the same
# init with musl (fewer pages touched, no CPUID probing at startup).
if [[ -n ${ROOTFS_CC:-} ]]; then
	CC=$ROOTFS_CC
elif command -v musl-gcc >/dev/null 2>&1; then
	CC=musl-gcc
else
	CC=gcc
	echo "rootfs: musl-gcc not found, building init with glibc (slower guest boot; install musl-tools)" >&2
fi
SIZE_MIB=${ROOTFS_SIZE_MIB:-64}
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
# Fixed, so that the image (and the directory hash seed) never changes by chance.
UUID=6d696e69-766d-4000-8000-726f6f746673
BUSYBOX=/bin/busybox
AGENT_UID=1000

# /sbin is not on a normal user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: run 'make deps'"; }
need "$CC"
need mkfs.ext4
need debugfs
need readelf
need dumpe2fs
need e2fsck
need sha256sum
[[ -x $BUSYBOX ]] || die "$BUSYBOX not found: install busybox-static (run 'make deps')"
if readelf -lW "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
	die "$BUSYBOX is dynamically linked: install busybox-static (run 'make deps')"
fi

inputs_hash() {
	{
		echo "rootfs-build size=$SIZE_MIB epoch=$EPOCH uuid=$UUID agent_uid=$AGENT_UID"
		"$CC" --version | head -n1
		# The C libraries the binaries link statically (not visible in --version).
		dpkg-query -W -f='${Package} ${Version}\n' libc6-dev musl-dev 2>/dev/null || true
		mkfs.ext4 -V 2>&1 | head -n1
		sha256sum <"$BUSYBOX"
		# Every file under rootfs/ except the docs, in a stable order.
		(cd "$HERE" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -d' ' -f1
}

# The stamp holds the inputs' hash and the image's own: a guest that mounted
# the image read-write since (root is rw) changed it, and tests want it pristine.
image_hash() { sha256sum <"$IMG" | cut -d' ' -f1; }
HASH=$(inputs_hash)
if [[ -f $IMG && -f $STAMP && $(cat "$STAMP") == "$HASH $(image_hash)" ]]; then
	echo "rootfs: $IMG is up to date"
	exit 0
fi

START=$SECONDS
WORK=$(mktemp -d "$OUT/.rootfs-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE=$WORK/tree

# The tree. Modes matter (they go into the image as they are here).
mkdir -p "$TREE"
for d in bin sbin dev proc sys tmp run scratch etc root home/agent usr/bin usr/sbin; do
	mkdir -p "$TREE/$d"
done
chmod 1777 "$TREE/tmp" "$TREE/scratch"
chmod 0700 "$TREE/root" "$TREE/home/agent"
cp "$HERE"/skel/etc/* "$TREE/etc/"
chmod 0644 "$TREE"/etc/*

# Static C: init (every agent/*.c, of which only init.c has a main) and tools/*.c.
CFLAGS=(-static -Os -std=c11 -D_GNU_SOURCE
	-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
	-ffunction-sections -fdata-sections "-Wl,--gc-sections" -s
	"-ffile-prefix-map=$HERE=rootfs")
"$CC" "${CFLAGS[@]}" -o "$TREE/sbin/init" "$HERE"/agent/*.c
for src in "$HERE"/tools/*.c; do
	name=$(basename "$src" .c)
	"$CC" "${CFLAGS[@]}" -o "$TREE/usr/bin/$name" "$src"
done

# busybox and a link per applet, where busybox itself would install it,
# except where a file of ours already is (its "init" applet: ours wins).
cp "$BUSYBOX" "$TREE/bin/busybox"
chmod 0755 "$TREE/bin/busybox"
applets=0
while IFS= read -r path; do
	case $path in
	'' | linuxrc | */busybox) continue ;;
	esac
	[[ -e $TREE/$path || -L $TREE/$path ]] && continue
	mkdir -p "$(dirname "$TREE/$path")"
	ln -s /bin/busybox "$TREE/$path"
	applets=$((applets + 1))
done < <("$BUSYBOX" --list-full)

# Pin every timestamp; mkfs copies atime/mtime from the tree (ctime is fixed below).
find "$TREE" -exec touch -h -d "@$EPOCH" {} +

TMPIMG=$WORK/rootfs.img
# No journal and no metadata checksums: less guest kernel work per boot
# (that code runs emulated here); the image is rebuilt, never repaired.
E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -d "$TREE" \
	-L minivm-root -U "$UUID" -b 4096 -m 0 \
	-O ^has_journal,^metadata_csum \
	-E "root_owner=0:0,hash_seed=$UUID,nodiscard" \
	"$TMPIMG" "${SIZE_MIB}M" >/dev/null

# mkfs -d copies each file's owner and ctime from the tree, which depend on
# who builds and when: set them in the image itself (debugfs, no root needed).
CMDS=$WORK/debugfs.cmds
(
	cd "$TREE"
	find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
		p=${p#.}
		owner=0
		[[ $p == /home/agent ]] && owner=$AGENT_UID
		printf 'sif "%s" uid %s\nsif "%s" gid %s\nsif "%s" ctime @%s\n' \
			"$p" "$owner" "$p" "$owner" "$p" "$EPOCH"
	done
	printf 'sif / ctime @%s\n' "$EPOCH"
) >"$CMDS"
if ! debugfs -w -f "$CMDS" "$TMPIMG" >"$WORK/debugfs.log" 2>&1 || grep -qi -E 'error|not found|usage' "$WORK/debugfs.log"; then
	cat "$WORK/debugfs.log" >&2
	die "debugfs failed to fix owners and times in the image"
fi
# debugfs (1.47.0 has no fake time) stamps the superblock's s_wtime (offset
# 0x30) with the clock when it closes: pin it in the primary superblock
# (byte 1024) and in every backup (block start). Safe to patch in place:
# without metadata_csum the superblock has no checksum.
le32=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((EPOCH & 255)) $((EPOCH >> 8 & 255)) \
	$((EPOCH >> 16 & 255)) $((EPOCH >> 24 & 255)))
for sb in 1024 $(dumpe2fs "$TMPIMG" 2>/dev/null | sed -n 's/.*Backup superblock at \([0-9]*\).*/\1/p'); do
	[[ $sb == 1024 ]] || sb=$((sb * 4096))
	# shellcheck disable=SC2059 # le32 is the format: \xNN escapes
	printf "$le32" | dd of="$TMPIMG" bs=1 seek=$((sb + 0x30)) conv=notrunc status=none
done
e2fsck -fn "$TMPIMG" >"$WORK/e2fsck.log" 2>&1 || { cat "$WORK/e2fsck.log" >&2; die "e2fsck found errors in the new image"; }

mv -f "$TMPIMG" "$IMG"
echo "$HASH $(image_hash)" >"$STAMP"
echo "rootfs: built $IMG (${SIZE_MIB} MiB, $applets busybox applets) in $((SECONDS - START)) s"
