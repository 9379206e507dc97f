/* Unit tests for rootfs/agent/cmdline.c (minivm.run= coding and splitting) and status.c. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"
#include "rootfs/agent/status.h"

/* Split a NUL-terminated command; returns the word count or the error. */
static char t_words[AGENT_CMD_WORDS_SIZE];
static char *t_argv[AGENT_CMD_ARGV_SIZE];

static int split(const char *s)
{
	memset(t_argv, 0x5a, sizeof(t_argv));
	return agent_split_words(s, strlen(s), t_words, sizeof(t_words), t_argv, AGENT_CMD_ARGV_SIZE);
}

static ssize_t decode(const char *s, char *out, size_t out_size)
{
	return agent_pct_decode(s, strlen(s), out, out_size);
}

/* ---- encoding ---- */

START_TEST(encode_safe_bytes_pass_through)
{
	const char *s = "ABCxyz019._/,:=+@-";
	char out[64];

	ck_assert_int_eq(agent_pct_encode(s, strlen(s), out, sizeof(out)), (ssize_t)strlen(s));
	ck_assert_str_eq(out, s);
}
END_TEST

START_TEST(encode_others_as_uppercase_hex)
{
	const char *s = "a b\"'\\%\t\xff~";
	char out[64];

	ck_assert_int_eq(agent_pct_encode(s, strlen(s), out, sizeof(out)), 26);
	ck_assert_str_eq(out, "a%20b%22%27%5C%25%09%FF%7E");
}
END_TEST

START_TEST(encode_length_query_and_small_buffer)
{
	const char *s = "echo hi";
	char out[10];

	ck_assert_int_eq(agent_pct_encode(s, strlen(s), NULL, 0), 9);
	/* 9 bytes + NUL need 10. */
	ck_assert_int_eq(agent_pct_encode(s, strlen(s), out, 9), -ENOBUFS);
	ck_assert_int_eq(agent_pct_encode(s, strlen(s), out, 10), 9);
	ck_assert_str_eq(out, "echo%20hi");
	ck_assert_int_eq(agent_pct_encode("", 0, out, 1), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(agent_pct_encode(s, strlen(s), NULL, 5), -EFAULT);
}
END_TEST

START_TEST(encode_rejects_nul_and_overlong)
{
	static char big[AGENT_CMD_MAX_LEN + 1];
	static char out[AGENT_CMD_ENCODED_SIZE + 3];

	ck_assert_int_eq(agent_pct_encode("a\0b", 3, out, sizeof(out)), -EILSEQ);
	memset(big, ' ', sizeof(big));
	ck_assert_int_eq(agent_pct_encode(big, AGENT_CMD_MAX_LEN + 1, out, sizeof(out)), -EMSGSIZE);
	/* The worst case at the limit fits AGENT_CMD_ENCODED_SIZE exactly. */
	ck_assert_int_eq(agent_pct_encode(big, AGENT_CMD_MAX_LEN, out, AGENT_CMD_ENCODED_SIZE),
	                 3 * AGENT_CMD_MAX_LEN);
}
END_TEST

/* ---- decoding ---- */

START_TEST(round_trip_every_byte)
{
	char in[255], enc[AGENT_CMD_ENCODED_SIZE], dec[AGENT_CMD_DECODED_SIZE];
	ssize_t n;

	for (int i = 0; i < 255; i++)
		in[i] = (char)(i + 1); /* 1..255: every byte but NUL */
	n = agent_pct_encode(in, sizeof(in), enc, sizeof(enc));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                              "0123456789._/,:=+@-%"), (size_t)n);
	ck_assert_int_eq(agent_pct_decode(enc, (size_t)n, dec, sizeof(dec)), (ssize_t)sizeof(in));
	ck_assert_mem_eq(dec, in, sizeof(in));
}
END_TEST

START_TEST(round_trip_command)
{
	const char *cmd = "sh -c 'echo \"hello, world\" | tr a-z A-Z; exit 3'";
	char enc[256], dec[256];
	ssize_t n = agent_pct_encode(cmd, strlen(cmd), enc, sizeof(enc));

	ck_assert_int_gt(n, 0);
	ck_assert_ptr_null(strchr(enc, ' '));
	ck_assert_ptr_null(strchr(enc, '"'));
	ck_assert_int_eq(decode(enc, dec, sizeof(dec)), (ssize_t)strlen(cmd));
	ck_assert_str_eq(dec, cmd);
	ck_assert_int_eq(split(dec), 3);
	ck_assert_str_eq(t_argv[0], "sh");
	ck_assert_str_eq(t_argv[1], "-c");
	ck_assert_str_eq(t_argv[2], "echo \"hello, world\" | tr a-z A-Z; exit 3");
	ck_assert_ptr_null(t_argv[3]);
}
END_TEST

START_TEST(decode_lowercase_and_raw_bytes)
{
	char out[32];

	ck_assert_int_eq(decode("a%2fb%2F%7e", out, sizeof(out)), 5);
	ck_assert_str_eq(out, "a/b/~");
	/* Unencoded bytes stand for themselves (kernel-quoted values). */
	ck_assert_int_eq(decode("ls -l \"x\"", out, sizeof(out)), 9);
	ck_assert_str_eq(out, "ls -l \"x\"");
	ck_assert_int_eq(decode("", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(decode_rejects_bad_escapes)
{
	static const char *const bad[] = {
		"%", "%G1", "%0", "a%", "a%1", "%1G", "%%", "%%41", "abc%zz", "% 1", "%-1", "%+1",
	};
	char out[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 'x', sizeof(out));
		ck_assert_msg(decode(bad[i], out, sizeof(out)) == -EINVAL, "accepted '%s'", bad[i]);
	}
	ck_assert_int_eq(decode("%41%42", out, sizeof(out)), 2);
	ck_assert_str_eq(out, "AB");
}
END_TEST

START_TEST(decode_rejects_nul)
{
	char out[32];

	ck_assert_int_eq(decode("%00", out, sizeof(out)), -EILSEQ);
	ck_assert_int_eq(decode("echo%20a%00b", out, sizeof(out)), -EILSEQ);
	ck_assert_int_eq(agent_pct_decode("a\0b", 3, out, sizeof(out)), -EILSEQ);
	/* A decoded NUL cannot hide in a longer escape either. */
	ck_assert_int_eq(decode("%000", out, sizeof(out)), -EILSEQ);
}
END_TEST

START_TEST(decode_bounds)
{
	static char in[3 * AGENT_CMD_MAX_LEN + 4];
	static char out[AGENT_CMD_DECODED_SIZE + 8];
	size_t i;

	/* Exactly AGENT_CMD_MAX_LEN decoded bytes fit AGENT_CMD_DECODED_SIZE. */
	for (i = 0; i < AGENT_CMD_MAX_LEN; i++)
		memcpy(in + 3 * i, "%41", 3);
	ck_assert_int_eq(agent_pct_decode(in, 3 * i, out, AGENT_CMD_DECODED_SIZE), AGENT_CMD_MAX_LEN);
	ck_assert_uint_eq(strlen(out), AGENT_CMD_MAX_LEN);
	/* One more is too long, whatever the buffer. */
	memcpy(in + 3 * i, "%41", 3);
	ck_assert_int_eq(agent_pct_decode(in, 3 * i + 3, out, sizeof(out)), -EMSGSIZE);
	/* A small buffer is -ENOBUFS, not an overflow. */
	ck_assert_int_eq(decode("abcd", out, 4), -ENOBUFS);
	ck_assert_int_eq(decode("abc", out, 4), 3);
	ck_assert_int_eq(decode("a", out, 0), -ENOBUFS);
	ck_assert_int_eq(agent_pct_decode("a", 1, NULL, 4), -EFAULT);
}
END_TEST

/* ---- splitting ---- */

START_TEST(split_blanks)
{
	ck_assert_int_eq(split("  ls \t -l\n/tmp  "), 3);
	ck_assert_str_eq(t_argv[0], "ls");
	ck_assert_str_eq(t_argv[1], "-l");
	ck_assert_str_eq(t_argv[2], "/tmp");
	ck_assert_ptr_null(t_argv[3]);
}
END_TEST

START_TEST(split_empty_command)
{
	ck_assert_int_eq(split(""), 0);
	ck_assert_ptr_null(t_argv[0]);
	ck_assert_int_eq(split(" \t\n "), 0);
	ck_assert_ptr_null(t_argv[0]);
	ck_assert_int_eq(split("\\\n"), 0); /* a line continuation alone */
	ck_assert_int_eq(agent_split_words(NULL, 0, t_words, sizeof(t_words), t_argv, 1), 0);
	ck_assert_ptr_null(t_argv[0]);
}
END_TEST

START_TEST(split_single_quotes)
{
	ck_assert_int_eq(split("echo 'a  b' 'it''s' '\\n \"$x\"'"), 4);
	ck_assert_str_eq(t_argv[1], "a  b");
	ck_assert_str_eq(t_argv[2], "its");
	ck_assert_str_eq(t_argv[3], "\\n \"$x\"");
}
END_TEST

START_TEST(split_double_quotes)
{
	ck_assert_int_eq(split("echo \"a  b\" \"q\\\"q\" \"b\\\\s\" \"\\$HOME \\`x\\`\" \"\\n\" \"it's\""), 7);
	ck_assert_str_eq(t_argv[1], "a  b");
	ck_assert_str_eq(t_argv[2], "q\"q");
	ck_assert_str_eq(t_argv[3], "b\\s");
	ck_assert_str_eq(t_argv[4], "$HOME `x`");
	ck_assert_str_eq(t_argv[5], "\\n"); /* other backslashes stay, as in sh */
	ck_assert_str_eq(t_argv[6], "it's");
	ck_assert_int_eq(split("\"a\\\nb\""), 1);
	ck_assert_str_eq(t_argv[0], "ab");
}
END_TEST

START_TEST(split_empty_words)
{
	ck_assert_int_eq(split("a '' \"\" b"), 4);
	ck_assert_str_eq(t_argv[0], "a");
	ck_assert_str_eq(t_argv[1], "");
	ck_assert_str_eq(t_argv[2], "");
	ck_assert_str_eq(t_argv[3], "b");
	ck_assert_int_eq(split("''"), 1);
	ck_assert_str_eq(t_argv[0], "");
}
END_TEST

START_TEST(split_escapes_outside_quotes)
{
	ck_assert_int_eq(split("a\\ b \\'c \\\"d \\\\e \\$f g\\\nh"), 6);
	ck_assert_str_eq(t_argv[0], "a b");
	ck_assert_str_eq(t_argv[1], "'c");
	ck_assert_str_eq(t_argv[2], "\"d");
	ck_assert_str_eq(t_argv[3], "\\e");
	ck_assert_str_eq(t_argv[4], "$f");
	ck_assert_str_eq(t_argv[5], "gh");
}
END_TEST

START_TEST(split_adjacent_parts_join)
{
	ck_assert_int_eq(split("a'b c'\"d e\"f\\ g"), 1);
	ck_assert_str_eq(t_argv[0], "ab cd ef g");
}
END_TEST

START_TEST(split_no_expansion)
{
	ck_assert_int_eq(split("echo $HOME * ~ a|b c;d >x `id` $(id)"), 9);
	ck_assert_str_eq(t_argv[1], "$HOME");
	ck_assert_str_eq(t_argv[2], "*");
	ck_assert_str_eq(t_argv[3], "~");
	ck_assert_str_eq(t_argv[4], "a|b");
	ck_assert_str_eq(t_argv[5], "c;d");
	ck_assert_str_eq(t_argv[6], ">x");
	ck_assert_str_eq(t_argv[7], "`id`");
	ck_assert_str_eq(t_argv[8], "$(id)");
}
END_TEST

START_TEST(split_unterminated)
{
	static const char *const bad[] = {
		"'", "echo 'abc", "\"", "echo \"abc", "echo \"abc\\\"", "a\\", "echo 'a'\"b", "\"\\",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(split(bad[i]) == -EBADMSG, "accepted [%s]", bad[i]);
}
END_TEST

START_TEST(split_rejects_nul)
{
	ck_assert_int_eq(agent_split_words("a\0b", 3, t_words, sizeof(t_words), t_argv, 4), -EILSEQ);
}
END_TEST

START_TEST(split_too_many_words)
{
	static char in[2 * AGENT_CMD_MAX_WORDS + 8];
	size_t len = 0;

	for (int i = 0; i < AGENT_CMD_MAX_WORDS; i++) {
		in[len++] = 'x';
		in[len++] = ' ';
	}
	in[len] = '\0';
	ck_assert_int_eq(split(in), AGENT_CMD_MAX_WORDS);
	ck_assert_ptr_null(t_argv[AGENT_CMD_MAX_WORDS]);
	in[len++] = 'y';
	in[len] = '\0';
	ck_assert_int_eq(split(in), -E2BIG);
	/* A smaller argv is honoured too: 2 entries hold one word and the NULL. */
	ck_assert_int_eq(agent_split_words("a b", 3, t_words, sizeof(t_words), t_argv, 2), -E2BIG);
	ck_assert_int_eq(agent_split_words("a", 1, t_words, sizeof(t_words), t_argv, 2), 1);
	ck_assert_int_eq(agent_split_words("a", 1, t_words, sizeof(t_words), t_argv, 0), -ENOBUFS);
}
END_TEST

START_TEST(split_overlong)
{
	static char in[AGENT_CMD_MAX_LEN + 2];

	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	ck_assert_int_eq(split(in), -EMSGSIZE);
	/* At the limit, one word of AGENT_CMD_MAX_LEN bytes fits AGENT_CMD_WORDS_SIZE. */
	in[AGENT_CMD_MAX_LEN] = '\0';
	ck_assert_int_eq(split(in), 1);
	ck_assert_uint_eq(strlen(t_argv[0]), AGENT_CMD_MAX_LEN);
}
END_TEST

START_TEST(split_small_buffer)
{
	char buf[4];
	char *argv[4];

	ck_assert_int_eq(agent_split_words("abcd", 4, buf, sizeof(buf), argv, 4), -ENOBUFS);
	ck_assert_int_eq(agent_split_words("abc", 3, buf, sizeof(buf), argv, 4), 1);
	ck_assert_int_eq(agent_split_words("a b", 3, buf, sizeof(buf), argv, 4), 2);
	ck_assert_int_eq(agent_split_words("a bc", 4, buf, sizeof(buf), argv, 4), -ENOBUFS);
	ck_assert_int_eq(agent_split_words("a", 1, NULL, 4, argv, 4), -EFAULT);
}
END_TEST

/* ---- finding the parameter ---- */

START_TEST(find_param)
{
	const char *cl = "console=ttyS0 root=/dev/vda minivm.run=echo%20hi panic=-1\n";
	const char *v;
	size_t n;

	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 9);
	ck_assert_mem_eq(v, "echo%20hi", 9);
	cl = "console=ttyS0 minivm.run=echo%20hi\n";
	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_mem_eq(v, "echo%20hi", n);
	ck_assert_uint_eq(n, 9);
}
END_TEST

START_TEST(find_param_absent)
{
	static const char *const cls[] = {
		"", "\n", "console=ttyS0 panic=-1\n", "minivm.run", "xminivm.run=a", "minivm.runner=1",
		"\"x minivm.run=a\"", /* inside a quoted token */
	};
	const char *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		ck_assert_msg(agent_cmdline_find(cls[i], strlen(cls[i]), MINIVM_RUN_PARAM, &v, &n) == 0,
		              "found in [%s]", cls[i]);
	ck_assert_int_eq(agent_cmdline_find("a", 1, "", &v, &n), 0);
}
END_TEST

START_TEST(find_param_last_wins_and_empty)
{
	const char *cl = "minivm.run=first x=1 minivm.run=second";
	const char *v;
	size_t n;

	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 6);
	ck_assert_mem_eq(v, "second", 6);
	cl = "a minivm.run= b";
	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(find_param_kernel_quotes)
{
	const char *cl = "root=/dev/vda minivm.run=\"ls -l /\" quiet";
	const char *v;
	size_t n;

	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 7);
	ck_assert_mem_eq(v, "ls -l /", 7);
	cl = "a \"minivm.run=b c\" d";
	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 3);
	ck_assert_mem_eq(v, "b c", 3);
	cl = "minivm.run=\"unterminated value";
	ck_assert_int_eq(agent_cmdline_find(cl, strlen(cl), MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, strlen("unterminated value"));
	/* An embedded NUL ends the string, as it would for the kernel. */
	ck_assert_int_eq(agent_cmdline_find("a\0minivm.run=x", 14, MINIVM_RUN_PARAM, &v, &n), 0);
	ck_assert_int_eq(agent_cmdline_find("minivm.run=x\0y", 14, MINIVM_RUN_PARAM, &v, &n), 1);
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(strerror_messages)
{
	static const int errs[] = { -EINVAL, -EILSEQ, -EMSGSIZE, -E2BIG, -EBADMSG, -ENOBUFS, -EFAULT };

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		ck_assert_str_ne(agent_cmd_strerror(errs[i]), "unknown error");
	ck_assert_str_eq(agent_cmd_strerror(12345), "unknown error");
}
END_TEST

/* ---- statuses ---- */

START_TEST(status_mapping)
{
	ck_assert_int_eq(agent_status_from_wait(0), 0);
	ck_assert_int_eq(agent_status_from_wait(3 << 8), 3);
	ck_assert_int_eq(agent_status_from_wait(255 << 8), 255);
	ck_assert_int_eq(agent_status_from_wait(SIGKILL), 128 + SIGKILL);
	ck_assert_int_eq(agent_status_from_wait(SIGSEGV | 0x80), 128 + SIGSEGV); /* core dumped */
	ck_assert_int_eq(agent_status_from_spawn_errno(ENOENT), MINIVM_STATUS_NOT_FOUND);
	ck_assert_int_eq(agent_status_from_spawn_errno(EACCES), MINIVM_STATUS_NOT_EXECUTABLE);
	ck_assert_int_eq(agent_status_from_spawn_errno(ENOEXEC), MINIVM_STATUS_NOT_EXECUTABLE);
	ck_assert_int_eq(agent_status_from_spawn_errno(ENOTDIR), MINIVM_STATUS_NOT_EXECUTABLE);
}
END_TEST

static Suite *agent_cmdline_suite(void)
{
	Suite *s = suite_create("agent_cmdline");
	TCase *enc = tcase_create("encode_decode");
	TCase *spl = tcase_create("split");
	TCase *fnd = tcase_create("find");

	tcase_add_test(enc, encode_safe_bytes_pass_through);
	tcase_add_test(enc, encode_others_as_uppercase_hex);
	tcase_add_test(enc, encode_length_query_and_small_buffer);
	tcase_add_test(enc, encode_rejects_nul_and_overlong);
	tcase_add_test(enc, round_trip_every_byte);
	tcase_add_test(enc, round_trip_command);
	tcase_add_test(enc, decode_lowercase_and_raw_bytes);
	tcase_add_test(enc, decode_rejects_bad_escapes);
	tcase_add_test(enc, decode_rejects_nul);
	tcase_add_test(enc, decode_bounds);
	tcase_add_test(spl, split_blanks);
	tcase_add_test(spl, split_empty_command);
	tcase_add_test(spl, split_single_quotes);
	tcase_add_test(spl, split_double_quotes);
	tcase_add_test(spl, split_empty_words);
	tcase_add_test(spl, split_escapes_outside_quotes);
	tcase_add_test(spl, split_adjacent_parts_join);
	tcase_add_test(spl, split_no_expansion);
	tcase_add_test(spl, split_unterminated);
	tcase_add_test(spl, split_rejects_nul);
	tcase_add_test(spl, split_too_many_words);
	tcase_add_test(spl, split_overlong);
	tcase_add_test(spl, split_small_buffer);
	tcase_add_test(fnd, find_param);
	tcase_add_test(fnd, find_param_absent);
	tcase_add_test(fnd, find_param_last_wins_and_empty);
	tcase_add_test(fnd, find_param_kernel_quotes);
	tcase_add_test(fnd, strerror_messages);
	tcase_add_test(fnd, status_mapping);
	suite_add_tcase(s, enc);
	suite_add_tcase(s, spl);
	suite_add_tcase(s, fnd);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(agent_cmdline_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
