#!/usr/bin/env bash
# Runs libFuzzer targets built by `make fuzz-build`; `make fuzz` calls it.
#
#   tests/fuzz/run-fuzz.sh FUZZ_DIR SECONDS JOBS TARGET...
#
# Each target runs for SECONDS on FUZZ_DIR/corpus/<target>, a copy of
# tests/fuzz/corpus/<target> that keeps what earlier runs found, with
# tests/fuzz/<target>.dict when there is one. New crash inputs (crash-*,
# leak-*, timeout-*, oom-*) land in FUZZ_DIR/crashes/<target>/. JOBS
# targets run at a time. Every target ends with one line
#   fuzz <target>: N execs, M crashes, corpus K
# and the run with "fuzz: T targets, C crashed"; it fails if any did.
set -u
cd "$(dirname "$0")/../.." || exit 1

if [ $# -lt 4 ]; then
    echo "usage: $0 FUZZ_DIR SECONDS JOBS TARGET..." >&2
    exit 64
fi
dir=$1
secs=$2
jobs=$3
shift 3
logs="$dir/logs"
mkdir -p "$logs"

# The distinct failures among the crash inputs listed on stdin: each is
# run once, and its first report line, with numbers and quoted text
# blanked, names its kind.
distinct() {
    local bin=$1 f line kind
    declare -A seen=()

    while read -r f; do
        line=$("$bin" "$f" 2>&1 </dev/null |
            grep -m1 -E '^(property violated|SUMMARY)')
        kind=$(sed -E 's/"[^"]*"/""/g; s/[0-9]+/N/g' <<<"$line")
        if [ -z "${seen[$kind]+x}" ] && [ ${#seen[@]} -lt 5 ]; then
            seen[$kind]=1
            echo "  $line ($f)"
        fi
    done
}

# Runs one target; its result goes to $logs/<target>.result.
fuzz_one() {
    local t=$1 bin="$dir/bin/$1" corpus="$dir/corpus/$1"
    local crashes="$dir/crashes/$1" log="$logs/$1.log"
    local dict=() mode=() known="$logs/$1.known" new="$logs/$1.new"
    local execs rc n

    if [ ! -x "$bin" ]; then
        echo "fuzz $t: no such target ($bin)" >"$logs/$t.result"
        echo 1 >"$logs/$t.failed"
        return
    fi
    mkdir -p "$corpus" "$crashes"
    if [ -d "tests/fuzz/corpus/$t" ]; then
        cp -n "tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
    fi
    [ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    find "$crashes" -type f | sort >"$known"
    # -timeout: a single input that takes this long is a hang, reported
    # like a crash. stdin is /dev/null: nothing a target reads may block.
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=2048 -artifact_prefix="$crashes/" "${mode[@]}" \
        "${dict[@]}" "$corpus" </dev/null >"$log" 2>&1
    rc=$?
    find "$crashes" -type f | sort | comm -13 "$known" - >"$new"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ -z "$execs" ]; then # fork mode: its last status line
        execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
    fi
    n=$(wc -l <"$new")
    if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
        n=1 # died without leaving an input (see the log)
    fi
    echo "fuzz $t: ${execs:-?} execs, $n crashes, corpus" \
        "$(find "$corpus" -type f | wc -l) (log $log)" >"$logs/$t.result"
    if [ "$n" -gt 0 ] && [ ${#mode[@]} -eq 0 ]; then
        {
            grep -E '^(property violated|SUMMARY|==[0-9]+==ERROR|.*runtime error)' \
                "$log" | head -5
            grep -E 'Test unit written to' "$log"
        } >>"$logs/$t.result"
    elif [ "$n" -gt 0 ]; then
        distinct "$bin" <"$new" >>"$logs/$t.result"
    fi
    [ "$n" -gt 0 ] && echo 1 >"$logs/$t.failed"
}

for t in "$@"; do
    rm -f "$logs/$t.result" "$logs/$t.failed"
done
running=0
for t in "$@"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    echo "fuzz $t: running for ${secs}s"
    fuzz_one "$t" &
    running=$((running + 1))
done
wait

crashed=0
for t in "$@"; do
    cat "$logs/$t.result"
    [ -f "$logs/$t.failed" ] && crashed=$((crashed + 1))
done
echo "fuzz: $# targets, $crashed crashed"
[ "$crashed" -eq 0 ]
