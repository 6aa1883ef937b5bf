/*
 * process — the worker's own CPU, memory, file descriptors and start time.
 */
#include "process.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int akv_process_parse_stat(const char *stat, long ticks, long page,
                           double btime, struct akv_process *out)
{
    /* The command name (field 2) may hold spaces and parentheses: the
     * fields that follow start after its last ')'. */
    const char *p = strrchr(stat, ')');
    unsigned long long utime;
    unsigned long long stime;
    unsigned long long start;
    unsigned long long vsize;
    long long rss;

    if (!p || ticks <= 0 || page <= 0 ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d "
               "%*d %*d %*d %*d %*d %llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5) {
        return -1;
    }
    out->cpu_seconds = (double)(utime + stime) / (double)ticks;
    out->start_time = btime + (double)start / (double)ticks;
    out->vsize_bytes = (double)vsize;
    out->rss_bytes = (double)rss * (double)page;
    return 0;
}

/* The "btime" line of /proc/stat: when the machine booted. */
static double boot_time(void)
{
    FILE *fp = fopen("/proc/stat", "r");
    char line[256];
    double t = 0;

    while (fp && fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "btime ", 6) == 0) {
            t = strtod(line + 6, NULL);
            break;
        }
    }
    if (fp) {
        fclose(fp);
    }
    return t;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    double n = 0;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

int akv_process_read(struct akv_process *out)
{
    static double btime; /* the boot time does not change */
    FILE *fp = fopen("/proc/self/stat", "r");
    struct rlimit rl;
    char text[1024];
    size_t n;

    if (!fp) {
        return -1;
    }
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    if (btime == 0) {
        btime = boot_time();
    }
    if (akv_process_parse_stat(text, sysconf(_SC_CLK_TCK),
                               sysconf(_SC_PAGESIZE), btime, out) < 0) {
        return -1;
    }
    out->open_fds = open_fds();
    out->max_fds =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
            ? (double)rl.rlim_cur
            : -1;
    return 0;
}
