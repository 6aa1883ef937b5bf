/*
 * failure — names of the failure classes.
 */
#include "failure.h"

const char *akv_class_name(enum akv_class c)
{
    switch (c) {
    case AKV_CLASS_OK:
        return "ok";
    case AKV_CLASS_TRANSIENT:
        return "transient";
    case AKV_CLASS_REAUTH:
        return "reauth";
    case AKV_CLASS_SUPERSEDED:
        return "superseded";
    case AKV_CLASS_GONE:
        return "gone";
    case AKV_CLASS_CONFIG:
        return "configuration";
    case AKV_CLASS_POISON:
        return "poison";
    }
    return "?";
}
