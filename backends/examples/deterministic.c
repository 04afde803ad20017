/* deterministic.c: LD_PRELOAD shim that build.sh puts under the componentize step
 * only, so that the same JavaScript sources build to the same bytes.
 *
 * jco (componentize-qjs) runs the guest's initialisation and stores a snapshot of
 * its memory in the component. Left alone, that snapshot keeps
 * what the build machine handed out at that moment: random numbers (hash seeds,
 * Math.random and `random` states, the Rust HashMap seeds that order modules) and
 * clock readings. (For componentize-py it also fixes file times, but 15-30 bytes
 * of leftover memory still differ there, so Python builds do not use it.)
 * SOURCE_DATE_EPOCH (default 1) is the time used for the clock and file times.
 *
 * Linux with glibc only (statx needs glibc >= 2.28): build.sh builds anyway, not
 * reproducibly, when this does not compile. Never preload it into anything else:
 * its "random" numbers are a fixed sequence, so every component built with it gets
 * the same seeds (QuickJS does not seed its property hashing with them).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

static time_t fixed_time(void) {
    const char *s = getenv("SOURCE_DATE_EPOCH");
    return s && *s ? (time_t)strtoll(s, NULL, 10) : 1;
}

/* Entropy: a fixed splitmix64 sequence per thread (per thread, so that the order in
 * which threads ask cannot change who gets which bytes). Rust std (HashMap seeds)
 * and the rand crate behind the guest's WASI random_get both call glibc's
 * getrandom(); nothing in these tools uses getentropy() or /dev/urandom. */
static __thread uint64_t rng_state = 0x9e3779b97f4a7c15u;

static void fill(void *buf, size_t len) {
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        p[i] = (unsigned char)(z ^ (z >> 31));
    }
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    fill(buf, len);
    return (ssize_t)len;
}

/* Clocks: the guest reads the wall clock (QuickJS's Date and Math.random seed,
 * Python's time) and the monotonic clock (QuickJS, and wasi-libc keeps a start time
 * for clock()); the WASI host serves both from clock_gettime. The monotonic clock
 * stands still too, so a tool that waits for time to pass would wait forever:
 * neither componentize-py 0.25.1 nor jco 1.35.0 does. Other clocks are left alone. */
int clock_gettime(clockid_t clock, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC) {
        ts->tv_sec = clock == CLOCK_REALTIME ? fixed_time() : 1000000;
        ts->tv_nsec = 0;
        return 0;
    }
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    return real(clock, ts);
}

/* File times: the WASI host's stat (Rust std, cap-std) goes through glibc's statx.
 * All four times matter for Python: the guest sees them and their bytes linger in
 * its memory. The host's own CPython uses stat64 and is not affected. */
int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *st) {
    static int (*real)(int, const char *, int, unsigned int, struct statx *);
    if (!real) real = (int (*)(int, const char *, int, unsigned int, struct statx *))dlsym(RTLD_NEXT, "statx");
    int r = real(dirfd, path, flags, mask, st);
    if (r == 0) {
        struct statx_timestamp t = {.tv_sec = fixed_time(), .tv_nsec = 0};
        st->stx_atime = st->stx_btime = st->stx_ctime = st->stx_mtime = t;
    }
    return r;
}
