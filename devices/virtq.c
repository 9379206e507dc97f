/* Split virtqueue walker: every guest index and address bounded and checked, each descriptor copied once. */
#include "devices/virtq.h"

#include <errno.h>
#include <string.h>

#include "devices/virtio_spec.h"

static int vq_fail(struct virtq *vq, const char *why)
{
	vq->error = why;
	return -EINVAL;
}

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* Aligned 16-bit ring fields are read and written with single atomic
 * accesses, so the compiler neither tears nor repeats them. */
static int vq_load16(const struct virtq *vq, uint64_t gpa, uint16_t *out)
{
	const uint16_t *p = gm_ptr(vq->gm, gpa, sizeof(*p));

	if (!p || ((uintptr_t)p & 1))
		return -EFAULT;
	*out = __atomic_load_n(p, __ATOMIC_RELAXED);
	return 0;
}

static int vq_store16(const struct virtq *vq, uint64_t gpa, uint16_t v)
{
	uint16_t *p = gm_ptr(vq->gm, gpa, sizeof(*p));

	if (!p || ((uintptr_t)p & 1))
		return -EFAULT;
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
	return 0;
}

/* Ring geometry (spec 2.7.6, 2.7.8); size <= VIRTQ_MAX_SIZE so none overflow. */
static uint64_t avail_ring_gpa(const struct virtq *vq, uint16_t slot)
{
	return vq->avail_gpa + VIRTQ_AVAIL_RING_OFF + 2ULL * (slot & (vq->size - 1));
}

static uint64_t used_event_gpa(const struct virtq *vq)
{
	return vq->avail_gpa + VIRTQ_AVAIL_RING_OFF + 2ULL * vq->size;
}

static uint64_t used_ring_gpa(const struct virtq *vq, uint16_t slot)
{
	return vq->used_gpa + VIRTQ_USED_RING_OFF + 8ULL * (slot & (vq->size - 1));
}

static uint64_t avail_event_gpa(const struct virtq *vq)
{
	return vq->used_gpa + VIRTQ_USED_RING_OFF + 8ULL * vq->size;
}

static bool head_inflight(const struct virtq *vq, uint16_t head)
{
	return vq->inflight_map[head / 64] & (1ULL << (head % 64));
}

static void clear_state(struct virtq *vq)
{
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->inflight = 0;
	memset(vq->inflight_map, 0, sizeof(vq->inflight_map));
}

void virtq_init(struct virtq *vq, const struct guest_mem *gm)
{
	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
}

void virtq_reset(struct virtq *vq)
{
	const struct guest_mem *gm = vq->gm;

	virtq_init(vq, gm);
}

int virtq_check(struct virtq *vq, uint16_t max_size)
{
	uint64_t n = vq->size;

	clear_state(vq);
	if (max_size > VIRTQ_MAX_SIZE)
		max_size = VIRTQ_MAX_SIZE;
	if (!is_pow2(vq->size) || vq->size > max_size)
		return vq_fail(vq, "queue size is not a power of 2 within QueueNumMax");
	if (vq->desc_gpa % VIRTQ_DESC_ALIGN || vq->avail_gpa % VIRTQ_AVAIL_ALIGN ||
	    vq->used_gpa % VIRTQ_USED_ALIGN)
		return vq_fail(vq, "ring address misaligned (spec 2.7.1)");
	/* Sizes from spec 2.7.1's table, event fields included. */
	if (!gm_ptr(vq->gm, vq->desc_gpa, 16 * n))
		return vq_fail(vq, "descriptor table outside RAM");
	if (!gm_ptr(vq->gm, vq->avail_gpa, 6 + 2 * n))
		return vq_fail(vq, "available ring outside RAM");
	if (!gm_ptr(vq->gm, vq->used_gpa, 6 + 8 * n))
		return vq_fail(vq, "used ring outside RAM");
	return 0;
}

/* Follows the chain at `head` into *c. Bounds: at most vq->size descriptors
 * from the ring's table, at most the table's length from an indirect table,
 * at most vq->size segments in all; so every walk ends. */
static int vq_walk(struct virtq *vq, uint16_t head, struct virtq_chain *c)
{
	uint64_t table = vq->desc_gpa;
	uint32_t table_len = vq->size;
	uint32_t budget = vq->size;
	uint64_t rlen = 0, wlen = 0;
	bool in_indirect = false;
	uint16_t idx = head;

	c->head = head;
	c->nseg = 0;
	c->nread = 0;
	for (;;) {
		struct virtq_desc d;

		if (budget == 0)
			return vq_fail(vq, "descriptor chain longer than its table (a loop?)");
		budget--;
		/* idx < table_len, and [table, table + 16 * table_len) was
		 * checked, so this cannot wrap. One copy; only `d` is used. */
		if (gm_read(vq->gm, table + 16ULL * idx, &d, sizeof(d)))
			return vq_fail(vq, "descriptor outside RAM");

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* 2.7.5.3: one level only, never with NEXT, a table
			 * of whole descriptors. WRITE on it is ignored. */
			if (!vq->indirect)
				return vq_fail(vq, "indirect descriptor not negotiated");
			if (in_indirect)
				return vq_fail(vq, "nested indirect descriptor");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return vq_fail(vq, "indirect descriptor with NEXT set");
			if (d.len == 0 || d.len % sizeof(struct virtq_desc))
				return vq_fail(vq, "indirect table length not a multiple of 16");
			if (d.len / sizeof(struct virtq_desc) > vq->size)
				return vq_fail(vq, "indirect table longer than the queue");
			if (!gm_ptr(vq->gm, d.addr, d.len))
				return vq_fail(vq, "indirect table outside RAM");
			table = d.addr;
			table_len = d.len / sizeof(struct virtq_desc);
			budget = table_len;
			idx = 0;
			in_indirect = true;
			continue;
		}

		if (!gm_ptr(vq->gm, d.addr, d.len))
			return vq_fail(vq, "buffer outside RAM");
		if (c->nseg >= vq->size)
			return vq_fail(vq, "chain has more buffers than the queue size");
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			wlen += d.len;
		} else {
			/* 2.7.4.2: readable buffers come before writable ones. */
			if (c->nseg > c->nread)
				return vq_fail(vq, "device-readable buffer after a writable one");
			rlen += d.len;
			c->nread++;
		}
		if (rlen > UINT32_MAX || wlen > UINT32_MAX)
			return vq_fail(vq, "chain length exceeds 4 GiB");
		c->seg[c->nseg++] = (struct virtq_seg){
			.gpa = d.addr,
			.len = d.len,
			.write = d.flags & VIRTQ_DESC_F_WRITE,
		};

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_len)
			return vq_fail(vq, "next index out of range");
		idx = d.next;
	}
	c->read_len = (uint32_t)rlen;
	c->write_len = (uint32_t)wlen;
	return 0;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	uint16_t avail_idx, head, pending;
	int r;

	if (!vq->ready)
		return 0;
	if (vq_load16(vq, vq->avail_gpa + VIRTQ_AVAIL_IDX_OFF, &avail_idx))
		return vq_fail(vq, "available ring outside RAM");
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	/* 2.7.13: the driver never has more than size buffers outstanding. */
	if (pending > vq->size)
		return vq_fail(vq, "available index moved by more than the queue size");
	/* Read idx before the ring entry and the descriptors it names: pairs
	 * with the driver's write barrier before it updates idx (2.7.13.1,
	 * "the driver MUST perform a suitable memory barrier before the idx
	 * update"). Linux's virtqueue_add + virtio_wmb. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (vq_load16(vq, avail_ring_gpa(vq, vq->last_avail), &head))
		return vq_fail(vq, "available ring outside RAM");
	if (head >= vq->size)
		return vq_fail(vq, "head index out of range");
	if (head_inflight(vq, head))
		return vq_fail(vq, "head made available twice");
	r = vq_walk(vq, head, c);
	if (r)
		return r;
	vq->last_avail++;
	vq->inflight_map[head / 64] |= 1ULL << (head % 64);
	vq->inflight++;
	return 1;
}

int virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct virtq_used_elem e = { .id = head, .len = len };

	if (!vq->ready || head >= vq->size || !head_inflight(vq, head)) {
		vq->error = "pushed a head that is not in flight";
		return -EINVAL;
	}
	if (gm_write(vq->gm, used_ring_gpa(vq, vq->used_idx), &e, sizeof(e))) {
		vq->error = "used ring outside RAM";
		return -EFAULT;
	}
	vq->inflight_map[head / 64] &= ~(1ULL << (head % 64));
	vq->inflight--;
	/* The element must be visible before the index that publishes it
	 * (2.7.8.2: the device updates idx after writing the ring entry); pairs
	 * with the driver's read barrier after it reads used->idx. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vq->used_idx++;
	if (vq_store16(vq, vq->used_gpa + VIRTQ_USED_IDX_OFF, vq->used_idx)) {
		vq->error = "used ring outside RAM";
		return -EFAULT;
	}
	return 0;
}

int virtq_unpop(struct virtq *vq, uint16_t head)
{
	if (!vq->ready || head >= vq->size || !head_inflight(vq, head) || vq->inflight == 0) {
		vq->error = "gave back a head that is not in flight";
		return -EINVAL;
	}
	/* The avail slot last_avail - 1 is read again by the next pop: the
	 * guest may have rewritten it meanwhile (it owns the ring), and the
	 * pop checks it like any other. */
	vq->inflight_map[head / 64] &= ~(1ULL << (head % 64));
	vq->inflight--;
	vq->last_avail--;
	return 0;
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, v;
	bool valid = vq->signalled_valid;

	/* Full barrier: our used->idx store must be visible before we read the
	 * driver's suppression fields, or a driver that just re-enabled
	 * interrupts (and then re-checked used->idx) could miss both this
	 * entry and the interrupt (2.7.10; QEMU virtio_should_notify, Linux
	 * virtqueue_enable_cb_prepare on the other side). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx) {
		if (vq_load16(vq, vq->avail_gpa + VIRTQ_AVAIL_FLAGS_OFF, &v))
			return true;
		return !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	vq->signalled_used = new;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	if (vq_load16(vq, used_event_gpa(vq), &v))
		return true;
	/* 2.7.10.1: notify when used_event lies in [old, new), i.e. the
	 * driver asked to hear about an entry we published since last time
	 * (vring_need_event()). */
	return (uint16_t)(new - v - 1) < (uint16_t)(new - old);
}

bool virtq_enable_notify(struct virtq *vq)
{
	uint16_t avail_idx;

	if (!vq->ready)
		return false;
	if (vq->event_idx) {
		/* avail_event = the slot we will read next: the driver
		 * notifies once it makes that slot available (2.7.10). */
		if (vq_store16(vq, avail_event_gpa(vq), vq->last_avail))
			return false;
		/* Full barrier: publish avail_event before re-reading the
		 * index, else a buffer added between our last pop and the
		 * store is neither seen nor notified. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	if (vq_load16(vq, vq->avail_gpa + VIRTQ_AVAIL_IDX_OFF, &avail_idx))
		return false;
	return avail_idx != vq->last_avail;
}
