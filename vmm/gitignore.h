/* A matcher of git's ignore rules (gitignore(5)): per-directory .gitignore files parsed from buffers, paths matched as git does. Pure: no I/O. */
#ifndef MINIVM_GITIGNORE_H
#define MINIVM_GITIGNORE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest pattern line kept (bytes); longer lines are refused. */
#define GI_LINE_MAX 4096
/* Most patterns over all files of one set, and most .gitignore files. */
#define GI_RULES_MAX 100000
#define GI_FILES_MAX 100000
/* Deepest path gi_ignored looks at (components). */
#define GI_DEPTH_MAX 256

/*
 * A set of ignore rules: the patterns of every .gitignore file added, each
 * remembered with the directory it came from. Not thread-safe to add to
 * while another thread matches; matching alone is read-only.
 */
struct gitignore;

/* An empty set (ignores nothing). 0 or -ENOMEM. */
int gi_new(struct gitignore **out) __attribute__((warn_unused_result));
void gi_free(struct gitignore *g);

/*
 * Parses the contents of the .gitignore file found in directory dir (a
 * clean relative path, "" for the top) and adds its patterns. Follows
 * gitignore(5) as git 2.39 implements it: a UTF-8 BOM is skipped, CRLF
 * accepted, blank lines and lines starting with '#' skipped, unescaped
 * trailing spaces dropped, '!' negates, a trailing '/' matches directories
 * only, a '/' at the start or in the middle anchors the pattern to dir,
 * wildcards as git's wildmatch (*, ?, [...] with ranges, '!'/'^'
 * negation and [:class:], '\' escapes, "**" across directories).
 * Files may be added in any order; the deeper directory's rules take
 * precedence. Adding the same dir twice appends to its rules.
 * Returns 0, or -EINVAL (bad dir), -ENAMETOOLONG (a line over
 * GI_LINE_MAX), -E2BIG (over GI_RULES_MAX / GI_FILES_MAX), -ENOMEM; then a
 * message naming dir/.gitignore and the line is in err, and the set is
 * unchanged.
 */
int gi_add(struct gitignore *g, const char *dir, const char *buf, size_t len, char *err,
	   size_t errlen) __attribute__((warn_unused_result));

/*
 * Whether path (clean, relative, not "") is ignored: true if any of its
 * parent directories is ignored (git never re-includes below an excluded
 * directory), else if the last matching rule of the deepest .gitignore
 * (among those in its parent directories) with a matching rule is not a
 * negation. is_dir says whether path is a directory. Never ignores a path
 * deeper than GI_DEPTH_MAX components on its own account. A pathological
 * pattern whose matching exceeds a work bound is taken as not matching.
 */
bool gi_ignored(const struct gitignore *g, const char *path, bool is_dir);

/* Patterns held (for tests and logs). */
size_t gi_rules(const struct gitignore *g);

#endif
