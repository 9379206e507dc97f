/* The VM's event queue: a bounded ring of struct minivm_event with a per-second rate limit, filled by device and vCPU threads. */
#ifndef MINIVM_EVQ_H
#define MINIVM_EVQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/minivm.h"

/*
 * At most `per_s` events are queued per second (a fixed one-second window
 * on the caller's clock); past that, or with MINIVM_EVENT_QUEUE events
 * waiting, an event is dropped and counted in `suppressed`. The lock is a
 * leaf: evq_post() may be called with a device's lock held.
 */
struct evq {
	pthread_mutex_t lock;
	struct minivm_event ring[MINIVM_EVENT_QUEUE];
	unsigned int head, count;
	unsigned int per_s;
	uint64_t window_ns;     /* start of the current one-second window */
	unsigned int in_window; /* events queued in it */
	uint64_t suppressed;
	uint64_t guest_errors;  /* GUEST_ERROR events posted (queued or not) */
};

/* per_s: 0 for MINIVM_EVENTS_PER_S. 0 or -errno (pthread_mutex_init). */
int evq_init(struct evq *q, unsigned int per_s) __attribute__((warn_unused_result));
void evq_destroy(struct evq *q);

/* Queues a copy of ev stamped now_ns; true when queued, false when dropped
 * (counted). Any thread. */
bool evq_post(struct evq *q, const struct minivm_event *ev, uint64_t now_ns);

/* Takes the oldest event: true with *ev filled, false when empty. */
bool evq_pop(struct evq *q, struct minivm_event *ev);

/* The counters, for metrics. */
void evq_counts(struct evq *q, uint64_t *suppressed, uint64_t *guest_errors);

#endif
