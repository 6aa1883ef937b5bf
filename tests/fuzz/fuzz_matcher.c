/*
 * fuzz_matcher — the matcher's allocation-free way (jscan) and its
 * reference way (a full cJSON parse) give the same verdict for any bytes,
 * under every rule set of fuzzrules.h; and a verdict is usable: only
 * SYNC and DELETE carry an identifier, which is then a slug with a
 * normalised token pk, and everything that may reach a log line is
 * printable ASCII.
 */
#include "fuzzutil.h"
#include "fuzzrules.h"

#include "matcher.h"

/* The bytes of a fixed-size field are a C string of printable ASCII. */
static void check_printable(const char *what, const char *s, size_t size)
{
    const char *nul = memchr(s, '\0', size);
    const char *p;

    FUZZ_CHECK(nul != NULL, "%s is not NUL-terminated", what);
    for (p = s; p < nul; p++) {
        FUZZ_CHECK(*p >= 0x20 && *p < 0x7f,
                   "%s holds byte 0x%02x: a log line could be forged", what,
                   (unsigned char)*p);
    }
}

static void check_usable(const struct akv_match *m, const char *buf, size_t len)
{
    size_t i;

    check_printable("reason", m->reason, sizeof(m->reason));
    check_printable("action", m->action, sizeof(m->action));
    check_printable("event_pk", m->event_pk, sizeof(m->event_pk));
    FUZZ_CHECK(memchr(m->identifier, '\0', sizeof(m->identifier)) != NULL,
               "identifier is not NUL-terminated");
    switch (m->kind) {
    case AKV_MATCH_SYNC:
    case AKV_MATCH_DELETE:
        FUZZ_CHECK(akv_identifier_valid(m->identifier),
                   "%s verdict with identifier \"%s\", not a slug",
                   akv_match_kind_name(m->kind), m->identifier);
        FUZZ_CHECK(strlen(m->token_pk) == 32, "token pk \"%s\" is not 32 hex",
                   m->token_pk);
        for (i = 0; i < 32; i++) {
            char c = m->token_pk[i];

            FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'),
                       "token pk \"%s\" is not lowercase hex", m->token_pk);
        }
        FUZZ_CHECK(!m->undecodable, "undecodable bytes gave a %s verdict",
                   akv_match_kind_name(m->kind));
        break;
    case AKV_MATCH_SKIP:
    case AKV_MATCH_POISON:
        /* Never a Vault path from an event that is not synced. */
        FUZZ_CHECK(m->identifier[0] == '\0',
                   "%s verdict carries identifier \"%s\"",
                   akv_match_kind_name(m->kind), m->identifier);
        FUZZ_CHECK(m->reason[0] != '\0', "%s verdict without a reason",
                   akv_match_kind_name(m->kind));
        break;
    default:
        fuzz_fail("verdict kind %d is none of the four", (int)m->kind);
    }
    if (m->undecodable) {
        FUZZ_CHECK(
            m->kind == (akv_match_mentions_token(buf, len) ? AKV_MATCH_POISON
                                                           : AKV_MATCH_SKIP),
            "undecodable bytes: %s, mentions_token %d",
            akv_match_kind_name(m->kind), akv_match_mentions_token(buf, len));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct akv_match fast;
    struct akv_match slow;
    size_t r;

    for (r = 0; r < FZ_NRULES; r++) {
        akv_match_event(&fz_rules[r], buf, size, &fast);
        akv_match_event_parsed(&fz_rules[r], buf, size, &slow);
        FUZZ_CHECK(fast.kind == slow.kind &&
                       strcmp(fast.reason, slow.reason) == 0,
                   "rules %zu: scan says %s (%s), parse says %s (%s)", r,
                   akv_match_kind_name(fast.kind), fast.reason,
                   akv_match_kind_name(slow.kind), slow.reason);
        FUZZ_CHECK(strcmp(fast.identifier, slow.identifier) == 0,
                   "rules %zu: identifier \"%s\" by scan, \"%s\" by parse", r,
                   fast.identifier, slow.identifier);
        FUZZ_CHECK(strcmp(fast.token_pk, slow.token_pk) == 0,
                   "rules %zu: token pk \"%s\" by scan, \"%s\" by parse", r,
                   fast.token_pk, slow.token_pk);
        FUZZ_CHECK(strcmp(fast.event_pk, slow.event_pk) == 0,
                   "rules %zu: event pk \"%s\" by scan, \"%s\" by parse", r,
                   fast.event_pk, slow.event_pk);
        FUZZ_CHECK(strcmp(fast.action, slow.action) == 0,
                   "rules %zu: action \"%s\" by scan, \"%s\" by parse", r,
                   fast.action, slow.action);
        FUZZ_CHECK(fast.undecodable == slow.undecodable,
                   "rules %zu: undecodable %d by scan, %d by parse", r,
                   fast.undecodable, slow.undecodable);
        check_usable(&fast, buf, size);
    }
    return 0;
}
