/* The i8042 keyboard controller's reset line (port 0x64, command 0xfe). */
#include "devices/i8042.h"

#include <string.h>

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
