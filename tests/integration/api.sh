#!/bin/bash
# libminivm's examples and the control socket against real VMs (issue 11).
# Sourced by run.sh (uses $B, $T, $MINIVM, $BOOT_TIMEOUT, ok, bad, check),
# or run alone: tests/integration/api.sh [BUILD [KERNEL ROOTFS]]. Needs
# `make examples`. Three boots in all, each under /tmp/minivm-boot.lock:
#  (a) tests/examples/three_commands under ASan+UBSan with leak detection:
#      2 VMs booted at once in one process, three commands each, the first
#      writing a snapshot; then 2 VMs restored at once, and 5 cycles of
#      create, restore, three commands, destroy in one process: exit 0 and
#      no sanitizer report (API_BOOT_CYCLES=5: also 5 cycles that boot,
#      5 boots more). Then the CLI restores the snapshot with
#      --log-format json --timings (every stderr line a JSON object).
#  (b) minivm --api-sock driven by tests/examples/api_client.py (configure,
#      start, three commands, pause/resume, metrics, stop, events) and by
#      tests/integration/api_raw.py (truncated, oversized, invalid, unknown
#      field, wrong type, wrong state: each its 4xx with a message, the
#      server serving afterwards; PUT /machine's snapshot_dir before start,
#      kept by api_client.py's PUT /machine; while paused, POST /snapshot
#      there (the VMM process still stopped after it), another dir 400, a
#      second snapshot 409; commands run after the resume); every exchange
#      validated against vmm/openapi.json by tests/integration/api_check.py;
#      minivm's exit status and JSON log lines. Before start api_raw.py
#      "devices" also gives it PUT /vsock (guest_cid 5) and PUT /disks/data
#      (a small ext4 image made by mke2fs -d, read-only: /dev/vdb), with
#      malformed variants; the guest mounts /dev/vdb and reads the file.
#  (c) No boot: a second minivm --api-sock first refuses (api_raw.py
#      "restorefail") PUT /restore of a missing and of a corrupt snapshot
#      at POST /start with the reason, still configuring, then restores the
#      socket's snapshot (api_client.py --restore: PUT /restore, commands,
#      /status, /metrics, stop); the file on /dev/vdb is still readable
#      there. A third, never started (api_raw.py "unstarted"): PUT /net and
#      /policy (no TAP is needed before a start) shown by GET /config; then
#      SIGTERM. Every exchange of (b) and (c) validated against
#      openapi.json, every operation exercised. Then the CLI restores the socket's snapshot once and runs
#      a command in it (a restore, no boot).

if ! declare -F check >/dev/null; then
	# Standalone.
	set -uo pipefail
	B=${1:-build}
	MINIVM=$B/minivm
	API_KERNEL=${2:-$B/vmlinux}
	API_ROOTFS=${3:-$B/rootfs.img}
	T=$(mktemp -d "${TMPDIR:-/tmp}/minivm-api.XXXXXX")
	BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
	. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
	API_STANDALONE=1
else
	API_KERNEL=${API_KERNEL:-$B/vmlinux}
	API_ROOTFS=${API_ROOTFS:-$B/rootfs.img}
	API_STANDALONE=0
fi

API_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
API_TOP=$(cd "$API_DIR/../.." && pwd)
API_LOCK=/tmp/minivm-boot.lock
AT=$T/api
mkdir -p "$AT/run"
# The exec'd VMM, when the build has one (the front finds it next to
# minivm, not next to the examples).
[ -x "$B/minivm-vmm" ] && export MINIVM_VMM=${MINIVM_VMM:-$(realpath "$B/minivm-vmm")}

# api_ex NAME ARGS...: an example under ASan+UBSan with leak detection;
# $AT/NAME.{out,err,rc}.
api_ex() {
	local name=$1
	shift
	TMPDIR=$AT/run ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout "$BOOT_TIMEOUT" "$@" </dev/null >"$AT/$name.out" 2>"$AT/$name.err"
	echo $? >"$AT/$name.rc"
}
api_rc() { cat "$AT/$1.rc"; }
api_clean() { ! grep -q -e 'LeakSanitizer' -e 'AddressSanitizer' -e 'runtime error' "$AT/$1.err"; }
api_tail() { tail -n3 "$AT/$1.err" | tr '\n' ' '; }
# api_count NAME TEXT: lines of NAME.out with TEXT.
api_count() { grep -c -F -- "$2" "$AT/$1.out"; }
# api_all_json FILE: every line of FILE is a JSON object with ts, level, msg.
api_all_json() {
	python3 -c 'import json,sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert {"ts", "level", "msg"} <= set(d), d
    n += 1
assert n > 0' "$1"
}
# api_relay FILE PREFIX: PASS/FAIL lines of a Python checker into ok/bad.
# api_exec SOCK NAME CMD: CMD (sh -c) run in the VM behind SOCK through
# api_client.py's MiniVM.exec; $AT/NAME.out, its status in $AT/NAME.rc.
api_exec() {
	python3 - "$API_DIR/../examples" "$1" "$REC" "$3" >"$AT/$2.out" 2>"$AT/$2.err" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import api_client
with open(sys.argv[3], "a") as rec:
    vm = api_client.MiniVM(sys.argv[2], rec)
    ex = vm.exec(["sh", "-c", sys.argv[4]], sys.stdout.buffer, sys.stderr.buffer, timeout_s=60)
sys.exit(ex["status"])
PY
	echo $? >"$AT/$2.rc"
}
api_relay() {
	while IFS= read -r line; do
		case $line in
		PASS:*) ok "$2: ${line#PASS: }" ;;
		FAIL:*) bad "$2: ${line#FAIL: }" ;;
		esac
	done <"$1"
}

echo "== libminivm's examples and the control socket (api.sh)"
for f in "$B/examples/three_commands-san" "$B/examples/run_one" "$API_KERNEL" "$API_ROOTFS"; do
	[ -e "$f" ] || bad "missing $f: run make examples"
done

# The README's C snippet is the example run_one.c, which make examples
# builds against libminivm.so through pkg-config.
awk '/^<!-- tests\/examples\/run_one.c -->$/ { on = 1; next } on && /^```c$/ { inside = 1; next }
     inside && /^```$/ { exit } inside { print }' "$API_TOP/README.md" >"$AT/readme.c"
check "README's C snippet is tests/examples/run_one.c" cmp -s "$AT/readme.c" "$API_DIR/../examples/run_one.c"
"$B/examples/run_one" "$AT/nonexistent" "$API_ROOTFS" >"$AT/one.out" 2>"$AT/one.err"
e=$?
check "run_one (libminivm.so): a missing kernel is exit 125 with a message ($(head -c 200 "$AT/one.err"))" \
	test "$e" = 125 -a -s "$AT/one.err"

# (a) Boots 1 and 2: two VMs at once in one process; vm0 writes a snapshot.
AS=$AT/snap
api_ex two flock "$API_LOCK" "$B/examples/three_commands-san" --snapshot "$AS" \
	"$API_KERNEL" "$API_ROOTFS" 2
check "three_commands: 2 VMs at once under ASan+UBSan exit 0 ($(api_tail two))" test "$(api_rc two)" = 0
check "three_commands: no sanitizer report (leaks checked)" api_clean two
for n in 0 1; do
	check "three_commands: vm$n ran its three commands" \
		test "$(api_count two "[vm$n] hello from the host")" = 1 -a "$(api_count two "[vm$n] 5")" = 1
done
check "three_commands: vm0 wrote a snapshot" test -s "$AS/state"
api_ex clones "$B/examples/three_commands-san" --restore "$AS" 2
check "three_commands --restore: 2 clones at once exit 0 ($(api_tail clones))" test "$(api_rc clones)" = 0
check "three_commands --restore: both ran their commands, no sanitizer report" \
	test "$(api_count clones "hello from the host")" = 2 -a "$(api_count clones "5")" -ge 2
check "three_commands --restore: clones, no sanitizer report" api_clean clones
api_ex cycles "$B/examples/three_commands-san" --restore "$AS" 1 5
check "three_commands --restore x5: 5 cycles in one process exit 0 ($(api_tail cycles))" \
	test "$(api_rc cycles)" = 0
check "three_commands --restore x5: 5 times three commands" \
	test "$(api_count cycles "[vm0] hello from the host")" = 5
check "three_commands --restore x5: no leak across cycles (LeakSanitizer on)" api_clean cycles
# API_BOOT_CYCLES=N: also N cycles that boot (not restore), N boots more.
if [ "${API_BOOT_CYCLES:-0}" -gt 0 ]; then
	api_ex bcycles flock "$API_LOCK" "$B/examples/three_commands-san" "$API_KERNEL" "$API_ROOTFS" \
		1 "$API_BOOT_CYCLES"
	check "three_commands x$API_BOOT_CYCLES boots: exit 0, no sanitizer report ($(api_tail bcycles))" \
		test "$(api_rc bcycles)" = 0 -a "$(api_count bcycles "[vm0] hello from the host")" = "$API_BOOT_CYCLES"
	check "three_commands x$API_BOOT_CYCLES boots: no leak across cycles" api_clean bcycles
fi
check "three_commands: no run directory left" test -z "$(ls -A "$AT/run")"

# The CLI's JSON log on a restore of that snapshot: timings and the command's own output.
# (-v: the VMM process's own lines stay text, "minivm: ...": not the CLI's log.)
TMPDIR=$AT/run timeout "$BOOT_TIMEOUT" "$MINIVM" --restore "$AS" --log-format json --timings -v \
	-- sh -c 'echo from-restore; echo own-stderr >&2; exit 3' </dev/null >"$AT/jr.out" 2>"$AT/jr.err"
e=$?
check "--log-format json restore: the command's status 3 (got $e)" test "$e" = 3
check "--log-format json restore: the command's stdout is raw" grep -qx from-restore "$AT/jr.out"
grep -v -x -e own-stderr -e 'minivm: .*' "$AT/jr.err" >"$AT/jr.log"
check "--log-format json restore: the command's stderr is raw" grep -qx own-stderr "$AT/jr.err"
check "--log-format json restore: every line of minivm's log is a JSON object" api_all_json "$AT/jr.log"
check "--log-format json -v: the vm_ready event with its ms" grep -q '"event":"vm_ready",.*"ms":[0-9]' "$AT/jr.log"
check "--log-format json -v: the command_exited event, status 3" \
	grep -q '"event":"command_exited",.*"status":3}' "$AT/jr.log"
check "--log-format json restore: a timing event with its phase and ms" \
	grep -q '"event":"timing","msg":"timing restore_to_ready [0-9.]* ms (total)","phase":"restore_to_ready","ms":[0-9]' "$AT/jr.log"
"$MINIVM" --log-format json --mem 1 --kernel k >"$AT/je.out" 2>"$AT/je.err"
e=$?
check "--log-format json: a bad argument is exit 125 and one JSON error line" \
	test "$e" = 125 -a "$(wc -l <"$AT/je.err")" = 1
check "--log-format json: ...which parses" api_all_json "$AT/je.err"

# (b) Boot 3: the control socket. The lock is held (fd 9) while the VM lives.
SOCK=$AT/api.sock
REC=$AT/exchanges.jsonl
SS=$AT/sock-snap
# The data disk: a small ext4 image holding one file (/dev/vdb in the guest).
DATA=$AT/data.img
mkdir -p "$AT/data-src"
echo minivm-data-disk-ok >"$AT/data-src/hello.txt"
mke2fs -q -t ext4 -d "$AT/data-src" "$DATA" 8M </dev/null >"$AT/mke2fs.out" 2>&1
check "mke2fs -d: the data disk image ($(tail -n1 "$AT/mke2fs.out"))" test -s "$DATA"
exec 9>"$API_LOCK"
flock 9
TMPDIR=$AT/run timeout "$BOOT_TIMEOUT" "$MINIVM" --api-sock "$SOCK" --log-format json -v \
	</dev/null >"$AT/srv.out" 2>"$AT/srv.err" 9>&- &
srv=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
check "--api-sock: the socket is there" test -S "$SOCK"
python3 "$API_DIR/api_raw.py" "$SOCK" before "$REC" "$SS" >"$AT/raw1.out" 2>&1
e=$?
check "api_raw.py before: exit 0 ($(tail -n1 "$AT/raw1.out"))" test "$e" = 0
api_relay "$AT/raw1.out" "socket before start"
python3 "$API_DIR/api_raw.py" "$SOCK" devices "$REC" "$(realpath "$DATA")" >"$AT/raw0.out" 2>&1
e=$?
check "api_raw.py devices: exit 0 ($(grep -m1 '^FAIL' "$AT/raw0.out"))" test "$e" = 0
api_relay "$AT/raw0.out" "socket devices"
python3 "$API_DIR/../examples/api_client.py" "$SOCK" --kernel "$(realpath "$API_KERNEL")" \
	--rootfs "$(realpath "$API_ROOTFS")" --pause --record "$REC" 9>&- >"$AT/cl1.out" 2>"$AT/cl1.err"
e=$?
check "api_client.py: configure, start, three commands, pause/resume, metrics: exit 0 ($(tail -n1 "$AT/cl1.err"))" \
	test "$e" = 0
check "api_client.py: uname -a streamed, status 0" grep -q '^uname -a -> exited, status 0' "$AT/cl1.out"
check "api_client.py: the command's stdout streamed to stdout" grep -qx 'out' "$AT/cl1.out"
check "api_client.py: ...and its status 3" grep -q 'exit 3 -> exited, status 3' "$AT/cl1.out"
check "api_client.py: the command's stderr streamed to stderr" grep -qx 'err' "$AT/cl1.err"
check "api_client.py: stdin reached the command" grep -qx 'got hello from the host' "$AT/cl1.out"
check "api_client.py: pause: paused" grep -q '^pause: paused' "$AT/cl1.out"
check "api_client.py: resume: running" grep -q '^resume: running' "$AT/cl1.out"
check "api_client.py: metrics count 3 agent commands" grep -q '^agent commands: 3 ' "$AT/cl1.out"
api_exec "$SOCK" vdb 'mkdir -p /tmp/d && mount -t ext4 -o ro /dev/vdb /tmp/d && cat /tmp/d/hello.txt' 9>&-
check "PUT /disks/data: the guest mounts /dev/vdb and reads the file (status $(cat "$AT/vdb.rc"): $(head -c 200 "$AT/vdb.err"))" \
	grep -qx minivm-data-disk-ok "$AT/vdb.out"
API_SERVER_PID=$srv python3 "$API_DIR/api_raw.py" "$SOCK" running "$REC" "$SS" >"$AT/raw2.out" 2>&1
e=$?
check "api_raw.py running: exit 0 ($(tail -n1 "$AT/raw2.out"))" test "$e" = 0
api_relay "$AT/raw2.out" "socket running"
check "POST /snapshot: the snapshot's state and memory files are there" test -s "$SS/state" -a -e "$SS/memory"
python3 "$API_DIR/../examples/api_client.py" "$SOCK" --attach --stop --record "$REC" 9>&- \
	>"$AT/cl2.out" 2>"$AT/cl2.err"
e=$?
check "api_client.py --attach --stop: three more commands, stop, events: exit 0 ($(tail -n1 "$AT/cl2.err"))" \
	test "$e" = 0
check "api_client.py --attach: the commands after the snapshot ran" \
	grep -q 'exit 3 -> exited, status 3' "$AT/cl2.out"
check "api_client.py: events ready, 6 command_exited, vm_exit stopped" \
	test "$(grep -c '^event: ready' "$AT/cl2.out")" = 1 -a \
	"$(grep -c '^event: command_exited' "$AT/cl2.out")" -ge 6 -a \
	"$(grep -c '^event: vm_exit stopped' "$AT/cl2.out")" = 1
wait "$srv"
e=$?
flock -u 9
exec 9>&-
check "minivm --api-sock: exit 0 after POST /stop (got $e)" test "$e" = 0
check "minivm --api-sock: the socket file is removed" test ! -e "$SOCK"
# With -v the VMM process's own lines (vm.c, jail.c, vmm_proc.c: another
# process, not the CLI's log) are still text: "minivm: ...".
grep -v '^minivm: ' "$AT/srv.err" >"$AT/srv.log"
check "minivm --api-sock --log-format json: every line of minivm's log is a JSON object" \
	api_all_json "$AT/srv.log"
check "minivm --api-sock -v: the api_listening event" grep -q '"event":"api_listening"' "$AT/srv.err"

# (c) The socket's snapshot restored through a second socket (a restore, no
# boot, so no lock): commands, status, metrics, the data disk, stop.
RSOCK=$AT/api-restore.sock
TMPDIR=$AT/run timeout "$BOOT_TIMEOUT" "$MINIVM" --api-sock "$RSOCK" --log-format json -v \
	</dev/null >"$AT/rsrv.out" 2>"$AT/rsrv.err" &
rsrv=$!
for _ in $(seq 50); do [ -S "$RSOCK" ] && break; sleep 0.1; done
mkdir -p "$AT/corrupt"
head -c 4096 /dev/urandom >"$AT/corrupt/state"
: >"$AT/corrupt/memory"
python3 "$API_DIR/api_raw.py" "$RSOCK" restorefail "$REC" "$(realpath "$AT/corrupt")" >"$AT/raw3.out" 2>&1
e=$?
check "api_raw.py restorefail: exit 0 ($(grep -m1 '^FAIL' "$AT/raw3.out"))" test "$e" = 0
api_relay "$AT/raw3.out" "restore server"
python3 "$API_DIR/../examples/api_client.py" "$RSOCK" --restore "$(realpath "$SS")" --record "$REC" \
	>"$AT/cl3.out" 2>"$AT/cl3.err"
e=$?
check "api_client.py --restore: PUT /restore, start, three commands, metrics: exit 0 ($(tail -n1 "$AT/cl3.err"))" \
	test "$e" = 0
check "api_client.py --restore: GET /config shows the restore's dir" \
	grep -qx "config restore: $(realpath "$SS")" "$AT/cl3.out"
check "api_client.py --restore: started running, GET /status running" \
	test "$(grep -c -x -e 'started: running' -e 'status: running' "$AT/cl3.out")" = 2
check "api_client.py --restore: the commands ran (status 3, stdin)" \
	test "$(grep -c -e 'exit 3 -> exited, status 3' -e '^got hello from the host' "$AT/cl3.out")" = 2
check "api_client.py --restore: GET /metrics answered" grep -q '^agent commands: [0-9]' "$AT/cl3.out"
api_exec "$RSOCK" rvdb 'cat /tmp/d/hello.txt'
check "restored VM: the file on /dev/vdb, mounted before the snapshot, is readable (status $(cat "$AT/rvdb.rc"))" \
	grep -qx minivm-data-disk-ok "$AT/rvdb.out"
python3 "$API_DIR/../examples/api_client.py" "$RSOCK" --attach --stop --record "$REC" \
	>"$AT/cl4.out" 2>"$AT/cl4.err"
e=$?
check "api_client.py --attach --stop on the restored VM: exit 0 ($(tail -n1 "$AT/cl4.err"))" test "$e" = 0
check "restored VM: events ready and vm_exit stopped" \
	test "$(grep -c -x -e 'event: ready ' -e 'event: vm_exit stopped' "$AT/cl4.out")" = 2
wait "$rsrv"
e=$?
check "minivm --api-sock (restore): exit 0 after POST /stop (got $e)" test "$e" = 0
check "minivm --api-sock (restore): the socket file is removed" test ! -e "$RSOCK"

# A server never started: PUT /net and /policy configured; then SIGTERM.
USOCK=$AT/api-unstarted.sock
TMPDIR=$AT/run timeout 120 "$MINIVM" --api-sock "$USOCK" </dev/null >"$AT/usrv.out" 2>"$AT/usrv.err" &
usrv=$!
for _ in $(seq 50); do [ -S "$USOCK" ] && break; sleep 0.1; done
python3 "$API_DIR/api_raw.py" "$USOCK" unstarted "$REC" >"$AT/raw4.out" 2>&1
e=$?
check "api_raw.py unstarted: exit 0 ($(grep -m1 '^FAIL' "$AT/raw4.out"))" test "$e" = 0
api_relay "$AT/raw4.out" "socket never started"
kill -TERM "$usrv"
wait "$usrv"
e=$?
check "minivm --api-sock (never started): ends on SIGTERM, not the timeout (got $e)" test "$e" != 124
check "minivm --api-sock (never started): the socket file is removed" test ! -e "$USOCK"

python3 "$API_DIR/api_check.py" --require-all "$API_TOP/vmm/openapi.json" "$REC" >"$AT/check.out" 2>&1
e=$?
check "api_check.py --require-all: every exchange valid, every operation exercised ($(tail -n1 "$AT/check.out"))" \
	test "$e" = 0
check "api_check.py: 80 exchanges or more recorded ($(wc -l <"$REC"))" test "$(wc -l <"$REC")" -ge 80

# The socket's snapshot restored once by the CLI (a restore, not a boot).
TMPDIR=$AT/run timeout "$BOOT_TIMEOUT" "$MINIVM" --restore "$SS" \
	-- sh -c 'echo from-socket-snapshot; exit 4' </dev/null >"$AT/sr.out" 2>"$AT/sr.err"
e=$?
check "minivm --restore of the socket's snapshot: the command's status 4 (got $e: $(tail -n1 "$AT/sr.err"))" \
	test "$e" = 4
check "minivm --restore of the socket's snapshot: the command's output" grep -qx from-socket-snapshot "$AT/sr.out"

if [ "$API_STANDALONE" = 1 ]; then
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"
	[ "$fail" -eq 0 ]
fi
