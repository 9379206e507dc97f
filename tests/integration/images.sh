# Images in and out, and the workspace (issue 9): sourced by run.sh (uses $B,
# $T, $MINIVM, $BOOT_TIMEOUT, check, has). Three boots: an OCI image made by
# the project's own tools is booted, changed and saved (--save oci:); what
# skopeo made of the saved image boots again with a workspace and its diff;
# the saved layout boots a third time from the cache with --apply.
IM=$T/images
mkdir -p "$IM/run"
export MINIVM_CACHE=$IM/cache

# im NAME ARGS...: one minivm run (foreground), as vm() but waited for.
im() {
	local name=$1
	shift
	TMPDIR=$IM/run timeout "$BOOT_TIMEOUT" "$MINIVM" --kernel "$B/vmlinux" --console "$T/$name.console" "$@" \
		</dev/null >"$T/$name.out" 2>"$T/$name.err"
	echo $? >"$T/$name.rc"
}

# The project's own OCI image: the tools rootfs as one layer.
"$MINIVM" image export "$B/rootfs.img" "oci:$IM/base:v1" >"$T/imexp.out" 2>&1
check "image export: rootfs.img as oci:base:v1 (exit $?)" [ -f "$IM/base/index.json" ]
skopeo inspect "oci:$IM/base:v1" >"$T/imexp.inspect" 2>&1
check "image export: skopeo inspect accepts it (exit $?)" grep -q '"Layers"' "$T/imexp.inspect"

# No VM: skopeo and umoci against `minivm image` (tests/integration/oci_tools.sh).
while IFS= read -r line; do
	case $line in
	PASS\ *) ok "oci tools: ${line#PASS }" ;;
	FAIL\ *) bad "oci tools: ${line#FAIL }" ;;
	esac
done < <(tests/integration/oci_tools.sh "$B" 2>&1)

# No VM: --save's atomicity. `minivm image append` is --save's writer
# (oci_save) fed a layer from a file; kill -9 it at 12 moments spread over
# its run: each time the destination is the old image or the whole new one.
mkdir -p "$IM/layer/big"
head -c 8388608 /dev/urandom >"$IM/layer/big/blob.bin"
tar -C "$IM/layer" -cf "$IM/layer.tar" big
export SOURCE_DATE_EPOCH=1700000000 # the same inputs and time: the same digests
"$MINIVM" image export "$B/rootfs.img" "oci:$IM/atomic:v1" >/dev/null 2>&1
old=$("$MINIVM" image inspect "oci:$IM/atomic:v1" 2>/dev/null | awk '$1 == "digest" { print $2 }')
start=$(date +%s%N)
"$MINIVM" image append "oci:$IM/base:v1" "$IM/layer.tar" "oci:$IM/atomic-ref:v1" >/dev/null 2>&1
full_ms=$((($(date +%s%N) - start) / 1000000))
new=$("$MINIVM" image inspect "oci:$IM/atomic-ref:v1" 2>/dev/null | awk '$1 == "digest" { print $2 }')
seen_old=0 seen_new=0 torn=0
for i in $(seq 1 12); do
	"$MINIVM" image append "oci:$IM/base:v1" "$IM/layer.tar" "oci:$IM/atomic:v1" >/dev/null 2>&1 &
	pid=$!
	sleep "$(awk -v i="$i" -v ms="$full_ms" 'BEGIN { printf "%.3f", i * ms / 12 / 1000 * 1.1 }')"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	now=$("$MINIVM" image inspect "oci:$IM/atomic:v1" 2>/dev/null | awk '$1 == "digest" { print $2 }')
	if [ -n "$now" ] && [ "$now" = "$old" ]; then
		seen_old=$((seen_old + 1))
	elif [ -n "$now" ] && [ "$now" = "$new" ]; then
		seen_new=$((seen_new + 1))
		# Start over from the old image for the next kill.
		rm -rf "$IM/atomic" && "$MINIVM" image export "$B/rootfs.img" "oci:$IM/atomic:v1" >/dev/null 2>&1
	else
		torn=$((torn + 1))
	fi
done
check "--save atomicity: 12 kill -9s over a ${full_ms} ms save, the destination always whole ($seen_old old, $seen_new new, $torn torn)" \
	[ "$torn" = 0 ] && [ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ]
check "--save atomicity: the kills landed both before and after the switch" [ "$seen_old" -gt 0 ] && [ "$seen_new" -gt 0 ]
unset SOURCE_DATE_EPOCH

# Bad images: refused before any boot, each with its own message naming the blob.
layer_of() { # DIR: the first layer's digest hex
	python3 -c 'import json,sys; d=sys.argv[1]; i=json.load(open(d+"/index.json")); m=i["manifests"][0]["digest"].split(":")[1]; print(json.load(open(d+"/blobs/sha256/"+m))["layers"][0]["digest"].split(":")[1])' "$1"
}
L=$(layer_of "$IM/base")
cp -a "$IM/base" "$IM/bad1"
printf 'X' | dd of="$IM/bad1/blobs/sha256/$L" bs=1 seek=100 conv=notrunc 2>/dev/null
im bad1 --rootfs "oci:$IM/bad1:v1" --agent true
check "oci: a layer whose digest does not match: exit 125 (got $(rc bad1))" [ "$(rc bad1)" = 125 ]
check "oci: ...and the message names the blob" grep -q "sha256:$L" "$T/bad1.err"
cp -a "$IM/base" "$IM/bad2"
rm "$IM/bad2/blobs/sha256/$L"
im bad2 --rootfs "oci:$IM/bad2:v1" --agent true
check "oci: a manifest naming a missing blob: exit 125 (got $(rc bad2))" [ "$(rc bad2)" = 125 ]
check "oci: ...named ($(head -c 200 "$T/bad2.err"))" grep -q "sha256:$L" "$T/bad2.err"
im bad3 --rootfs "oci:$IM/nonexistent:v1" --agent true
check "oci: a missing layout: exit 125 (got $(rc bad3))" [ "$(rc bad3)" = 125 ]
check "oci: no root image was cached for the bad ones" [ -z "$(ls "$MINIVM_CACHE/oci" 2>/dev/null)" ]
mkdir -p "$IM/notoci"
echo keep >"$IM/notoci/precious"
im bad4 --rootfs "oci:$IM/base:v1" --save "oci:$IM/notoci:x" --agent true
check "--save over a directory that is not an OCI layout: exit 125 (got $(rc bad4))" [ "$(rc bad4)" = 125 ]
check "--save: ...and that directory is untouched" [ "$(cat "$IM/notoci/precious")" = keep ] && [ "$(ls "$IM/notoci")" = precious ]

# Boot 1: the OCI image, changed by the command, saved as oci:saved:v2.
im save1 --rootfs "oci:$IM/base:v1" --save "oci:$IM/saved:v2" -- sh -c '
echo made >/root/new.txt && rm /etc/hosts && rm -rf /home && mkdir -p /opt/deep/er &&
echo deeper >/opt/deep/er/f && ln -s /root/new.txt /root/link && echo extra >>/etc/passwd &&
echo boot1-ok'
check "boot 1 (oci:base:v1 --save): exit 0 (got $(rc save1): $(tail -n2 "$T/save1.err" | tr '\n' ' '))" [ "$(rc save1)" = 0 ]
check "boot 1: the command ran" has save1.out boot1-ok
check "boot 1: the root was built once into the cache ($(ls "$MINIVM_CACHE/oci" 2>/dev/null | tr '\n' ' '))" \
	[ "$(ls "$MINIVM_CACHE/oci" 2>/dev/null | grep -c '\.img$')" = 1 ]
cache_img=$(ls "$MINIVM_CACHE"/oci/*.img 2>/dev/null | head -n1)
cache_sum=$(sha256sum <"$cache_img" 2>/dev/null)
check "skopeo inspect: the saved image has 2 layers" \
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(len(d["Layers"]) != 2)' \
	<(skopeo inspect "oci:$IM/saved:v2" 2>"$T/skinspect.err" || echo '{}')
check "skopeo copy: oci:saved:v2 -> oci-archive" skopeo copy -q "oci:$IM/saved:v2" "oci-archive:$IM/saved.tar:v2"
if umoci unpack --rootless --image "$IM/saved:v2" "$IM/bundle" >"$T/umoci.out" 2>&1; then
	ok "umoci unpack: the saved image unpacks"
else
	bad "umoci unpack: the saved image unpacks ($(tail -n2 "$T/umoci.out" | tr '\n' ' '))"
fi
R=$IM/bundle/rootfs
check "umoci: the new file is there" [ "$(cat "$R/root/new.txt" 2>/dev/null)" = made ]
check "umoci: the file made in new directories is there" [ "$(cat "$R/opt/deep/er/f" 2>/dev/null)" = deeper ]
check "umoci: the new symlink is there" [ "$(readlink "$R/root/link" 2>/dev/null)" = /root/new.txt ]
check "umoci: the deleted file is gone (a whiteout)" [ ! -e "$R/etc/hosts" ] && [ -e "$R/etc/group" ]
check "umoci: the deleted directory is gone" [ ! -e "$R/home" ]
check "umoci: the appended file has the new line" [ "$(tail -n1 "$R/etc/passwd" 2>/dev/null)" = extra ]
check "umoci: the overlay's own files did not leak into the layer" [ ! -e "$R/run/minivm-scratch" ]

# Boot 2: what skopeo wrote (an oci-archive) boots, with a workspace.
W=$IM/ws
mkdir -p "$W/sub" "$W/gone"
printf 'one\ntwo\nthree\n' >"$W/a.txt"
printf 'bye\n' >"$W/b.txt"
printf 'x\n' >"$W/gone/old.txt"
printf '#!/bin/sh\necho run\n' >"$W/run.sh"
printf '*.log\n' >"$W/.gitignore"
printf 'secret\n' >"$W/secret.log"
cp -a "$W" "$IM/ws.orig"
WSCMD='cd /workspace && printf "one\nTWO\nthree\nfour\n" >a.txt && rm b.txt && rm -r gone &&
mkdir -p sub/new && echo added >sub/new/c.txt && chmod 755 run.sh'
im ws1 --rootfs "oci-archive:$IM/saved.tar:v2" --workspace "$W" --changes "$IM/changes.diff" -- sh -c "
cat /root/new.txt; test -e /etc/hosts || echo hosts-gone; test -e /home || echo home-gone
cat /opt/deep/er/f; test -e /workspace/secret.log && echo secret-copied; $WSCMD"
check "boot 2 (oci-archive from skopeo, --workspace): exit 0 (got $(rc ws1): $(tail -n2 "$T/ws1.err" | tr '\n' ' '))" [ "$(rc ws1)" = 0 ]
check "boot 2: the saved image's changes are there ($(tr '\n' ' ' <"$T/ws1.out"))" \
	[ "$(tr '\n' ' ' <"$T/ws1.out")" = "made hosts-gone home-gone deeper secret-copied " ]
check "workspace: HOSTDIR unchanged without --apply" diff -r "$IM/ws.orig" "$W"
D=$IM/changes.diff
check "workspace: the diff has the modified file" grep -q '^+TWO$' "$D"
check "workspace: ...the deleted files" grep -q '^deleted file mode' "$D" && grep -q '^--- a/gone/old.txt' "$D"
check "workspace: ...the added file" grep -q '^+++ b/sub/new/c.txt' "$D"
check "workspace: ...the mode change" grep -q '^new mode 100755' "$D"
rm -rf "$IM/ws.git" && cp -a "$IM/ws.orig" "$IM/ws.git"
check "workspace: git apply --check accepts the diff" git -C "$IM/ws.git" apply --check "$D"
git -C "$IM/ws.git" apply "$D" 2>/dev/null

# Boot 3: the saved layout itself, from the cache for its base, --apply.
im ws2 --rootfs "oci:$IM/saved:v2" --workspace "$W" --workspace-respect-gitignore --apply --user 1000 -- sh -c "
test -e /workspace/secret.log || echo secret-not-copied; $WSCMD"
check "boot 3 (oci:saved:v2, --apply): exit 0 (got $(rc ws2): $(tail -n2 "$T/ws2.err" | tr '\n' ' '))" [ "$(rc ws2)" = 0 ]
check "--workspace-respect-gitignore: the ignored file was not copied in" has ws2.out secret-not-copied
check "--user 1000: the command could change its copy (it owns it)" [ "$(rc ws2)" = 0 ]
check "--apply: HOSTDIR now equals the guest's copy (as git apply made it)" diff -r "$IM/ws.git" "$W"
check "--apply: the ignored file is untouched" [ "$(cat "$W/secret.log")" = secret ]
check "--apply: the mode change reached HOSTDIR" [ -x "$W/run.sh" ]
check "cache: the first image's root was not rebuilt" [ "$(sha256sum <"$cache_img")" = "$cache_sum" ]
check "no run directory left" [ -z "$(ls -A "$IM/run")" ]
unset MINIVM_CACHE
