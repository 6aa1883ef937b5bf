/*
 * replay — moving a consumer group's committed offsets, the way
 * `kafka-consumer-groups --reset-offsets` does: `ak2vault replay` (dry run
 * unless --execute, refused while the group has members, clamped to each
 * partition's log) and `ak2vault run --from` (where a fresh group starts).
 *
 * Replaying is safe for ak2vault: events are triggers, every sync reads
 * authentik's current state, so a replay converges to it and writes a
 * Vault version only where something changed.
 */
#ifndef AKV_WORKER_REPLAY_H
#define AKV_WORKER_REPLAY_H

#include "err.h"
#include "kadmin.h"
#include "settings.h"

#include <stdint.h>
#include <stdio.h>

enum akv_replay_mode {
    AKV_REPLAY_NONE = 0,
    AKV_REPLAY_TO_EARLIEST,
    AKV_REPLAY_TO_LATEST,
    AKV_REPLAY_TO_OFFSET,
    AKV_REPLAY_SHIFT_BY,
    AKV_REPLAY_TO_DATETIME,
    AKV_REPLAY_BY_DURATION,
    AKV_REPLAY_TO_CURRENT, /**< where the group is (to save it: --export) */
    AKV_REPLAY_FROM_FILE,  /**< the offsets a --export file holds */
};

/** What the command line asked for. Holds no heap memory. */
struct akv_replay_opts {
    enum akv_replay_mode mode;
    int modes;               /**< mode options given (one is right) */
    long long value;         /**< to-offset N, shift-by N, the time (ms since
                                  the epoch) or the duration (ms) */
    const char *mode_arg;    /**< the mode's argument as given, or NULL */
    const char *partitions;  /**< --partitions as given; NULL: all */
    int execute;             /**< --execute: commit (else a dry run) */
    int from;                /**< run --from: mode is earliest, latest or
                                  to-datetime */
    const char *from_arg;    /**< --from as given */
    const char *export_path; /**< --export FILE: the plan as CSV */
};

/** One line of an offsets file: topic,partition,offset. */
struct akv_replay_offset {
    int32_t partition;
    int64_t offset;
};

/**
 * @brief Reads an offsets file (the CSV `kafka-consumer-groups --export`
 *        and `replay --export` write: "topic,partition,offset" per line)
 *        for \p topic. Pure.
 * @param out set to a malloc'd array (free() it, also after an error),
 *        \p n to its length.
 * @returns AKV_OK, or AKV_ERR_INVALID naming the bad line (another topic,
 *          a partition twice, not three fields, not numbers).
 */
akv_err_t akv_replay_parse_offsets(const char *text, const char *topic,
                                   struct akv_replay_offset **out, size_t *n,
                                   char *errstr, size_t errstr_size);

/**
 * @brief Takes the option \p name ("to-earliest", "to-latest",
 *        "to-offset", "shift-by", "to-datetime", "by-duration",
 *        "partitions", "execute", "from") with its argument \p arg (kept,
 *        not copied) into \p o, checking the argument's syntax.
 * @returns AKV_OK or AKV_ERR_INVALID with the reason in \p errstr.
 */
akv_err_t akv_replay_opt(struct akv_replay_opts *o, const char *name,
                         const char *arg, char *errstr, size_t errstr_size);

/**
 * @brief Checks that the options of \p o fit command \p cmd: `replay`
 *        needs exactly one mode, --from is for `run`, and no other command
 *        takes any of them.
 * @returns AKV_OK or AKV_ERR_INVALID with the reason in \p errstr.
 */
akv_err_t akv_replay_check(const struct akv_replay_opts *o, const char *cmd,
                           char *errstr, size_t errstr_size);

/**
 * @brief Parses an ISO 8601 date and time with its zone:
 *        YYYY-MM-DDTHH:MM[:SS[.fraction]] then Z or ±hh:mm (or ±hhmm).
 * @param ms set to milliseconds since the epoch (the fraction truncated).
 */
akv_err_t akv_replay_parse_datetime(const char *s, int64_t *ms, char *errstr,
                                    size_t errstr_size);

/**
 * @brief Parses a duration: ISO 8601 / Kafka's PnDTnHnMnS (P1DT2H,
 *        PT15M, PT0.5S), or numbers with units ms, s, m, h, d, alone or
 *        combined (90s, 15m, 2h, 1d, 1h30m, 1.5h). At most 100 years.
 * @param ms set to milliseconds.
 */
akv_err_t akv_replay_parse_duration(const char *s, int64_t *ms, char *errstr,
                                    size_t errstr_size);

/** A range of partitions, both ends included. */
struct akv_prange {
    int32_t first;
    int32_t last;
};

/**
 * @brief Parses a partition list such as "0,2,5-7".
 * @param out set to a malloc'd array of \p *n ranges (free() it).
 */
akv_err_t akv_replay_parse_partitions(const char *s, struct akv_prange **out,
                                      size_t *n, char *errstr,
                                      size_t errstr_size);

/**
 * @brief Checks that every partition of \p r exists among the \p n
 *        partitions of \p parts (sorted), naming the first that does not.
 */
akv_err_t akv_replay_partitions_exist(const struct akv_prange *r, size_t nr,
                                      const struct akv_kpart *parts, size_t n,
                                      const char *topic, char *errstr,
                                      size_t errstr_size);

/** @returns 1 when \p partition is in one of the \p n ranges \p r. */
int akv_replay_prange_has(const struct akv_prange *r, size_t n,
                          int32_t partition);

/** @brief Formats \p ms since the epoch as 2026-11-28T10:00:00.000Z. */
void akv_replay_format_time(int64_t ms, char *buf, size_t size);

/** Where one partition goes. */
struct akv_replay_row {
    int32_t partition;
    int64_t current; /**< committed offset; -1: none */
    int64_t low;     /**< log start */
    int64_t high;    /**< log end */
    int64_t wanted;  /**< the new offset before clamping */
    int64_t target;  /**< the new offset, within [low, high] */
    int clamped;     /**< -1: raised to the log start, 1: lowered to the
                          log end, 0: not clamped */
    int searched;    /**< time modes: found by reading messages */
};

/**
 * @brief The new offset of \p p for mode \p o (pure).
 * @param start_latest kafka.auto_offset_reset is "latest": where a
 *        partition without a committed offset starts (for --shift-by).
 * @param time_offset the offset the time modes found, or the one
 *        --from-file gives (ignored otherwise).
 */
void akv_replay_plan(const struct akv_replay_opts *o, const struct akv_kpart *p,
                     int start_latest, int64_t time_offset,
                     struct akv_replay_row *row);

/**
 * @brief `ak2vault replay`: prints where every selected partition of
 *        \p group on \p topic (NULL: from \p s) would go, as a table or
 *        JSON, and commits that with \p o->execute.
 * @param refused set to 1 when --execute was refused because the group has
 *        active members (nothing changed).
 * @returns AKV_OK; AKV_ERR_INVALID for an unknown partition; otherwise an
 *          error with the reason in \p errstr.
 */
akv_err_t akv_replay_run(const struct akv_settings *s,
                         const struct akv_replay_opts *o, const char *group,
                         const char *topic, int json, FILE *out, int *refused,
                         char *errstr, size_t errstr_size);

/**
 * @brief `ak2vault run --from`: before the worker joins, commits the start
 *        offset of \p o (earliest, latest or a date and time) for every
 *        partition of the configured group that has no committed offset.
 *        Partitions with one are left alone; a group with active members
 *        is left alone entirely. Both are logged.
 * @returns AKV_OK, or an error (Kafka unreachable) with \p errstr.
 */
akv_err_t akv_replay_start_from(const struct akv_settings *s,
                                const struct akv_replay_opts *o, char *errstr,
                                size_t errstr_size);

#endif /* AKV_WORKER_REPLAY_H */
