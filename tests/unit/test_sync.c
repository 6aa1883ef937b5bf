/*
 * test_sync — the sync state machine (core/syncstep.c) the engine runs,
 * driven here by a table of answers and by a scripted Vault; the
 * per-token cache and the Vault token lifetime decisions.
 */
#include "testutil.h"

#include "cache.h"
#include "json.h"
#include "syncstep.h"
#include "vault.h"

/* --- one transition at a time ----------------------------------------- */

/* clang-format off */
#define F_READS AKV_STEP_FORGET_READS
#define F_FORGET AKV_STEP_FORGET_CACHE
#define F_REMEMBER AKV_STEP_REMEMBER
#define F_CACHED AKV_STEP_CACHED
#define F_SUPERSEDED AKV_STEP_SUPERSEDED
#define F_EXHAUSTED AKV_STEP_CAS_EXHAUSTED
#define F_AGAIN AKV_STEP_CREATED_AGAIN
#define F_GONE AKV_STEP_REMEMBER_GONE

#define B_VAULT AKV_BEGIN_VAULT
#define B_CACHE AKV_BEGIN_CACHE
#define B_CHECK AKV_BEGIN_CHECK

#define REQ(r, f) {AKV_DO_REQUEST, AKV_REQ_##r, AKV_SYNC_WRITTEN, AKV_CLASS_OK, f}
#define LOGIN(r) {AKV_DO_LOGIN, AKV_REQ_##r, AKV_SYNC_WRITTEN, AKV_CLASS_OK, 0}
#define DONE(res, f) {AKV_DO_FINISH, AKV_REQ_NONE, AKV_SYNC_##res, AKV_CLASS_OK, f}
#define FAIL(c, f) {AKV_DO_FAIL, AKV_REQ_NONE, AKV_SYNC_WRITTEN, AKV_CLASS_##c, f}

/* answers: class, version, filtered, cached, same, vault_empty */
#define OK(v) {AKV_CLASS_OK, v, 0, 0, 0, 0}
#define SAME {AKV_CLASS_OK, 0, 0, 0, 1, 0}
#define CACHED(v) {AKV_CLASS_OK, v, 0, 1, 0, 0}
#define FILTERED {AKV_CLASS_OK, 0, 1, 0, 0, 0}
#define ANS(c) {AKV_CLASS_##c, 0, 0, 0, 0, 0}
#define GONE_EMPTY {AKV_CLASS_GONE, 0, 0, 0, 0, 1}
/* clang-format on */

struct row {
    const char *name;
    enum akv_sync_begin begin;
    enum akv_on_delete on_delete;
    int can_login;
    long long cas_max;
    size_t n;                 /* answers; steps has n + 1 entries */
    struct akv_answer ans[8]; /* answer i to the request of step i */
    struct akv_step steps[9]; /* step 0 is akv_sync_start()'s */
    long long version;        /* the version the machine ends with */
    int dry_run;
};

/* clang-format off */
static const struct row rows[] = {
    {"new token: Vault, authentik, write, provenance",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(0), OK(0), OK(1), OK(0)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      REQ(METADATA, F_REMEMBER), DONE(WRITTEN, 0)},
     1, 0},
    {"Vault holds the document: nothing written",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(4), SAME},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), DONE(UNCHANGED, F_REMEMBER)},
     4, 0},
    {"the cache vouches: authentik only",
     B_CACHE, AKV_ON_DELETE_SOFT, 1, 5, 1,
     {CACHED(7)},
     {REQ(AUTHENTIK, 0), DONE(UNCHANGED, F_CACHED)},
     7, 0},
    {"cache knows the token, document changed: Vault, then authentik",
     B_CACHE, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(0), OK(7), OK(0), OK(8)},
     {REQ(AUTHENTIK, 0), REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      REQ(VAULT_WRITE, 0), REQ(METADATA, F_REMEMBER)},
     8, 0},
    {"the same with a cache hit after a Vault read is not trusted",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(3), CACHED(3)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0)},
     3, 0},
    {"before a Vault read, no answer vouches for Vault but the cache",
     B_CACHE, AKV_ON_DELETE_SOFT, 1, 5, 1,
     {SAME},
     {REQ(AUTHENTIK, 0), REQ(VAULT_READ, F_READS)},
     0, 0},
    {"filtered intent finishes without writing",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(2), FILTERED},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), DONE(FILTERED, 0)},
     2, 0},
    {"a lost check-and-set reads again",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 5,
     {OK(3), OK(0), ANS(SUPERSEDED), OK(4), SAME},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      REQ(VAULT_READ, F_READS | F_FORGET | F_SUPERSEDED), REQ(AUTHENTIK, 0),
      DONE(UNCHANGED, F_REMEMBER)},
     4, 0},
    {"check-and-set lost cas_max times gives up transiently",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 2, 6,
     {OK(3), OK(0), ANS(SUPERSEDED), OK(4), OK(0), ANS(SUPERSEDED)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      REQ(VAULT_READ, F_READS | F_FORGET | F_SUPERSEDED), REQ(AUTHENTIK, 0),
      REQ(VAULT_WRITE, 0), FAIL(TRANSIENT, F_SUPERSEDED | F_EXHAUSTED)},
     4, 0},
    {"invalid token: log in once and repeat the read",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {ANS(REAUTH), ANS(REAUTH)},
     {REQ(VAULT_READ, F_READS), LOGIN(VAULT_READ), FAIL(REAUTH, 0)},
     0, 0},
    {"invalid token on a write: log in, write again",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(2), OK(0), ANS(REAUTH), OK(3)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      LOGIN(VAULT_WRITE), REQ(METADATA, F_REMEMBER)},
     3, 0},
    {"invalid token and no way to log in",
     B_VAULT, AKV_ON_DELETE_SOFT, 0, 5, 1,
     {ANS(REAUTH)},
     {REQ(VAULT_READ, F_READS), FAIL(REAUTH, 0)},
     0, 0},
    {"a write's failure class is passed on",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 3,
     {OK(1), OK(0), ANS(CONFIG)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      FAIL(CONFIG, 0)},
     1, 0},
    {"authentik fails transiently",
     B_CACHE, AKV_ON_DELETE_SOFT, 1, 5, 1,
     {ANS(TRANSIENT)},
     {REQ(AUTHENTIK, 0), FAIL(TRANSIENT, 0)},
     0, 0},
    {"a failed provenance write still finishes written",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(0), OK(0), OK(1), ANS(TRANSIENT)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0),
      REQ(METADATA, F_REMEMBER), DONE(WRITTEN, 0)},
     1, 0},
    {"gone, on_delete keep",
     B_CACHE, AKV_ON_DELETE_KEEP, 1, 5, 1,
     {ANS(GONE)},
     {REQ(AUTHENTIK, 0), DONE(GONE, F_READS | F_FORGET)},
     0, 0},
    {"gone, on_delete delete: delete, then authentik confirms",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(5), ANS(GONE), OK(0), ANS(GONE)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      REQ(DELETE, F_READS | F_FORGET), REQ(AUTHENTIK, 0), DONE(DELETED, 0)},
     0, 0},
    {"gone, on_delete purge",
     B_CACHE, AKV_ON_DELETE_PURGE, 1, 5, 3,
     {ANS(GONE), OK(0), ANS(GONE)},
     {REQ(AUTHENTIK, 0), REQ(PURGE, F_READS | F_FORGET), REQ(AUTHENTIK, 0),
      DONE(DELETED, 0)},
     0, 0},
    {"created again while being deleted: synced anew",
     B_CACHE, AKV_ON_DELETE_SOFT, 1, 5, 6,
     {ANS(GONE), OK(0), OK(0), OK(6), OK(0), OK(7)},
     {REQ(AUTHENTIK, 0), REQ(DELETE, F_READS | F_FORGET), REQ(AUTHENTIK, 0),
      REQ(VAULT_READ, F_READS | F_AGAIN), REQ(AUTHENTIK, 0),
      REQ(VAULT_WRITE, 0), REQ(METADATA, F_REMEMBER)},
     7, 0},
    {"invalid token on a purge: log in, purge again",
     B_CACHE, AKV_ON_DELETE_PURGE, 1, 5, 3,
     {ANS(GONE), ANS(REAUTH), ANS(CONFIG)},
     {REQ(AUTHENTIK, 0), REQ(PURGE, F_READS | F_FORGET), LOGIN(PURGE),
      FAIL(CONFIG, 0)},
     0, 0},
    {"dry run: what would be written is not",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(3), OK(0)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), DONE(DRY_RUN, 0)},
     3, 1},
    {"dry run: in sync is in sync",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(3), SAME},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0), DONE(UNCHANGED, F_REMEMBER)},
     3, 1},
    {"dry run: a gone token's secret is not deleted",
     B_VAULT, AKV_ON_DELETE_PURGE, 1, 5, 2,
     {OK(3), ANS(GONE)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(DRY_RUN, F_READS | F_FORGET)},
     3, 1},
    {"dry run: on_delete keep leaves nothing to do",
     B_CACHE, AKV_ON_DELETE_KEEP, 1, 5, 1,
     {ANS(GONE)},
     {REQ(AUTHENTIK, 0), DONE(GONE, F_READS | F_FORGET)},
     0, 1},
    {"dry run: soft delete of a secret with no live version is no change",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(4), GONE_EMPTY},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(GONE, F_READS | F_GONE)},
     4, 1},
    {"dry run: a purge of deleted versions is still due",
     B_VAULT, AKV_ON_DELETE_PURGE, 1, 5, 2,
     {OK(4), GONE_EMPTY},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(DRY_RUN, F_READS | F_FORGET)},
     4, 1},
    {"dry run: nothing to purge where Vault never had the path",
     B_VAULT, AKV_ON_DELETE_PURGE, 1, 5, 2,
     {OK(0), GONE_EMPTY},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(GONE, F_READS | F_GONE)},
     0, 1},
    {"a secret with no live version is not deleted again",
     B_VAULT, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {OK(4), GONE_EMPTY},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(GONE, F_READS | F_GONE)},
     4, 0},
    {"gone after a Vault read, on_delete keep: the kept secret remembered",
     B_VAULT, AKV_ON_DELETE_KEEP, 1, 5, 2,
     {OK(3), ANS(GONE)},
     {REQ(VAULT_READ, F_READS), REQ(AUTHENTIK, 0),
      DONE(GONE, F_READS | F_GONE)},
     3, 0},
    {"reconcile: remembered gone, version unmoved, still gone: no data read",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {CACHED(4), GONE_EMPTY},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0),
      DONE(GONE, F_READS | F_GONE)},
     4, 0},
    {"reconcile: the version remembered is current and live, authentik "
     "the same: no data read, no write",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {CACHED(7), SAME},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0), DONE(UNCHANGED, F_REMEMBER)},
     7, 0},
    {"reconcile: the metadata moved (edited, deleted or destroyed): read "
     "the data",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {OK(9), OK(9), OK(0), OK(10)},
     {REQ(VAULT_VERSION, 0), REQ(VAULT_READ, F_READS | F_FORGET),
      REQ(AUTHENTIK, 0), REQ(VAULT_WRITE, 0), REQ(METADATA, F_REMEMBER)},
     10, 0},
    {"reconcile: the version held, authentik changed: read how, then write",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 5,
     {CACHED(7), OK(0), OK(7), OK(0), OK(8)},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0),
      REQ(VAULT_READ, F_READS | F_FORGET), REQ(AUTHENTIK, 0),
      REQ(VAULT_WRITE, 0), REQ(METADATA, F_REMEMBER)},
     8, 0},
    {"reconcile: after a version check only `same` vouches, not the cache",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {CACHED(7), CACHED(7)},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0),
      REQ(VAULT_READ, F_READS | F_FORGET)},
     7, 0},
    {"reconcile: the version held, the token gone: deleted",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {CACHED(7), ANS(GONE), OK(0), ANS(GONE)},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0),
      REQ(DELETE, F_READS | F_FORGET), REQ(AUTHENTIK, 0), DONE(DELETED, 0)},
     0, 0},
    {"reconcile: invalid token on the version check: log in, check again",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 2,
     {ANS(REAUTH), ANS(TRANSIENT)},
     {REQ(VAULT_VERSION, 0), LOGIN(VAULT_VERSION), FAIL(TRANSIENT, 0)},
     0, 0},
    {"dry run: the version held, authentik changed: reported, not written",
     B_CHECK, AKV_ON_DELETE_SOFT, 1, 5, 4,
     {CACHED(7), OK(0), OK(7), OK(0)},
     {REQ(VAULT_VERSION, 0), REQ(AUTHENTIK, 0),
      REQ(VAULT_READ, F_READS | F_FORGET), REQ(AUTHENTIK, 0),
      DONE(DRY_RUN, 0)},
     7, 1},
};
/* clang-format on */

static void assert_step(const char *row, size_t i, struct akv_step got,
                        struct akv_step want)
{
    if (got.what != want.what || got.flags != want.flags ||
        ((want.what == AKV_DO_REQUEST || want.what == AKV_DO_LOGIN) &&
         got.req != want.req) ||
        (want.what == AKV_DO_FINISH && got.result != want.result) ||
        (want.what == AKV_DO_FAIL && got.cls != want.cls)) {
        fail_msg("%s, step %zu: got do=%d req=%s result=%s class=%s "
                 "flags=%#x, want do=%d req=%s result=%s class=%s flags=%#x",
                 row, i, got.what, akv_step_req_name(got.req),
                 akv_sync_result_name(got.result), akv_class_name(got.cls),
                 got.flags, want.what, akv_step_req_name(want.req),
                 akv_sync_result_name(want.result), akv_class_name(want.cls),
                 want.flags);
    }
}

static void transitions_follow_the_table(void **state)
{
    size_t r;
    size_t i;

    (void)state;
    for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        const struct row *t = &rows[r];
        struct akv_sync_fsm m;
        struct akv_sync_opts o;

        o.on_delete = t->on_delete;
        o.can_login = t->can_login;
        o.cas_max = t->cas_max;
        o.dry_run = t->dry_run;
        memset(&m, 0x5a, sizeof(m)); /* start sets everything */
        assert_step(t->name, 0, akv_sync_start(&m, t->begin, &o), t->steps[0]);
        for (i = 0; i < t->n; i++) {
            assert_step(t->name, i + 1, akv_sync_step(&m, &t->ans[i]),
                        t->steps[i + 1]);
        }
        if (m.version != t->version) {
            fail_msg("%s: version %lld, want %lld", t->name, m.version,
                     t->version);
        }
    }
}

/* --- whole syncs against a scripted Vault ------------------------------ */

/* What each Vault read finds and what each write answers. */
struct script {
    int nreads;
    int nwrites;
    long long versions[8];    /* version returned by read i */
    const char *data[8];      /* data returned by read i (NULL: absent) */
    enum akv_class writes[8]; /* answer to write i */
    long long cas_seen[8];    /* cas sent by write i */
};

/*
 * Runs one attempt of the real state machine the way the engine does,
 * authentik always answering with the document \p d, until it finishes or
 * fails. \returns the step that ended it.
 */
static struct akv_step run(struct script *sc, const cJSON *d, long long cas_max,
                           struct akv_sync_fsm *m)
{
    cJSON *vault_data = NULL;
    struct akv_sync_opts o = {AKV_ON_DELETE_SOFT, 1, cas_max, 0};
    struct akv_step st = akv_sync_start(m, AKV_BEGIN_VAULT, &o);
    int guard;

    for (guard = 0; guard < 64 && (st.what == AKV_DO_REQUEST); guard++) {
        struct akv_answer a;
        int i;

        memset(&a, 0, sizeof(a));
        switch (st.req) {
        case AKV_REQ_VAULT_READ:
            i = sc->nreads++;
            cJSON_Delete(vault_data);
            vault_data = sc->data[i] ? cJSON_Parse(sc->data[i]) : NULL;
            a.version = sc->versions[i];
            break;
        case AKV_REQ_AUTHENTIK:
            a.same = vault_data && cJSON_Compare(vault_data, d, 1);
            break;
        case AKV_REQ_VAULT_WRITE:
            i = sc->nwrites++;
            sc->cas_seen[i] = m->version;
            a.cls = sc->writes[i];
            a.version = m->version + 1;
            break;
        default:
            break;
        }
        st = akv_sync_step(m, &a);
    }
    cJSON_Delete(vault_data);
    return st;
}

static cJSON *doc(void)
{
    return cJSON_Parse("{\"key\":\"k2\",\"intent\":\"api\"}");
}

static void absent_path_is_created_with_cas_zero(void **state)
{
    struct script s = {0};
    struct akv_sync_fsm m;
    cJSON *d = doc();
    struct akv_step st;

    (void)state;
    s.writes[0] = AKV_CLASS_OK;
    st = run(&s, d, 5, &m);
    assert_int_equal(st.what, AKV_DO_FINISH);
    assert_int_equal(st.result, AKV_SYNC_WRITTEN);
    assert_int_equal(s.cas_seen[0], 0);
    assert_int_equal(m.version, 1);
    cJSON_Delete(d);
}

static void same_document_writes_nothing(void **state)
{
    struct script s = {0};
    struct akv_sync_fsm m;
    cJSON *d = doc();
    struct akv_step st;

    (void)state;
    s.versions[0] = 4;
    s.data[0] = "{\"intent\":\"api\",\"key\":\"k2\"}"; /* any key order */
    st = run(&s, d, 5, &m);
    assert_int_equal(st.what, AKV_DO_FINISH);
    assert_int_equal(st.result, AKV_SYNC_UNCHANGED);
    assert_int_equal(m.version, 4);
    assert_int_equal(s.nwrites, 0);
    cJSON_Delete(d);
}

static void cas_mismatch_rereads_and_converges(void **state)
{
    struct script s = {0};
    struct akv_sync_fsm m;
    cJSON *d = doc();
    struct akv_step st;

    (void)state;
    /* Read v3 (old key); another writer wins with v4 (old key again);
     * read v4, write with cas 4: done. */
    s.versions[0] = 3;
    s.data[0] = "{\"key\":\"k1\",\"intent\":\"api\"}";
    s.writes[0] = AKV_CLASS_SUPERSEDED;
    s.versions[1] = 4;
    s.data[1] = "{\"key\":\"k0\",\"intent\":\"api\"}";
    s.writes[1] = AKV_CLASS_OK;
    st = run(&s, d, 5, &m);
    assert_int_equal(st.what, AKV_DO_FINISH);
    assert_int_equal(st.result, AKV_SYNC_WRITTEN);
    assert_int_equal(s.cas_seen[0], 3);
    assert_int_equal(s.cas_seen[1], 4);
    assert_int_equal(m.version, 5);
    cJSON_Delete(d);
}

static void lost_answer_is_recognised_on_reread(void **state)
{
    struct script s = {0};
    struct akv_sync_fsm m;
    cJSON *d = doc();
    struct akv_step st;

    (void)state;
    /* Our write landed but the answer looked like a lost race (a retried
     * request meeting its own first copy): the re-read finds our document,
     * so no second version is written. */
    s.versions[0] = 3;
    s.data[0] = "{\"key\":\"k1\",\"intent\":\"api\"}";
    s.writes[0] = AKV_CLASS_SUPERSEDED;
    s.versions[1] = 4;
    s.data[1] = "{\"key\":\"k2\",\"intent\":\"api\"}";
    st = run(&s, d, 5, &m);
    assert_int_equal(st.what, AKV_DO_FINISH);
    assert_int_equal(st.result, AKV_SYNC_UNCHANGED);
    assert_int_equal(m.version, 4);
    assert_int_equal(s.nwrites, 1);
    cJSON_Delete(d);
}

static void endless_race_gives_up_transiently(void **state)
{
    struct script s = {0};
    struct akv_sync_fsm m;
    cJSON *d = doc();
    struct akv_step st;
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        s.versions[i] = 10 + i;
        s.data[i] = "{\"key\":\"other\",\"intent\":\"api\"}";
        s.writes[i] = AKV_CLASS_SUPERSEDED;
    }
    st = run(&s, d, 3, &m);
    assert_int_equal(st.what, AKV_DO_FAIL);
    assert_int_equal(st.cls, AKV_CLASS_TRANSIENT);
    assert_true(st.flags & AKV_STEP_CAS_EXHAUSTED);
    assert_int_equal(s.nwrites, 3);
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

/* What a version check compares Vault's metadata with: the entry, however
 * old (the check, not the age, decides whether it still holds). */
static void cache_known_whatever_the_age(void **state)
{
    struct akv_cache *c = akv_cache_new(10, 5000);
    uint64_t h = akv_cache_hash(c, "doc", 3);
    struct akv_cache_entry got;
    long long v = 0;

    (void)state;
    assert_false(akv_cache_known(c, "a", &got));
    akv_cache_store(c, "a", h, 3, 10000);
    assert_false(akv_cache_has(c, "a", 99000));
    assert_true(akv_cache_known(c, "a", &got));
    assert_true(got.hash == h && got.has_doc && got.live);
    assert_int_equal(got.version, 3);
    /* a token authentik no longer has: the secret, without a document */
    akv_cache_store_gone(c, "a", 4, 0, 10000);
    assert_true(akv_cache_known(c, "a", &got));
    assert_true(!got.has_doc && !got.live);
    assert_int_equal(got.version, 4);
    assert_false(akv_cache_has(c, "a", 10000));
    assert_false(akv_cache_lookup(c, "a", 0, 10000, &v));
    akv_cache_forget(c, "a");
    assert_false(akv_cache_known(c, "a", &got));
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

    /* a renewal capped by max TTL shrank it below a third: log in at
     * once, not two thirds of the short lease later */
    l.ttl_s = 15;
    assert_int_equal(akv_vault_lease_due(&l, 1000, 1), AKV_LEASE_LOGIN);
    assert_int_equal(akv_vault_lease_due(&l, 10000, 1), AKV_LEASE_LOGIN);
    /* ... unless the method cannot log in */
    assert_int_equal(akv_vault_lease_due(&l, 1000, 0), AKV_LEASE_OK);
    assert_int_equal(akv_vault_lease_due(&l, 10000, 0), AKV_LEASE_RENEW);
    /* capped above a third: kept until a third of a login's lifetime is
     * left (20 s, not two thirds of the 40 s), then replaced by a login
     * (renewing it cannot outlive the cap) */
    l.ttl_s = 40;
    assert_int_equal(akv_vault_lease_due(&l, 19999, 1), AKV_LEASE_OK);
    assert_int_equal(akv_vault_lease_due(&l, 20000, 1), AKV_LEASE_LOGIN);
    /* ... a method that cannot log in renews it at two thirds */
    assert_int_equal(akv_vault_lease_due(&l, 26000, 0), AKV_LEASE_OK);
    assert_int_equal(akv_vault_lease_due(&l, 26667, 0), AKV_LEASE_RENEW);
    /* a renewal that granted more than login (a periodic token looked up
     * late in its period): two thirds of what it granted */
    l.ttl_s = 90;
    assert_int_equal(akv_vault_lease_due(&l, 59000, 1), AKV_LEASE_OK);
    assert_int_equal(akv_vault_lease_due(&l, 60000, 1), AKV_LEASE_RENEW);

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
        cmocka_unit_test(transitions_follow_the_table),
        cmocka_unit_test(absent_path_is_created_with_cas_zero),
        cmocka_unit_test(same_document_writes_nothing),
        cmocka_unit_test(cas_mismatch_rereads_and_converges),
        cmocka_unit_test(lost_answer_is_recognised_on_reread),
        cmocka_unit_test(endless_race_gives_up_transiently),
        cmocka_unit_test(cache_remembers_and_forgets),
        cmocka_unit_test(cache_entry_expires_at_max_age),
        cmocka_unit_test(cache_known_whatever_the_age),
        cmocka_unit_test(cache_clear_forgets_every_token),
        cmocka_unit_test(lease_decisions),
        cmocka_unit_test(auth_block_is_parsed),
    };

    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
