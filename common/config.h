/*
 * config — libconfig files read through one schema table.
 *
 * A program describes each setting once (name, type, default, bounds,
 * environment override, description) in an array of struct akv_cfg_entry;
 * this module applies defaults, reads the file, rejects anything the table
 * does not name, checks types and bounds, applies environment overrides and
 * reports every problem as "file:line: message". The same table prints the
 * effective configuration (secrets masked) and the reference documentation.
 */
#ifndef AKV_COMMON_CONFIG_H
#define AKV_COMMON_CONFIG_H

#include "err.h"

#include <stddef.h>
#include <stdio.h>

enum akv_cfg_type {
    AKV_CFG_STRING,  /**< char * (heap, NULL when unset) */
    AKV_CFG_INT,     /**< long long, checked against [min, max] */
    AKV_CFG_BOOL,    /**< int, 0 or 1 */
    AKV_CFG_DOUBLE,  /**< double, checked against [min, max] */
    AKV_CFG_ENUM,    /**< char *, one of choices[] */
    AKV_CFG_STRLIST, /**< struct akv_strlist, e.g. ["a", "b"] */
    AKV_CFG_PAIRS,   /**< struct akv_pairs, e.g. ( ("k", "v"), ... ) */
};

#define AKV_CFG_REQUIRED 0x1u /**< must be set by file or environment */
#define AKV_CFG_SECRET   0x2u /**< value masked when printed */
#define AKV_CFG_ENV_ONLY 0x4u /**< environment only, never the file */

struct akv_strlist {
    char **v;
    size_t n;
};

struct akv_pairs {
    char **names;
    char **values;
    size_t n;
};

struct akv_cfg_entry {
    const char *name; /**< dotted path, "kafka.brokers" */
    enum akv_cfg_type type;
    const char *def; /**< default as text; lists: "a,b"; NULL */
    unsigned flags;  /**< AKV_CFG_REQUIRED | AKV_CFG_SECRET */
    size_t offset;   /**< offsetof() the field in the struct */
    long long min;   /**< AKV_CFG_INT bounds */
    long long max;
    const char *const *choices; /**< AKV_CFG_ENUM values, NULL-terminated */
    const char *env;            /**< overriding environment variable */
    const char *desc;           /**< one-line description */
};

/**
 * @brief Loads \p path into the struct at \p out according to \p schema
 *        (terminated by an entry with a NULL name).
 * @returns AKV_OK, or AKV_ERR_CONFIG with "file:line: message" in
 *          \p errstr for the first problem found.
 * @remark Whatever the result, release \p out with akv_cfg_free().
 */
akv_err_t akv_cfg_load(const struct akv_cfg_entry *schema, void *out,
                       const char *path, char *errstr, size_t errstr_size);

/**
 * @brief The same, with \p path NULL for no file (defaults and the
 *        environment only), and only the required settings whose names
 *        start with \p required_prefix (NULL: all) required.
 */
akv_err_t akv_cfg_load_some(const struct akv_cfg_entry *schema, void *out,
                            const char *path, const char *required_prefix,
                            char *errstr, size_t errstr_size);

/**
 * @brief Where setting \p name's value came from, for messages: "environment
 *        VAR" when its environment variable is set (it overrides the file),
 *        else \p path. Written to \p buf, which is returned.
 */
const char *akv_cfg_origin(const struct akv_cfg_entry *schema, const char *name,
                           const char *path, char *buf, size_t size);

/** @returns non-zero when \p s (may be NULL) is one of \p l's strings. */
int akv_strlist_contains(const struct akv_strlist *l, const char *s);

/** The same for the \p n bytes at \p s (not NUL-terminated). */
int akv_strlist_contains_n(const struct akv_strlist *l, const char *s,
                           size_t n);

/** @brief Frees every string and list the schema owns in \p cfg. */
void akv_cfg_free(const struct akv_cfg_entry *schema, void *cfg);

typedef void(akv_cfg_diff_fn)(void *ctx, const char *name, const char *was,
                              const char *now);

/**
 * @brief Calls \p fn for each setting whose value differs between \p a and
 *        \p b, with both values as akv_cfg_dump() prints them (secrets
 *        masked: a changed secret is not told).
 * @returns how many differ, or -1 when out of memory.
 */
int akv_cfg_diff(const struct akv_cfg_entry *schema, const void *a,
                 const void *b, akv_cfg_diff_fn *fn, void *ctx);

/** @brief Prints the effective configuration, secrets masked. */
void akv_cfg_dump(const struct akv_cfg_entry *schema, const void *cfg,
                  FILE *fp);

/**
 * @brief Prints the reference as a Markdown table: name, type, default,
 *        environment variable, description.
 */
void akv_cfg_describe(const struct akv_cfg_entry *schema, FILE *fp);

#endif /* AKV_COMMON_CONFIG_H */
