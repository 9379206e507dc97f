/* The i8042 keyboard controller's reset line (port 0x64, command 0xfe). */
#include "devices/i8042.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/snap.h"

#define I8042_SNAP_VERSION 1u

void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque)
{
	k->reset = reset;
	k->opaque = opaque;
}

void i8042_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len);
}

void i8042_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct i8042 *k = opaque;

	if (len == 1 && off == I8042_CMD_PORT - I8042_DATA_PORT &&
	    *(const uint8_t *)data == I8042_CMD_RESET && k->reset)
		k->reset(k->opaque);
}

int i8042_save(struct i8042 *k, struct snap_writer *w)
{
	int r;

	(void)k;
	r = snap_begin(w, SNAP_TAG_I8042, 0);
	r = r ? r : snap_put_u32(w, I8042_SNAP_VERSION);
	r = r ? r : snap_end(w);
	return r;
}

int i8042_restore(struct i8042 *k, struct snap_cursor *c, char *err, size_t errlen)
{
	uint32_t version;

	(void)k;
	if (snap_get_u32(c, &version) || c->left) {
		snprintf(err, errlen, "i8042: state truncated or with trailing bytes");
		return -EBADMSG;
	}
	if (version != I8042_SNAP_VERSION) {
		snprintf(err, errlen, "i8042: state version %u, this minivm reads %u", version,
			 I8042_SNAP_VERSION);
		return -EINVAL;
	}
	return 0;
}
