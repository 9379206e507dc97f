/* The control socket wired to the library front: vmm/api.h's backend ops over minivm_vm_*, and a thread accepting connections. */
#ifndef MINIVM_API_FRONT_H
#define MINIVM_API_FRONT_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/api.h"
#include "vmm/minivm.h"

struct api_front;

/*
 * Listens on sock_path (vmm/api.h api_listen: a stale socket is replaced)
 * and starts a thread that accepts connections, each served on a thread of
 * its own (at most API_FRONT_MAX_CONNS at once; more are closed at once).
 * The VM is configured through the socket; base gives what the socket does
 * not set (jail, scratch layer, verbosity): copied. No signal handler is
 * installed; a client's POST /start creates and starts the VM
 * (minivm_vm_create + minivm_vm_start), a thread of ours then waits for
 * ready and for its end and posts READY and VM_EXIT.
 * 0 or -errno with a message in err.
 */
#define API_FRONT_MAX_CONNS 32
int api_front_create(const char *sock_path, const struct minivm_vm_config *base,
		     struct api_front **out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The server's state machine (vmm/api.h): API_STOPPED once the VM ended. */
enum api_state api_front_state(struct api_front *f);

/* How the VM ended (minivm_vm_wait()'s result): true once it has ended
 * (VM_EXIT posted), false while it runs or when it never started. */
bool api_front_result(struct api_front *f, struct minivm_result *out);

/* Asks the VM (if any) to stop; async-signal-safe. */
void api_front_stop_vm(struct api_front *f);

/*
 * Stops the VM if it runs, makes every connection end (api_shutdown),
 * joins every thread, removes the socket file and frees f. f may be NULL.
 */
void api_front_destroy(struct api_front *f);

/* The conversions the backend makes (pure; exposed for tests): the VM's
 * counters into GET /metrics' (exit names other than [a-z0-9_]+ dropped;
 * agent_commands and the api's own left alone), and a VM event into a
 * policy_denied or guest_error event. */
void api_front_metrics_from(struct api_metrics *m, const struct minivm_metrics *s);
void api_front_event_from(struct api_event *a, const struct minivm_event *ev);

#endif
