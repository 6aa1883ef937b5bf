/*
 * fuzz_prefilter — the byte-level prefilter never rejects an event the
 * matcher would not skip: whatever it turns away must be a SKIP both by
 * the matcher's scan and by its full parse, under every rule set of
 * fuzzrules.h (a rejected SYNC or DELETE would be a token never mirrored,
 * a rejected POISON an event that vanished instead of being dead-lettered).
 */
#include "fuzzutil.h"
#include "fuzzrules.h"

#include "matcher.h"
#include "prefilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct akv_match fast;
    struct akv_match slow;
    size_t r;

    for (r = 0; r < FZ_NRULES; r++) {
        if (akv_prefilter_may_match(&fz_rules[r], buf, size)) {
            continue;
        }
        akv_match_event(&fz_rules[r], buf, size, &fast);
        akv_match_event_parsed(&fz_rules[r], buf, size, &slow);
        FUZZ_CHECK(fast.kind == AKV_MATCH_SKIP,
                   "rules %zu: prefilter rejected a %s event (%s)", r,
                   akv_match_kind_name(fast.kind), fast.reason);
        FUZZ_CHECK(slow.kind == AKV_MATCH_SKIP,
                   "rules %zu: prefilter rejected what a full parse calls "
                   "%s (%s)",
                   r, akv_match_kind_name(slow.kind), slow.reason);
    }
    return 0;
}
