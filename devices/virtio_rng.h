/* virtio-rng: fills the guest's buffers from getrandom(2) so guest entropy never starves. */
#ifndef MINIVM_VIRTIO_RNG_H
#define MINIVM_VIRTIO_RNG_H

#include "devices/virtio_dev.h"

#define VIRTIO_RNG_QUEUE_SIZE 64
#define VIRTIO_RNG_MAX_BYTES 65536u /* per request; the rest of a larger buffer is left alone */

/*
 * A virtio-rng device (one queue, no config space). Requests are served
 * synchronously in the queue-notify hook, on whichever thread notifies.
 * Returns NULL (out of memory) or the device: bind it with vmmio_create,
 * which then owns it.
 */
struct virtio_dev *virtio_rng_create(void);

#endif
