/*
 * kstats — librdkafka's statistics, the parts the worker exports.
 */
#include "kstats.h"

#include "json.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

static void read_brokers(const cJSON *brokers, struct akv_kstats *out)
{
    const cJSON *b;

    cJSON_ArrayForEach(b, brokers)
    {
        const cJSON *rtt = akv_json_object(b, "rtt");
        const char *name = akv_json_string(b, "name");
        long long id = -1;
        long long avg = 0;
        long long cnt = 0;

        const char *source = akv_json_string(b, "source");

        /* "logical" brokers (the group coordinator) repeat a real one */
        if (out->nbrokers == AKV_KSTATS_MAX_BROKERS || !name ||
            (source && (strcmp(source, "logical") == 0 ||
                        strcmp(source, "internal") == 0)) ||
            akv_json_int(b, "nodeid", &id) != 0 || id < 0 ||
            akv_json_int(rtt, "avg", &avg) != 0 ||
            akv_json_int(rtt, "cnt", &cnt) != 0 || cnt <= 0) {
            continue;
        }
        snprintf(out->brokers[out->nbrokers].name, sizeof(out->brokers[0].name),
                 "%s", name);
        out->brokers[out->nbrokers++].rtt_seconds = (double)avg / 1e6;
    }
}

static void read_partitions(const cJSON *topics, struct akv_kstats *out)
{
    const cJSON *t;
    const cJSON *p;

    cJSON_ArrayForEach(t, topics)
    {
        cJSON_ArrayForEach(p, akv_json_object(t, "partitions"))
        {
            long long id = -1;
            long long cnt = 0;
            long long size = 0;

            if (akv_json_int(p, "partition", &id) != 0 || id < 0) {
                continue;
            }
            if (akv_json_int(p, "fetchq_cnt", &cnt) == 0 && cnt > 0) {
                out->fetch_queue_messages += (double)cnt;
            }
            if (akv_json_int(p, "fetchq_size", &size) == 0 && size > 0) {
                out->fetch_queue_bytes += (double)size;
            }
        }
    }
}

int akv_kstats_parse(const char *json, size_t len, struct akv_kstats *out)
{
    cJSON *root = cJSON_ParseWithLength(json, len);

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root) || !akv_json_string(root, "type")) {
        cJSON_Delete(root);
        return -1;
    }
    read_brokers(akv_json_object(root, "brokers"), out);
    read_partitions(akv_json_object(root, "topics"), out);
    cJSON_Delete(root);
    return 0;
}
