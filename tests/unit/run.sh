#!/usr/bin/env bash
# Runs unit test binaries (Check + ASan/UBSan) and sums their test cases.
#
#   tests/unit/run.sh BIN...
#
# Prints each binary's result, then one last line "N passed, M failed"
# (test cases, summed from Check's "Checks: X, Failures: Y, Errors: Z").
# A binary that crashes, hangs or exits non-zero without reporting a failed
# case counts as one more failure. Exits 1 if anything failed.
#
# Environment: UNIT_TIMEOUT (seconds per binary, default 600).
set -u

timeout_s=${UNIT_TIMEOUT:-600}
ubsan='print_stacktrace=1:halt_on_error=1'
passed=0
failed=0
bad_bins=()

if [ $# -eq 0 ]; then
	echo "usage: $0 BIN..." >&2
	exit 2
fi

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/minivm-unit.XXXXXX") || exit 1
trap 'rm -rf "$log_dir"' EXIT

# LeakSanitizer needs to stop the process's threads with ptrace; under a
# tracer (strace, gdb) or a seccomp/yama policy that forbids it, it aborts
# with this message instead of checking. Then the binary runs again without
# leak detection, and the result says so.
lsan_broken() {
	grep -q -e 'LeakSanitizer has encountered a fatal error' \
		-e 'LeakSanitizer does not work under ptrace' "$1"
}

run_one() { # bin log detect_leaks
	ASAN_OPTIONS="detect_leaks=$3:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
	UBSAN_OPTIONS="$ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
		timeout -k 10 "$timeout_s" "$1" >"$2" 2>&1
}

for bin in "$@"; do
	name=$(basename "$bin")
	log="$log_dir/$name.log"
	note=""

	if [ ! -x "$bin" ]; then
		echo "FAIL $name: not an executable file"
		failed=$((failed + 1))
		bad_bins+=("$name")
		continue
	fi
	run_one "$bin" "$log" 1
	rc=$?
	if [ $rc -ne 0 ] && lsan_broken "$log"; then
		run_one "$bin" "$log" 0
		rc=$?
		note=" (LeakSanitizer unusable here: leaks not checked)"
	fi

	# Check's summary: "NN%: Checks: X, Failures: Y, Errors: Z"
	summary=$(grep -E 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
	if [ -n "$summary" ]; then
		checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$summary")
		fails=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$summary")
		errors=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$summary")
	else
		checks=0 fails=0 errors=0
	fi
	bad=$((fails + errors))
	good=$((checks - bad))
	[ $good -lt 0 ] && good=0

	if [ $rc -eq 0 ] && [ -n "$summary" ] && [ $bad -eq 0 ]; then
		echo "PASS $name: $checks checks$note"
	else
		why="$bad of $checks checks failed"
		if [ -z "$summary" ]; then
			why="no Check summary"
		fi
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			why="$why; timed out after ${timeout_s}s"
		elif [ $rc -gt 128 ]; then
			why="$why; killed by signal $((rc - 128))"
		elif [ $rc -ne 0 ]; then
			why="$why; exit status $rc"
		fi
		# A crash, leak or sanitizer report outside the counted cases is
		# a failure of its own.
		if [ $bad -eq 0 ]; then
			bad=1
		fi
		echo "FAIL $name: $why$note"
		sed 's/^/    /' "$log"
		bad_bins+=("$name")
	fi
	passed=$((passed + good))
	failed=$((failed + bad))
done

if [ ${#bad_bins[@]} -gt 0 ]; then
	echo "failing binaries: ${bad_bins[*]}"
fi
echo "$passed passed, $failed failed"
[ ${#bad_bins[@]} -eq 0 ]
