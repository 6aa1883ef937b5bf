/*
 * jscan — finds a few members of a JSON object without building a tree.
 *
 * The matcher reads eight members of an event that takes cJSON dozens of
 * allocations to parse. jscan walks the bytes once, validating them the
 * way cJSON_ParseWithLength() does, and reports where the wanted members'
 * values are. It only answers when the answer is certainly cJSON's: for
 * bytes with an escape or a NUL, bytes that are not an object, bytes cJSON
 * would reject and very deep nesting it gives up, and the caller parses
 * with cJSON instead.
 */
#ifndef AKV_COMMON_JSCAN_H
#define AKV_COMMON_JSCAN_H

#include <stddef.h>

/** Where the root object is, as a query's parent. */
#define AKV_JSCAN_ROOT (-1)

/** A member to find: \p key in the object found by query \p parent (an
 *  earlier query, or AKV_JSCAN_ROOT). */
struct akv_jscan_query {
    const char *key;
    int parent;
};

enum akv_jscan_type {
    AKV_JSCAN_ABSENT, /**< no such member, or its parent is no object */
    AKV_JSCAN_STRING, /**< p/n: the characters between the quotes */
    AKV_JSCAN_OBJECT, /**< p/n: from '{' to '}' */
    AKV_JSCAN_OTHER,  /**< number, literal or array */
};

/** The first member with the query's key, as cJSON's lookup finds it. */
struct akv_jscan_value {
    enum akv_jscan_type type;
    const char *p;
    size_t n;
};

/**
 * @param queries parents before children; at most 64.
 * @param out one value per query.
 * @returns 0 when \p buf is a JSON object cJSON accepts and \p out holds
 *          what cJSON's lookups would find; -1 when jscan cannot tell
 *          (then parse with cJSON).
 */
int akv_jscan(const char *buf, size_t len,
              const struct akv_jscan_query *queries, int nqueries,
              struct akv_jscan_value *out);

#endif /* AKV_COMMON_JSCAN_H */
