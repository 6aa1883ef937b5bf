/*
 * num — whole numbers from text (command lines, query arguments, headers),
 * checked: the whole text is the number and it is within the caller's
 * bounds, so "12abc", "" and an overflow are refused rather than read as
 * far as they go.
 */
#ifndef AKV_COMMON_NUM_H
#define AKV_COMMON_NUM_H

/**
 * @brief Reads the decimal number \p s (strtol's spelling: leading white
 *        space and a sign allowed, nothing after the digits) into \p out.
 * @returns 0, or -1 when \p s is not such a number or not in [min, max]
 *          (\p out is then left alone).
 */
int akv_parse_long(const char *s, long min, long max, long *out);

#endif /* AKV_COMMON_NUM_H */
