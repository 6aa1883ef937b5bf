/*
 * outcome — names of the ways a sync ends.
 */
#include "outcome.h"

const char *akv_sync_result_name(enum akv_sync_result r)
{
    switch (r) {
    case AKV_SYNC_WRITTEN:
        return "written";
    case AKV_SYNC_UNCHANGED:
        return "unchanged";
    case AKV_SYNC_GONE:
        return "gone";
    case AKV_SYNC_DELETED:
        return "deleted";
    case AKV_SYNC_FILTERED:
        return "filtered";
    case AKV_SYNC_DRY_RUN:
        return "dry_run";
    case AKV_SYNC_RESULTS:
        break;
    }
    return "?";
}
