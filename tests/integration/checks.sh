# The assertions of the integration scripts, sourced by run.sh and by the
# scripts it sources when they run alone (snapshot.sh, api.sh): counters
# pass/fail, ok/bad NAME, and check NAME CONDITION-COMMAND...
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "PASS: $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# check NAME CONDITION-COMMAND...: one assertion.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
