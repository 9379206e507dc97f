/* Unit tests for vmm/log.c: text and JSON lines, escaping, cut messages; JSON lines parsed back by Python's json module. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

/* 2026-12-07T23:41:05.123Z */
static const struct timespec t_now = { 1796686865, 123456789 };

static char t_line[LOG_LINE_MAX];

static int fmt(enum log_format f, enum minivm_log_level lvl, const char *event,
	       const struct log_field *fields, size_t nr, const char *msg)
{
	return log_format_line(f, &t_now, lvl, event, fields, nr, msg, t_line, sizeof(t_line));
}

/* Runs python3 on the line (in a file) with a check script; its exit status. */
static int py_check(const char *line, const char *script)
{
	char path[] = "/tmp/test_log.XXXXXX", cmd[4096];
	int fd = mkstemp(path), r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,re,sys\n"
		 "s=open(sys.argv[1],encoding=\"utf-8\").read()\n"
		 "assert s.endswith(\"\\n\") and s.count(\"\\n\")==1, repr(s)\n"
		 "d=json.loads(s)\n"
		 "assert re.fullmatch(r\"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\", d[\"ts\"]), d\n"
		 "%s' %s",
		 script, path);
	r = system(cmd);
	unlink(path);
	return r;
}

START_TEST(text_line)
{
	int n = fmt(LOG_TEXT, MINIVM_LOG_ERROR, "ignored", &LOG_INT("x", 1), 1, "bad --mem 'x'");

	ck_assert_int_eq(n, (int)strlen("minivm: bad --mem 'x'\n"));
	ck_assert_str_eq(t_line, "minivm: bad --mem 'x'\n");
}
END_TEST

START_TEST(json_line_exact)
{
	struct log_field f[] = { LOG_STR("phase", "kernel"), LOG_MS("ms", 512.25), LOG_INT("n", -3) };
	const char *want = "{\"ts\":\"2026-12-07T23:41:05.123Z\",\"level\":\"info\",\"event\":"
			   "\"timing\",\"msg\":\"timing kernel 512.250 ms\",\"phase\":\"kernel\","
			   "\"ms\":512.250,\"n\":-3}\n";
	int n = fmt(LOG_JSON, MINIVM_LOG_INFO, "timing", f, 3, "timing kernel 512.250 ms");

	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_str_eq(t_line, want);
}
END_TEST

START_TEST(json_plain_no_event)
{
	ck_assert_int_gt(fmt(LOG_JSON, MINIVM_LOG_WARN, NULL, NULL, 0, "stopped by a signal"), 0);
	ck_assert_ptr_null(strstr(t_line, "\"event\""));
	ck_assert_int_eq(py_check(t_line, "assert d==dict(ts=d[\"ts\"],level=\"warn\","
					  "msg=\"stopped by a signal\"), d"),
			 0);
}
END_TEST

START_TEST(json_escaping)
{
	/* Quotes, backslash, newline, tab, a control byte, invalid UTF-8 and a
	 * valid multibyte character: json.loads takes it back. */
	const char *msg = "a \"q\" \\ b\nc\td\x01" "e\xff" "f \xc3\xa9";
	struct log_field f = LOG_STR("path", "/tmp/\"x\"\n");

	ck_assert_int_gt(fmt(LOG_JSON, MINIVM_LOG_ERROR, "console_tail", &f, 1, msg), 0);
	ck_assert_int_eq(py_check(t_line,
				  "assert d[\"msg\"]==\"a \\\"q\\\" \\\\ b\\nc\\td\\x01e\\ufffdf \\u00e9\", "
				  "repr(d[\"msg\"])\n"
				  "assert d[\"path\"]==\"/tmp/\\\"x\\\"\\n\" and d[\"level\"]==\"error\" and "
				  "d[\"event\"]==\"console_tail\", d"),
			 0);
}
END_TEST

START_TEST(json_unknown_ms_is_null)
{
	ck_assert_int_gt(fmt(LOG_JSON, MINIVM_LOG_INFO, "timing", &LOG_MS("ms", -1.0), 1, "m"), 0);
	ck_assert_ptr_nonnull(strstr(t_line, "\"ms\":null"));
	ck_assert_int_eq(py_check(t_line, "assert d[\"ms\"] is None"), 0);
}
END_TEST

START_TEST(json_too_long_is_e2big)
{
	char *msg = malloc(LOG_LINE_MAX);

	ck_assert_ptr_nonnull(msg);
	memset(msg, 'x', LOG_LINE_MAX - 1);
	msg[LOG_LINE_MAX - 1] = '\0';
	ck_assert_int_eq(fmt(LOG_JSON, MINIVM_LOG_INFO, NULL, NULL, 0, msg), -E2BIG);
	free(msg);
}
END_TEST

/* Reads what a log wrote to a pipe. */
static void drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len - 1);

	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
}

START_TEST(write_cut_to_one_line)
{
	static char got[2 * LOG_LINE_MAX];
	char msg[7001];
	struct log log;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	log_init(&log, p[1], LOG_JSON);
	/* 7000 control bytes: 6 bytes each escaped, far over a line. */
	memset(msg, '\x02', 7000);
	msg[7000] = '\0';
	log_event(&log, MINIVM_LOG_ERROR, "e", &LOG_INT("k", 7), 1, "%s", msg);
	drain(p[0], got, sizeof(got));
	ck_assert_uint_le(strlen(got), LOG_LINE_MAX);
	ck_assert_int_eq(py_check(got, "assert d[\"k\"]==7 and 0<len(d[\"msg\"])<7000 and "
				       "set(d[\"msg\"])=={\"\\x02\"}, d"),
			 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(front_callback_text)
{
	char got[256];
	struct log log;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	log_init(&log, p[1], LOG_TEXT);
	log_from_front(&log, MINIVM_LOG_INFO, "saved the changed root as oci:x");
	drain(p[0], got, sizeof(got));
	ck_assert_str_eq(got, "minivm: saved the changed root as oci:x\n");
	log_init(&log, p[1], LOG_JSON);
	log_from_front(&log, MINIVM_LOG_DEBUG, "restore: disk 0: own copy");
	drain(p[0], got, sizeof(got));
	ck_assert_int_eq(py_check(got, "assert d[\"level\"]==\"debug\" and "
				       "d[\"msg\"]==\"restore: disk 0: own copy\", d"),
			 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(parse_format_and_levels)
{
	enum log_format f = LOG_TEXT;

	ck_assert_int_eq(log_parse_format("json", &f), 0);
	ck_assert_int_eq(f, LOG_JSON);
	ck_assert_int_eq(log_parse_format("text", &f), 0);
	ck_assert_int_eq(f, LOG_TEXT);
	ck_assert_int_eq(log_parse_format("JSON", &f), -EINVAL);
	ck_assert_int_eq(log_parse_format("", &f), -EINVAL);
	ck_assert_int_eq(log_parse_format(NULL, &f), -EINVAL);
	ck_assert_str_eq(log_level_name(MINIVM_LOG_ERROR), "error");
	ck_assert_str_eq(log_level_name(MINIVM_LOG_WARN), "warn");
	ck_assert_str_eq(log_level_name(MINIVM_LOG_INFO), "info");
	ck_assert_str_eq(log_level_name(MINIVM_LOG_DEBUG), "debug");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, text_line);
	tcase_add_test(tc, json_line_exact);
	tcase_add_test(tc, json_plain_no_event);
	tcase_add_test(tc, json_escaping);
	tcase_add_test(tc, json_unknown_ms_is_null);
	tcase_add_test(tc, json_too_long_is_e2big);
	tcase_add_test(tc, write_cut_to_one_line);
	tcase_add_test(tc, front_callback_text);
	tcase_add_test(tc, parse_format_and_levels);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
