/* Checks of the built libminivm: no writable global state, no exit/_exit/abort and no fork in it (objdump, nm), the .so's soname and flags, minivm.pc, and a program built against `make install` with pkg-config. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set by the Makefile: the build directory and the version it built. */
#ifndef MINIVM_TEST_BUILD
#error "MINIVM_TEST_BUILD must name the build directory"
#endif
#ifndef MINIVM_TEST_VERSION
#error "MINIVM_TEST_VERSION must be the library's version"
#endif

#define LIB_A MINIVM_TEST_BUILD "/libminivm.a"
#define LIB_SO MINIVM_TEST_BUILD "/libminivm.so"
#define LIB_PC MINIVM_TEST_BUILD "/minivm.pc"

/* Runs cmd with the shell; its whole stdout, or NULL. Caller frees. */
static char *run_out(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[4096];

	ck_assert_msg(p != NULL, "popen: %s", cmd);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	if (!buf) {
		buf = malloc(1);
		ck_assert_ptr_nonnull(buf);
	}
	buf[len] = '\0';
	ck_assert_msg(pclose(p) == 0, "command failed: %s", cmd);
	return buf;
}

START_TEST(no_writable_globals)
{
	/* Per object of the archive (the same PIC objects as the .so, and no
	 * toolchain start files): "object symbol section" for every symbol in
	 * a writable data section. .data.rel.ro is not one: with -z relro -z
	 * now the loader makes it read-only once relocated. */
	char *out = run_out(
		"objdump -t " LIB_A " | awk '"
		"/: +file format/ { obj = $1; sub(/:$/, \"\", obj); next } "
		"{ for (i = 2; i <= NF; i++) if ($i ~ /^\\./ || $i == \"*COM*\") break; "
		"  if (i > NF) next; sec = $i; name = $NF; "
		"  if (name == sec) next; "
		"  if ((sec ~ /^\\.(data|bss|tdata|tbss)($|\\.)/ && sec !~ /^\\.data\\.rel\\.ro/) || "
		"      sec == \"*COM*\") print obj \":\" name, sec }'");

	/* None at all: the SIGSYS handler's state lives in minivm-vmm
	 * (vmm/vmm_main.c), which is not part of the library. */
	ck_assert_msg(out[0] == '\0', "writable global state in libminivm: %s", out);
	free(out);
}
END_TEST

START_TEST(no_exit_or_abort)
{
	/* The .so's undefined symbols: none ends the process. */
	char *out = run_out("nm -D --undefined-only " LIB_SO " | awk '{ sub(/@.*/, \"\", $2); print $2 }'");
	char *save = NULL;

	for (char *s = strtok_r(out, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(strcmp(s, "exit") && strcmp(s, "_exit") && strcmp(s, "abort") &&
				      strcmp(s, "_Exit") && strcmp(s, "quick_exit") &&
				      strcmp(s, "__assert_fail") && strcmp(s, "err") && strcmp(s, "errx") &&
				      strcmp(s, "fork") && strcmp(s, "vfork"),
			      "libminivm.so calls %s", s);
	}
	free(out);
	/* No object of the archive ends the process or forks the caller:
	 * the keeper and VMM processes are minivm-vmm, which the library
	 * starts with posix_spawn (vmm/vmm_proc.h). */
	out = run_out("nm -A " LIB_A " | awk '$2 == \"U\" && ($3 == \"_exit\" || $3 == \"exit\" || "
		      "$3 == \"_Exit\" || $3 == \"abort\" || $3 == \"quick_exit\" || $3 == \"fork\" || "
		      "$3 == \"vfork\") { print $1, $3 }'");
	ck_assert_msg(!strcmp(out, ""), "referenced in libminivm.a: %s", out);
	free(out);
}
END_TEST

START_TEST(soname_and_flags)
{
	char *out = run_out("readelf -d " LIB_SO);

	ck_assert_msg(strstr(out, "Library soname: [libminivm.so.0]"), "soname: %s", out);
	ck_assert_msg(strstr(out, "BIND_NOW") || strstr(out, "NOW"), "not linked -z now: %s", out);
	free(out);
	out = run_out("readelf -lW " LIB_SO);
	ck_assert_msg(strstr(out, "GNU_RELRO"), "no RELRO segment");
	free(out);
	out = run_out("readlink " LIB_SO " && readlink " MINIVM_TEST_BUILD "/libminivm.so.0");
	ck_assert_str_eq(out, "libminivm.so.0\nlibminivm.so." MINIVM_TEST_VERSION "\n");
	free(out);
}
END_TEST

START_TEST(pkg_config_file)
{
	char *out = run_out("cat " LIB_PC);

	ck_assert_msg(strstr(out, "\nName: minivm\n"), "%s", out);
	ck_assert_msg(strstr(out, "\nDescription: "), "%s", out);
	ck_assert_msg(strstr(out, "\nVersion: " MINIVM_TEST_VERSION "\n"), "%s", out);
	ck_assert_msg(strstr(out, "\nLibs: -L${libdir} -lminivm\n"), "%s", out);
	ck_assert_msg(strstr(out, "\nLibs.private: ") && strstr(out, "-luring") &&
			      strstr(out, "-lseccomp") && strstr(out, "-lext2fs"),
		      "%s", out);
	ck_assert_msg(strstr(out, "\nCflags: -I${includedir}/minivm\n"), "%s", out);
	free(out);
}
END_TEST

/* The example: the header alone from the install tree, linked through
 * pkg-config against the shared library; no kernel, so minivm_create()
 * must fail and return (not exit) with a message. */
static const char example_c[] =
	"#include <errno.h>\n"
	"#include <minivm.h>\n"
	"#include <stdio.h>\n"
	"int main(void)\n"
	"{\n"
	"\tstruct minivm_config cfg;\n"
	"\tstruct minivm *vm = (struct minivm *)&cfg;\n"
	"\tchar err[256] = \"\";\n"
	"\tint r;\n"
	"\tminivm_config_init(&cfg);\n"
	"\tcfg.kernel = \"/nonexistent/minivm-test-kernel\";\n"
	"\tr = minivm_create(&cfg, &vm, err, sizeof(err));\n"
	"\tprintf(\"%d %d %s\\n\", r < 0, vm == NULL, err[0] ? \"message\" : \"none\");\n"
	"\treturn cfg.cpus == 1 ? 0 : 1;\n"
	"}\n";

START_TEST(install_tree_and_pkg_config)
{
	char tmpl[] = "/tmp/minivm-libtest.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char cmd[2048], *out;
	FILE *f;

	ck_assert_ptr_nonnull(dir);
	snprintf(cmd, sizeof(cmd),
		 "MAKEFLAGS= make -s --no-print-directory install BUILD=%s DESTDIR=%s PREFIX=/usr >/dev/null",
		 MINIVM_TEST_BUILD, dir);
	free(run_out(cmd));
	snprintf(cmd, sizeof(cmd),
		 "cd %s && find . \\( -type f -o -type l \\) | LC_ALL=C sort", dir);
	out = run_out(cmd);
	ck_assert_str_eq(out, "./usr/bin/minivm\n"
			      "./usr/bin/minivm-runc\n"
			      "./usr/include/minivm/minivm.h\n"
			      "./usr/lib/libminivm.a\n"
			      "./usr/lib/libminivm.so\n"
			      "./usr/lib/libminivm.so.0\n"
			      "./usr/lib/libminivm.so." MINIVM_TEST_VERSION "\n"
			      "./usr/lib/pkgconfig/minivm.pc\n"
			      "./usr/libexec/minivm/minivm-vmm\n");
	free(out);

	snprintf(cmd, sizeof(cmd), "%s/example.c", dir);
	f = fopen(cmd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(example_c, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %1$s && PKG_CONFIG_SYSROOT_DIR=%1$s PKG_CONFIG_LIBDIR=%1$s/usr/lib/pkgconfig "
		 "PKG_CONFIG_PATH= cc -std=c11 -Wall -Wextra -Werror -pedantic -o example example.c "
		 "$(PKG_CONFIG_SYSROOT_DIR=%1$s PKG_CONFIG_LIBDIR=%1$s/usr/lib/pkgconfig "
		 "pkg-config --cflags --libs minivm) 2>&1 && "
		 "readelf -d example | grep -c 'Shared library: \\[libminivm.so.0\\]' && "
		 "env -u LD_PRELOAD LD_LIBRARY_PATH=%1$s/usr/lib ASAN_OPTIONS= ./example",
		 dir);
	out = run_out(cmd);
	ck_assert_str_eq(out, "1\n1 1 message\n");
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *libminivm_suite(void)
{
	Suite *s = suite_create("libminivm");
	TCase *tc = tcase_create("built");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, no_writable_globals);
	tcase_add_test(tc, no_exit_or_abort);
	tcase_add_test(tc, soname_and_flags);
	tcase_add_test(tc, pkg_config_file);
	tcase_add_test(tc, install_tree_and_pkg_config);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(libminivm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
