/*
 * test_sync — check-and-set convergence, the per-token cache and the Vault
 * token lifetime decisions.
 */
#include "testutil.h"

#include "cache.h"
#include "json.h"
#include "sync.h"
#include "vault.h"

/* A scripted Vault: what each read returns, what each write answers. */
struct script {
    int nreads;
    int nwrites;
    long long versions[8];    /* version returned by read i */
    const char *data[8];      /* data returned by read i (NULL: absent) */
    enum akv_class writes[8]; /* answer to write i */
    long long cas_seen[8];    /* cas sent by write i */
};

static enum akv_class script_read(void *ctx, const char *identifier,
                                  struct akv_vault_secret *out, char *errstr,
                                  size_t errstr_size)
{
    struct script *s = ctx;
    int i = s->nreads++;

    (void)identifier;
    (void)errstr;
    (void)errstr_size;
    out->version = s->versions[i];
    out->data = s->data[i] ? cJSON_Parse(s->data[i]) : NULL;
    return AKV_CLASS_OK;
}

static enum akv_class script_write(void *ctx, const char *identifier,
                                   const cJSON *data, long long cas,
                                   long long *version, char *errstr,
                                   size_t errstr_size)
{
    struct script *s = ctx;
    int i = s->nwrites++;

    (void)identifier;
    (void)data;
    snprintf(errstr, errstr_size, "scripted");
    s->cas_seen[i] = cas;
    *version = cas + 1;
    return s->writes[i];
}

/*
 * The engine's check-and-set loop, driven synchronously: read, then
 * akv_cas_after_read(), write, then akv_cas_after_write(), exactly as
 * engine.c chains its Vault states.
 */
static enum akv_class converge(struct script *sc, const cJSON *d, long long max,
                               struct akv_sync_outcome *out, char *errstr,
                               size_t errstr_size)
{
    struct akv_cas cas = {0, max};
    enum akv_class fail = AKV_CLASS_TRANSIENT;

    for (;;) {
        struct akv_vault_secret cur;
        long long version = 0;
        enum akv_class cls = script_read(sc, "t", &cur, errstr, errstr_size);
        int same;

        if (cls != AKV_CLASS_OK) {
            return cls;
        }
        same = cur.data && cJSON_Compare(cur.data, d, 1);
        out->version = cur.version;
        akv_vault_secret_free(&cur);
        if (akv_cas_after_read(same) == AKV_CAS_UNCHANGED) {
            out->result = AKV_SYNC_UNCHANGED;
            return AKV_CLASS_OK;
        }
        cls = script_write(sc, "t", d, out->version, &version, errstr,
                           errstr_size);
        switch (akv_cas_after_write(&cas, cls, &fail)) {
        case AKV_CAS_WRITTEN:
            out->result = AKV_SYNC_WRITTEN;
            out->version = version;
            return AKV_CLASS_OK;
        case AKV_CAS_READ:
            continue;
        default:
            if (cls == AKV_CLASS_SUPERSEDED) {
                snprintf(errstr, errstr_size, "lost %lld times", max);
            }
            return fail;
        }
    }
}

static cJSON *doc(void)
{
    return cJSON_Parse("{\"key\":\"k2\",\"intent\":\"api\"}");
}

static void absent_path_is_created_with_cas_zero(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();

    (void)state;
    s.writes[0] = AKV_CLASS_OK;
    assert_int_equal(converge(&s, d, 5, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(out.result, AKV_SYNC_WRITTEN);
    assert_int_equal(s.cas_seen[0], 0);
    assert_int_equal(out.version, 1);
    cJSON_Delete(d);
}

static void same_document_writes_nothing(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();

    (void)state;
    s.versions[0] = 4;
    s.data[0] = "{\"intent\":\"api\",\"key\":\"k2\"}"; /* any key order */
    assert_int_equal(converge(&s, d, 5, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(out.result, AKV_SYNC_UNCHANGED);
    assert_int_equal(out.version, 4);
    assert_int_equal(s.nwrites, 0);
    cJSON_Delete(d);
}

static void cas_mismatch_rereads_and_converges(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();

    (void)state;
    /* Read v3 (old key); another writer wins with v4 (old key again);
     * read v4, write with cas 4: done. */
    s.versions[0] = 3;
    s.data[0] = "{\"key\":\"k1\",\"intent\":\"api\"}";
    s.writes[0] = AKV_CLASS_SUPERSEDED;
    s.versions[1] = 4;
    s.data[1] = "{\"key\":\"k0\",\"intent\":\"api\"}";
    s.writes[1] = AKV_CLASS_OK;
    assert_int_equal(converge(&s, d, 5, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(out.result, AKV_SYNC_WRITTEN);
    assert_int_equal(s.cas_seen[0], 3);
    assert_int_equal(s.cas_seen[1], 4);
    assert_int_equal(out.version, 5);
    cJSON_Delete(d);
}

static void lost_answer_is_recognised_on_reread(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();

    (void)state;
    /* Our write landed but the answer looked like a lost race (a retried
     * request meeting its own first copy): the re-read finds our document,
     * so no second version is written. */
    s.versions[0] = 3;
    s.data[0] = "{\"key\":\"k1\",\"intent\":\"api\"}";
    s.writes[0] = AKV_CLASS_SUPERSEDED;
    s.versions[1] = 4;
    s.data[1] = "{\"key\":\"k2\",\"intent\":\"api\"}";
    assert_int_equal(converge(&s, d, 5, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(out.result, AKV_SYNC_UNCHANGED);
    assert_int_equal(out.version, 4);
    assert_int_equal(s.nwrites, 1);
    cJSON_Delete(d);
}

static void endless_race_gives_up_transiently(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        s.versions[i] = 10 + i;
        s.data[i] = "{\"key\":\"other\",\"intent\":\"api\"}";
        s.writes[i] = AKV_CLASS_SUPERSEDED;
    }
    assert_int_equal(converge(&s, d, 3, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(s.nwrites, 3);
    assert_non_null(strstr(errstr, "lost 3 times"));
    cJSON_Delete(d);
}

static void write_failure_class_is_passed_on(void **state)
{
    struct script s = {0};
    struct akv_sync_outcome out = {0};
    char errstr[128];
    cJSON *d = doc();

    (void)state;
    s.writes[0] = AKV_CLASS_CONFIG;
    assert_int_equal(converge(&s, d, 5, &out, errstr, sizeof(errstr)),
                     AKV_CLASS_CONFIG);
    assert_int_equal(s.nwrites, 1);
    cJSON_Delete(d);
}

static void cache_remembers_and_forgets(void **state)
{
    struct akv_cache *c = akv_cache_new(3, 60000);
    uint64_t h1;
    uint64_t h2;
    long long v = 0;

    (void)state;
    assert_non_null(c);
    h1 = akv_cache_hash(c, "doc-1", 5);
    h2 = akv_cache_hash(c, "doc-2", 5);
    assert_true(h1 != h2);
    assert_false(akv_cache_lookup(c, "a", h1, 1000, &v));
    akv_cache_store(c, "a", h1, 7, 1000);
    assert_true(akv_cache_lookup(c, "a", h1, 1000, &v));
    assert_int_equal(v, 7);
    assert_false(akv_cache_lookup(c, "a", h2, 1000, &v)); /* changed doc */
    akv_cache_store(c, "a", h2, 8, 1000);
    assert_true(akv_cache_lookup(c, "a", h2, 1000, &v));
    assert_int_equal(akv_cache_count(c), 1);
    akv_cache_forget(c, "a");
    assert_false(akv_cache_lookup(c, "a", h2, 1000, &v));
    /* bounded: the fourth token starts the table over */
    akv_cache_store(c, "a", h1, 1, 1000);
    akv_cache_store(c, "b", h1, 1, 1000);
    akv_cache_store(c, "c", h1, 1, 1000);
    assert_int_equal(akv_cache_count(c), 3);
    akv_cache_store(c, "d", h1, 1, 1000);
    assert_int_equal(akv_cache_count(c), 1);
    assert_true(akv_cache_lookup(c, "d", h1, 1000, &v));
    akv_cache_destroy(c);

    c = akv_cache_new(0, 60000); /* disabled */
    akv_cache_store(c, "a", h1, 1, 1000);
    assert_false(akv_cache_lookup(c, "a", h1, 1000, &v));
    akv_cache_destroy(c);
    c = akv_cache_new(10, 0); /* disabled by age */
    akv_cache_store(c, "a", h1, 1, 1000);
    assert_false(akv_cache_has(c, "a", 1000));
    akv_cache_destroy(c);
}

/* An entry vouches for Vault only for max_age: writers outside the group
 * are noticed within it. */
static void cache_entry_expires_at_max_age(void **state)
{
    struct akv_cache *c = akv_cache_new(10, 5000);
    uint64_t h = akv_cache_hash(c, "doc", 3);
    long long v = 0;

    (void)state;
    akv_cache_store(c, "a", h, 3, 10000);
    assert_true(akv_cache_has(c, "a", 14999));
    assert_true(akv_cache_lookup(c, "a", h, 14999, &v));
    assert_int_equal(v, 3);
    assert_false(akv_cache_has(c, "a", 15000));
    assert_false(akv_cache_lookup(c, "a", h, 15000, &v));
    /* a clock that went back does not make an entry young forever */
    assert_false(akv_cache_lookup(c, "a", h, 9999, &v));
    /* storing again renews it */
    akv_cache_store(c, "a", h, 4, 15000);
    assert_true(akv_cache_lookup(c, "a", h, 19000, &v));
    assert_int_equal(v, 4);
    akv_cache_destroy(c);
}

/* An assignment change clears every entry: whoever owned a partition
 * before or after this worker may have written its tokens. */
static void cache_clear_forgets_every_token(void **state)
{
    struct akv_cache *c = akv_cache_new(10, 60000);
    uint64_t h = akv_cache_hash(c, "doc", 3);
    long long v = 0;

    (void)state;
    akv_cache_store(c, "a", h, 1, 0);
    akv_cache_store(c, "b", h, 2, 0);
    akv_cache_clear(c);
    assert_int_equal(akv_cache_count(c), 0);
    assert_false(akv_cache_lookup(c, "a", h, 1, &v));
    assert_false(akv_cache_has(c, "b", 1));
    akv_cache_store(c, "a", h, 5, 2);
    assert_true(akv_cache_lookup(c, "a", h, 3, &v));
    akv_cache_destroy(c);
}

static void lease_decisions(void **state)
{
    struct akv_vault_lease l;

    (void)state;
    /* a root-like token never expires */
    l.obtained_ms = 0;
    l.ttl_s = 0;
    l.first_ttl_s = 0;
    l.renewable = 0;
    assert_int_equal(akv_vault_lease_due(&l, 1000000000, 1), AKV_LEASE_OK);

    /* 60 s renewable token: fine before 40 s, renew after */
    l.ttl_s = 60;
    l.first_ttl_s = 60;
    l.renewable = 1;
    assert_int_equal(akv_vault_lease_due(&l, 39000, 1), AKV_LEASE_OK);
    assert_int_equal(akv_vault_lease_due(&l, 40000, 1), AKV_LEASE_RENEW);
    assert_int_equal(akv_vault_lease_due(&l, 40000, 0), AKV_LEASE_RENEW);

    /* renewals capped by max TTL shrank it below a third: log in */
    l.ttl_s = 15;
    assert_int_equal(akv_vault_lease_due(&l, 10000, 1), AKV_LEASE_LOGIN);
    /* ... unless the method cannot log in */
    assert_int_equal(akv_vault_lease_due(&l, 10000, 0), AKV_LEASE_RENEW);

    /* not renewable: log in at two thirds, or live with it */
    l.ttl_s = 60;
    l.renewable = 0;
    assert_int_equal(akv_vault_lease_due(&l, 40000, 1), AKV_LEASE_LOGIN);
    assert_int_equal(akv_vault_lease_due(&l, 40000, 0), AKV_LEASE_OK);
}

static void auth_block_is_parsed(void **state)
{
    static const char login[] =
        "{\"request_id\":\"r\",\"lease_id\":\"\",\"renewable\":false,"
        "\"lease_duration\":0,\"data\":null,\"wrap_info\":null,"
        "\"warnings\":null,\"auth\":{\"client_token\":\"hvs.abcdef\","
        "\"accessor\":\"a\",\"policies\":[\"default\"],\"metadata\":{},"
        "\"lease_duration\":2764800,\"renewable\":true,\"entity_id\":\"e\","
        "\"token_type\":\"service\",\"orphan\":true,\"mfa_requirement\":null,"
        "\"num_uses\":0},\"mount_type\":\"kubernetes\"}";
    char *token = NULL;
    long long ttl = 0;
    int renewable = 0;

    (void)state;
    assert_int_equal(akv_vault_parse_auth(login, sizeof(login) - 1, &token,
                                          &ttl, &renewable),
                     0);
    assert_string_equal(token, "hvs.abcdef");
    assert_int_equal(ttl, 2764800);
    assert_int_equal(renewable, 1);
    free(token);
    assert_int_equal(
        akv_vault_parse_auth("{\"auth\":null}", 13, &token, &ttl, &renewable),
        -1);
    assert_null(token);
    assert_int_equal(
        akv_vault_parse_auth("{\"errors\":[\"permission denied\"]}", 32, &token,
                             &ttl, &renewable),
        -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(absent_path_is_created_with_cas_zero),
        cmocka_unit_test(same_document_writes_nothing),
        cmocka_unit_test(cas_mismatch_rereads_and_converges),
        cmocka_unit_test(lost_answer_is_recognised_on_reread),
        cmocka_unit_test(endless_race_gives_up_transiently),
        cmocka_unit_test(write_failure_class_is_passed_on),
        cmocka_unit_test(cache_remembers_and_forgets),
        cmocka_unit_test(cache_entry_expires_at_max_age),
        cmocka_unit_test(cache_clear_forgets_every_token),
        cmocka_unit_test(lease_decisions),
        cmocka_unit_test(auth_block_is_parsed),
    };

    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
