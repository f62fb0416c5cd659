/* NovaCron lab guest workload: dirties memory at a set rate and proves the memory stays intact.
 *
 * Reads fill_mib=F, dirty_mib=N and dirty_rate=PAGES_PER_S from /proc/cmdline and holds one region
 * of F + N MiB: the first F MiB (the static fill) are written once and never again, so the guest
 * holds the non-zero memory a scenario asks for; the last N MiB (the working set) are touched, then
 * written at random at the given rate. Every page of the region carries a tag derived from its
 * index and differs from every other page (no zero page, nothing a deduplicating copy could skip);
 * once a second the whole region is verified and a marker line goes to the serial console:
 *   NOVACRON-READY dirty_mib=.. dirty_rate=.. fill_mib=..  once, after the region is written
 *   NOVACRON-ALIVE seq=.. pages_written=.. rate=.. once a second while all tags are intact
 *   NOVACRON-CORRUPT page=.. tag=.. expected=..    a page's tag is wrong (memory corrupted)
 * A live migration that corrupts guest memory shows up here even when QEMU reports success.
 * An optional first argument names another file to read the settings from (the tests run the
 * dirtier on the host with their own settings).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 4096UL
#define TAG_SALT 0x9e3779b97f4a7c15ULL

static long cmdline_value(const char *cmdline, const char *key, long fallback) {
    const char *at = strstr(cmdline, key);
    return at ? atol(at + strlen(key)) : fallback;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_random(uint64_t *state) { /* xorshift64: cheap, good enough to pick pages */
    uint64_t x = *state;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *state = x;
}

static void write_page(uint64_t *page, uint64_t index) {
    page[0] = index ^ TAG_SALT; /* the tag the verifier checks */
    page[1] += 1;               /* a second word so each write changes the page's content */
}

static long verify_pages(uint64_t *base, uint64_t pages) {
    for (uint64_t i = 0; i < pages; i++) {
        uint64_t tag = base[i * (PAGE_BYTES / 8)];
        if (tag != (i ^ TAG_SALT)) {
            printf("NOVACRON-CORRUPT page=%llu tag=%llx expected=%llx\n", (unsigned long long)i,
                   (unsigned long long)tag, (unsigned long long)(i ^ TAG_SALT));
            fflush(stdout);
            return (long)i;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    char cmdline[4096] = {0};
    FILE *f = fopen(argc > 1 ? argv[1] : "/proc/cmdline", "r");
    if (f) { fread(cmdline, 1, sizeof cmdline - 1, f); fclose(f); }
    long dirty_mib = cmdline_value(cmdline, "dirty_mib=", 64);
    long dirty_rate = cmdline_value(cmdline, "dirty_rate=", 1000);
    long fill_mib = cmdline_value(cmdline, "fill_mib=", 0);
    if (dirty_mib < 1) dirty_mib = 1;
    if (fill_mib < 0) fill_mib = 0;
    uint64_t fill_pages = (uint64_t)fill_mib * (1024 * 1024 / PAGE_BYTES);
    uint64_t dirty_pages = (uint64_t)dirty_mib * (1024 * 1024 / PAGE_BYTES);
    uint64_t pages = fill_pages + dirty_pages;
    uint64_t *base = malloc(pages * PAGE_BYTES);
    if (!base) { printf("NOVACRON-FAILED cannot allocate %ld MiB\n", fill_mib + dirty_mib); return 1; }
    for (uint64_t i = 0; i < pages; i++) write_page(base + i * (PAGE_BYTES / 8), i);
    printf("NOVACRON-READY dirty_mib=%ld dirty_rate=%ld fill_mib=%ld\n", dirty_mib, dirty_rate, fill_mib);
    fflush(stdout);

    uint64_t rng = 88172645463325252ULL, written = 0, written_at_tick = 0, seq = 0;
    double start = now_s(), last = start, next_tick = start + 1.0, tick_start = start, credit = 0;
    for (;;) {
        double now = now_s();
        /* credit accrues at the set rate; capped at one second's worth so a pause (suspend,
         * migration downtime) is not followed by a burst far above the set rate */
        credit += (now - last) * (double)dirty_rate;
        if (credit > (double)dirty_rate) credit = (double)dirty_rate;
        last = now;
        for (; credit >= 1.0; credit -= 1.0) {
            uint64_t index = fill_pages + next_random(&rng) % dirty_pages; /* never the fill */
            write_page(base + index * (PAGE_BYTES / 8), index);
            written++;
        }
        if (now >= next_tick) {
            if (verify_pages(base, pages) >= 0) { sleep(1); continue; }
            double rate = (double)(written - written_at_tick) / (now - tick_start);
            printf("NOVACRON-ALIVE seq=%llu pages_written=%llu rate=%.0f\n", (unsigned long long)seq++,
                   (unsigned long long)written, rate);
            fflush(stdout);
            written_at_tick = written; tick_start = now; next_tick = now + 1.0;
        }
        usleep(1000);
    }
}
