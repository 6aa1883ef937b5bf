/*
 * utf8 — what is valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF). Vault and Prometheus read JSON and text as UTF-8
 * and replace what is not, so text that must arrive exactly is checked here.
 */
#ifndef AKV_COMMON_UTF8_H
#define AKV_COMMON_UTF8_H

#include <stddef.h>

/**
 * @returns the length of the valid UTF-8 sequence at \p s (1..4), or 0
 *          when none starts there.
 * @remark Reads at most up to the first byte that does not continue the
 *         sequence, so a NUL-terminated string is never read past its end.
 */
size_t akv_utf8_seq(const unsigned char *s);

/** @returns 1 when the NUL-terminated \p s is entirely valid UTF-8. */
int akv_utf8_valid(const char *s);

#endif /* AKV_COMMON_UTF8_H */
