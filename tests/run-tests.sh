#!/usr/bin/env bash
# Runs every test of ak2vault and ends with one line: "N passed, M failed".
#
#   tests/run-tests.sh              unit tests, then integration tests
#   tests/run-tests.sh --unit-only  unit tests only
#
# Unit tests are cmocka binaries in $AKV_UNIT_DIR (one per module); each
# cmocka test counts once. Fuzz replays are $AKV_UNIT_DIR/fuzz/fuzz_*, the
# libFuzzer targets of tests/fuzz built with a standalone driver; each
# replays its committed corpus tests/fuzz/corpus/<target>/ and counts once.
# Integration tests are tests/integration/test_*.py, each ending with its
# own "N passed, M failed" line, which is added in. They run on
# librdkafka's mock cluster (AKV_KAFKA=mock); the suites where Kafka's own
# behaviour matters (REAL_KAFKA_SUITES) run a second time on a real Apache
# Kafka cluster (AKV_KAFKA=real, tests/kafka/kafka-local; `make kafka`
# installs it), and the test_kafka_* suites run only there. Without the
# real broker installed, those runs fail rather than pass unseen.
# The suites where Vault's own behaviour matters (REAL_VAULT_SUITES) run a
# second time on a real HashiCorp Vault (AKV_VAULT=real: its dev server,
# prepared by docker/vault/setup.sh, the worker logging in with AppRole
# and holding only docker/vault/ak2vault-policy.hcl; `make vault` builds
# it) and on the mock broker; their tests that need an injected fault
# print "skip" there. test_vault_* suites start the real Vault themselves.
# A binary or script that crashes or prints no tally counts as one failure.
set -u
cd "$(dirname "$0")/.." || exit 1

: "${AKV_BIN:=$PWD/bin}"
: "${AKV_UNIT_DIR:=$PWD/build/tests}"
export AKV_BIN AKV_UNIT_DIR
export AKV_FIXTURES="$PWD/tests/fixtures"

# Run again on the real broker: end to end, replicas joining and leaving,
# lag and replay, dead-lettering and shutdown, metrics.
REAL_KAFKA_SUITES="test_e2e test_scale test_lag_replay test_chaos test_metrics"
# Of test_chaos, the real broker runs the scenarios where Kafka takes part
# (dead-lettering, groups racing, partitions changing owner, commits held
# per partition); its Vault and authentik faults behave the same on both
# brokers and run on the mock only, which keeps `make test` well under 30
# minutes.
REAL_KAFKA_CHAOS_RE="dead_letter|poison_too_large|two_groups_race|partition_ownership|policy_denial|delete_racing"
REAL_KAFKA_CHAOS="$REAL_KAFKA_CHAOS_RE|no_secret"
# The mock leaves those out: with the same fake-vault, the real broker's
# run is the one that tells (a minute and a half saved for the real
# Vault's runs).
MOCK_CHAOS_ONLY="^(?!.*($REAL_KAFKA_CHAOS_RE))"
# Of test_scale, the mock leaves out the scenarios that are about the group
# protocol itself (replicas joining and leaving under load, a revoked sync
# racing the partition's new owner): the real broker's run has them, and
# its protocol is the one that matters. Two and a half minutes saved.
MOCK_SCALE_ONLY="^(?!test_replicas_join_and_leave|test_revoked_sync_never)"
# Run again on the real Vault: end to end, faults where the real server
# can show them, TLS, check-config --connect, metrics.
REAL_VAULT_SUITES="test_e2e test_chaos test_tls test_check_config test_metrics"
# Of test_chaos, the real Vault runs the scenarios where Vault's own
# behaviour matters and that need no injected fault: sealed for real,
# check-and-set races, on_delete with the policy's delete variant,
# Vault written by another owner of a partition.
REAL_VAULT_CHAOS="vault_sealed|two_groups_race|on_delete|cache_does_not|no_secret"

passed=0
failed=0
failures=()
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_unit() {
    local bin=$1 name log p f
    name=$(basename "$bin")
    log="$out/$name.log"
    "$bin" >"$log" 2>&1
    local rc=$?
    cat "$log"
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test(s), listed below:.*/\1/p' "$log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed or aborted before its summary
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$name")
}

run_replay() {
    local bin=$1 name log
    name=$(basename "$bin")
    log="$out/$name.log"
    "$bin" "tests/fuzz/corpus/$name" >"$log" 2>&1
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        grep -v '^input: ' "$log"
        passed=$((passed + 1))
    else
        # The driver names each input before running it: the last one
        # named is the one that failed.
        echo "FAILED fuzz replay $name (exit status $rc) on" \
            "$(grep '^input: ' "$log" | tail -n 1 | cut -c8-):"
        grep -v '^input: ' "$log" | tail -n 30
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

# run_script SCRIPT mock|real [fake|real]: the broker, then the Vault
run_script() {
    local script=$1 kafka=$2 vault=${3:-fake} name log last p f
    name=$(basename "$script" .py)
    [ "$kafka" = mock ] || name="${name}[$kafka]"
    [ "$vault" = fake ] || name="${name}[vault]"
    log="$out/$name.log"
    echo "== $name"
    local only=${AKV_ONLY:-}
    if [ -z "$only" ] && [ "$kafka" = real ] &&
        [ "${script##*/}" = test_chaos.py ]; then
        only=$REAL_KAFKA_CHAOS
    fi
    if [ -z "$only" ] && [ "$vault" = real ] &&
        [ "${script##*/}" = test_chaos.py ]; then
        only=$REAL_VAULT_CHAOS
    fi
    if [ -z "$only" ] && [ "$kafka" = mock ] && [ "$vault" = fake ] &&
        [ "${script##*/}" = test_chaos.py ]; then
        only=$MOCK_CHAOS_ONLY
    fi
    if [ -z "$only" ] && [ "$kafka" = mock ] &&
        [ "${script##*/}" = test_scale.py ]; then
        only=$MOCK_SCALE_ONLY
    fi
    AKV_KAFKA=$kafka AKV_VAULT=$vault AKV_ONLY=$only \
        /usr/bin/python3 "$script" 2>&1 |
        tee "$log"
    local rc=${PIPESTATUS[0]}
    last=$(tail -n 1 "$log")
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
    else
        p=0
        f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$name")
}

for bin in "$AKV_UNIT_DIR"/test_*; do
    [ -x "$bin" ] && run_unit "$bin"
done

for bin in "$AKV_UNIT_DIR"/fuzz/fuzz_*; do
    case ${bin##*/} in *.*) continue ;; esac # objects and dependency files
    [ -x "$bin" ] && run_replay "$bin"
done

if [ "${1:-}" != "--unit-only" ]; then
    for script in tests/integration/test_*.py; do
        case ${script##*/} in
        test_kafka_*) ;; # real broker only, below
        *) [ -f "$script" ] && run_script "$script" mock ;;
        esac
    done
    for script in tests/integration/test_*.py; do
        name=$(basename "$script" .py)
        case " $REAL_KAFKA_SUITES " in
        *" $name "*) run_script "$script" real ;;
        *) case $name in test_kafka_*) run_script "$script" real ;; esac ;;
        esac
    done
    for name in $REAL_VAULT_SUITES; do
        run_script "tests/integration/$name.py" mock real
    done
fi

if [ ${#failures[@]} -gt 0 ]; then
    echo "failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
