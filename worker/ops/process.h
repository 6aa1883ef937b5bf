/*
 * process — the standard process_* figures of the worker itself, read
 * from /proc/self (Linux), as Prometheus's client libraries export them.
 */
#ifndef AKV_WORKER_PROCESS_H
#define AKV_WORKER_PROCESS_H

struct akv_process {
    double cpu_seconds; /**< user + system CPU time */
    double rss_bytes;   /**< resident set size */
    double vsize_bytes; /**< virtual memory size */
    double start_time;  /**< seconds since the epoch (from the boot time) */
    double open_fds;    /**< -1 when unknown */
    double max_fds;     /**< the soft limit; -1 when unknown */
};

/**
 * @brief Reads /proc/self/stat's text \p stat (with the clock ticks per
 *        second \p ticks, the page size \p page and the boot time \p btime
 *        in seconds since the epoch) into \p out. Pure.
 * @returns 0, or -1 when the text is not a stat line.
 */
int akv_process_parse_stat(const char *stat, long ticks, long page,
                           double btime, struct akv_process *out);

/** @returns 0 with \p out filled, or -1 when /proc cannot be read. */
int akv_process_read(struct akv_process *out);

#endif /* AKV_WORKER_PROCESS_H */
