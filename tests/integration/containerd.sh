#!/usr/bin/env bash
# minivm-runc under Debian's containerd 1.6 and its runc shim (io.containerd.runc.v2): ctr run with output and status, a long task listed, exec'd into, killed and deleted without leftovers, a terminal task, and the runtime's errors in the shim's log format.
#
#   tests/integration/containerd.sh BUILD_DIR
#
# Needs root, /dev/kvm, containerd, ctr, containerd-shim-runc-v2 (Debian:
# containerd), script (bsdutils), python3, flock; BUILD_DIR/minivm,
# minivm-runc, minivm-init, vmlinux and rootfs.img. Starts its own
# containerd (own root, state, socket, config without the CRI plugin) and
# stops it afterwards. Three VM boots, each under /tmp/minivm-boot.lock.
# Prints one PASS/FAIL line per check; exits 1 if any failed.
set -u

build=${1:?usage: $0 BUILD_DIR}
build=$(cd "$build" && pwd) || exit 1
runc="$build/minivm-runc"
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check NAME CMD...: PASS if CMD succeeds
	local name=$1
	shift
	if "$@" >"$work/out.log" 2>&1; then pass "$name"; else fail "$name"; sed 's/^/    /' "$work/out.log" | tail -8; fi
}
lock=/tmp/minivm-boot.lock
boot_timeout=${BOOT_TIMEOUT:-400}

for t in containerd ctr containerd-shim-runc-v2 script python3 flock "$runc" "$build/minivm" \
	"$build/minivm-init" "$build/vmlinux" "$build/rootfs.img"; do
	if ! command -v "$t" >/dev/null 2>&1 && [ ! -e "$t" ]; then
		echo "FAIL missing $t"
		exit 1
	fi
done
if [ "$(id -u)" != 0 ] || [ ! -w /dev/kvm ]; then
	echo "FAIL containerd.sh needs root and /dev/kvm"
	exit 1
fi

work=$(mktemp -d /tmp/minivm-ctrd.XXXXXX) || exit 1
ns="minivm-it-$$"
sock="$work/containerd.sock"
# The shim keeps runc state in /run/containerd/runc/NAMESPACE (go-runc's root).
rroot="/run/containerd/runc/$ns"
ctrd_pid=
ctr() { command ctr -a "$sock" -n "$ns" "$@"; }

cleanup() {
	if [ -n "$ctrd_pid" ]; then
		for id in $(ctr task ls -q 2>/dev/null); do
			ctr task kill -s KILL "$id" >/dev/null 2>&1
			sleep 1
			ctr task rm -f "$id" >/dev/null 2>&1
		done
		for id in $(ctr container ls -q 2>/dev/null); do ctr container rm "$id" >/dev/null 2>&1; done
		kill "$ctrd_pid" 2>/dev/null
		wait "$ctrd_pid" 2>/dev/null
	fi
	# containerd's snapshot mounts, should a task have been left behind
	grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$rroot" "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/opt"
EOF
# The shim's runc calls inherit containerd's environment: the guest kernel and agent.
MINIVM_KERNEL="$build/vmlinux" MINIVM_AGENT_INIT="$build/minivm-init" \
	containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 1 50); do
	ctr version >/dev/null 2>&1 && break
	sleep 0.2
done
check "containerd 1.6 starts with its own root, state and socket (no CRI)" ctr version

# The project's image, imported into containerd.
img=minivm.local/rootfs:v1
check "minivm image export makes an OCI archive" \
	"$build/minivm" image export "$build/rootfs.img" "oci-archive:$work/img.tar:v1"
check "ctr images import takes it" ctr images import --base-name minivm.local/rootfs "$work/img.tar"

# Nothing of container ID left: no process naming its state, no mount, no state directory.
no_leftovers() {
	local id=$1
	! pgrep -f "$rroot/$id/" >/dev/null && ! grep -q "/$id/" /proc/mounts && [ ! -e "$rroot/$id" ]
}

# 1. Output and a non-zero status through containerd's own shim.
timeout "$boot_timeout" flock "$lock" \
	"$(command -v ctr)" -a "$sock" -n "$ns" run --runc-binary "$runc" --rm "$img" t-echo \
	sh -c 'echo hello; echo to-stderr >&2; exit 3' >"$work/echo.out" 2>"$work/echo.err"
rc=$?
if [ "$(cat "$work/echo.out")" = "hello" ]; then pass "ctr run: the workload's stdout"; else
	fail "ctr run: the workload's stdout"; cat "$work/echo.out" "$work/echo.err" | tail -n 8 | sed 's/^/    /'
fi
if [ "$rc" = 3 ]; then pass "ctr run: its exit status (3)"; else fail "ctr run: its exit status (3, got $rc)"; fi
if grep -q to-stderr "$work/echo.err"; then pass "ctr run: its stderr"; else fail "ctr run: its stderr"; fi
check "ctr run --rm: nothing left behind" no_leftovers t-echo

# 2. A long task: listed, exec'd into, delete refused while it runs, killed, deleted.
long_boot() {
	# a workload that handles SIGTERM: its status (7) proves the signal reached it
	ctr run -d --runc-binary "$runc" "$img" t-long sh -c 'trap "exit 7" TERM; sleep 1000 & wait' ||
		return 1
	# exec waits for the guest agent: the boot happens under the lock
	ctr task exec --exec-id e1 t-long sh -c 'echo from-exec; cat /proc/1/comm' >"$work/exec.out"
}
export -f long_boot ctr
export sock ns runc img work
timeout "$boot_timeout" flock "$lock" bash -c long_boot
rc=$?
if [ "$rc" = 0 ] && grep -q from-exec "$work/exec.out" && grep -q minivm-init "$work/exec.out"; then
	pass "ctr task exec: a second command in the same VM (status 0)"
else
	fail "ctr task exec: a second command in the same VM (rc $rc)"; sed 's/^/    /' "$work/exec.out"
fi
if ctr task ls | grep -E "^t-long +[0-9]+ +RUNNING" >/dev/null; then pass "ctr task ls lists the running task"; else
	fail "ctr task ls lists the running task"; ctr task ls | sed 's/^/    /'
fi
"$runc" --root "$rroot" state t-long >"$work/state.json" 2>&1
if python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["status"]=="running" and s["pid"]>0 and s["id"]=="t-long" and s["bundle"] and s["ociVersion"] and "annotations" in s' "$work/state.json"; then
	pass "minivm-runc state: the OCI state of a running task"
else
	fail "minivm-runc state: the OCI state of a running task"; sed 's/^/    /' "$work/state.json"
fi
"$runc" --root "$rroot" ps --format json t-long >"$work/ps.json" 2>&1
if python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert isinstance(p, list) and len(p) >= 1' "$work/ps.json"; then
	pass "minivm-runc ps --format json: the pid list"
else fail "minivm-runc ps --format json: the pid list"; fi

# The error format go-runc reads back: the last {"level":"error","msg":...,"time":...} line.
last_error() { # last_error LOG PATTERN
	python3 - "$1" "$2" <<'EOF'
import json, sys, re
last = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert set(e) >= {"level", "msg", "time"}
    if e["level"] == "error":
        last = e["msg"]
sys.exit(0 if last and re.search(sys.argv[2], last) else 1)
EOF
}
wrong() { # wrong NAME PATTERN ARGS...: minivm-runc ARGS fails and logs PATTERN as the last error
	local name=$1 pat=$2 log="$work/wrong.$RANDOM.json"
	shift 2
	if "$runc" --root "$rroot" --log "$log" --log-format json "$@" >"$work/wrong.out" 2>&1; then
		fail "$name: exit status 0"
	elif last_error "$log" "$pat" && grep -q "$pat" "$work/wrong.out"; then
		pass "$name"
	else
		fail "$name"; cat "$log" "$work/wrong.out" | sed 's/^/    /'
	fi
}
wrong "delete of a running task without --force is refused" "not stopped: running" delete t-long
wrong "state of an unknown id" 'container "nope" does not exist' state nope
wrong "delete of an unknown id" 'container "nope" does not exist' delete nope
wrong "kill of an unknown id" 'container "nope" does not exist' kill nope KILL
mkdir -p "$work/norootfs"
cp "$work/state/io.containerd.runtime.v2.task/$ns/t-long/config.json" "$work/norootfs/"
wrong "create with a bundle without rootfs" "has no rootfs" create --bundle "$work/norootfs" \
	--pid-file "$work/norootfs/pid" t-bad
check "a failed create leaves no state" test ! -e "$rroot/t-bad"

check "ctr task kill (SIGTERM)" ctr task kill t-long
for _ in $(seq 1 60); do
	ctr task ls | grep -E "^t-long .*STOPPED" >/dev/null && break
	sleep 1
done
if ctr task ls | grep -E "^t-long .*STOPPED" >/dev/null; then pass "the killed task is stopped"; else
	fail "the killed task is stopped"; ctr task ls | sed 's/^/    /'
fi
"$runc" --root "$rroot" state t-long >"$work/state2.json" 2>&1
if grep -q '"status":"stopped","pid":0' "$work/state2.json"; then pass "minivm-runc state: stopped"; else
	fail "minivm-runc state: stopped"; sed 's/^/    /' "$work/state2.json"
fi
wrong "kill of a stopped task" "container not running" kill t-long TERM
ctr task rm t-long >"$work/rm.out" 2>&1
check "ctr task kill's SIGTERM reached the workload's trap (status 7)" grep -q 'exit code 7"' "$work/rm.out"
check "ctr container rm" ctr container rm t-long
check "the killed task left no process, mount or state" no_leftovers t-long

# 3. A terminal task (ctr run -t) under a pseudo-terminal.
timeout "$boot_timeout" flock "$lock" script -qec \
	"ctr -a $sock -n $ns run -t --runc-binary $runc --rm $img t-tty sh -c 'tty; test -t 0 && echo tty-ok; exit 4'" \
	/dev/null </dev/null >"$work/tty.out" 2>&1
rc=$?
if grep -q "tty-ok" "$work/tty.out" && grep -q "/dev/pts/" "$work/tty.out"; then
	pass "ctr run -t: the workload has a terminal and its output arrives"
else
	fail "ctr run -t: the workload has a terminal and its output arrives"; cat -A "$work/tty.out" | tail -5 | sed 's/^/    /'
fi
if [ "$rc" = 4 ]; then pass "ctr run -t: its exit status (4)"; else fail "ctr run -t: its exit status (4, got $rc)"; fi
check "ctr run -t --rm: nothing left behind" no_leftovers t-tty

if [ "$fails" -ne 0 ]; then
	echo "containerd.sh: $fails failed (containerd log: tail below)"
	tail -20 "$work/containerd.log" | sed 's/^/    /'
	exit 1
fi
exit 0
