/*
 * fa.h — what the parts of fake-authentik share: its constants, its state
 * (the command line, the token store, the Kafka producer, counters, the
 * fault plan's part of fake-authentik), what an event knows of its request,
 * and the functions one part offers the others. Private to
 * tests/fakes/authentik/.
 */
#ifndef AKV_TESTS_FAKE_AUTHENTIK_FA_H
#define AKV_TESTS_FAKE_AUTHENTIK_FA_H

#include "fakefault.h"
#include "fakehtab.h"
#include "fakehttp.h"
#include "thread.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ---- */

/* The longest token identifier authentik takes. */
#define IDENT_MAX 255

/* authentik's dates are microseconds since the epoch, UTC, as Python keeps
 * them: akv_wall_ns() / NS_PER_US. */
#define NS_PER_US    1000
#define USEC_PER_SEC INT64_C(1000000)
#define DAY_US       (INT64_C(86400) * USEC_PER_SEC)

/* Room for a date as fa_fmt_time() writes it. */
#define TIME_BUF 64

/* The one user the fake knows: the owner of the API token and the actor in
 * every event that comes from an HTTP request. */
#define ADMIN_PK       4
#define ADMIN_USERNAME "akadmin"
#define ADMIN_EMAIL    "admin@example.com"
#define ADMIN_NAME     "authentik Default Admin"
#define ADMIN_UID                                                              \
    "5e1a8f7bd0c34c7a9a0e4b7f3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
#define ADMIN_UUID   "0f6a1b2c-3d4e-4f50-8a61-72b3c4d5e6f7"
#define ADMIN_JOINED "2026-01-05T09:30:12.345678Z"
/* authentik's avatar when avatars are off ("none"). */
#define ADMIN_AVATAR "/static/dist/assets/images/user_default.png"
/* The admin's one group, "authentik Admins". */
#define ADMIN_GROUP_PK     "7a3c9e51-2b4d-4e6f-9a8b-1c2d3e4f5a6b"
#define ADMIN_GROUP_NUM_PK 18245

/* ---- state ---- */

/* A token as authentik stores it. */
struct token {
    struct fakehtab_node node; /* key: the identifier */
    char pk[33];               /* uuid4 as 32 lowercase hex digits */
    char *identifier;
    char *key;
    char *description;
    const char *intent; /* "api" or "app_password" (static strings) */
    int user;
    bool expiring;
    bool has_expires;
    int64_t expires_us; /* microseconds since the epoch, UTC */
};

/* Tokens by identifier: a hash table for lookups plus an array kept sorted
 * by identifier, because the list endpoint pages in that order. */
struct store {
    pthread_mutex_t mu;
    struct fakehtab by_ident;
    struct token **sorted;
    size_t count;
    size_t cap;
};

/* fake-authentik's part of a fault plan (fakefault_plan.ext). */
struct authentik_faults {
    int deny_status; /* 401 or 403; 0: off */
    int drop_events; /* changes are made, their events never published */
};

/* The fault counters of /_fake/stats. */
struct fault_stats {
    struct fakefault_counts common;
    atomic_ullong deny_status;
};

/* The counters of /_fake/stats. */
struct stats {
    atomic_long requests;
    atomic_long detail;
    atomic_long view_key;
    atomic_long list;
    atomic_long events_published;
    atomic_long events_dropped; /* by the drop_events fault */
    atomic_long denied;
    struct fault_stats faults;
};

/* Everything fake-authentik keeps; one, for the whole process. */
struct app {
    char *api_token; /* replaced by POST /_fake/api-token: token_lock */
    pthread_mutex_t token_lock;
    const char *topic;
    const char *brokers;
    const char *listen;
    int page_size;
    bool enterprise;
    bool verbose;
    int latency_ms;          /* --latency-ms, folded into the first plan */
    const char *faults_json; /* --faults */
    const char *kafka_props; /* --kafka-properties FILE */

    struct fakefault_slot faults; /* the fault plan */

    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    struct akv_thread poller; /* serves delivery reports */
    bool poller_started;

    struct store store;
    struct stats stats;
};

/* Everything an event needs to know about the HTTP request behind it. */
struct reqctx {
    const struct fakehttp_request *req;
    char request_id[33];
    char client_ip[INET6_ADDRSTRLEN];
    bool have_client_ip;
};

/* An event ready to go to Kafka: record key and JSON value. */
struct outmsg {
    char key[33];
    char *value;
};

/* What a create/update body asked for, validated field by field. String
 * pointers point into the parsed body. */
struct token_input {
    const char *identifier;
    const char *intent;
    bool intent_bad;
    bool has_intent;
    bool has_user;
    int user;
    const char *description;
    bool has_expires;
    bool expires_null;
    int64_t expires_us;
    bool has_expiring;
    bool expiring;
};

/* What an /api path is, as authentik's DRF router resolves it
 * (fa_route_api()). */
enum route {
    ROUTE_NONE,
    ROUTE_LIST,
    ROUTE_DETAIL,
    ROUTE_VIEW_KEY,
    ROUTE_SET_KEY,
};

/*
 * What each part offers the others, documented where it is defined.
 */

/* ---- The token store (store.c) ---- */

void fa_uuid4_hex(char out[33]);
void fa_uuid_dashed(const char *hex, char out[37]);
char *fa_new_key(void);
void fa_token_free(struct token *t);
int fa_store_init(struct store *st);
void fa_store_destroy(struct store *st);
struct token *fa_store_find(const struct store *st, const char *ident);
struct token *fa_store_rekey(struct store *st, const char *ident, char *key);
int fa_store_add(struct store *st, struct token *t);
void fa_store_remove(struct store *st, struct token *t);

/* ---- DRF answers and TokenSerializer (serialize.c) ---- */

void fa_fmt_time(int64_t us, bool iso, char *out, size_t outsz);
char *fa_json_take_print(cJSON *obj);
void fa_reply_json(struct fakehttp_response *resp, int status, cJSON *obj);
void fa_reply_detail(struct fakehttp_response *resp, int status,
                     const char *msg);
void fa_add_field_error(cJSON *errs, const char *field, const char *msg);
cJSON *fa_add_time_or_null(cJSON *obj, const char *name, bool has, int64_t us);
cJSON *fa_token_json(const struct token *t);

/* ---- Events (events.c) ---- */

cJSON *fa_model_dict_json(const struct token *t);
cJSON *fa_token_state_json(const struct token *t);
cJSON *fa_state_diff(const cJSON *before, const cJSON *after);
int fa_event_build(const char *action, const char *appname, cJSON *context,
                   const struct reqctx *rc, const char *token_pk,
                   struct outmsg *out);
int fa_model_event(const char *action, const struct token *t, cJSON *diff,
                   const struct reqctx *rc, struct outmsg *out);

/* ---- Publishing to Kafka (kafka.c) ---- */

int fa_publish_all(struct app *app, struct outmsg *msgs, int n);
int fa_kafka_start(struct app *app);
void fa_kafka_drain(struct app *app);
void fa_kafka_stop(struct app *app);

/* ---- Request bodies (input.c) ---- */

cJSON *fa_parse_body(const struct fakehttp_request *req,
                     struct fakehttp_response *resp);
void fa_token_input_parse(const cJSON *body, bool need_identifier,
                          struct token_input *in, cJSON *errs);
int fa_token_input_validate(const struct token_input *in, const char *intent,
                            int64_t now, cJSON *errs);
int fa_token_apply(struct token *t, const struct token_input *in, int64_t now);

/* ---- The token API (tokens.c) ---- */

bool fa_ci_contains(const char *hay, const char *needle);
void fa_reply_errors(struct fakehttp_response *resp, cJSON *errs);
void fa_finish_publish(struct app *app, struct fakehttp_response *resp,
                       bool found, struct outmsg *msgs, int n, int status,
                       cJSON *body);
void fa_tokens_create(struct app *app, const struct reqctx *rc,
                      struct fakehttp_response *resp);
void fa_tokens_update(struct app *app, const struct reqctx *rc,
                      const char *ident, bool partial,
                      struct fakehttp_response *resp);
void fa_tokens_delete(struct app *app, const struct reqctx *rc,
                      const char *ident, struct fakehttp_response *resp);
void fa_tokens_detail(struct app *app, const char *ident,
                      struct fakehttp_response *resp);
void fa_tokens_view_key(struct app *app, const struct reqctx *rc,
                        const char *ident, struct fakehttp_response *resp);
void fa_tokens_set_key(struct app *app, const struct reqctx *rc,
                       const char *ident, struct fakehttp_response *resp);
void fa_tokens_list(struct app *app, const struct fakehttp_request *req,
                    struct fakehttp_response *resp);

/* ---- Routing and the fakehttp handler (route.c) ---- */

enum route fa_route_api(const char *path, char *ident, size_t identsz);
void fa_handle(void *opaque, const struct fakehttp_request *req,
               struct fakehttp_response *resp);

/* ---- /_fake/ (control.c) ---- */

void fa_handle_fake(struct app *app, const struct fakehttp_request *req,
                    struct fakehttp_response *resp);

/* ---- fake-authentik's part of the fault plan (faults.c) ---- */

/** The fault plan's spec: fake-authentik's keys, scopes and statuses. */
extern const struct fakefault_spec fa_fault_spec;

#endif /* AKV_TESTS_FAKE_AUTHENTIK_FA_H */
