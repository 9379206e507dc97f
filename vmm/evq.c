/* The VM's event queue: a bounded, rate-limited ring of events for the VM's owner. */
#include "vmm/evq.h"

#include <errno.h>
#include <string.h>

#define EVQ_WINDOW_NS 1000000000ULL

int evq_init(struct evq *q, unsigned int per_s)
{
	int r;

	memset(q, 0, sizeof(*q));
	q->per_s = per_s ? per_s : MINIVM_EVENTS_PER_S;
	r = pthread_mutex_init(&q->lock, NULL);
	return r ? -r : 0;
}

void evq_destroy(struct evq *q)
{
	pthread_mutex_destroy(&q->lock);
}

/* Whether the rate limit lets one more event in at now_ns. Lock held. */
static bool evq_admit(struct evq *q, uint64_t now_ns)
{
	if (now_ns < q->window_ns || now_ns - q->window_ns >= EVQ_WINDOW_NS) {
		q->window_ns = now_ns;
		q->in_window = 0;
	}
	if (q->in_window >= q->per_s || q->count >= MINIVM_EVENT_QUEUE)
		return false;
	q->in_window++;
	return true;
}

bool evq_post(struct evq *q, const struct minivm_event *ev, uint64_t now_ns)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	if (ev->type == MINIVM_EVENT_GUEST_ERROR)
		q->guest_errors++;
	ok = evq_admit(q, now_ns);
	if (ok) {
		struct minivm_event *slot = &q->ring[(q->head + q->count) % MINIVM_EVENT_QUEUE];

		*slot = *ev;
		slot->time_ns = now_ns;
		q->count++;
	} else {
		q->suppressed++;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

bool evq_pop(struct evq *q, struct minivm_event *ev)
{
	bool ok;

	pthread_mutex_lock(&q->lock);
	ok = q->count > 0;
	if (ok) {
		*ev = q->ring[q->head];
		q->head = (q->head + 1) % MINIVM_EVENT_QUEUE;
		q->count--;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

void evq_counts(struct evq *q, uint64_t *suppressed, uint64_t *guest_errors)
{
	pthread_mutex_lock(&q->lock);
	*suppressed = q->suppressed;
	*guest_errors = q->guest_errors;
	pthread_mutex_unlock(&q->lock);
}
