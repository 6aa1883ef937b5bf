/*
 * lag — a group's progress per partition, in offsets and in seconds, with
 * the member that owns each partition where the broker tells.
 */
#include "lag.h"

#include "clock.h"
#include "json.h"
#include "kadmin.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lag_row {
    int64_t lag;       /* offsets from the first unconsumed one to the end */
    int64_t timestamp; /* of the first unconsumed message; -1: none */
    int64_t seconds;   /* age of that message; 0 when caught up, -1: ? */
};

/* Offsets and the first unconsumed message of every partition behind. */
static akv_err_t compute(struct akv_kadmin *ka, const struct akv_kpart *parts,
                         size_t n, struct lag_row *rows, char *errstr,
                         size_t errstr_size)
{
    int32_t *partitions = calloc(n ? n : 1, sizeof(*partitions));
    int64_t *offsets = calloc(n ? n : 1, sizeof(*offsets));
    int64_t *msg_offsets = calloc(n ? n : 1, sizeof(*msg_offsets));
    int64_t *timestamps = calloc(n ? n : 1, sizeof(*timestamps));
    size_t *row_of = calloc(n ? n : 1, sizeof(*row_of));
    akv_err_t err = AKV_OK;
    char why[512];
    int64_t now;
    size_t k = 0;
    size_t i;

    if (!partitions || !offsets || !msg_offsets || !timestamps || !row_of) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        /* Nothing committed yet: the whole retained log is ahead. */
        int64_t from =
            parts[i].committed >= 0 ? parts[i].committed : parts[i].low;

        rows[i].lag = parts[i].high - from;
        if (rows[i].lag < 0) {
            rows[i].lag = 0;
        }
        rows[i].timestamp = -1;
        rows[i].seconds = 0;
        if (rows[i].lag > 0) {
            /* An offset the log no longer holds: the next one it does. */
            partitions[k] = parts[i].partition;
            offsets[k] = from > parts[i].low ? from : parts[i].low;
            row_of[k] = i;
            k++;
        }
    }
    /* The offsets are what lag is about: a message that cannot be read
     * (retention deleting it right now, a leader away) costs only the
     * seconds, which are then unknown ("-"). */
    if (akv_kadmin_first_messages(ka, partitions, offsets, k, msg_offsets,
                                  timestamps, why, sizeof(why)) != AKV_OK) {
        fprintf(stderr, "lag seconds: unknown (%s)\n", why);
    }
    now = akv_wall_ms();
    for (i = 0; i < k; i++) {
        struct lag_row *r = &rows[row_of[i]];

        r->timestamp = timestamps[i];
        if (timestamps[i] < 0) {
            r->seconds = -1; /* behind, but no timestamp to tell by */
        } else {
            r->seconds = now > timestamps[i] ? (now - timestamps[i]) / 1000 : 0;
        }
    }
out:
    free(partitions);
    free(offsets);
    free(msg_offsets);
    free(timestamps);
    free(row_of);
    return err;
}

static void print_table(FILE *out, struct akv_kadmin *ka,
                        const struct akv_kgroup *g,
                        const struct akv_kpart *parts,
                        const struct lag_row *rows, size_t n)
{
    long long total = 0;
    long long oldest = 0;
    char committed[24];
    char seconds[24];
    size_t i;

    fprintf(out, "GROUP %s  TOPIC %s  ", akv_kadmin_group(ka),
            akv_kadmin_topic(ka));
    if (g->known) {
        fprintf(out, "STATE %s  MEMBERS %zu\n", g->state, g->member_count);
    } else {
        fprintf(out, "STATE unknown  MEMBERS unknown\n");
    }
    fprintf(out, "%9s %12s %12s %10s %11s  %-40s %s\n", "PARTITION",
            "COMMITTED", "END", "LAG", "LAG-SECONDS", "MEMBER", "HOST");
    for (i = 0; i < n; i++) {
        const struct akv_kmember *m =
            parts[i].member >= 0 ? &g->members[parts[i].member] : NULL;

        if (parts[i].committed >= 0) {
            snprintf(committed, sizeof(committed), "%lld",
                     (long long)parts[i].committed);
        } else {
            snprintf(committed, sizeof(committed), "-");
        }
        if (rows[i].seconds >= 0) {
            snprintf(seconds, sizeof(seconds), "%lld",
                     (long long)rows[i].seconds);
        } else {
            snprintf(seconds, sizeof(seconds), "-");
        }
        fprintf(out, "%9d %12s %12lld %10lld %11s  %-40s %s\n",
                (int)parts[i].partition, committed, (long long)parts[i].high,
                (long long)rows[i].lag, seconds,
                m && m->consumer_id ? m->consumer_id : "-",
                m && m->host ? m->host : "-");
        total += rows[i].lag;
        if (rows[i].seconds > oldest) {
            oldest = rows[i].seconds;
        }
    }
    fprintf(out, "%9s %12s %12s %10lld %11lld\n", "TOTAL", "", "", total,
            oldest);
}

static cJSON *member_json(const struct akv_kmember *m)
{
    cJSON *o = cJSON_CreateObject();

    if (!o) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "consumer_id",
                            m->consumer_id ? m->consumer_id : "");
    cJSON_AddStringToObject(o, "client_id", m->client_id ? m->client_id : "");
    cJSON_AddStringToObject(o, "host", m->host ? m->host : "");
    return o;
}

static akv_err_t print_json(FILE *out, struct akv_kadmin *ka,
                            const struct akv_kgroup *g,
                            const struct akv_kpart *parts,
                            const struct lag_row *rows, size_t n, char *errstr,
                            size_t errstr_size)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr;
    double total = 0;
    double oldest = 0;
    size_t i;

    if (!root) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    cJSON_AddStringToObject(root, "group", akv_kadmin_group(ka));
    cJSON_AddStringToObject(root, "topic", akv_kadmin_topic(ka));
    if (g->known) {
        cJSON_AddStringToObject(root, "state", g->state);
        cJSON_AddNumberToObject(root, "member_count", (double)g->member_count);
    } else {
        cJSON_AddNullToObject(root, "state");
        cJSON_AddNullToObject(root, "member_count");
        cJSON_AddStringToObject(root, "members_error", g->error);
    }
    arr = cJSON_AddArrayToObject(root, "partitions");
    for (i = 0; arr && i < n; i++) {
        cJSON *e = cJSON_CreateObject();

        if (!e) {
            break;
        }
        cJSON_AddNumberToObject(e, "partition", parts[i].partition);
        cJSON_AddNumberToObject(e, "committed", (double)parts[i].committed);
        cJSON_AddNumberToObject(e, "end", (double)parts[i].high);
        cJSON_AddNumberToObject(e, "low", (double)parts[i].low);
        cJSON_AddNumberToObject(e, "lag", (double)rows[i].lag);
        if (rows[i].seconds >= 0) {
            cJSON_AddNumberToObject(e, "lag_seconds", (double)rows[i].seconds);
        } else {
            cJSON_AddNullToObject(e, "lag_seconds");
        }
        if (rows[i].timestamp >= 0) {
            cJSON_AddNumberToObject(e, "timestamp", (double)rows[i].timestamp);
        } else {
            cJSON_AddNullToObject(e, "timestamp");
        }
        if (parts[i].member >= 0) {
            cJSON_AddItemToObject(e, "member",
                                  member_json(&g->members[parts[i].member]));
        } else {
            cJSON_AddNullToObject(e, "member");
        }
        cJSON_AddItemToArray(arr, e);
        total += (double)rows[i].lag;
        if ((double)rows[i].seconds > oldest) {
            oldest = (double)rows[i].seconds;
        }
    }
    cJSON_AddNumberToObject(root, "lag", total);
    cJSON_AddNumberToObject(root, "lag_seconds", oldest);
    if (akv_json_write_line(out, root) < 0) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
}

akv_err_t akv_lag_report(const struct akv_settings *s, const char *group,
                         const char *topic, int json, FILE *out, char *errstr,
                         size_t errstr_size)
{
    struct akv_kadmin *ka = NULL;
    struct akv_kpart *parts = NULL;
    struct lag_row *rows = NULL;
    struct akv_kgroup g;
    size_t n = 0;
    akv_err_t err;

    memset(&g, 0, sizeof(g));
    err = akv_kadmin_new(&ka, s, group, topic, errstr, errstr_size);
    if (err) {
        goto out;
    }
    err = akv_kadmin_partitions(ka, &parts, &n, errstr, errstr_size);
    if (err) {
        goto out;
    }
    rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    err = compute(ka, parts, n, rows, errstr, errstr_size);
    if (err) {
        goto out;
    }
    /* Not knowing the members is no reason to fail: the offsets are what
     * lag is about. */
    akv_kadmin_describe(ka, &g, parts, n);
    if (!g.known) {
        fprintf(stderr,
                "members: unknown (the broker does not answer "
                "DescribeGroups: %s)\n",
                g.error);
    }
    if (json) {
        err = print_json(out, ka, &g, parts, rows, n, errstr, errstr_size);
    } else {
        print_table(out, ka, &g, parts, rows, n);
    }
out:
    akv_kgroup_free(&g);
    free(rows);
    free(parts);
    akv_kadmin_destroy(ka);
    return err;
}
