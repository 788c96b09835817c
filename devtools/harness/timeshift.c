/* Two small preloads for the shifted-clock passes of scripts/test (devtools/harness/clockshift.py).
 *
 * Built as timeshift.so: a shifted wall clock for servers that libfaketime cannot run
 * (jemalloc-linked BIND hangs in libfaketime's initialisation: libfaketime issue #130).
 * CLOCK_REALTIME and its kin, time() and gettimeofday() read the kernel clock by raw syscall and
 * add PUSHSYNC_CLOCK_SHIFT_S seconds; no malloc, no dlsym, so nothing can recurse. Monotonic
 * clocks are left alone.
 *
 * Built with -DSLEEP_ONLY as sleepfix.so, preloaded before libfaketime: libfaketime 0.9.10 with
 * FAKETIME_DONT_FAKE_MONOTONIC=1 (needed: with a faked monotonic clock every timed thread wait
 * hangs) turns Python's time.sleep, an absolute clock_nanosleep on CLOCK_MONOTONIC, into EINVAL.
 * The monotonic clock is real there, so the kernel's clock_nanosleep is the right answer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem) {
    /* glibc's contract: the error number is returned, errno is not set */
    long rc = syscall(SYS_clock_nanosleep, id, flags, req, rem);
    return rc == 0 ? 0 : errno;
}

#ifndef SLEEP_ONLY
static long shift_s;

__attribute__((constructor)) static void init(void) {
    const char *s = getenv("PUSHSYNC_CLOCK_SHIFT_S");
    shift_s = s ? strtol(s, NULL, 10) : 0;
}

static int is_wall(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    long rc = syscall(SYS_clock_gettime, id, ts);
    if (rc == 0 && is_wall(id)) ts->tv_sec += shift_s;
    return (int)rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    struct timeval *volatile out = tv; /* glibc declares tv nonnull; callers pass NULL */
    if (out) { out->tv_sec = ts.tv_sec; out->tv_usec = ts.tv_nsec / 1000; }
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
#endif
