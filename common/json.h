/*
 * json — small lookups on cJSON trees.
 *
 * authentik's JSON key order is not stable and any member may be missing or
 * of the wrong type, so every accessor checks the type and returns NULL (or
 * -1) instead of trusting the shape.
 */
#ifndef AKV_COMMON_JSON_H
#define AKV_COMMON_JSON_H

#include <cJSON.h>
#include <stdio.h>

/** @returns member \p key of object \p obj, or NULL (also if not object). */
const cJSON *akv_json_get(const cJSON *obj, const char *key);

/** Ends the name list of akv_json_path() (a typed NULL for varargs). */
#define AKV_JSON_END ((const char *)NULL)

/**
 * @brief Follows a list of member names ended by AKV_JSON_END from \p root.
 * @returns the value reached, or NULL if any step is missing.
 */
const cJSON *akv_json_path(const cJSON *root, ...);

/** @returns the string value of member \p key, or NULL. */
const char *akv_json_string(const cJSON *obj, const char *key);

/** @returns member \p key if it is an object, else NULL. */
const cJSON *akv_json_object(const cJSON *obj, const char *key);

/**
 * @brief Reads integer member \p key (a JSON number without fraction).
 * @returns 0 on success, -1 if absent, not a number or not integral.
 */
int akv_json_int(const cJSON *obj, const char *key, long long *out);

/**
 * @brief Reads boolean member \p key.
 * @returns 0 on success, -1 if absent or not a boolean.
 */
int akv_json_bool(const cJSON *obj, const char *key, int *out);

/**
 * @brief Serialises \p item compactly.
 * @returns a string to release with akv_json_free_string(), or NULL.
 */
char *akv_json_print(const cJSON *item);

/**
 * @brief Writes \p root compactly as one line to \p out, then deletes it
 *        (for documents without secrets: command output).
 * @returns 0, or -1 when out of memory (\p root is deleted either way).
 */
int akv_json_write_line(FILE *out, cJSON *root);

/** @brief Wipes and frees a string from akv_json_print(). NULL is a no-op. */
void akv_json_free_string(char *s);

/**
 * @brief Wipes every string value in \p item, recursively (trees that held
 *        token keys are wiped before cJSON_Delete()).
 */
void akv_json_wipe(cJSON *item);

/**
 * @returns 1 when cJSON would decode a NUL byte into some string of the JSON
 *          text \p text: a raw NUL, the escape \\u0000, or a \\u escape
 *          with a character that is not a hex digit (cJSON reads those as
 *          0). A string holding one comes back from cJSON cut short there.
 * @remark Every backslash of valid JSON starts an escape inside a string;
 *         invalid JSON is cJSON's to refuse.
 */
int akv_json_has_nul(const char *text, size_t len);

#endif /* AKV_COMMON_JSON_H */
