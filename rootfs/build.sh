#!/usr/bin/env bash
# Build the guest root filesystem images from their manifests (rootfs/*.manifest), each with a CycloneDX SBOM; ext4, no root needed.
#
#   rootfs/build.sh OUTDIR [PROFILE...]      (default: tools hardened python)
#
# Outputs per profile: tools -> OUTDIR/rootfs.img (the image the tests and
# the README use), others -> OUTDIR/rootfs-PROFILE.img; each with
# IMAGE minus .img plus .sbom.json beside it (rootfs.sbom.json,
# rootfs-python.sbom.json) and IMAGE.inputs (the inputs' hash and the
# image's own: an image is rebuilt only when either changed).
#
# Reproducible: fixed UUID and hash seed, every timestamp SOURCE_DATE_EPOCH
# (default fixed), every mode and owner set from the manifest's rules (not
# from the builder's umask or uid), entries sorted: the same inputs give the
# same bytes whoever builds it, wherever, whenever.
# Knobs (all part of the input hash): ROOTFS_CC (musl-gcc if installed, else
# gcc), ROOTFS_SIZE_MIB (tools image size, 64), SOURCE_DATE_EPOCH,
# MINIVM_CACHE (where downloaded .debs are kept, ~/.cache/minivm).
set -euo pipefail
# The tree is made with explicit modes below; this only keeps temporaries private.
umask 077

die() { echo "rootfs/build.sh: $*" >&2; exit 1; }

[[ $# -ge 1 && -n $1 ]] || { echo "usage: $0 OUTDIR [tools|hardened|python ...]" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
shift
PROFILES=("$@")
[[ ${#PROFILES[@]} -gt 0 ]] || PROFILES=(tools hardened python)

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
TOOLS_SIZE_MIB=${ROOTFS_SIZE_MIB:-64}
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
# Fixed, so that the image (and the directory hash seed) never changes by chance.
UUID=6d696e69-766d-4000-8000-726f6f746673
BUSYBOX=/bin/busybox
CACHE=${MINIVM_CACHE:-${HOME:-/root}/.cache/minivm}
ARCH=amd64
# Names no file in a hardened image may have: shells (and what runs as one).
SHELL_NAMES='sh bash dash ash busybox zsh ksh ksh93 mksh pdksh lksh csh tcsh fish rbash posh yash hush msh oksh rc es sash toybox'
# Names of package managers, refused in hardened images.
PKGMGR_NAMES='dpkg dpkg-deb dpkg-query apt apt-get apt-cache aptitude rpm yum dnf apk opkg pip pip3 easy_install'

# /sbin is not on a normal user's PATH on Debian.
PATH=$PATH:/usr/sbin:/sbin

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: run 'make deps'"; }
need "$CC"
for t in mkfs.ext4 debugfs readelf dumpe2fs e2fsck sha256sum awk find; do need "$t"; done

# How every static guest binary (init/agent, tools) is compiled.
STATIC_CFLAGS=(-static -Os -std=c11 -D_GNU_SOURCE
	-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
	-ffunction-sections -fdata-sections "-Wl,--gc-sections" -s
	"-ffile-prefix-map=$HERE=rootfs")

# ---- manifests ----

# Reads PROFILE's manifest (and its includes) into MF_* arrays, in order.
MF_LINES=()
MF_SEEN=" "
read_manifest() {
	local name=$1 f=$HERE/$1.manifest line
	[[ $MF_SEEN == *" $name "* ]] && die "$name.manifest: included twice (a loop?)"
	MF_SEEN+="$name "
	[[ -f $f ]] || die "no manifest $f"
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%%#*}
		line=$(echo "$line" | awk '{$1=$1; print}')
		[[ -z $line ]] && continue
		if [[ $line == include\ * ]]; then
			read_manifest "${line#include }"
		else
			MF_LINES+=("$name: $line")
		fi
	done <"$f"
}

# ---- the Debian packages of a profile ----

# Depends and Pre-Depends of the packages named as alternative groups, one
# per line: "a|b|<c>" (<c>: a virtual package). One apt-cache call for all:
# each costs about a second with Debian's full lists.
deb_depends() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "$@" </dev/null 2>/dev/null | awk '
		/^ *\|?(Pre)?Depends: / {
			alt = ($1 ~ /^\|/); name = $2; sub(/:any$/, "", name); sub(/:any>$/, ">", name)
			if (cur != "") cur = cur "|" name; else cur = name
			if (!alt) { print cur; cur = "" }
		}'
}

# The dependency closure of DEB_ROOTS minus DEB_SKIP into DEB_PKGS (sorted),
# breadth first, one apt-cache call per level: of each group of
# alternatives, one already chosen, else the first real package not skipped.
resolve_debs() {
	local chosen=" " frontier=("${DEB_ROOTS[@]}") next p group alt pick
	while [[ ${#frontier[@]} -gt 0 ]]; do
		for p in "${frontier[@]}"; do chosen+="$p "; done
		next=" "
		while IFS= read -r group; do
			pick=
			IFS='|' read -r -a alts <<<"$group"
			for alt in "${alts[@]}"; do
				[[ $chosen == *" $alt "* || $next == *" $alt "* ]] && { pick=done; break; }
			done
			[[ -n $pick ]] && continue
			for alt in "${alts[@]}"; do
				[[ $alt == \<* ]] && continue
				[[ " ${DEB_SKIP[*]} " == *" $alt "* ]] && continue
				pick=$alt
				break
			done
			[[ -n $pick ]] && next+="$pick "
		done < <(deb_depends "${frontier[@]}")
		read -r -a frontier <<<"$next"
	done
	mapfile -t DEB_PKGS < <(printf '%s\n' $chosen | LC_ALL=C sort)
}

# "NAME VERSION" lines for the candidates of every package named (one call).
candidate_versions() {
	apt-cache policy "$@" </dev/null 2>/dev/null | awk '
		/^[^ ].*:$/ { name = $1; sub(/:$/, "", name) }
		/^  Candidate:/ { print name, $2 }'
}


# ---- one profile ----

build_profile() {
	local profile=$1 img sbom stamp
	if [[ $profile == tools ]]; then
		img=$OUT/rootfs.img
		sbom=$OUT/rootfs.sbom.json
	else
		img=$OUT/rootfs-$profile.img
		sbom=$OUT/rootfs-$profile.sbom.json
	fi
	stamp=$img.inputs

	MF_LINES=()
	MF_SEEN=" "
	read_manifest "$profile"

	# What the manifest asks for.
	local hardened=0 want_busybox=0 l kind rest
	DEB_ROOTS=()
	DEB_SKIP=()
	local dirs=() agents=() statics=() skels=() prunes=() links=()
	for l in "${MF_LINES[@]}"; do
		rest=${l#*: }
		kind=${rest%% *}
		[[ $rest == *" "* ]] && rest=${rest#* } || rest=
		case $kind in
		dir) dirs+=("$rest") ;;
		agent) agents+=("$rest") ;;
		static) statics+=("$rest") ;;
		static-all) for s in "$HERE"/tools/*.c; do statics+=("$rest/$(basename "$s" .c) $(basename "$s" .c)"); done ;;
		skel) skels+=("$rest") ;;
		busybox) want_busybox=1 ;;
		deb) DEB_ROOTS+=("$rest") ;;
		deb-skip) DEB_SKIP+=("$rest") ;;
		prune) prunes+=("$rest") ;;
		symlink) links+=("$rest") ;;
		policy) [[ $rest == hardened ]] || die "$l: unknown policy"; hardened=1 ;;
		*) die "${l%%:*}.manifest: unknown directive '$kind'" ;;
		esac
	done
	if [[ $want_busybox == 1 ]]; then
		[[ -x $BUSYBOX ]] || die "$BUSYBOX not found: install busybox-static (run 'make deps')"
		if readelf -lW "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
			die "$BUSYBOX is dynamically linked: install busybox-static (run 'make deps')"
		fi
	fi
	DEB_PKGS=()
	local deb_list=""
	if [[ ${#DEB_ROOTS[@]} -gt 0 ]]; then
		need apt-cache
		need dpkg-deb
		if [[ -z $(candidate_versions "${DEB_ROOTS[0]}") ]]; then
			echo "rootfs: apt lists lack ${DEB_ROOTS[0]}: apt-get update" >&2
			apt-get update -qq >/dev/null || die "apt-get update failed"
		fi
		resolve_debs
		deb_list=$(candidate_versions "${DEB_PKGS[@]}" | LC_ALL=C sort)$'\n'
		local p v
		for p in "${DEB_PKGS[@]}"; do
			v=$(awk -v p="$p" '$1 == p {print $2}' <<<"$deb_list")
			[[ -n $v && $v != "(none)" ]] || die "package $p has no installable version (apt-get update?)"
		done
	fi

	local hash
	hash=$({
		echo "rootfs-build profile=$profile tools_size=$TOOLS_SIZE_MIB epoch=$EPOCH uuid=$UUID arch=$ARCH"
		"$CC" --version | head -n1
		# The C libraries the binaries link statically (not visible in --version).
		dpkg-query -W -f='${Package} ${Version}\n' libc6-dev musl-dev 2>/dev/null || true
		mkfs.ext4 -V 2>&1 | head -n1
		[[ $want_busybox == 0 ]] || sha256sum <"$BUSYBOX"
		printf '%s' "$deb_list"
		# Every file under rootfs/ except the docs, in a stable order.
		(cd "$HERE" && find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -d' ' -f1)

	# The stamp holds the inputs' hash and the image's own (a guest that
	# mounted the image read-write since changed it: tests want it pristine).
	if [[ -f $img && -f $sbom && -f $stamp &&
		$(cat "$stamp") == "$hash $(sha256sum <"$img" | cut -d' ' -f1) $(sha256sum <"$sbom" | cut -d' ' -f1)" ]]; then
		echo "rootfs: $img is up to date"
		return 0
	fi

	local start=$SECONDS work tree owners
	work=$(mktemp -d "$OUT/.rootfs-build.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the path is local
	trap "rm -rf '$work'" EXIT
	tree=$work/tree
	owners=$work/owners # PATH<TAB>PACKAGE<TAB>VERSION, for the SBOM
	mkdir -p "$tree"
	: >"$owners"
	local self_version=${hash:0:12}

	# Debian packages first (ours win where a path is both).
	local p deb dir f
	if [[ ${#DEB_PKGS[@]} -gt 0 ]]; then
		mkdir -p "$CACHE/debs" "$work/x"
		while read -r p v; do
			[[ -n $p ]] || continue
			deb=$CACHE/debs/${p}_${v//:/%3a}_$ARCH.deb
			[[ -f $deb ]] || deb=$CACHE/debs/${p}_${v//:/%3a}_all.deb
			if [[ ! -f $deb ]]; then
				echo "rootfs: apt-get download $p=$v"
				(cd "$work/x" && apt-get download -qq "$p=$v" </dev/null >/dev/null 2>&1) ||
					(cd "$work/x" && apt-get download "$p=$v" </dev/null) || die "apt-get download $p=$v failed"
				for f in "$work"/x/*.deb; do mv -f "$f" "$CACHE/debs/"; done
				deb=$CACHE/debs/${p}_${v//:/%3a}_$ARCH.deb
				[[ -f $deb ]] || deb=$CACHE/debs/${p}_${v//:/%3a}_all.deb
				[[ -f $deb ]] || die "apt-get download $p=$v: no .deb named as expected in $CACHE/debs"
			fi
			[[ $(dpkg-deb -f "$deb" Package) == "$p" && $(dpkg-deb -f "$deb" Version) == "$v" ]] ||
				die "$deb is not $p $v"
			dir=$work/deb/$p
			mkdir -p "$dir"
			dpkg-deb -x "$deb" "$dir"
			local pr
			for pr in "${prunes[@]}"; do rm -rf "${dir:?}$pr"; done
			# Record what it ships; a non-directory shipped by two packages is an error.
			(cd "$dir" && find . -mindepth 1 -printf '%y\t/%P\n') | LC_ALL=C sort -t$'\t' -k2,2 |
				awk -F'\t' -v pkg="$p" -v ver="$v" '
					FILENAME != "-" { seen[$1] = $2; next }
					$2 in seen { if ($1 != "d") { print $2 " is shipped by " pkg " and by " seen[$2] > "/dev/stderr"; bad = 1 } next }
					{ print $2 "\t" pkg "\t" ver }
					END { exit bad }' "$owners" - >"$work/owners.new" || die "two packages ship the same file"
			cat "$work/owners.new" >>"$owners"
			cp -a "$dir/." "$tree/"
		done <<<"$deb_list"
	fi

	# The layout.
	local d mode owner
	for l in "${dirs[@]}"; do
		read -r d mode owner <<<"$l"
		mkdir -p "$tree$d"
	done

	# Static C: init (every agent/*.c, of which only init.c has a main) and tools.
	local cflags=("${STATIC_CFLAGS[@]}")
	for l in "${agents[@]}"; do
		mkdir -p "$(dirname "$tree$l")"
		"$CC" "${cflags[@]}" -o "$tree$l" "$HERE"/agent/*.c
	done
	local dest src
	for l in "${statics[@]}"; do
		read -r dest src <<<"$l"
		[[ -f $HERE/tools/$src.c ]] || die "static $dest: no rootfs/tools/$src.c"
		mkdir -p "$(dirname "$tree$dest")"
		"$CC" "${cflags[@]}" -o "$tree$dest" "$HERE/tools/$src.c"
	done
	for l in "${skels[@]}"; do
		read -r dest mode <<<"$l"
		[[ -f $HERE/skel$dest ]] || die "skel $dest: no rootfs/skel$dest"
		cp "$HERE/skel$dest" "$tree$dest"
	done

	# busybox and a link per applet, where busybox itself would install it,
	# except where a file of ours already is (its "init" applet: ours wins).
	local applets=0 bb_version=
	if [[ $want_busybox == 1 ]]; then
		bb_version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
		cp "$BUSYBOX" "$tree/bin/busybox"
		printf '%s\t%s\t%s\n' /bin/busybox busybox-static "$bb_version" >>"$owners"
		while IFS= read -r path; do
			case $path in
			'' | linuxrc | */busybox) continue ;;
			esac
			[[ -e $tree/$path || -L $tree/$path ]] && continue
			mkdir -p "$(dirname "$tree/$path")"
			ln -s /bin/busybox "$tree/$path"
			printf '%s\t%s\t%s\n' "/$path" busybox-static "$bb_version" >>"$owners"
			applets=$((applets + 1))
		done < <("$BUSYBOX" --list-full)
	fi
	local target
	for l in "${links[@]}"; do
		read -r dest target <<<"$l"
		[[ -e $tree$dest || -L $tree$dest ]] && die "symlink $dest: the path exists already"
		ln -s "$target" "$tree$dest"
	done

	# Normalise every mode (the builder's umask and the packages' modes do
	# not leak in): directories 0755, files 0755 when executable by their
	# owner else 0644, no setuid/setgid/sticky; then the manifest's modes.
	find "$tree" -type d -exec chmod 0755 {} +
	find "$tree" -type f -perm -u+x -exec chmod 0755 {} +
	find "$tree" -type f ! -perm -u+x -exec chmod 0644 {} +
	for l in "${dirs[@]}"; do
		read -r d mode owner <<<"$l"
		chmod "$mode" "$tree$d"
	done
	for l in "${skels[@]}"; do
		read -r dest mode <<<"$l"
		chmod "$mode" "$tree$dest"
	done

	# Anything still unattributed is the project's own (layout, init, tools, skel).
	(cd "$tree" && find . -mindepth 1 -printf '/%P\n') | LC_ALL=C sort |
		awk -F'\t' -v ver="$self_version" 'FILENAME != "-" { seen[$1] = 1; next }
			!($1 in seen) { print $1 "\tminivm\t" ver }' "$owners" - >"$work/owners.new"
	cat "$work/owners.new" >>"$owners"

	# Names the SBOM (JSON) and debugfs (quoted) can carry as they are.
	local bad
	bad=$(cd "$tree" && find . | LC_ALL=C grep -v '^[]A-Za-z0-9._+,@=:~%/[-]*$' | head -n 5 || true)
	[[ -z $bad ]] || die "file names with characters this builder does not handle: $bad"

	# The hardened policy, on the tree (and again on the SBOM below).
	if [[ $hardened == 1 ]]; then
		local n findings=""
		for n in $SHELL_NAMES $PKGMGR_NAMES; do
			findings+=$(cd "$tree" && find . -name "$n" -printf '%p: named like a shell or package manager\n')$'\n'
		done
		findings+=$(cd "$tree" && find . -type f -perm /6000 -printf '%p: setuid or setgid\n')$'\n'
		findings+=$(cd "$tree" && find . -type d -perm -0002 ! -perm -1000 -printf '%p: world-writable without the sticky bit\n')$'\n'
		findings+=$(cd "$tree" && find . -type f -perm -0002 -printf '%p: world-writable file\n')$'\n'
		# busybox under any name: its banner is in the binary.
		findings+=$(cd "$tree" && find . -type f -size +10k -exec grep -l -F 'BusyBox v' {} + 2>/dev/null | sed 's/$/: a busybox binary/' || true)$'\n'
		findings=$(printf '%s' "$findings" | sed '/^$/d')
		[[ -z $findings ]] || die "profile $profile is hardened but:"$'\n'"$findings"
	fi

	# Pin every timestamp; mkfs copies atime/mtime from the tree (ctime is fixed below).
	find "$tree" -exec touch -h -d "@$EPOCH" {} +

	local size_mib=$TOOLS_SIZE_MIB used_kib
	if [[ $profile != tools ]]; then
		# Room for the files and 25% more, at least 16 MiB (a read-only
		# root: the writes go to the overlay's scratch disk).
		used_kib=$(du -s -k --apparent-size "$tree" | cut -f1)
		size_mib=$(((used_kib * 5 / 4 + 4095) / 1024 + 8))
		[[ $size_mib -ge 16 ]] || size_mib=16
	fi

	local tmpimg=$work/rootfs.img
	# No journal and no metadata checksums: less guest kernel work per boot
	# (that code runs emulated here); the image is rebuilt, never repaired.
	E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -d "$tree" \
		-L minivm-root -U "$UUID" -b 4096 -m 0 \
		-O ^has_journal,^metadata_csum \
		-E "root_owner=0:0,hash_seed=$UUID,nodiscard" \
		"$tmpimg" "${size_mib}M" >/dev/null

	# Owners: root, except where the manifest says (mkfs -d copies the
	# builder's). Times: mkfs -d copies ctime (and an atime its own reading
	# may have moved) from the tree. All set in the image with debugfs (no
	# root needed).
	local cmds=$work/debugfs.cmds uid gid
	: >"$work/owner-of"
	for l in "${dirs[@]}"; do
		read -r d mode owner <<<"$l"
		[[ -n $owner ]] && printf '%s\t%s\n' "$d" "$owner" >>"$work/owner-of"
	done
	(
		(cd "$tree" && find . -mindepth 1 -printf '/%P\n') | LC_ALL=C sort |
			awk -F'\t' -v epoch="$EPOCH" '
				FILENAME != "-" { split($2, o, ":"); uid[$1] = o[1]; gid[$1] = o[2]; next }
				{ u = ($1 in uid) ? uid[$1] : 0; g = ($1 in gid) ? gid[$1] : 0
				  printf "sif \"%s\" uid %s\nsif \"%s\" gid %s\n", $1, u, $1, g
				  # atime too: mkfs -d reading a directory can update it (relatime)
				  printf "sif \"%s\" ctime @%s\nsif \"%s\" atime @%s\nsif \"%s\" mtime @%s\n", $1, epoch, $1, epoch, $1, epoch }' \
				"$work/owner-of" -
		for p in / /lost+found; do
			printf 'sif %s ctime @%s\nsif %s atime @%s\nsif %s mtime @%s\n' "$p" "$EPOCH" "$p" "$EPOCH" "$p" "$EPOCH"
		done
	) >"$cmds"
	if ! debugfs -w -f "$cmds" "$tmpimg" >"$work/debugfs.log" 2>&1 || grep -v "^debugfs[: ]" "$work/debugfs.log" | grep -qi -E "error|not found|usage"; then
		cat "$work/debugfs.log" >&2
		die "debugfs failed to fix owners and times in the image"
	fi
	# debugfs (1.47.0 has no fake time) stamps the superblock's s_wtime (offset
	# 0x30) with the clock when it closes: pin it in the primary superblock
	# (byte 1024) and in every backup (block start). Safe to patch in place:
	# without metadata_csum the superblock has no checksum.
	local le32 sb
	le32=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((EPOCH & 255)) $((EPOCH >> 8 & 255)) \
		$((EPOCH >> 16 & 255)) $((EPOCH >> 24 & 255)))
	for sb in 1024 $(dumpe2fs "$tmpimg" 2>/dev/null | sed -n 's/.*Backup superblock at \([0-9]*\).*/\1/p'); do
		[[ $sb == 1024 ]] || sb=$((sb * 4096))
		# shellcheck disable=SC2059 # le32 is the format: \xNN escapes
		printf "$le32" | dd of="$tmpimg" bs=1 seek=$((sb + 0x30)) conv=notrunc status=none
	done
	e2fsck -fn "$tmpimg" >"$work/e2fsck.log" 2>&1 || { cat "$work/e2fsck.log" >&2; die "e2fsck found errors in the new image"; }

	# The SBOM: every path of the tree (plus mkfs's / and /lost+found) with
	# its type, mode, owner, SHA-256 or target, grouped by the package it
	# came from. Rows: PACKAGE VERSION PATH TYPE MODE UID GID SHA TARGET.
	local rows=$work/sbom.rows
	{
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' minivm "$self_version" / directory 0755 0 0 - -
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' minivm "$self_version" /lost+found directory 0700 0 0 - -
		(cd "$tree" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
			sed 's/^\([0-9a-f]*\)  /\1\t\//' >"$work/hashes"
		# one awk over: hashes, owners, owner-of, then the tree's entries
		(cd "$tree" && find . -mindepth 1 -printf '/%P\t%y\t%m\t%l\n') | LC_ALL=C sort |
			awk -F'\t' '
				FILENAME == ARGV[1] { sha[$2] = $1; next }
				FILENAME == ARGV[2] { pkg[$1] = $2; ver[$1] = $3; next }
				FILENAME == ARGV[3] { split($2, o, ":"); uid[$1] = o[1]; gid[$1] = o[2]; next }
				{
					p = $1; y = $2; m = substr("0000" $3, length($3) + 1); t = $4
					if (!(p in pkg)) { print p ": no package recorded" > "/dev/stderr"; bad = 1; next }
					u = (p in uid) ? uid[p] : 0; g = (p in gid) ? gid[p] : 0
					if (y == "f") { y = "regular"; h = sha[p]; t = "-"; if (h == "") { print p ": no hash" > "/dev/stderr"; bad = 1 } }
					else if (y == "d") { y = "directory"; h = "-"; t = "-" }
					else if (y == "l") { y = "symlink"; h = "-" }
					else { print p ": a file of type " y " (only files, directories and symlinks go in images)" > "/dev/stderr"; bad = 1; next }
					printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pkg[p], ver[p], p, y, m, u, g, h, t
				}
				END { exit bad }' "$work/hashes" "$owners" "$work/owner-of" - ||
			die "the SBOM could not account for every file"
	} | LC_ALL=C sort -t$'\t' -k1,1 -k3,3 >"$rows"
	# setuid (4) or setgid (2) in the first of the four mode digits
	if [[ $hardened == 1 ]] && awk -F'\t' '$4 == "regular" && $5 ~ /^[2-7]/ {bad = 1} END {exit !bad}' "$rows"; then
		die "profile $profile: a setuid or setgid file in the SBOM"
	fi
	local img_name
	img_name=$(basename "$img")
	awk -F'\t' -v name="$img_name" -v profile="$profile" -v uuid="$UUID" -v arch="$ARCH" \
		-v stamp="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)" '
		function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
		function purl_ver(v) { gsub(/:/, "%3A", v); gsub(/\+/, "%2B", v); gsub(/~/, "%7E", v); return v }
		function prop(n, v) { return "{\"name\": \"" n "\", \"value\": \"" esc(v) "\"}" }
		BEGIN {
			printf "{\n  \"bomFormat\": \"CycloneDX\",\n  \"specVersion\": \"1.5\",\n"
			printf "  \"serialNumber\": \"urn:uuid:%s\",\n  \"version\": 1,\n", uuid
			printf "  \"metadata\": {\n    \"timestamp\": \"%s\",\n", stamp
			printf "    \"tools\": {\"components\": [{\"type\": \"application\", \"name\": \"minivm rootfs/build.sh\"}]},\n"
			printf "    \"component\": {\"type\": \"operating-system\", \"name\": \"%s\", \"description\": \"minivm root filesystem, profile %s (ext4)\"}\n  },\n", esc(name), profile
			printf "  \"components\": ["
			cur = ""; npkg = 0
		}
		{
			if ($1 != cur) {
				if (cur != "") printf "\n      ]\n    }"
				printf "%s\n    {\n", (npkg++ ? "," : "")
				if ($1 == "minivm") {
					printf "      \"type\": \"application\", \"bom-ref\": \"minivm\", \"name\": \"minivm\", \"version\": \"%s\",\n", esc($2)
					printf "      \"description\": \"the project'"'"'s own files: layout, init/agent, tools, /etc\",\n"
				} else {
					ref = "pkg:deb/debian/" $1 "@" purl_ver($2) "?arch=" arch
					printf "      \"type\": \"library\", \"bom-ref\": \"%s\", \"name\": \"%s\", \"version\": \"%s\", \"purl\": \"%s\",\n", esc(ref), esc($1), esc($2), esc(ref)
				}
				printf "      \"components\": ["
				cur = $1; nfile = 0
			}
			printf "%s\n        {\"type\": \"file\", \"bom-ref\": \"file:%s\", \"name\": \"%s\"", (nfile++ ? "," : ""), esc($3), esc($3)
			if ($4 == "regular") printf ", \"hashes\": [{\"alg\": \"SHA-256\", \"content\": \"%s\"}]", $8
			printf ", \"properties\": [%s, %s, %s, %s", prop("minivm:file-type", $4), prop("minivm:mode", $5), prop("minivm:uid", $6), prop("minivm:gid", $7)
			if ($4 == "symlink") printf ", %s", prop("minivm:symlink-target", $9)
			printf "]}"
		}
		END {
			if (cur != "") printf "\n      ]\n    }"
			printf "\n  ]\n}\n"
		}' "$rows" >"$work/sbom.json"

	mv -f "$tmpimg" "$img"
	mv -f "$work/sbom.json" "$sbom"
	echo "$hash $(sha256sum <"$img" | cut -d' ' -f1) $(sha256sum <"$sbom" | cut -d' ' -f1)" >"$stamp"
	local npk=${#DEB_PKGS[@]}
	echo "rootfs: built $img (${size_mib} MiB$([[ $want_busybox == 1 ]] && echo ", $applets busybox applets")$([[ $npk -gt 0 ]] && echo ", $npk Debian packages")) and $(basename "$sbom") in $((SECONDS - start)) s"
	[[ $npk -eq 0 ]] || printf '%s' "$deb_list" | sed 's/^/rootfs:   /'
	rm -rf "$work"
	trap - EXIT
}

# The agent alone, OUTDIR/minivm-init: what minivm adds to a root filesystem
# it builds from an OCI image (--rootfs oci:...) as /sbin/minivm-init.
# Rebuilt when its sources or the compiler change (OUTDIR/minivm-init.inputs).
build_agent() {
	local bin=$OUT/minivm-init hash
	hash=$({
		"$CC" --version | head -n1
		dpkg-query -W -f='${Package} ${Version}\n' libc6-dev musl-dev 2>/dev/null || true
		echo "${STATIC_CFLAGS[*]}"
		(cd "$HERE" && find agent -type f -name '*.[ch]' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -d' ' -f1)
	if [[ -x $bin && -f $bin.inputs && $(cat "$bin.inputs") == "$hash $(sha256sum <"$bin" | cut -d' ' -f1)" ]]; then
		return 0
	fi
	"$CC" "${STATIC_CFLAGS[@]}" -o "$bin.tmp" "$HERE"/agent/*.c
	chmod 0755 "$bin.tmp"
	mv -f "$bin.tmp" "$bin"
	echo "$hash $(sha256sum <"$bin" | cut -d' ' -f1)" >"$bin.inputs"
	echo "rootfs: built $bin"
}
build_agent

for prof in "${PROFILES[@]}"; do
	[[ $prof =~ ^[a-z0-9-]+$ && -f $HERE/$prof.manifest && $prof != base ]] || die "unknown profile '$prof' (a rootfs/PROFILE.manifest)"
	build_profile "$prof"
done
