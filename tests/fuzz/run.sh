#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each and reports any that crash.
#
#   tests/fuzz/run.sh SECONDS BIN...
#
# Each target NAME (the binary's file name) keeps a growing corpus in
# BUILDDIR/fuzz-corpus/NAME (BUILDDIR: the parent of the binary's folder, so
# build/fuzz/NAME uses build/fuzz-corpus/NAME), seeded read-only from
# tests/fuzz/corpus/NAME/ when that exists. Crash, leak, timeout and OOM
# inputs land in BUILDDIR/fuzz-artifacts/NAME/, and the full log in
# BUILDDIR/fuzz-logs/NAME.log. Exits 1 if any target found something.
set -u

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
	echo "usage: $0 SECONDS BIN..." >&2
	exit 2
fi
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
ubsan='print_stacktrace=1:halt_on_error=1'
found=()

lsan_broken() {
	grep -q -e 'LeakSanitizer has encountered a fatal error' \
		-e 'LeakSanitizer does not work under ptrace' "$1"
}

run_one() { # bin corpus seeds artifacts log detect_leaks
	local seeds=()

	[ -d "$3" ] && seeds=("$3")
	ASAN_OPTIONS="detect_leaks=$6${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
	UBSAN_OPTIONS="$ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
		timeout -k 10 $((secs + 300)) "$1" -max_total_time="$secs" -timeout=10 \
		-detect_leaks="$6" -print_final_stats=1 -artifact_prefix="$4/" \
		"$2" "${seeds[@]}" >"$5" 2>&1
}

for bin in "$@"; do
	name=$(basename "$bin")
	top=$(cd "$(dirname "$bin")/.." && pwd)
	corpus="$top/fuzz-corpus/$name"
	artifacts="$top/fuzz-artifacts/$name"
	log="$top/fuzz-logs/$name.log"
	seeds="$here/corpus/$name"
	note=""

	mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
	if [ ! -x "$bin" ]; then
		echo "FAIL $name: not an executable file"
		found+=("$name")
		continue
	fi
	echo "fuzzing $name for ${secs}s (corpus $corpus)"
	run_one "$bin" "$corpus" "$seeds" "$artifacts" "$log" 1
	rc=$?
	if [ $rc -ne 0 ] && lsan_broken "$log"; then
		run_one "$bin" "$corpus" "$seeds" "$artifacts" "$log" 0
		rc=$?
		note=" (LeakSanitizer unusable here: leaks not checked)"
	fi
	runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok   $name: ${runs:-?} runs, nothing found$note"
		continue
	fi
	found+=("$name")
	echo "FAIL $name: exit status $rc$note; log $log"
	# The sanitizer's or libFuzzer's report, then the input that caused it.
	grep -E -A 30 -m 1 '^==[0-9]+==ERROR|^==[0-9]+== ERROR|runtime error:|ERROR: libFuzzer' "$log" |
		sed 's/^/    /'
	grep -E 'Test unit written to|artifact_prefix' "$log" | sed 's/^/    /'
done

if [ ${#found[@]} -gt 0 ]; then
	echo "fuzz targets that found crashes: ${found[*]}"
	exit 1
fi
echo "all ${#} fuzz targets ran ${secs}s without a crash"
