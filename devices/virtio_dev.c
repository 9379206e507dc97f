/* Shared device-side helpers: rate-limited guest-error logging, the NEEDS_RESET path, counters and events. */
#include "devices/virtio_dev.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VIRTIO_LOG_BURST 10
#define VIRTIO_LOG_WINDOW_S 5

void virtio_dev_log(struct virtio_dev *dev, const char *fmt, ...)
{
	struct virtio_ratelimit *rl = &dev->rl;
	struct timespec now;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (rl->printed == 0 || now.tv_sec - rl->window_start.tv_sec >= VIRTIO_LOG_WINDOW_S) {
		if (rl->suppressed)
			fprintf(stderr, "minivm: %s: %u similar messages suppressed\n", dev->name,
				rl->suppressed);
		rl->window_start = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= VIRTIO_LOG_BURST) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	va_start(ap, fmt);
	flockfile(stderr);
	fprintf(stderr, "minivm: %s: ", dev->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

void virtio_dev_fail(struct virtio_dev *dev, const char *why)
{
	struct minivm_event ev;

	virtio_dev_log(dev, "%s; device needs reset", why);
	virtio_stat_add(&dev->stats.errors, 1);
	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_GUEST_ERROR;
	snprintf(ev.message, sizeof(ev.message), "%s: %s; device needs reset", dev->name, why);
	virtio_dev_event(dev, &ev);
	dev->tops->needs_reset(dev->transport);
}

void virtio_dev_event(struct virtio_dev *dev, const struct minivm_event *ev)
{
	if (dev->event_fn)
		dev->event_fn(dev->event_opaque, ev);
}

static uint64_t stat_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void virtio_stats_read(const struct virtio_stats *s, struct minivm_device_metrics *out)
{
	out->reads = stat_get(&s->reads);
	out->writes = stat_get(&s->writes);
	out->read_bytes = stat_get(&s->read_bytes);
	out->write_bytes = stat_get(&s->write_bytes);
	out->flushes = stat_get(&s->flushes);
	out->throttled = stat_get(&s->throttled);
	out->denied = stat_get(&s->denied);
	out->errors = stat_get(&s->errors);
}
