/* virtio-mmio version 2: the register file and the device status state machine, as a table of legal transitions. */
#include "devices/virtio_mmio.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_spec.h"
#include "vmm/snap.h"

#define VMMIO_VENDOR_ID 0x4d564d4du /* "MMVM" */
#define VMMIO_MAX_CONFIG (VMMIO_SLOT_SIZE - VIRTIO_MMIO_CONFIG)

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRV VIRTIO_STATUS_DRIVER
#define FOK VIRTIO_STATUS_FEATURES_OK
#define DOK VIRTIO_STATUS_DRIVER_OK
#define FAILED VIRTIO_STATUS_FAILED

struct vmmio {
	pthread_mutex_t lock;
	struct virtio_dev *dev;
	const struct guest_mem *gm;
	int irq_fd;

	uint32_t status; /* driver bits | VIRTIO_STATUS_NEEDS_RESET */
	uint32_t isr;    /* InterruptStatus */
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint64_t drv_features;
	uint32_t queue_sel;
	uint32_t config_generation;
	bool active; /* activate() succeeded and no reset since */
	bool quiesced; /* snapshot: notifications ignored until vmmio_resume */
	struct virtq vqs[VIRTIO_MAX_QUEUES];
};

/*
 * Driver-written status: the legal transitions (spec 3.1.1 driver
 * initialisation order; FAILED may be added in any state, 2.1.1). Writing 0
 * is a reset and always legal; rewriting the current value changes nothing.
 * NEEDS_RESET is the device's bit and is ignored in what the driver writes.
 */
static const struct {
	uint8_t from, to;
} vmmio_transitions[] = {
	{ 0, ACK },
	{ ACK, ACK | DRV },
	{ ACK | DRV, ACK | DRV | FOK },
	{ ACK | DRV | FOK, ACK | DRV | FOK | DOK },
	{ 0, FAILED },
	{ ACK, ACK | FAILED },
	{ ACK | DRV, ACK | DRV | FAILED },
	{ ACK | DRV | FOK, ACK | DRV | FOK | FAILED },
	{ ACK | DRV | FOK | DOK, ACK | DRV | FOK | DOK | FAILED },
};

static bool transition_legal(uint32_t from, uint32_t to)
{
	for (size_t i = 0; i < sizeof(vmmio_transitions) / sizeof(vmmio_transitions[0]); i++)
		if (vmmio_transitions[i].from == from && vmmio_transitions[i].to == to)
			return true;
	return false;
}

static uint32_t driver_status(const struct vmmio *t)
{
	return t->status & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;
}

/* Queue registers may be written between FEATURES_OK and DRIVER_OK (spec
 * 3.1.1 step 7, 4.2.3.2), never after FAILED. */
static bool queue_setup_allowed(const struct vmmio *t)
{
	return driver_status(t) == (ACK | DRV | FOK);
}

static bool running(const struct vmmio *t)
{
	return t->active && (t->status & DOK) && !(t->status & (FAILED | VIRTIO_STATUS_NEEDS_RESET));
}

static void raise_irq(struct vmmio *t, uint32_t bits)
{
	uint32_t old = t->isr;
	uint64_t one = 1;

	t->isr |= bits;
	if ((old & bits) == bits || t->irq_fd < 0)
		return; /* already pending: the guest has yet to read it */
	if (write(t->irq_fd, &one, sizeof(one)) != sizeof(one))
		virtio_dev_log(t->dev, "cannot raise the interrupt");
}

/* ---- upcalls from the device ---- */

static void t_lock(void *opaque)
{
	struct vmmio *t = opaque;

	pthread_mutex_lock(&t->lock);
}

static void t_unlock(void *opaque)
{
	struct vmmio *t = opaque;

	pthread_mutex_unlock(&t->lock);
}

static void t_notify(void *opaque, unsigned int q)
{
	struct vmmio *t = opaque;

	if (q >= t->dev->num_queues || !t->active)
		return;
	if (virtq_should_notify(&t->vqs[q]))
		raise_irq(t, VIRTIO_MMIO_INT_VRING);
}

static void t_needs_reset(void *opaque)
{
	struct vmmio *t = opaque;

	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* 2.1.2: with DRIVER_OK set, tell the driver by a config change. */
	if (t->status & DOK)
		raise_irq(t, VIRTIO_MMIO_INT_CONFIG);
}

static const struct virtio_transport_ops vmmio_tops = {
	.lock = t_lock,
	.unlock = t_unlock,
	.notify = t_notify,
	.needs_reset = t_needs_reset,
};

/* ---- state changes ---- */

static void device_reset(struct vmmio *t)
{
	struct virtio_dev *dev = t->dev;

	dev->ops->reset(dev);
	for (unsigned int i = 0; i < dev->num_queues; i++)
		virtq_reset(&t->vqs[i]);
	t->status = 0;
	t->isr = 0;
	t->dev_features_sel = 0;
	t->drv_features_sel = 0;
	t->drv_features = 0;
	t->queue_sel = 0;
	t->active = false;
	dev->acked = 0;
}

static bool features_acceptable(struct vmmio *t)
{
	uint64_t offered = t->dev->features, acked = t->drv_features;

	if (acked & ~offered) {
		virtio_dev_log(t->dev, "driver accepted features 0x%llx that were not offered",
			       (unsigned long long)(acked & ~offered));
		return false;
	}
	/* minivm is a modern-only device (spec 6.1: the device may fail
	 * FEATURES_OK without VIRTIO_F_VERSION_1). */
	if (!(acked & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		virtio_dev_log(t->dev, "driver did not accept VIRTIO_F_VERSION_1");
		return false;
	}
	return true;
}

static void activate(struct vmmio *t)
{
	struct virtio_dev *dev = t->dev;
	int r;

	dev->acked = t->drv_features;
	for (unsigned int i = 0; i < dev->num_queues; i++) {
		t->vqs[i].event_idx = dev->acked & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
		t->vqs[i].indirect = dev->acked & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	}
	r = dev->ops->activate(dev);
	if (r < 0) {
		virtio_dev_log(dev, "activation failed (%d)", r);
		t_needs_reset(t);
		return;
	}
	t->active = true;
}

static void write_status(struct vmmio *t, uint32_t v)
{
	uint32_t cur = driver_status(t), want = v & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;

	if (v == 0) {
		device_reset(t);
		return;
	}
	if (want == cur)
		return;
	if (!transition_legal(cur, want)) {
		virtio_dev_log(t->dev, "illegal status transition 0x%x -> 0x%x refused", cur, want);
		return;
	}
	if ((want & FOK) && !(cur & FOK) && !features_acceptable(t))
		return; /* FEATURES_OK stays clear: the driver reads it back (3.1.1) */
	t->status = want | (t->status & VIRTIO_STATUS_NEEDS_RESET);
	if ((want & DOK) && !(cur & DOK))
		activate(t);
}

static struct virtq *selected_queue(struct vmmio *t)
{
	return t->queue_sel < t->dev->num_queues ? &t->vqs[t->queue_sel] : NULL;
}

/* A write to a queue layout register: only during setup, on a valid,
 * not-yet-ready queue. */
static struct virtq *queue_for_setup(struct vmmio *t, const char *reg)
{
	struct virtq *vq = selected_queue(t);

	if (!queue_setup_allowed(t)) {
		virtio_dev_log(t->dev, "%s written in status 0x%x; ignored", reg, t->status);
		return NULL;
	}
	if (!vq) {
		virtio_dev_log(t->dev, "%s written for absent queue %u; ignored", reg, t->queue_sel);
		return NULL;
	}
	if (vq->ready) {
		virtio_dev_log(t->dev, "%s written while queue %u is ready; ignored", reg,
			       t->queue_sel);
		return NULL;
	}
	return vq;
}

static void set_low(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffff00000000ULL) | v;
}

static void set_high(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffULL) | (uint64_t)v << 32;
}

static void write_queue_ready(struct vmmio *t, uint32_t v)
{
	struct virtq *vq;

	if (v == 0) {
		/* Linux writes 0 when it deletes queues, after a reset: legal
		 * whenever the queue is not in use. Stopping a live queue needs
		 * VIRTIO_F_RING_RESET, which minivm does not offer. */
		vq = selected_queue(t);
		if (!vq || !vq->ready)
			return;
		if (t->status & DOK) {
			virtio_dev_log(t->dev, "QueueReady=0 on live queue %u; ignored", t->queue_sel);
			return;
		}
		vq->ready = false;
		return;
	}
	vq = queue_for_setup(t, "QueueReady");
	if (!vq)
		return;
	if (virtq_check(vq, t->dev->queue_max)) {
		virtio_dev_log(t->dev, "queue %u: %s", t->queue_sel, vq->error);
		t_needs_reset(t);
		return;
	}
	vq->ready = true;
}

static void notify(struct vmmio *t, uint32_t q)
{
	if (!running(t))
		return; /* before DRIVER_OK, after FAILED or NEEDS_RESET: nothing to do */
	if (t->quiesced)
		return; /* vmmio_resume notifies every ready queue */
	if (q >= t->dev->num_queues || !t->vqs[q].ready) {
		virtio_dev_log(t->dev, "notify for absent or disabled queue %u; ignored", q);
		return;
	}
	t->dev->ops->queue_notify(t->dev, q);
}

/* ---- register access ---- */

static uint32_t read_reg(struct vmmio *t, uint32_t off)
{
	struct virtio_dev *dev = t->dev;
	struct virtq *vq;

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return VIRTIO_MMIO_VERSION_MODERN;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VMMIO_VENDOR_ID;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->dev_features_sel == 0)
			return (uint32_t)dev->features;
		if (t->dev_features_sel == 1)
			return (uint32_t)(dev->features >> 32);
		return 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return selected_queue(t) ? dev->queue_max : 0; /* 0: no such queue */
	case VIRTIO_MMIO_QUEUE_READY:
		vq = selected_queue(t);
		return vq && vq->ready;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->isr;
	case VIRTIO_MMIO_STATUS:
		return t->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffffu; /* 4.2.2: no shared memory region */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return t->config_generation;
	default:
		virtio_dev_log(dev, "read of register 0x%03x refused", off);
		return 0;
	}
}

static void write_reg(struct vmmio *t, uint32_t off, uint32_t v)
{
	struct virtio_dev *dev = t->dev;
	struct virtq *vq;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->dev_features_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->drv_features_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* 3.1.1 step 5: only before FEATURES_OK. */
		if (driver_status(t) != (ACK | DRV)) {
			virtio_dev_log(dev, "DriverFeatures written in status 0x%x; ignored", t->status);
			return;
		}
		if (t->drv_features_sel == 0)
			set_low(&t->drv_features, v);
		else if (t->drv_features_sel == 1)
			set_high(&t->drv_features, v);
		else if (v)
			virtio_dev_log(dev, "DriverFeatures word %u does not exist", t->drv_features_sel);
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = v;
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
		vq = queue_for_setup(t, "QueueNum");
		if (vq)
			vq->size = v > UINT16_MAX ? 0 : (uint16_t)v; /* checked at QueueReady */
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		write_queue_ready(t, v);
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		notify(t, v);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->isr &= ~v;
		return;
	case VIRTIO_MMIO_STATUS:
		write_status(t, v);
		return;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: {
		uint64_t *r;

		vq = queue_for_setup(t, "a queue address");
		if (!vq)
			return;
		r = off < VIRTIO_MMIO_QUEUE_DRIVER_LOW   ? &vq->desc_gpa :
		    off < VIRTIO_MMIO_QUEUE_DEVICE_LOW   ? &vq->avail_gpa :
							   &vq->used_gpa;
		if (off & 4)
			set_high(r, v);
		else
			set_low(r, v);
		return;
	}
	case VIRTIO_MMIO_SHM_SEL:
		return;
	default:
		virtio_dev_log(dev, "write of register 0x%03x refused", off);
		return;
	}
}

static bool len_ok(unsigned int len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

void vmmio_read(struct vmmio *t, uint64_t off, void *data, unsigned int len)
{
	if (len_ok(len))
		memset(data, 0, len);
	pthread_mutex_lock(&t->lock);
	if (!len_ok(len) || off >= VMMIO_SLOT_SIZE) {
		virtio_dev_log(t->dev, "bad read at 0x%llx len %u", (unsigned long long)off, len);
	} else if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (c + len <= t->dev->config_size)
			t->dev->ops->config_read(t->dev, (uint32_t)c, data, len);
		else
			virtio_dev_log(t->dev, "config read at 0x%llx len %u beyond %u bytes",
				       (unsigned long long)c, len, t->dev->config_size);
	} else if (len != 4 || off % 4) {
		/* 4.2.2.2: registers take 32-bit aligned accesses only. */
		virtio_dev_log(t->dev, "register read at 0x%llx len %u refused",
			       (unsigned long long)off, len);
	} else {
		uint32_t v = read_reg(t, (uint32_t)off);

		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

void vmmio_write(struct vmmio *t, uint64_t off, const void *data, unsigned int len)
{
	pthread_mutex_lock(&t->lock);
	if (!len_ok(len) || off >= VMMIO_SLOT_SIZE) {
		virtio_dev_log(t->dev, "bad write at 0x%llx len %u", (unsigned long long)off, len);
	} else if (off >= VIRTIO_MMIO_CONFIG) {
		uint64_t c = off - VIRTIO_MMIO_CONFIG;

		if (c + len <= t->dev->config_size)
			t->dev->ops->config_write(t->dev, (uint32_t)c, data, len);
		else
			virtio_dev_log(t->dev, "config write at 0x%llx len %u beyond %u bytes",
				       (unsigned long long)c, len, t->dev->config_size);
	} else if (len != 4 || off % 4) {
		virtio_dev_log(t->dev, "register write at 0x%llx len %u refused",
			       (unsigned long long)off, len);
	} else {
		uint32_t v;

		memcpy(&v, data, 4);
		write_reg(t, (uint32_t)off, v);
	}
	pthread_mutex_unlock(&t->lock);
}

void vmmio_queue_notify(struct vmmio *t, unsigned int q)
{
	pthread_mutex_lock(&t->lock);
	notify(t, q);
	pthread_mutex_unlock(&t->lock);
}

unsigned int vmmio_num_queues(const struct vmmio *t)
{
	return t->dev->num_queues;
}

uint32_t vmmio_status(struct vmmio *t)
{
	uint32_t s;

	pthread_mutex_lock(&t->lock);
	s = t->status;
	pthread_mutex_unlock(&t->lock);
	return s;
}

struct vmmio *vmmio_create(struct virtio_dev *dev, const struct guest_mem *gm, int irq_fd)
{
	struct vmmio *t;
	int r;

	if (!dev || !dev->ops || !gm || dev->num_queues == 0 || dev->num_queues > VIRTIO_MAX_QUEUES ||
	    dev->queue_max == 0 || dev->queue_max > VIRTQ_MAX_SIZE ||
	    (dev->queue_max & (dev->queue_max - 1)) || dev->config_size > VMMIO_MAX_CONFIG ||
	    !(dev->features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	r = pthread_mutex_init(&t->lock, NULL);
	if (r) {
		free(t);
		errno = r;
		return NULL;
	}
	t->dev = dev;
	t->gm = gm;
	t->irq_fd = irq_fd;
	for (unsigned int i = 0; i < dev->num_queues; i++)
		virtq_init(&t->vqs[i], gm);
	dev->tops = &vmmio_tops;
	dev->transport = t;
	dev->vqs = t->vqs;
	dev->acked = 0;
	return t;
}

/* ---- snapshot ---- */

#define VMMIO_SNAP_VERSION 1u

struct virtio_dev *vmmio_device(struct vmmio *t)
{
	return t->dev;
}

void vmmio_quiesce(struct vmmio *t)
{
	pthread_mutex_lock(&t->lock);
	if (!t->quiesced) {
		t->quiesced = true;
		if (t->dev->ops->quiesce)
			t->dev->ops->quiesce(t->dev, true);
	}
	pthread_mutex_unlock(&t->lock);
}

static unsigned int inflight_locked(struct vmmio *t)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->dev->num_queues; i++)
		n += t->vqs[i].inflight;
	if (t->dev->ops->busy)
		n += t->dev->ops->busy(t->dev);
	return n;
}

unsigned int vmmio_inflight(struct vmmio *t)
{
	unsigned int n;

	pthread_mutex_lock(&t->lock);
	n = inflight_locked(t);
	pthread_mutex_unlock(&t->lock);
	return n;
}

void vmmio_resume(struct vmmio *t)
{
	struct virtio_dev *dev = t->dev;

	pthread_mutex_lock(&t->lock);
	if (t->quiesced) {
		t->quiesced = false;
		if (dev->ops->quiesce)
			dev->ops->quiesce(dev, false);
		for (unsigned int i = 0; i < dev->num_queues && running(t); i++)
			if (t->vqs[i].ready)
				dev->ops->queue_notify(dev, i);
		if (t->isr && t->irq_fd >= 0) {
			uint64_t one = 1;

			if (write(t->irq_fd, &one, sizeof(one)) != sizeof(one))
				virtio_dev_log(dev, "cannot raise the interrupt");
		}
	}
	pthread_mutex_unlock(&t->lock);
}

/* The writer's error is sticky: these drop the per-call result and the
 * caller returns w->err once at the end. */
static void put32(struct snap_writer *w, uint32_t v)
{
	if (snap_put_u32(w, v))
		return;
}

static void put64(struct snap_writer *w, uint64_t v)
{
	if (snap_put_u64(w, v))
		return;
}

int vmmio_save(struct vmmio *t, struct snap_writer *w, uint32_t instance)
{
	struct virtio_dev *dev = t->dev;
	int r;

	pthread_mutex_lock(&t->lock);
	if (!t->quiesced) {
		r = -EINVAL;
		goto out;
	}
	if (inflight_locked(t)) {
		r = -EBUSY;
		goto out;
	}
	r = snap_begin(w, SNAP_TAG_VIRTIO, instance);
	if (r)
		goto out;
	put32(w, VMMIO_SNAP_VERSION);
	put32(w, dev->device_id);
	put32(w, dev->num_queues);
	put64(w, dev->features);
	put32(w, t->status);
	put32(w, t->isr);
	put32(w, t->dev_features_sel);
	put32(w, t->drv_features_sel);
	put64(w, t->drv_features);
	put32(w, t->queue_sel);
	put32(w, t->config_generation);
	put32(w, t->active);
	for (unsigned int i = 0; i < dev->num_queues; i++) {
		const struct virtq *vq = &t->vqs[i];

		put32(w, vq->size);
		put32(w, vq->ready);
		put64(w, vq->desc_gpa);
		put64(w, vq->avail_gpa);
		put64(w, vq->used_gpa);
		put32(w, vq->last_avail);
		put32(w, vq->used_idx);
		put32(w, vq->signalled_used);
		put32(w, vq->signalled_valid);
	}
	if (dev->ops->save && !w->err) {
		r = dev->ops->save(dev, w);
		if (r)
			goto out;
	}
	r = snap_end(w);
out:
	pthread_mutex_unlock(&t->lock);
	return r ? r : w->err;
}

/* The snapshot's view of a transport, read whole before anything is applied. */
struct vmmio_snap {
	uint32_t version, device_id, num_queues;
	uint64_t features;
	uint32_t status, isr, dev_features_sel, drv_features_sel;
	uint64_t drv_features;
	uint32_t queue_sel, config_generation, active;
	struct {
		uint32_t size, ready;
		uint64_t desc, avail, used;
		uint32_t last_avail, used_idx, signalled_used, signalled_valid;
	} q[VIRTIO_MAX_QUEUES];
};

/* A driver status (without NEEDS_RESET) the state machine can reach. */
static bool status_reachable(uint32_t st)
{
	if (st == 0)
		return true;
	for (size_t i = 0; i < sizeof(vmmio_transitions) / sizeof(vmmio_transitions[0]); i++)
		if (vmmio_transitions[i].to == st)
			return true;
	return false;
}

__attribute__((format(printf, 4, 5))) static int snap_fail(struct vmmio *t, char *err, size_t errlen,
							  const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", t->dev->name, msg);
	return -EINVAL;
}

static int snap_read(struct snap_cursor *c, struct vmmio_snap *s, unsigned int max_queues)
{
	int r = 0;

	r = r ? r : snap_get_u32(c, &s->version);
	r = r ? r : snap_get_u32(c, &s->device_id);
	r = r ? r : snap_get_u32(c, &s->num_queues);
	if (r || s->version != VMMIO_SNAP_VERSION || s->num_queues != max_queues)
		return r; /* the caller reports version and count */
	r = r ? r : snap_get_u64(c, &s->features);
	r = r ? r : snap_get_u32(c, &s->status);
	r = r ? r : snap_get_u32(c, &s->isr);
	r = r ? r : snap_get_u32(c, &s->dev_features_sel);
	r = r ? r : snap_get_u32(c, &s->drv_features_sel);
	r = r ? r : snap_get_u64(c, &s->drv_features);
	r = r ? r : snap_get_u32(c, &s->queue_sel);
	r = r ? r : snap_get_u32(c, &s->config_generation);
	r = r ? r : snap_get_u32(c, &s->active);
	for (unsigned int i = 0; i < s->num_queues && !r; i++) {
		r = r ? r : snap_get_u32(c, &s->q[i].size);
		r = r ? r : snap_get_u32(c, &s->q[i].ready);
		r = r ? r : snap_get_u64(c, &s->q[i].desc);
		r = r ? r : snap_get_u64(c, &s->q[i].avail);
		r = r ? r : snap_get_u64(c, &s->q[i].used);
		r = r ? r : snap_get_u32(c, &s->q[i].last_avail);
		r = r ? r : snap_get_u32(c, &s->q[i].used_idx);
		r = r ? r : snap_get_u32(c, &s->q[i].signalled_used);
		r = r ? r : snap_get_u32(c, &s->q[i].signalled_valid);
	}
	return r;
}

static int snap_check(struct vmmio *t, const struct vmmio_snap *s, char *err, size_t errlen)
{
	struct virtio_dev *dev = t->dev;
	uint32_t drv = s->status & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET;
	bool running_st = (drv & DOK) && !(s->status & (FAILED | VIRTIO_STATUS_NEEDS_RESET));

	if (s->version != VMMIO_SNAP_VERSION)
		return snap_fail(t, err, errlen, "section version %u, this minivm reads %u", s->version,
				 VMMIO_SNAP_VERSION);
	if (s->device_id != dev->device_id)
		return snap_fail(t, err, errlen, "the snapshot has a device of id %u in this slot, this VM id %u",
				 s->device_id, dev->device_id);
	if (s->num_queues != dev->num_queues)
		return snap_fail(t, err, errlen, "%u queues in the snapshot, %u here", s->num_queues,
				 dev->num_queues);
	if (drv > 0xff || !status_reachable(drv))
		return snap_fail(t, err, errlen, "device status 0x%x is not one a driver can reach", s->status);
	if (s->isr & ~(uint32_t)(VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG))
		return snap_fail(t, err, errlen, "interrupt status 0x%x has unknown bits", s->isr);
	if (s->drv_features & ~dev->features)
		return snap_fail(t, err, errlen,
				 "driver features 0x%llx include 0x%llx, which this device does not offer",
				 (unsigned long long)s->drv_features,
				 (unsigned long long)(s->drv_features & ~dev->features));
	if ((drv & FOK) && !(s->drv_features & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return snap_fail(t, err, errlen, "FEATURES_OK without VIRTIO_F_VERSION_1");
	if (s->active > 1)
		return snap_fail(t, err, errlen, "active flag %u", s->active);
	if (s->active != running_st)
		return snap_fail(t, err, errlen, "status 0x%x does not match the device being %s",
				 s->status, s->active ? "active" : "inactive");
	for (unsigned int i = 0; i < s->num_queues; i++) {
		struct virtq vq;

		if (s->q[i].ready > 1 || s->q[i].signalled_valid > 1 || s->q[i].size > UINT16_MAX ||
		    s->q[i].last_avail > UINT16_MAX || s->q[i].used_idx > UINT16_MAX ||
		    s->q[i].signalled_used > UINT16_MAX)
			return snap_fail(t, err, errlen, "queue %u: a field out of range", i);
		if (!s->q[i].ready) {
			/* Positions start at QueueReady: none before it. */
			if (s->q[i].last_avail || s->q[i].used_idx || s->q[i].signalled_used ||
			    s->q[i].signalled_valid)
				return snap_fail(t, err, errlen, "queue %u is not ready but has ring positions", i);
			continue;
		}
		if (!(drv & FOK))
			return snap_fail(t, err, errlen, "queue %u ready before FEATURES_OK", i);
		virtq_init(&vq, t->gm);
		vq.size = (uint16_t)s->q[i].size;
		vq.desc_gpa = s->q[i].desc;
		vq.avail_gpa = s->q[i].avail;
		vq.used_gpa = s->q[i].used;
		if (virtq_check(&vq, dev->queue_max))
			return snap_fail(t, err, errlen, "queue %u (size %u, QueueNumMax %u): %s", i,
					 s->q[i].size, dev->queue_max, vq.error);
		/* Nothing was in flight at the snapshot: every chain popped was
		 * returned, and both counters start at 0 at QueueReady. */
		if (s->q[i].last_avail != s->q[i].used_idx)
			return snap_fail(t, err, errlen,
					 "queue %u: %u chains taken but %u returned (in flight at the snapshot)",
					 i, s->q[i].last_avail, s->q[i].used_idx);
	}
	return 0;
}

int vmmio_restore(struct vmmio *t, struct snap_cursor *c, char *err, size_t errlen)
{
	struct virtio_dev *dev = t->dev;
	struct vmmio_snap s;
	char dev_err[192];
	int r;

	memset(&s, 0, sizeof(s));
	pthread_mutex_lock(&t->lock);
	if (t->status || t->active || t->quiesced) {
		snprintf(err, errlen, "%s: restore into a device already in use", dev->name);
		r = -EBUSY;
		goto out;
	}
	r = snap_read(c, &s, dev->num_queues);
	if (r) {
		snprintf(err, errlen, "%s: device section truncated", dev->name);
		r = -EBADMSG;
		goto out;
	}
	r = snap_check(t, &s, err, errlen);
	if (r)
		goto out;
	if (dev->ops->restore) {
		dev_err[0] = 0;
		r = dev->ops->restore(dev, c, dev_err, sizeof(dev_err));
		if (r) {
			snprintf(err, errlen, "%s: %s", dev->name, dev_err[0] ? dev_err : "device state refused");
			goto out;
		}
	}
	if (c->left) {
		snprintf(err, errlen, "%s: %zu bytes after the device state", dev->name, c->left);
		r = -EBADMSG;
		goto out;
	}
	/* Apply: from here on nothing is refused but the activation. */
	t->status = s.status;
	t->isr = s.isr;
	t->dev_features_sel = s.dev_features_sel;
	t->drv_features_sel = s.drv_features_sel;
	t->drv_features = s.drv_features;
	t->queue_sel = s.queue_sel;
	t->config_generation = s.config_generation;
	for (unsigned int i = 0; i < dev->num_queues; i++) {
		struct virtq *vq = &t->vqs[i];

		virtq_reset(vq);
		vq->size = (uint16_t)s.q[i].size;
		vq->desc_gpa = s.q[i].desc;
		vq->avail_gpa = s.q[i].avail;
		vq->used_gpa = s.q[i].used;
		vq->ready = s.q[i].ready;
		vq->last_avail = (uint16_t)s.q[i].last_avail;
		vq->used_idx = (uint16_t)s.q[i].used_idx;
		vq->signalled_used = (uint16_t)s.q[i].signalled_used;
		vq->signalled_valid = s.q[i].signalled_valid;
	}
	/* Quiesced before activation, so the device starts no work (a NIC
	 * would read its backend into guest RAM) until vmmio_resume. */
	t->quiesced = true;
	if (dev->ops->quiesce)
		dev->ops->quiesce(dev, true);
	if (s.active) {
		/* As write_status() does on DRIVER_OK, without the guest. */
		dev->acked = t->drv_features;
		for (unsigned int i = 0; i < dev->num_queues; i++) {
			t->vqs[i].event_idx = dev->acked & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
			t->vqs[i].indirect = dev->acked & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
		}
		r = dev->ops->activate(dev);
		if (r < 0) {
			snprintf(err, errlen, "%s: the device refused to start with the snapshot's queues (%d)",
				 dev->name, r);
			r = -EINVAL;
			goto out;
		}
		t->active = true;
	}
	r = 0;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

void vmmio_destroy(struct vmmio *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	device_reset(t);
	pthread_mutex_unlock(&t->lock);
	t->dev->ops->destroy(t->dev);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
