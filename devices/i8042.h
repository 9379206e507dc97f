/* The i8042 keyboard controller, reduced to what a reboot=k guest needs: the reset line. */
#ifndef MINIVM_I8042_H
#define MINIVM_I8042_H

#include <stddef.h>
#include <stdint.h>

struct snap_writer;
struct snap_cursor;

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_CMD_RESET 0xfe

struct i8042 {
	void (*reset)(void *opaque); /* called on the CPU-reset command */
	void *opaque;
};

void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque);

/* Bus handlers for the range 0x60..0x64 (5 ports). Reads return 0: output
 * buffer empty, input buffer empty, so the guest's kb_wait() never spins. */
void i8042_read(void *opaque, uint64_t off, void *data, unsigned int len);
void i8042_write(void *opaque, uint64_t off, const void *data, unsigned int len);

/* Snapshot: the model holds no register state (reads are constant, the
 * only command acts at once), so the section (SNAP_TAG_I8042, 0) holds a
 * version only; restore checks it (and that nothing follows). 0, or
 * -EBADMSG / -EINVAL with a message in err. */
int i8042_save(struct i8042 *k, struct snap_writer *w) __attribute__((warn_unused_result));
int i8042_restore(struct i8042 *k, struct snap_cursor *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
