/*
 * wipe — secrets are overwritten before their memory is given back.
 */
#ifndef AKV_COMMON_WIPE_H
#define AKV_COMMON_WIPE_H

/** @brief Zeroes the string \p s up to its terminator and frees it; NULL
 *         is a no-op. For strings from malloc(). */
void akv_wipe_free(char *s);

#endif /* AKV_COMMON_WIPE_H */
