/*
 * fv.h — what the parts of fake-vault share: its constants, its state (the
 * configuration, KV secrets, tokens, counters, the fault plan's part of
 * fake-vault), the request on its way through the handlers, and the
 * functions one part offers the others. Private to tests/fakes/vault/.
 */
#ifndef AKV_TESTS_FAKE_VAULT_FV_H
#define AKV_TESTS_FAKE_VAULT_FV_H

#include "fakefault.h"
#include "fakehtab.h"
#include "fakehttp.h"

#include "buf.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- constants ---- */

#define EXIT_USAGE 64

/* Vault's KV v2 keeps this many versions when neither mount nor key says. */
#define DEFAULT_MAX_VERSIONS 10u

/* How many /v1 requests /_fake/requests remembers. */
#define REQLOG_CAP 100000u

#define VAULT_VERSION "1.21.4"

/* What the framework puts before a field's error when it validates the
 * fields of a path without an existence check. */
#define MSG_FIELD_VALIDATION "Field validation failed: "

/* The multierror text Vault produces for a token it does not know. */
#define MSG_INVALID_TOKEN                                                      \
    "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
#define MSG_UNSUPPORTED_OP   "1 error occurred:\n\t* unsupported operation\n\n"
#define MSG_UNSUPPORTED_PATH "1 error occurred:\n\t* unsupported path\n\n"

/* Every response is assembled in an akv_buf (common/buf) with no bound of
 * its own. An allocation failure is kept in the buffer's err rather than
 * reported at each call, so builders stay linear and check once. */
#define TEXT_MAX  (SIZE_MAX / 2)
#define TEXT_INIT AKV_BUF_INIT(TEXT_MAX)

/* Dates are nanoseconds since the epoch on the wall clock (akv_wall_ns()),
 * as Vault keeps them; 0 is Go's zero time, "unset". */
#define NS_PER_SEC INT64_C(1000000000)

/* A UUID in its 8-4-4-4-12 form, as Vault's IDs and accessors are. */
#define UUID_LEN 36

/* ---- state ---- */

/* --k8s-role ROLE=JWTFILE and the identity its logins get. */
struct k8s_role {
    char *name;
    char *jwt_file;
    char sa_uid[UUID_LEN + 1];
    char entity_id[UUID_LEN + 1];
};

/* --approle ROLE_ID=SECRET_ID and the identity its logins get. */
struct approle {
    char *role_id;
    char *secret_id;
    char entity_id[UUID_LEN + 1];
};

/* The command line. */
struct config {
    const char *listen;
    const char *root_token;
    char *kv_mount;
    char *k8s_mount;
    int cas_required;
    uint32_t max_versions;
    struct k8s_role *k8s;
    size_t nk8s;
    struct approle *approles;
    size_t napproles;
    int64_t token_ttl;
    int64_t token_max_ttl;
    long latency_ms;
    const char *faults_json;   /* --faults */
    const char *tls_cert;      /* --tls-cert: HTTPS when set */
    const char *tls_key;       /* --tls-key */
    const char *tls_client_ca; /* --tls-client-ca: client certs required */
    int allow_remote_control;
    int verbose;
};

/* One version of a secret. */
struct kv_version {
    char *data; /* the data map, already in Vault's JSON encoding */
    int64_t created;
    int64_t deleted; /* deletion_time; unset when zero */
    int destroyed;
    char *created_by; /* Attribution JSON (fv_attribution()), or NULL */
    char *deleted_by;
};

/* A KV v2 key: its versions and metadata. */
struct kv_secret {
    struct fakehtab_node node; /* key: the path under data/ */
    uint64_t current;          /* current_version */
    uint64_t oldest;           /* oldest_version, as Vault reports it */
    uint64_t first;            /* version number of vers[0] */
    struct kv_version *vers;
    size_t nvers;
    size_t capvers;
    uint32_t max_versions; /* key-level; 0 defers to the mount */
    int cas_required;
    int64_t delete_after;  /* key-level delete_version_after, seconds */
    char *custom;          /* custom_metadata as JSON; NULL when empty */
    char *last_updated_by; /* Attribution JSON of the last data change */
    int64_t created;
    int64_t updated;
};

enum tok_kind { TOK_ROOT, TOK_K8S, TOK_APPROLE };

/* A token fake-vault knows (the root token and the logins' tokens). */
struct token {
    struct fakehtab_node node; /* key: the token itself */
    enum tok_kind kind;
    size_t role; /* index into cfg.k8s or cfg.approles */
    char accessor[UUID_LEN + 1];
    int64_t issued;
    int64_t expires; /* unset for the root token */
    int64_t renewed; /* unset until the first renewal */
    int64_t creation_ttl;
    int64_t max_ttl; /* fixed at login: a later fault plan must not move it */
};

/* One /v1 request in the log /_fake/requests reads. */
struct reqlog_entry {
    char method[8];
    int status;
    char *path;
};

/* What "write_answer" makes a KV write answer 200 with, unperformed. */
enum write_answer {
    WA_NONE,
    WA_NULL_DATA,  /* {"data":null,...}: an envelope without a version */
    WA_NO_VERSION, /* data without "version" */
    WA_HTML,       /* a proxy's page */
    WA_GARBAGE,    /* bytes that are not JSON */
    WA_EMPTY,      /* no body at all */
};

/* What they set: the fake-vault part of a plan (fakefault_plan.ext). */
struct vault_faults {
    long sealed_for_ms;
    int64_t sealed_until_ms; /* on akv_mono_ms()'s clock */
    char **deny;             /* path prefixes below /v1/ */
    size_t ndeny;
    int64_t token_ttl; /* 0: --token-ttl applies */
    int64_t token_max_ttl;
    int mount_missing;
    enum write_answer write_answer;
    int echo_status; /* 0: off */
};

/* The fault counters of /_fake/stats. */
struct fault_stats {
    struct fakefault_counts common;
    atomic_ullong sealed;
    atomic_ullong denied_prefix;
    atomic_ullong mount_missing;
    atomic_ullong write_faults; /* write_answer and echo_status */
};

/* The counters of /_fake/stats. */
struct stats {
    atomic_ullong requests;
    atomic_ullong kv_writes;
    atomic_ullong kv_write_requests;
    atomic_ullong kv_reads;
    atomic_ullong metadata_reads;
    atomic_ullong logins;
    atomic_ullong login_failures;
    atomic_ullong renewals;
    atomic_ullong denied;
    atomic_ullong cas_mismatch;
    struct fault_stats faults;
};

/* Everything fake-vault keeps; one, for the whole process. */
struct fake_vault {
    struct config cfg;

    pthread_mutex_t kv_lock; /* secrets and everything they own */
    struct fakehtab secrets;

    pthread_mutex_t tok_lock;
    struct fakehtab tokens;

    pthread_mutex_t log_lock;
    struct reqlog_entry *rlog; /* ring of REQLOG_CAP */
    size_t rlog_head;          /* next slot to write */
    size_t rlog_count;

    struct fakefault_slot faults; /* the fault plan */

    struct stats st;
    char cluster_id[UUID_LEN + 1];
    char cluster_name[32]; /* "vault-cluster-" and 8 hex digits */
};

/* Vault's logical operations, which the HTTP methods map to. */
enum op { OP_READ, OP_WRITE, OP_DELETE, OP_LIST, OP_PATCH, OP_OPTIONS };

/* One /v1 request on its way through the handlers. */
struct rq {
    struct fake_vault *fv;
    const struct fakehttp_request *http;
    struct fakehttp_response *resp;
    enum op op;
    char *vpath;       /* path below /v1/; LIST gets a trailing '/' */
    cJSON *body;       /* parsed body of writes; NULL when empty or null */
    cJSON *query;      /* query parameters of reads, lists and deletes */
    const char *token; /* the presented token, once authenticated */
    struct token tok;  /* snapshot of its entry */
    struct fakefault_plan *fc; /* the fault plan it runs under, or NULL */
    enum fakefault_post post;  /* what to do to the answer afterwards */
    int injected;              /* the answer is a fault, not Vault's */
};

#define STAT_INC(fv, field) atomic_fetch_add(&(fv)->st.field, 1)

/* An object's member and its place among the members, for sorting them by
 * key as Go sorts map keys (fv_sorted_members()). */
struct fv_member {
    const cJSON *item;
    size_t idx;
};

/*
 * What each part offers the others, documented where it is defined.
 */

/* ---- Go's text encodings (gotext.c) ---- */

const char *fv_text(const struct akv_buf *b);
int fv_printable(const char *s);
void fv_json_str(struct akv_buf *b, const char *s);
void fv_go_quote(struct akv_buf *b, const char *s);
void fv_url_escape(struct akv_buf *b, const char *s);
void fv_go_float(struct akv_buf *b, double f);
size_t fv_sorted_members(const cJSON *obj, struct fv_member **out);
void fv_go_json(struct akv_buf *b, const cJSON *v);
void fv_go_value(struct akv_buf *b, const cJSON *v);
const char *fv_go_kind(const cJSON *v);
int64_t fv_ns_after(int64_t t, int64_t secs);
void fv_time(struct akv_buf *b, int64_t t);
void fv_fmt_duration(char *out, size_t size, int64_t secs);
void fv_human_duration(char *out, size_t size, int64_t secs);

/* ---- Vault's envelope, errors and field decoding (framework.c) ---- */

void fv_reply_buf(struct fakehttp_response *resp, int status,
                  struct akv_buf *b);
void fv_reply_error(struct fakehttp_response *resp, int status,
                    const char *msg);
void fv_reply_no_content(struct fakehttp_response *resp);
void fv_env_begin_with(struct akv_buf *b, const struct akv_buf *top);
void fv_env_begin(struct akv_buf *b);
void fv_env_end(struct akv_buf *b, const char *const *warnings,
                size_t nwarnings, const char *auth, const char *mount_type,
                int newline);
int fv_ignored_params(const cJSON *body, const char *const *known,
                      struct akv_buf *out);
const cJSON *fv_obj_get(const cJSON *obj, const char *name);
void fv_field_error_prefix(struct akv_buf *err, const char *name);
void fv_unconvertible(struct akv_buf *err, const char *path, const char *type,
                      const cJSON *v);
int fv_field_map(cJSON *body, const char *name, const cJSON **out,
                 struct akv_buf *err);
int fv_field_comma_slice(const cJSON *body, const char *name, int ints,
                         cJSON **out, struct akv_buf *err);
int fv_parse_go_int(const char *s, int64_t *out);
int fv_weak_int(const cJSON *v, const char *name, int64_t *out,
                struct akv_buf *err);
int fv_parse_go_bool(const char *s, int *out);
int fv_weak_bool(const cJSON *v, const char *name, int *out,
                 struct akv_buf *err);
int fv_weak_scalar(struct akv_buf *out, const cJSON *v);
void fv_trim_space(char *s);
char *fv_weak_string(const cJSON *v, struct akv_buf *err);
char *fv_field_string(const cJSON *body, const char *name, struct akv_buf *err,
                      int *failed);
int fv_field_duration(const cJSON *body, const char *name, int64_t *out,
                      struct akv_buf *err);

/* ---- Request bodies (body.c) ---- */

int fv_body_parse(const char *body, size_t n, int decode, int patch,
                  cJSON **out, struct akv_buf *err);

/* ---- Tokens and the auth endpoints (auth.c) ---- */

void fv_uuid(char out[UUID_LEN + 1]);
struct token *fv_token_new(const char *id, enum tok_kind kind, size_t role);
void fv_token_release(struct fakehtab_node *n);
void fv_k8s_login(struct rq *rq);
void fv_approle_login(struct rq *rq);
void fv_lookup_self(struct rq *rq);
char *fv_attribution(const struct rq *rq, const char *operation);
void fv_renew_self(struct rq *rq);
int fv_authenticate(struct rq *rq);

/* ---- The KV v2 engine (kv.c) ---- */

void fv_secret_release(struct fakehtab_node *n);
void fv_kv_route(struct rq *rq, const char *rest);
const char *fv_kv_rest(const struct fake_vault *fv, const char *vpath);

/* ---- sys/health and sys/capabilities-self (sys.c) ---- */

void fv_sys_health(struct rq *rq, int sealed);
void fv_capabilities_self(struct rq *rq);

/* ---- fake-vault's part of the fault plan (faults.c) ---- */

const struct vault_faults *fv_vfaults(const struct fakefault_plan *fp);
int fv_deny_prefix_match(const struct fakefault_plan *fc, const char *vpath);
int fv_fault_deny(struct rq *rq, const char *vpath);

/** The fault plan's spec: fake-vault's keys, scopes and statuses. */
extern const struct fakefault_spec fv_fault_spec;

/* ---- The request log and /_fake/ (control.c) ---- */

void fv_log_request(struct fake_vault *fv, const struct fakehttp_request *req,
                    int status);
void fv_handle_control(struct fake_vault *fv,
                       const struct fakehttp_request *req,
                       struct fakehttp_response *resp);

/* ---- Routing and the fakehttp handler (route.c) ---- */

int fv_path_relative(const char *p);
int fv_starts_with_dir(const char *p, const char *dir);
void fv_handle(void *opaque, const struct fakehttp_request *req,
               struct fakehttp_response *resp);

#endif /* AKV_TESTS_FAKE_VAULT_FV_H */
