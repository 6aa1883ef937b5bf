/*
 * prefilter — a byte-level test that lets most authentik events skip the
 * JSON parse.
 *
 * The great majority of events (logins, flows, policy executions) can be
 * told apart from token events by their bytes alone: a matchable event must
 * carry one of the configured actions as a JSON string, and undecodable
 * bytes are only poison when they mention "authentik_core" and "token".
 * The test is conservative: it may let an event through that the matcher
 * then skips, but it never rejects one the matcher would not skip. JSON
 * escapes could hide an action, and a NUL byte ends the string the matcher
 * compares, so any backslash or NUL lets the event through.
 */
#ifndef AKV_WORKER_PREFILTER_H
#define AKV_WORKER_PREFILTER_H

#include "matcher.h"

#include <stddef.h>

/**
 * @returns 0 when the event certainly is a SKIP for akv_match_event() with
 *          the same \p rules, 1 when it must be matched in full.
 */
int akv_prefilter_may_match(const struct akv_match_rules *rules,
                            const char *buf, size_t len);

#endif /* AKV_WORKER_PREFILTER_H */
