/* virtio-mmio devices and the event loop: placement, eventfds, lifecycle. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/ratelimit.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_spec.h"
#include "devices/virtio_vsock.h"
#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"
#include "vmm/evl.h"
#include "vmm/jail.h"
#include "vmm/snap.h"
#include "vmm/vm.h"
#include "vmm/vm_snapshot.h"

#define VM_EVL_ENTRIES 256
#define VM_LAST_DEVICE_IRQ 23 /* the IOAPIC's last pin (MP table maps 0..23) */

static void vm_mmio_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	vmmio_read(opaque, off, data, len);
}

static void vm_mmio_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	vmmio_write(opaque, off, data, len);
}

/* A queue's ioeventfd fired: the guest wrote its index to QueueNotify. */
static void vm_queue_kick(void *opaque, int fd, uint32_t revents)
{
	struct vm_notify *n = opaque;
	uint64_t cnt;

	(void)revents;
	if (read(fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	vmmio_queue_notify(n->transport, n->queue);
}

/* A device's event (policy denial, device failed): into the VM's queue. */
static void vm_dev_event(void *opaque, const struct minivm_event *ev)
{
	vm_post_event(opaque, ev);
}

/* The metrics name and kind of the device going into slot d: blk disks
 * "vda", "vdb"... in slot order (the guest's names), "net0", "vsock", "rng". */
static void vm_dev_label(const struct minivm *vm, struct vm_device *d, const struct virtio_dev *dev)
{
	unsigned int same = 0;
	const char *kind;

	switch (dev->device_id) {
	case VIRTIO_ID_BLOCK: kind = "blk"; break;
	case VIRTIO_ID_NET: kind = "net"; break;
	case VIRTIO_ID_VSOCK: kind = "vsock"; break;
	case VIRTIO_ID_RNG: kind = "rng"; break;
	default: kind = "other"; break;
	}
	for (unsigned int i = 0; i < vm->nr_devs; i++)
		if (&vm->devs[i] != d && strcmp(vm->devs[i].kind, kind) == 0)
			same++;
	snprintf(d->kind, sizeof(d->kind), "%s", kind);
	if (dev->device_id == VIRTIO_ID_BLOCK)
		snprintf(d->name, sizeof(d->name), "vd%c", 'a' + (int)(same % 26));
	else if (dev->device_id == VIRTIO_ID_NET)
		snprintf(d->name, sizeof(d->name), "net%u", same);
	else
		snprintf(d->name, sizeof(d->name), "%s", kind);
}

void vm_devices_metrics(struct minivm *vm, struct minivm_metrics *out)
{
	for (unsigned int i = 0; i < vm->nr_devs && out->nr_devices < MINIVM_METRICS_MAX_DEVICES; i++) {
		const struct vm_device *d = &vm->devs[i];
		struct minivm_device_metrics *m = &out->devices[out->nr_devices];

		if (!d->transport)
			continue;
		out->nr_devices++;
		snprintf(m->name, sizeof(m->name), "%s", d->name);
		snprintf(m->kind, sizeof(m->kind), "%s", d->kind);
		virtio_stats_read(&vmmio_device(d->transport)->stats, m);
		out->policy_denials += m->denied;
		out->ratelimit_throttles += m->throttled;
	}
}

/* Places dev in the next slot: MMIO range, IRQ, irqfd, one ioeventfd per
 * queue, and the kernel command line entry. Takes ownership of dev. */
static int vm_add_device(struct minivm *vm, struct virtio_dev *dev, const char *what)
{
	struct vm_device *d = &vm->devs[vm->nr_devs];
	unsigned int idx = vm->nr_devs;
	struct kvm_irqfd irqfd;
	int r;

	if (vm->nr_devs >= VM_MAX_DEVICES || VM_FIRST_DEVICE_IRQ + idx > VM_LAST_DEVICE_IRQ) {
		dev->ops->destroy(dev);
		vm_set_error(vm, "too many devices (at most %d)", VM_MAX_DEVICES);
		return -ENOSPC;
	}
	memset(d, 0, sizeof(*d));
	vm_dev_label(vm, d, dev);
	dev->event_fn = vm_dev_event;
	dev->event_opaque = vm;
	d->base = VM_MMIO_BASE + (uint64_t)idx * VMMIO_SLOT_SIZE;
	d->irq = VM_FIRST_DEVICE_IRQ + idx;
	for (unsigned int q = 0; q < VM_DEV_MAX_QUEUES; q++)
		d->notify[q].fd = -1;
	d->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irq_fd < 0) {
		r = -errno;
		dev->ops->destroy(dev);
		vm_set_error(vm, "eventfd: %s", strerror(errno));
		return r;
	}
	vm->nr_devs++; /* from here on vm_devices_destroy() cleans up */
	d->transport = vmmio_create(dev, &vm->gm, d->irq_fd);
	if (!d->transport) {
		r = -errno;
		dev->ops->destroy(dev);
		vm_set_error(vm, "%s: cannot create its virtio-mmio transport: %s", what,
			     strerror(errno));
		return r;
	}
	memset(&irqfd, 0, sizeof(irqfd));
	irqfd.fd = (uint32_t)d->irq_fd;
	irqfd.gsi = d->irq;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		r = -errno;
		vm_set_error(vm, "%s: KVM_IRQFD: %s", what, strerror(errno));
		return r;
	}
	r = bus_add(&vm->mmio, d->base, VMMIO_SLOT_SIZE, vm_mmio_read, vm_mmio_write, d->transport);
	if (r) {
		vm_set_error(vm, "%s: cannot place it on the MMIO bus", what);
		return r;
	}
	d->nr_notify = vmmio_num_queues(d->transport);
	if (d->nr_notify > VM_DEV_MAX_QUEUES) {
		vm_set_error(vm, "%s: %u queues, at most %d", what, d->nr_notify, VM_DEV_MAX_QUEUES);
		return -EINVAL;
	}
	for (unsigned int q = 0; q < d->nr_notify; q++) {
		struct vm_notify *n = &d->notify[q];
		struct kvm_ioeventfd ioev;

		n->transport = d->transport;
		n->queue = q;
		n->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->fd < 0) {
			r = -errno;
			vm_set_error(vm, "eventfd: %s", strerror(errno));
			return r;
		}
		memset(&ioev, 0, sizeof(ioev));
		ioev.addr = d->base + VMMIO_NOTIFY_OFF;
		ioev.len = 4;
		ioev.datamatch = q;
		ioev.fd = n->fd;
		ioev.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
		if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioev) < 0) {
			r = -errno;
			vm_set_error(vm, "%s: KVM_IOEVENTFD: %s", what, strerror(errno));
			return r;
		}
		r = evl_add_fd(vm->evl, n->fd, vm_queue_kick, n);
		if (r) {
			vm_set_error(vm, "%s: watching its queue: %s", what, strerror(-r));
			return r;
		}
	}
	snprintf(vm->dev_params[vm->nr_dev_params++], VM_DEV_PARAM_MAX,
		 "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)d->base, d->irq);
	vm_log(vm, 1, "%s at 0x%llx, IRQ %u", what, (unsigned long long)d->base, d->irq);
	return 0;
}

static int vm_add_disk(struct minivm *vm, const char *path, bool ro,
			const struct minivm_rate_limit *limit, unsigned int index)
{
	char err[256], serial[21], what[64];
	struct virtio_dev *dev;
	struct rl_config rl;
	int r;

	snprintf(serial, sizeof(serial), "minivm-disk%u", index);
	dev = virtio_blk_create(path, ro, serial, vm->evl, err, sizeof(err));
	if (!dev) {
		vm_set_error(vm, "%s", err);
		return -EINVAL;
	}
	if (rl_limit_set(limit)) {
		r = rl_config_from_limit(limit, &rl, err, sizeof(err));
		if (r == 0)
			r = virtio_blk_set_rate_limit(dev, &rl, err, sizeof(err));
		if (r) {
			dev->ops->destroy(dev);
			vm_set_error(vm, "disk %s: %s", path, err);
			return r;
		}
		vm_log(vm, 1, "disk %u: at most %llu bytes/s (burst %llu), %llu requests/s (burst %llu)",
		       index, (unsigned long long)limit->bytes_per_s,
		       (unsigned long long)limit->bytes_burst, (unsigned long long)limit->ops_per_s,
		       (unsigned long long)limit->ops_burst);
	}
	snprintf(what, sizeof(what), "disk %u (%s%s)", index, index ? "extra" : "root",
		 ro ? ", read-only" : "");
	return vm_add_device(vm, dev, what);
}

/* The egress policy of cfg.net: its --allow rules, its file, allow-dns.
 * Returns a new policy (the caller frees it) or NULL with vm's error set. */
static struct net_policy *vm_net_policy(struct minivm *vm)
{
	const struct minivm_net *net = &vm->cfg.net;
	struct net_policy *p = calloc(1, sizeof(*p));
	char err[256];

	if (!p) {
		vm_set_error(vm, "net: out of memory");
		return NULL;
	}
	for (unsigned int i = 0; i < net->nr_allow; i++) {
		if (!net->allow[i] || net_policy_add(p, net->allow[i], err, sizeof(err))) {
			vm_set_error(vm, "net: allow rule %u: %s", i + 1,
				     net->allow[i] ? err : "missing");
			free(p);
			return NULL;
		}
	}
	if (net->policy_file && net_policy_load_file(p, net->policy_file, err, sizeof(err))) {
		vm_set_error(vm, "net: %s", err);
		free(p);
		return NULL;
	}
	p->allow_dns = p->allow_dns || net->allow_dns;
	if (p->allow_dns && !net->dns) {
		vm_set_error(vm, "net: allow-dns needs a resolver (dns=ADDR)");
		free(p);
		return NULL;
	}
	return p;
}

/* The NIC: the TAP opened here (before any jail: the device keeps the fd),
 * the policy, the rate limits, and minivm.net= for the guest's agent,
 * which configures the interface before it says it is ready. */
static int vm_add_net(struct minivm *vm)
{
	const struct minivm_net *net = &vm->cfg.net;
	static const uint8_t zero[NET_ETH_ALEN];
	struct agent_net an = { .ip = net->ip, .prefix = net->prefix, .gw = net->gw, .dns = net->dns };
	struct rl_config rl_rx, rl_tx;
	struct net_guest g = { .ip = net->ip, .prefix = net->prefix, .gw = net->gw, .dns = net->dns };
	struct net_policy *policy;
	struct virtio_dev *dev;
	char err[256], what[64], ip[16], param[VM_DEV_PARAM_MAX - sizeof(MINIVM_NET_PARAM) + 1];
	size_t nr_rules;
	bool dns;
	int fd, r;

	r = agent_net_format(&an, param, sizeof(param));
	if (r < 0) {
		vm_set_error(vm, "net: the guest's address, prefix, gateway or resolver is invalid "
			     "(an address in its subnet, a gateway in it too)");
		return -EINVAL;
	}
	if ((rl_limit_set(&net->rx_limit) && rl_config_from_limit(&net->rx_limit, &rl_rx, err, sizeof(err))) ||
	    (rl_limit_set(&net->tx_limit) && rl_config_from_limit(&net->tx_limit, &rl_tx, err, sizeof(err)))) {
		vm_set_error(vm, "net: rate limit: %s", err);
		return -EINVAL;
	}
	memcpy(g.mac, net->mac, NET_ETH_ALEN);
	if (!memcmp(g.mac, zero, NET_ETH_ALEN)) {
		/* Random, locally administered (bit 1), unicast (bit 0 clear). */
		if (getrandom(g.mac, NET_ETH_ALEN, 0) != NET_ETH_ALEN) {
			r = -errno;
			vm_set_error(vm, "net: getrandom for a MAC address: %s", strerror(errno));
			return r;
		}
		g.mac[0] = (uint8_t)((g.mac[0] & 0xfc) | 0x02);
	}
	policy = vm_net_policy(vm);
	if (!policy)
		return -EINVAL;
	fd = net_tap_open(net->tap, g.gw_mac, err, sizeof(err));
	if (fd < 0) {
		free(policy);
		vm_set_error(vm, "%s", err);
		return fd;
	}
	nr_rules = policy->n_rules;
	dns = policy->allow_dns;
	dev = virtio_net_create(fd, &g, policy, vm->evl, err, sizeof(err));
	free(policy); /* copied by the device */
	if (!dev) {
		vm_set_error(vm, "%s", err);
		return -EINVAL;
	}
	r = virtio_net_set_rate_limit(dev, rl_limit_set(&net->rx_limit) ? &rl_rx : NULL,
				      rl_limit_set(&net->tx_limit) ? &rl_tx : NULL, err, sizeof(err));
	if (r) {
		dev->ops->destroy(dev);
		vm_set_error(vm, "%s", err);
		return r;
	}
	snprintf(what, sizeof(what), "virtio-net (TAP %.16s)", net->tap);
	r = vm_add_device(vm, dev, what);
	if (r)
		return r;
	vm->net_dev = dev;
	snprintf(vm->dev_params[vm->nr_dev_params++], VM_DEV_PARAM_MAX, MINIVM_NET_PARAM "%s", param);
	net_ip_str(net->ip, ip);
	vm_log(vm, 1, "net: guest %s/%u, MAC %02x:%02x:%02x:%02x:%02x:%02x, %zu policy rule(s)%s", ip,
	       net->prefix, g.mac[0], g.mac[1], g.mac[2], g.mac[3], g.mac[4], g.mac[5],
	       nr_rules, dns ? " and DNS" : "");
	return 0;
}

/* cfg.vm_timeout_ms has passed since minivm_start(): end the VM. */
static void vm_timeout_fired(void *opaque, int fd, uint32_t revents)
{
	struct minivm *vm = opaque;
	uint64_t n;

	(void)revents;
	if (read(fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
		return; /* not expired (a stale wake-up) */
	vm_log(vm, 1, "the VM ran past its time limit (%llu ms): stopping it",
	       (unsigned long long)vm->cfg.vm_timeout_ms);
	vm_time_out(vm);
}

/* The whole-VM time limit: a timerfd on the event loop, so it fires in
 * whichever process runs the VM; armed by vm_devices_start(). */
static int vm_timeout_setup(struct minivm *vm)
{
	int r;

	if (!vm->cfg.vm_timeout_ms)
		return 0;
	vm->timeout_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (vm->timeout_fd < 0) {
		r = -errno;
		vm_set_error(vm, "timerfd for the VM's time limit: %s", strerror(errno));
		return r;
	}
	r = evl_add_fd(vm->evl, vm->timeout_fd, vm_timeout_fired, vm);
	if (r) {
		vm_set_error(vm, "watching the VM's time limit: %s", strerror(-r));
		close(vm->timeout_fd);
		vm->timeout_fd = -1;
		return r;
	}
	return 0;
}

int vm_devices_setup(struct minivm *vm)
{
	char err[256];
	unsigned int n = 0;
	int r;

	vm->nr_devs = 0;
	vm->nr_dev_params = 0;
	vm->evl = evl_create(VM_EVL_ENTRIES, err, sizeof(err));
	if (!vm->evl) {
		vm_set_error(vm, "event loop: %s", err);
		return -EIO;
	}
	r = vm_timeout_setup(vm);
	if (r)
		return r;
	if (vm->cfg.rootfs) {
		r = vm_add_disk(vm, vm->cfg.rootfs, !vm->cfg.rootfs_rw, &vm->cfg.rootfs_limit, n++);
		if (r)
			return r;
	}
	for (unsigned int i = 0; i < vm->cfg.nr_disks; i++) {
		r = vm_add_disk(vm, vm->cfg.disks[i].path, vm->cfg.disks[i].read_only,
				&vm->cfg.disks[i].limit, n++);
		if (r)
			return r;
	}
	/* Entropy from the host, so the guest's RNG never starves. */
	{
		struct virtio_dev *rng = virtio_rng_create();

		if (!rng) {
			vm_set_error(vm, "out of memory creating virtio-rng");
			return -ENOMEM;
		}
		r = vm_add_device(vm, rng, "virtio-rng");
		if (r)
			return r;
	}
	if (vm->cfg.net.tap) {
		r = vm_add_net(vm);
		if (r)
			return r;
	}
	/* vsock last, so the slots and IRQs of the devices above do not move
	 * with it. The device removes its socket file when destroyed
	 * (vm_devices_destroy, on every path after this point). */
	if (vm->cfg.vsock_uds) {
		struct virtio_dev *vsock = virtio_vsock_create(vm->cfg.vsock_uds, vm->cfg.guest_cid,
							       vm->evl, err, sizeof(err));

		if (!vsock) {
			vm_set_error(vm, "%s", err);
			return -EINVAL;
		}
		/* A jailed VMM reaches its socket by another path later. */
		if (vm->cfg.vsock_uds_jailed) {
			r = virtio_vsock_set_path(vsock, vm->cfg.vsock_uds_jailed);
			if (r) {
				vsock->ops->destroy(vsock);
				vm_set_error(vm, "vsock: jailed path: %s", strerror(-r));
				return r;
			}
		}
		r = vm_add_device(vm, vsock, "virtio-vsock");
		if (r)
			return r;
	}
	return 0;
}

static void *vm_evl_thread(void *arg)
{
	struct minivm *vm = arg;
	char err[256];
	int r;

	/* The jailed VMM: this thread's seccomp allowlist, before any I/O. */
	if (vm->cfg.seccomp && (r = jail_seccomp_thread(vm->seccomp_filters, JAIL_THREAD_EVL, err, sizeof(err)))) {
		vm_set_error(vm, "%s", err);
		minivm_stop(vm);
		return NULL;
	}
	r = evl_run(vm->evl);
	if (r) {
		vm_set_error(vm, "event loop failed: %s", strerror(-r));
		minivm_stop(vm);
	}
	return NULL;
}

int vm_devices_start(struct minivm *vm)
{
	sigset_t all, old;
	int r;

	if (vm->timeout_fd >= 0) {
		uint64_t ms = vm->cfg.vm_timeout_ms;
		struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ms / 1000),
							.tv_nsec = (long)(ms % 1000) * 1000000L } };

		if (timerfd_settime(vm->timeout_fd, 0, &its, NULL) < 0) {
			r = -errno;
			vm_set_error(vm, "arming the VM's time limit: %s", strerror(errno));
			return r;
		}
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&vm->evl_thread, NULL, vm_evl_thread, vm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		vm_set_error(vm, "cannot start the event loop thread: %s", strerror(r));
		return -r;
	}
	vm->evl_started = true;
	return 0;
}

void vm_devices_stop(struct minivm *vm)
{
	if (!vm->evl_started)
		return;
	evl_stop(vm->evl);
	pthread_join(vm->evl_thread, NULL);
	vm->evl_started = false;
}

/* The NIC's counters, once the VM has stopped (-v). */
static void vm_net_summary(struct minivm *vm)
{
	struct virtio_net_counters c;
	struct net_stats *ps;
	uint64_t denied = 0;

	if (!vm->net_dev || vm->cfg.verbose < 1)
		return;
	ps = malloc(sizeof(*ps));
	if (!ps)
		return;
	virtio_net_get_stats(vm->net_dev, ps, &c);
	for (unsigned int i = 0; i < NET_DENY_COUNT; i++)
		denied += ps->denied[i];
	vm_log(vm, 1, "net: %llu frame(s) sent, %llu denied, %llu answered; %llu received, "
	       "%llu dropped; throttled %llu out, %llu in", (unsigned long long)c.tx_frames,
	       (unsigned long long)denied, (unsigned long long)c.replies,
	       (unsigned long long)c.rx_frames, (unsigned long long)c.rx_dropped,
	       (unsigned long long)c.tx_throttled, (unsigned long long)c.rx_throttled);
	free(ps);
}

void vm_devices_destroy(struct minivm *vm)
{
	vm_devices_stop(vm);
	vm_net_summary(vm);
	vm->net_dev = NULL;
	for (unsigned int i = 0; i < vm->nr_devs; i++) {
		struct vm_device *d = &vm->devs[i];

		vmmio_destroy(d->transport);
		d->transport = NULL;
		for (unsigned int q = 0; q < VM_DEV_MAX_QUEUES; q++) {
			if (d->notify[q].fd >= 0) {
				if (vm->evl)
					evl_del_fd(vm->evl, d->notify[q].fd);
				close(d->notify[q].fd);
			}
			d->notify[q].fd = -1;
		}
		if (d->irq_fd >= 0)
			close(d->irq_fd);
		d->irq_fd = -1;
	}
	vm->nr_devs = 0;
	if (vm->timeout_fd >= 0) {
		if (vm->evl)
			evl_del_fd(vm->evl, vm->timeout_fd);
		close(vm->timeout_fd);
		vm->timeout_fd = -1;
	}
	evl_destroy(vm->evl);
	vm->evl = NULL;
}

/* ---- snapshot (vmm/vm_snapshot.h) ---- */

static uint64_t vm_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vm_devices_quiesce(struct minivm *vm, unsigned int timeout_ms)
{
	uint64_t deadline = vm_mono_ms() + timeout_ms;

	for (unsigned int i = 0; i < vm->nr_devs; i++)
		vmmio_quiesce(vm->devs[i].transport);
	for (;;) {
		unsigned int busy_slot = vm->nr_devs, n = 0;
		struct timespec nap = { .tv_sec = 0, .tv_nsec = 200000 };

		for (unsigned int i = 0; i < vm->nr_devs && !n; i++) {
			n = vmmio_inflight(vm->devs[i].transport);
			busy_slot = i;
		}
		if (!n)
			return 0;
		if (vm_mono_ms() >= deadline) {
			vm_set_error(vm, "snapshot: %s (slot %u) still has %u request(s) in flight after %u ms",
				     vmmio_device(vm->devs[busy_slot].transport)->name, busy_slot, n, timeout_ms);
			return -ETIMEDOUT;
		}
		nanosleep(&nap, NULL); /* completions arrive on the event-loop thread */
	}
}

int vm_devices_save(struct minivm *vm, struct snap_writer *w)
{
	int r;

	for (unsigned int i = 0; i < vm->nr_devs; i++) {
		r = vmmio_save(vm->devs[i].transport, w, i);
		if (r) {
			vm_set_error(vm, "snapshot: %s (slot %u): %s",
				     vmmio_device(vm->devs[i].transport)->name, i,
				     r == -EBUSY ? "requests in flight (not quiesced)" : strerror(-r));
			return r;
		}
	}
	if (!vm->uart_ready) {
		vm_set_error(vm, "snapshot: the legacy devices are not set up");
		return -EINVAL;
	}
	r = uart_save(&vm->uart, w);
	r = r ? r : rtc_cmos_save(&vm->rtc, w);
	r = r ? r : i8042_save(&vm->kbd, w);
	if (r)
		vm_set_error(vm, "snapshot: legacy devices: %s", strerror(-r));
	return r;
}

/* Restores one legacy device's section (tag, instance 0). */
static int vm_restore_legacy(const struct snap_reader *r, uint32_t tag, const char *what,
			     int (*restore)(void *dev, struct snap_cursor *c, char *err, size_t errlen),
			     void *dev, char *err, size_t errlen)
{
	struct snap_cursor c;

	if (snap_find(r, tag, 0, &c)) {
		snprintf(err, errlen, "the snapshot has no %s state", what);
		return -EBADMSG;
	}
	return restore(dev, &c, err, errlen);
}

static int vm_uart_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	return uart_restore(dev, c, err, errlen);
}

static int vm_rtc_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	return rtc_cmos_restore(dev, c, err, errlen);
}

static int vm_i8042_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	return i8042_restore(dev, c, err, errlen);
}

int vm_devices_restore(struct minivm *vm, const struct snap_reader *r, char *err, size_t errlen)
{
	char msg[384];
	struct snap_cursor c;
	int ret;

	msg[0] = 0;
	for (unsigned int i = 0; i < vm->nr_devs; i++) {
		struct virtio_dev *dev = vmmio_device(vm->devs[i].transport);

		if (snap_find(r, SNAP_TAG_VIRTIO, i, &c)) {
			snprintf(msg, sizeof(msg), "slot %u (%s): not in the snapshot (it has fewer devices "
				 "than this VM: restore with the snapshot's disks, network and vsock)", i, dev->name);
			ret = -EBADMSG;
			goto fail;
		}
		ret = vmmio_restore(vm->devs[i].transport, &c, msg, sizeof(msg));
		if (ret) {
			char inner[sizeof(msg)];

			memcpy(inner, msg, sizeof(inner));
			snprintf(msg, sizeof(msg), "slot %u: %.360s", i, inner);
			goto fail;
		}
	}
	if (snap_find(r, SNAP_TAG_VIRTIO, vm->nr_devs, &c) == 0) {
		snprintf(msg, sizeof(msg), "the snapshot has more devices than this VM's %u (restore with the "
			 "snapshot's disks, network and vsock)", vm->nr_devs);
		ret = -EBADMSG;
		goto fail;
	}
	if (!vm->uart_ready) {
		snprintf(msg, sizeof(msg), "the legacy devices are not set up");
		ret = -EINVAL;
		goto fail;
	}
	ret = vm_restore_legacy(r, SNAP_TAG_UART, "UART", vm_uart_restore, &vm->uart, msg, sizeof(msg));
	if (!ret)
		ret = vm_restore_legacy(r, SNAP_TAG_RTC, "RTC", vm_rtc_restore, &vm->rtc, msg, sizeof(msg));
	if (!ret)
		ret = vm_restore_legacy(r, SNAP_TAG_I8042, "i8042", vm_i8042_restore, &vm->kbd, msg,
					sizeof(msg));
	if (ret)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "restore: %s", msg);
	vm_set_error(vm, "restore: %s", msg);
	return ret;
}

void vm_devices_resume(struct minivm *vm, bool restored)
{
	for (unsigned int i = 0; i < vm->nr_devs; i++) {
		struct virtio_dev *dev = vmmio_device(vm->devs[i].transport);
		int r;

		vmmio_resume(vm->devs[i].transport);
		if (!restored || dev->device_id != VIRTIO_ID_VSOCK)
			continue;
		/* Firecracker's way: the guest's connections of the snapshot's
		 * time have no host side here; it drops them, keeps its
		 * listening sockets, and new host connections work. */
		r = virtio_vsock_send_transport_reset(dev);
		if (r && r != -ENOTCONN)
			vm_log(vm, 1, "vsock: transport reset: %s", strerror(-r));
	}
}
