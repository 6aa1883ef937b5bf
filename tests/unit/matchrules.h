/*
 * matchrules — the default matching rules (the match.* settings of
 * configs/ak2vault.cfg), for the tests of the matcher, the prefilter and
 * jscan.
 */
#ifndef AKV_TESTS_MATCHRULES_H
#define AKV_TESTS_MATCHRULES_H

#include "matcher.h"

static char *apps_v[] = {"authentik_core"};
static char *models_v[] = {"token"};
static char *sync_v[] = {"model_created", "model_updated", "secret_rotate"};
static char *delete_v[] = {"model_deleted"};
static const struct akv_strlist apps = {apps_v, 1};
static const struct akv_strlist models = {models_v, 1};
static const struct akv_strlist sync_actions = {sync_v, 3};
static const struct akv_strlist delete_actions = {delete_v, 1};
static const struct akv_match_rules rules = {&apps, &models, &sync_actions,
                                             &delete_actions};

#endif /* AKV_TESTS_MATCHRULES_H */
