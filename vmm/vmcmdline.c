/* Guest kernel command line assembly. */
#include "vmm/vmcmdline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"

/* console on the 8250; reboot through the i8042 so minivm sees the reset;
 * a panic reboots at once (a crash, to minivm); no port-0x80 delays (each
 * would be an exit); only the one UART minivm has; `quiet`: only warnings
 * and worse (panics included) reach the console, whose every character is
 * two exits (LSR poll, THR write); user output is not affected. */
#define VM_CMDLINE_BASE "console=ttyS0 reboot=k panic=-1 io_delay=none 8250.nr_uarts=1 quiet"

static int cmd_append(char *buf, size_t cap, size_t *len, const char *part)
{
	size_t plen = strlen(part), need = *len + (*len ? 1 : 0) + plen;

	if (need >= cap)
		return -E2BIG;
	if (*len)
		buf[(*len)++] = ' ';
	memcpy(buf + *len, part, plen);
	*len += plen;
	buf[*len] = '\0';
	return 0;
}

int vm_cmdline_build(char *buf, size_t cap, const struct minivm_config *cfg, bool emulated,
		     const char (*dev_params)[64], unsigned int nr_dev_params, char *err,
		     size_t errlen)
{
	size_t len = 0;
	int r = 0;

	if (cap == 0) {
		snprintf(err, errlen, "no room for a kernel command line");
		return -E2BIG;
	}
	buf[0] = '\0';
	r |= cmd_append(buf, cap, &len, VM_CMDLINE_BASE);
	if (emulated) {
		r |= cmd_append(buf, cap, &len, VM_CMDLINE_EMULATED);
		r |= cmd_append(buf, cap, &len, VM_CMDLINE_EMULATED_BOOT);
	}
	for (unsigned int i = 0; i < nr_dev_params; i++)
		r |= cmd_append(buf, cap, &len, dev_params[i]);
	if (cfg->rootfs)
		r |= cmd_append(buf, cap, &len,
				cfg->rootfs_rw ? "root=/dev/vda rw rootfstype=ext4"
					       : "root=/dev/vda ro rootfstype=ext4");
	if (r)
		goto too_long;
	if (cfg->run) {
		size_t plen = strlen(MINIVM_RUN_PARAM);
		char *tok = malloc(plen + AGENT_CMD_ENCODED_SIZE);
		ssize_t n;

		if (!tok) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		memcpy(tok, MINIVM_RUN_PARAM, plen);
		n = agent_pct_encode(cfg->run, strlen(cfg->run), tok + plen, AGENT_CMD_ENCODED_SIZE);
		if (n < 0) {
			snprintf(err, errlen, "cannot pass --run to the guest: %s",
				 agent_cmd_strerror((int)n));
			free(tok);
			return -EINVAL;
		}
		r = cmd_append(buf, cap, &len, tok);
		free(tok);
		if (r) {
			snprintf(err, errlen,
				 "--run command too long: the kernel command line holds %zu bytes "
				 "and the encoded command does not fit",
				 cap - 1);
			return -E2BIG;
		}
	}
	if (cfg->cmdline && cmd_append(buf, cap, &len, cfg->cmdline))
		goto too_long;
	return 0;
too_long:
	snprintf(err, errlen, "kernel command line too long (the limit is %zu bytes)", cap - 1);
	return -E2BIG;
}
