/*
 * secretfile — credentials kept in files (a Kubernetes Secret, a Vault
 * Agent sink, a projected service account token) that change under a
 * running process: read them, and notice when they were replaced.
 */
#ifndef AKV_COMMON_SECRETFILE_H
#define AKV_COMMON_SECRETFILE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/** Flags of akv_secret_read(). */
#define AKV_SECRET_ONE_LINE 0x1 /**< refuse an empty file or a second line */

/**
 * @brief Reads \p path whole, trailing newlines and blanks trimmed.
 * @param max the largest content accepted, in bytes.
 * @returns the content (a secret: the caller wipes it with
 *          akv_wipe_free()), or NULL with the reason in \p why (naming the
 *          path, never the content).
 */
char *akv_secret_read(const char *path, size_t max, unsigned flags, char *why,
                      size_t why_size);

/** What tells one version of a file from the next without reading it. A
 *  Kubernetes Secret volume swaps a symbolic link and Vault Agent renames
 *  a new file over the old one, so the inode changes; an editor writing in
 *  place changes the size or the modification time. */
struct akv_file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int ok; /**< 0: the file could not be stat()ed */
};

/** @brief Stamps \p path as it is now (symbolic links followed). */
void akv_file_stamp_take(const char *path, struct akv_file_stamp *st);

/** @returns whether two stamps describe the same version of a file. */
int akv_file_stamp_same(const struct akv_file_stamp *a,
                        const struct akv_file_stamp *b);

/**
 * A credential file and the value last read from it.
 */
struct akv_credfile {
    const char *path;      /**< not owned */
    const char *setting;   /**< "vault.token_file", for log lines */
    const char *component; /**< the log component: "vault" */
    char *value;           /**< last good value (secret; registered with the log
                                scrubber), or NULL before the first read */
    struct akv_file_stamp stamp; /**< of the file the value came from */
};

/** akv_credfile_refresh() outcomes. */
enum akv_credfile_change {
    AKV_CREDFILE_NONE,    /**< no file: the credential comes from elsewhere */
    AKV_CREDFILE_SAME,    /**< nothing new: the value stays */
    AKV_CREDFILE_CHANGED, /**< a new value is in place */
    AKV_CREDFILE_FAILED,  /**< unreadable or empty: the old value stays */
};

/**
 * @brief Reads the file again when its stamp moved, or always when
 *        \p force is set (after the upstream refused the value: a file
 *        rewritten within the stamp's resolution still counts).
 * @returns whether the value changed; on AKV_CREDFILE_FAILED the reason is
 *          in \p why and the previous value is kept.
 */
enum akv_credfile_change akv_credfile_refresh(struct akv_credfile *cf,
                                              int force, char *why,
                                              size_t why_size);

/**
 * @brief akv_credfile_refresh() with its outcome logged: a new value at
 *        info ("SETTING PATH holds a new token: later requests use it"),
 *        a failure as a warning naming the file (the old value stays).
 */
enum akv_credfile_change akv_credfile_reload(struct akv_credfile *cf,
                                             int force);

/** @brief Forgets the value (wiped, unregistered). */
void akv_credfile_clear(struct akv_credfile *cf);

#endif /* AKV_COMMON_SECRETFILE_H */
