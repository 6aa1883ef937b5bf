/*
 * fuzzrules — matching rules for the matcher and prefilter targets: the
 * defaults (the match.* settings of configs/ak2vault.cfg) and sets that a
 * configuration may give, with the odd actions a list can hold (empty,
 * with a space, a quote, UTF-8, an action in both lists, no delete
 * actions).
 */
#ifndef AKV_TESTS_FUZZRULES_H
#define AKV_TESTS_FUZZRULES_H

#include "matcher.h"

static char *fz_apps_v[] = {"authentik_core"};
static char *fz_models_v[] = {"token"};
static char *fz_sync_v[] = {"model_created", "model_updated", "secret_rotate"};
static char *fz_delete_v[] = {"model_deleted"};

static char *fz_wide_apps_v[] = {"authentik_core", "authentik_providers_oauth2",
                                 ""};
static char *fz_wide_models_v[] = {"token", "accesstoken", "a b"};
static char *fz_odd_sync_v[] = {"",     "login",       "x y",
                                "a\"b", "caf\xc3\xa9", "model_deleted"};
static char *fz_odd_delete_v[] = {"model_deleted", "secret_view", "\\"};

static const struct akv_strlist fz_apps = {fz_apps_v, 1};
static const struct akv_strlist fz_models = {fz_models_v, 1};
static const struct akv_strlist fz_sync = {fz_sync_v, 3};
static const struct akv_strlist fz_delete = {fz_delete_v, 1};
static const struct akv_strlist fz_wide_apps = {fz_wide_apps_v, 3};
static const struct akv_strlist fz_wide_models = {fz_wide_models_v, 3};
static const struct akv_strlist fz_odd_sync = {fz_odd_sync_v, 6};
static const struct akv_strlist fz_odd_delete = {fz_odd_delete_v, 3};
static const struct akv_strlist fz_none = {NULL, 0};

static const struct akv_match_rules fz_rules[] = {
    {&fz_apps, &fz_models, &fz_sync, &fz_delete},
    {&fz_wide_apps, &fz_wide_models, &fz_odd_sync, &fz_odd_delete},
    {&fz_apps, &fz_models, &fz_sync, &fz_none},
};
#define FZ_NRULES (sizeof(fz_rules) / sizeof(fz_rules[0]))

#endif /* AKV_TESTS_FUZZRULES_H */
