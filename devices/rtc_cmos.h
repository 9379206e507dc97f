/* The MC146818 CMOS real-time clock at ports 0x70/0x71: the host's wall-clock time, read-only. */
#ifndef MINIVM_RTC_CMOS_H
#define MINIVM_RTC_CMOS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct snap_writer;
struct snap_cursor;

#define RTC_CMOS_PORT 0x70
#define RTC_CMOS_NR_PORTS 2
#define RTC_CMOS_RAM_SIZE 128

/*
 * What a Linux guest reads at boot (arch/x86/kernel/rtc.c, the
 * mc146818 library): the time registers 0x00-0x09 and the century at 0x32,
 * status A with UIP (update in progress) clear, status B (24-hour, BCD
 * unless the guest selects binary), status D with "valid RAM and time".
 * Without it every port reads all-ones, UIP looks stuck, and the guest
 * polls for a second of its boot before it gives up and starts in 1970.
 *
 * The time is the host's (CLOCK_REALTIME, UTC) at each read: the guest
 * cannot set it (writes to the time registers are ignored, like a clock
 * whose battery owner is the host), and alarms and periodic interrupts are
 * not emulated (IRQ 8 never fires). Other registers are 114 bytes of plain
 * CMOS RAM the guest may use. Index bit 7 (NMI mask) is ignored.
 */
struct rtc_cmos {
	pthread_mutex_t lock; /* vCPU threads may race on index + data */
	uint8_t index;
	uint8_t ram[RTC_CMOS_RAM_SIZE];
	/* The wall clock; tests inject one. NULL: clock_gettime(CLOCK_REALTIME). */
	int (*now)(void *opaque, struct timespec *ts);
	void *now_opaque;
};

/* Registers and bits the guest relies on. */
#define RTC_REG_SECONDS 0x00
#define RTC_REG_MINUTES 0x02
#define RTC_REG_HOURS 0x04
#define RTC_REG_WEEKDAY 0x06
#define RTC_REG_DAY 0x07
#define RTC_REG_MONTH 0x08
#define RTC_REG_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_REG_CENTURY 0x32
#define RTC_A_UIP 0x80
#define RTC_B_24H 0x02
#define RTC_B_BINARY 0x04
#define RTC_D_VRT 0x80

void rtc_cmos_init(struct rtc_cmos *rtc);
void rtc_cmos_destroy(struct rtc_cmos *rtc);

/* Bus handlers for ports 0x70 (index) and 0x71 (data); wider accesses read
 * all-ones and write nothing. */
void rtc_cmos_read(void *opaque, uint64_t off, void *data, unsigned int len);
void rtc_cmos_write(void *opaque, uint64_t off, const void *data, unsigned int len);

/*
 * Snapshot: the index register and the 128 bytes of CMOS RAM (the time
 * registers are read from the host's clock, so a restored guest reads the
 * time of its restore). rtc_cmos_save appends section (SNAP_TAG_RTC, 0);
 * rtc_cmos_restore reads that section's bytes from c (untrusted: checked
 * whole before anything changes). 0, or -EBADMSG / -EINVAL with a message
 * in err. Call while no vCPU runs.
 */
int rtc_cmos_save(struct rtc_cmos *rtc, struct snap_writer *w) __attribute__((warn_unused_result));
int rtc_cmos_restore(struct rtc_cmos *rtc, struct snap_cursor *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Register `reg` (0..127) as the guest would read it now. */
uint8_t rtc_cmos_reg(struct rtc_cmos *rtc, uint8_t reg);

#endif
