/* virtio-rng: each device-writable buffer gets bytes from getrandom(2), bounded per request. */
#include "devices/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "devices/virtio_spec.h"

struct rng_dev {
	struct virtio_dev vdev; /* first */
	bool active;            /* under the transport lock */
	bool broken;
	struct virtq_chain chain; /* scratch, under the transport lock */
};

static struct rng_dev *to_rng(struct virtio_dev *dev)
{
	return (struct rng_dev *)dev;
}

/* Fills [p, p + len) with random bytes; returns how many were written. */
static uint32_t fill(uint8_t *p, uint32_t len)
{
	uint32_t done = 0;

	while (done < len) {
		/* The host's pool is initialised long before a VM runs, so this
		 * does not block; GRND_NONBLOCK keeps it so regardless. */
		ssize_t n = getrandom(p + done, len - done, GRND_NONBLOCK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (uint32_t)n;
	}
	return done;
}

static uint32_t serve(struct rng_dev *r, const struct virtq_chain *c)
{
	const struct guest_mem *gm = r->vdev.vqs[0].gm;
	uint32_t budget = VIRTIO_RNG_MAX_BYTES, written = 0;

	/* Readable buffers, if any, are ignored: the device only writes. */
	for (unsigned int i = c->nread; i < c->nseg && budget; i++) {
		uint32_t n = c->seg[i].len < budget ? c->seg[i].len : budget;
		uint8_t *p = gm_ptr(gm, c->seg[i].gpa, n); /* checked by virtq_pop */
		uint32_t got;

		if (!p)
			break;
		got = fill(p, n);
		written += got;
		budget -= got;
		if (got < n)
			break;
	}
	return written;
}

static void rng_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct rng_dev *r = to_rng(dev);
	struct virtq *vq = &dev->vqs[0];
	bool pushed = false;

	if (q != 0 || !r->active || r->broken)
		return;
	for (;;) {
		int ret = virtq_pop(vq, &r->chain);
		uint32_t n;

		if (ret < 0) {
			r->broken = true;
			virtio_dev_fail(dev, vq->error);
			break;
		}
		if (ret == 0) {
			if (virtq_enable_notify(vq))
				continue;
			break;
		}
		n = serve(r, &r->chain);
		if (virtq_push(vq, r->chain.head, n))
			virtio_dev_log(dev, "%s", vq->error);
		virtio_stat_add(&dev->stats.reads, 1);
		virtio_stat_add(&dev->stats.read_bytes, n);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify(dev, 0);
}

static void rng_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned int len)
{
	/* No config space: the transport never calls this (config_size 0). */
}

static void rng_config_write(struct virtio_dev *dev, uint32_t off, const void *data, unsigned int len)
{
}

static int rng_activate(struct virtio_dev *dev)
{
	to_rng(dev)->active = true;
	to_rng(dev)->broken = false;
	return 0;
}

static void rng_reset(struct virtio_dev *dev)
{
	to_rng(dev)->active = false;
	to_rng(dev)->broken = false;
}

static void rng_destroy(struct virtio_dev *dev)
{
	free(to_rng(dev));
}

static const struct virtio_dev_ops rng_ops = {
	.config_read = rng_config_read,
	.config_write = rng_config_write,
	.activate = rng_activate,
	.queue_notify = rng_queue_notify,
	.reset = rng_reset,
	.destroy = rng_destroy,
};

struct virtio_dev *virtio_rng_create(void)
{
	struct rng_dev *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->vdev.ops = &rng_ops;
	r->vdev.name = "virtio-rng";
	r->vdev.device_id = VIRTIO_ID_RNG;
	r->vdev.features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
			   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	r->vdev.config_size = 0;
	r->vdev.num_queues = 1;
	r->vdev.queue_max = VIRTIO_RNG_QUEUE_SIZE;
	return &r->vdev;
}
