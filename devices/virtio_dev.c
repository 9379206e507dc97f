/* Shared device-side helpers: rate-limited guest-error logging and the NEEDS_RESET path. */
#include "devices/virtio_dev.h"

#include <stdarg.h>
#include <stdio.h>

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
	virtio_dev_log(dev, "%s; device needs reset", why);
	dev->tops->needs_reset(dev->transport);
}
