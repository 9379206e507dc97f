/* The MC146818 CMOS real-time clock: wall-clock time for the guest at boot. */
#include "devices/rtc_cmos.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/snap.h"

void rtc_cmos_init(struct rtc_cmos *rtc)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	/* Divider 32.768 kHz, 1024 Hz rate: what a PC's firmware leaves. */
	rtc->ram[RTC_REG_A] = 0x26;
	rtc->ram[RTC_REG_B] = RTC_B_24H;
	rtc->ram[RTC_REG_D] = RTC_D_VRT;
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

static uint8_t rtc_encode(const struct rtc_cmos *rtc, int v)
{
	if (v < 0)
		v = 0;
	v %= 100;
	if (rtc->ram[RTC_REG_B] & RTC_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_hours(const struct rtc_cmos *rtc, int h)
{
	int pm;

	if (rtc->ram[RTC_REG_B] & RTC_B_24H)
		return rtc_encode(rtc, h);
	/* 12-hour mode: 12, 1..11, with bit 7 for PM. */
	pm = h >= 12;
	h %= 12;
	return (uint8_t)(rtc_encode(rtc, h ? h : 12) | (pm ? 0x80 : 0));
}

/* Caller holds the lock. */
static uint8_t rtc_reg_locked(struct rtc_cmos *rtc, uint8_t reg)
{
	struct timespec ts = { 0, 0 };
	struct tm tm;
	time_t t;
	int r;

	reg &= RTC_CMOS_RAM_SIZE - 1;
	switch (reg) {
	case RTC_REG_SECONDS:
	case RTC_REG_MINUTES:
	case RTC_REG_HOURS:
	case RTC_REG_WEEKDAY:
	case RTC_REG_DAY:
	case RTC_REG_MONTH:
	case RTC_REG_YEAR:
	case RTC_REG_CENTURY:
		break;
	case RTC_REG_A:
		/* Never "update in progress": each read is a consistent
		 * snapshot of the host clock. */
		return rtc->ram[RTC_REG_A] & (uint8_t)~RTC_A_UIP;
	case RTC_REG_C:
		return 0; /* no interrupt flags: IRQ 8 is not emulated */
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return rtc->ram[reg];
	}
	r = rtc->now ? rtc->now(rtc->now_opaque, &ts) : clock_gettime(CLOCK_REALTIME, &ts);
	t = r == 0 ? ts.tv_sec : 0;
	if (!gmtime_r(&t, &tm)) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	switch (reg) {
	case RTC_REG_SECONDS:
		return rtc_encode(rtc, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_REG_MINUTES:
		return rtc_encode(rtc, tm.tm_min);
	case RTC_REG_HOURS:
		return rtc_hours(rtc, tm.tm_hour);
	case RTC_REG_WEEKDAY:
		return rtc_encode(rtc, tm.tm_wday + 1);
	case RTC_REG_DAY:
		return rtc_encode(rtc, tm.tm_mday);
	case RTC_REG_MONTH:
		return rtc_encode(rtc, tm.tm_mon + 1);
	case RTC_REG_YEAR:
		return rtc_encode(rtc, tm.tm_year % 100);
	default: /* RTC_REG_CENTURY */
		return rtc_encode(rtc, (tm.tm_year + 1900) / 100);
	}
}

uint8_t rtc_cmos_reg(struct rtc_cmos *rtc, uint8_t reg)
{
	uint8_t v;

	pthread_mutex_lock(&rtc->lock);
	v = rtc_reg_locked(rtc, reg);
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void rtc_cmos_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t *d = data;

	memset(data, 0xff, len);
	if (len != 1 || off >= RTC_CMOS_NR_PORTS)
		return;
	pthread_mutex_lock(&rtc->lock);
	d[0] = off == 0 ? rtc->index : rtc_reg_locked(rtc, rtc->index);
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_cmos_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t v;

	if (len != 1 || off >= RTC_CMOS_NR_PORTS)
		return;
	v = *(const uint8_t *)data;
	pthread_mutex_lock(&rtc->lock);
	if (off == 0) {
		rtc->index = v & (RTC_CMOS_RAM_SIZE - 1); /* bit 7: NMI mask, ignored */
	} else {
		switch (rtc->index) {
		case RTC_REG_SECONDS:
		case RTC_REG_MINUTES:
		case RTC_REG_HOURS:
		case RTC_REG_WEEKDAY:
		case RTC_REG_DAY:
		case RTC_REG_MONTH:
		case RTC_REG_YEAR:
		case RTC_REG_CENTURY:
		case RTC_REG_C:
		case RTC_REG_D:
			break; /* the host owns the time; C and D are read-only */
		case RTC_REG_A:
			rtc->ram[RTC_REG_A] = v & (uint8_t)~RTC_A_UIP; /* UIP is read-only */
			break;
		case RTC_REG_B:
			/* Only the formats are honoured (binary/BCD, 12/24 h);
			 * interrupt enables are kept but never fire. */
			rtc->ram[RTC_REG_B] = v;
			break;
		default:
			rtc->ram[rtc->index] = v;
			break;
		}
	}
	pthread_mutex_unlock(&rtc->lock);
}

#define RTC_SNAP_VERSION 1u

int rtc_cmos_save(struct rtc_cmos *rtc, struct snap_writer *w)
{
	int r;

	pthread_mutex_lock(&rtc->lock);
	r = snap_begin(w, SNAP_TAG_RTC, 0);
	r = r ? r : snap_put_u32(w, RTC_SNAP_VERSION);
	r = r ? r : snap_put_u32(w, rtc->index);
	r = r ? r : snap_put(w, rtc->ram, sizeof(rtc->ram));
	r = r ? r : snap_end(w);
	pthread_mutex_unlock(&rtc->lock);
	return r;
}

int rtc_cmos_restore(struct rtc_cmos *rtc, struct snap_cursor *c, char *err, size_t errlen)
{
	uint8_t ram[RTC_CMOS_RAM_SIZE];
	uint32_t version, index;
	int r;

	r = snap_get_u32(c, &version);
	r = r ? r : snap_get_u32(c, &index);
	r = r ? r : snap_get(c, ram, sizeof(ram));
	if (r || c->left) {
		snprintf(err, errlen, "RTC: state %s", r ? "truncated" : "has trailing bytes");
		return -EBADMSG;
	}
	if (version != RTC_SNAP_VERSION) {
		snprintf(err, errlen, "RTC: state version %u, this minivm reads %u", version, RTC_SNAP_VERSION);
		return -EINVAL;
	}
	if (index >= RTC_CMOS_RAM_SIZE || (ram[RTC_REG_A] & RTC_A_UIP)) {
		snprintf(err, errlen, "RTC: index %u or status A 0x%x out of range", index, ram[RTC_REG_A]);
		return -EINVAL;
	}
	pthread_mutex_lock(&rtc->lock);
	rtc->index = (uint8_t)index;
	memcpy(rtc->ram, ram, sizeof(ram));
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}
