// Built by tools/sanitize.sh with the same sanitizer as the extension and
// called through ctypes in the same environment as the tests, before them:
// each function must draw exactly the report its sanitizer exists for, which
// shows that the runtime is preloaded, the reports reach the log folder and
// tools/sanitize_reports.py reads them. Never part of the module.
#include <stdatomic.h>
#include <stdlib.h>

// AddressSanitizer: a heap-buffer-overflow read, one byte past the end.
int sanitize_canary_overflow(void) {
    volatile char *buffer = malloc(8);
    int past_the_end = buffer[8];
    free((void *)buffer);
    return past_the_end;
}

// ThreadSanitizer: called from two threads at once, both write `counter`
// with nothing ordering them (relaxed atomics order nothing for TSan), after
// both have arrived, so the two writes surely overlap.
static long counter;
static atomic_int arrived;

void sanitize_canary_race(void) {
    atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
    while (atomic_load_explicit(&arrived, memory_order_relaxed) < 2) {}
    counter++;
}
