/* A matcher of git's ignore rules (gitignore(5)): parses .gitignore buffers into rules per directory and matches paths the way git's dir.c and wildmatch.c do. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/gitignore.h"

#define GI_NEGATIVE 0x1u /* "!pattern" */
#define GI_MUSTBEDIR 0x2u /* "pattern/" */
#define GI_NODIR 0x4u /* no '/' in the pattern: matched against the basename */

/* Steps one wildmatch may take before it gives up (as no match). */
#define GI_WILD_BUDGET 200000

struct gi_rule {
	char *pat; /* without '!' and the trailing '/' */
	unsigned int flags;
};

struct gi_list {
	char *base; /* directory of the .gitignore, "" for the top */
	size_t baselen;
	struct gi_rule *rules;
	size_t n, cap;
};

struct gitignore {
	struct gi_list *lists;
	size_t n, cap;
	size_t nrules;
};

int gi_new(struct gitignore **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void gi_free(struct gitignore *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		for (size_t j = 0; j < g->lists[i].n; j++)
			free(g->lists[i].rules[j].pat);
		free(g->lists[i].rules);
		free(g->lists[i].base);
	}
	free(g->lists);
	free(g);
}

size_t gi_rules(const struct gitignore *g)
{
	return g->nrules;
}

/* ---- wildmatch: git's wildmatch.c semantics, with a work bound ---- */

enum { WM_MATCH = 0, WM_NOMATCH = 1, WM_ABORT_ALL = -1, WM_ABORT_TO_STARSTAR = -2 };

static bool wm_special(unsigned char c)
{
	return c == '*' || c == '?' || c == '[' || c == '\\';
}

/* A [:name:] class of length len; -1 if the name is unknown. */
static int wm_class(const unsigned char *s, size_t len, unsigned char c)
{
	static const struct {
		const char *name;
		int (*fn)(int);
	} cls[] = {
		{ "alnum", isalnum }, { "alpha", isalpha }, { "blank", isblank },
		{ "cntrl", iscntrl }, { "digit", isdigit }, { "graph", isgraph },
		{ "lower", islower }, { "print", isprint }, { "punct", ispunct },
		{ "space", isspace }, { "upper", isupper }, { "xdigit", isxdigit },
	};

	for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		if (strlen(cls[i].name) == len && !memcmp(cls[i].name, s, len))
			return cls[i].fn(c) ? 1 : 0;
	return -1;
}

/* wildmatch(pattern, text) with WM_PATHNAME iff pathname; *budget counts steps. */
static int dowild(const unsigned char *p, const unsigned char *text, bool pathname, long *budget)
{
	const unsigned char *pattern = p;
	unsigned char p_ch;

	if (--*budget < 0)
		return WM_ABORT_ALL;
	for (; (p_ch = *p) != '\0'; text++, p++) {
		int matched, match_slash, negated;
		unsigned char t_ch, prev_ch;

		if (--*budget < 0)
			return WM_ABORT_ALL;
		if ((t_ch = *text) == '\0' && p_ch != '*')
			return WM_ABORT_ALL;
		switch (p_ch) {
		case '\\':
			/* Literal match with the next character ('\0' fails below). */
			p_ch = *++p;
			if (!p_ch)
				return WM_NOMATCH;
			/* fallthrough */
		default:
			if (t_ch != p_ch)
				return WM_NOMATCH;
			continue;
		case '?':
			if (pathname && t_ch == '/')
				return WM_NOMATCH;
			continue;
		case '*':
			if (*++p == '*') {
				const unsigned char *prev_p = p - 2;

				while (*++p == '*') {
				}
				if ((prev_p < pattern || *prev_p == '/') &&
				    (*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
					/* "**" as a whole component: any number of directories;
					 * first try it matching none. */
					if (p[0] == '/' && dowild(p + 1, text, pathname, budget) == WM_MATCH)
						return WM_MATCH;
					match_slash = 1;
				} else {
					match_slash = pathname ? 0 : 1;
				}
			} else {
				match_slash = pathname ? 0 : 1;
			}
			if (*p == '\0') {
				/* Trailing "**" matches everything, "*" only within a component. */
				if (!match_slash && strchr((const char *)text, '/'))
					return WM_NOMATCH;
				return WM_MATCH;
			} else if (!match_slash && *p == '/') {
				/* One '*' then '/': skips to the next directory. */
				const char *slash = strchr((const char *)text, '/');

				if (!slash)
					return WM_NOMATCH;
				text = (const unsigned char *)slash;
				break; /* the loop consumes the slash */
			}
			for (;;) {
				if (--*budget < 0)
					return WM_ABORT_ALL;
				if (t_ch == '\0')
					break;
				if (!wm_special(*p)) {
					/* A literal follows: what precedes it belongs to the '*'. */
					p_ch = *p;
					while ((t_ch = *text) != '\0' && (match_slash || t_ch != '/')) {
						if (t_ch == p_ch)
							break;
						text++;
					}
					if (t_ch != p_ch)
						return WM_NOMATCH;
				}
				matched = dowild(p, text, pathname, budget);
				if (matched != WM_NOMATCH) {
					if (!match_slash || matched != WM_ABORT_TO_STARSTAR)
						return matched;
				} else if (!match_slash && t_ch == '/') {
					return WM_ABORT_TO_STARSTAR;
				}
				t_ch = *++text;
			}
			return WM_ABORT_ALL;
		case '[':
			p_ch = *++p;
			if (p_ch == '^')
				p_ch = '!';
			negated = p_ch == '!' ? 1 : 0;
			if (negated)
				p_ch = *++p;
			prev_ch = 0;
			matched = 0;
			do {
				if (--*budget < 0)
					return WM_ABORT_ALL;
				if (!p_ch)
					return WM_ABORT_ALL;
				if (p_ch == '\\') {
					p_ch = *++p;
					if (!p_ch)
						return WM_ABORT_ALL;
					if (t_ch == p_ch)
						matched = 1;
				} else if (p_ch == '-' && prev_ch && p[1] && p[1] != ']') {
					p_ch = *++p;
					if (p_ch == '\\') {
						p_ch = *++p;
						if (!p_ch)
							return WM_ABORT_ALL;
					}
					if (t_ch <= p_ch && t_ch >= prev_ch)
						matched = 1;
					p_ch = 0; /* prev_ch becomes 0: no range right after a range */
				} else if (p_ch == '[' && p[1] == ':') {
					const unsigned char *s;
					int r;

					for (s = p += 2; (p_ch = *p) && p_ch != ']'; p++) {
					}
					if (!p_ch)
						return WM_ABORT_ALL;
					if (p - s < 1 || p[-1] != ':') {
						/* No ":]": a plain '[' in the set. */
						p = s - 2;
						p_ch = '[';
						if (t_ch == p_ch)
							matched = 1;
						continue;
					}
					r = wm_class(s, (size_t)(p - s - 1), t_ch);
					if (r < 0)
						return WM_ABORT_ALL; /* malformed [:class:] */
					if (r)
						matched = 1;
					p_ch = 0;
				} else if (t_ch == p_ch) {
					matched = 1;
				}
			} while (prev_ch = p_ch, (p_ch = *++p) != ']');
			if (matched == negated || (pathname && t_ch == '/'))
				return WM_NOMATCH;
			continue;
		}
	}
	return *text ? WM_NOMATCH : WM_MATCH;
}

static bool wildmatch(const char *pat, const char *text, bool pathname)
{
	long budget = GI_WILD_BUDGET;

	return dowild((const unsigned char *)pat, (const unsigned char *)text, pathname, &budget) ==
	       WM_MATCH;
}

/* ---- parsing ---- */

/* git's trim_trailing_spaces: drops trailing ' ' unless escaped by '\'. */
static void trim_trailing_spaces(char *buf)
{
	char *last_space = NULL;

	for (char *p = buf; *p; p++) {
		switch (*p) {
		case ' ':
			if (!last_space)
				last_space = p;
			break;
		case '\\':
			p++;
			if (!*p)
				return;
			/* fallthrough */
		default:
			last_space = NULL;
		}
	}
	if (last_space)
		*last_space = '\0';
}

static bool dir_ok(const char *dir)
{
	size_t len = strlen(dir);

	if (len == 0)
		return true;
	if (dir[0] == '/' || dir[len - 1] == '/' || strstr(dir, "//"))
		return false;
	for (const char *c = dir; c; c = strchr(c, '/')) {
		if (*c == '/')
			c++;
		if ((c[0] == '.' && (c[1] == '/' || c[1] == '\0')) ||
		    (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0')))
			return false;
	}
	return true;
}

/* Parses one line (NUL-terminated, trimmed) into a rule; false if it holds none. */
static bool parse_rule(char *line, struct gi_rule *r)
{
	size_t len;

	r->flags = 0;
	if (*line == '!') {
		r->flags |= GI_NEGATIVE;
		line++;
	}
	len = strlen(line);
	if (len && line[len - 1] == '/') {
		line[--len] = '\0';
		r->flags |= GI_MUSTBEDIR;
	}
	if (!len)
		return false; /* matches nothing in git either */
	if (!memchr(line, '/', len))
		r->flags |= GI_NODIR;
	r->pat = line;
	return true;
}

int gi_add(struct gitignore *g, const char *dir, const char *buf, size_t len, char *err,
	   size_t errlen)
{
	struct gi_rule *rules = NULL;
	size_t n = 0, cap = 0, lineno = 0, i = 0;
	struct gi_list *l = NULL;
	char *line = NULL;
	int ret;

	if (!dir_ok(dir)) {
		snprintf(err, errlen, "%s/.gitignore: not a clean relative directory", dir);
		return -EINVAL;
	}
	line = malloc(GI_LINE_MAX + 1);
	if (!line)
		return -ENOMEM;
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - buf) : len, ll = end - i;
		struct gi_rule r;

		lineno++;
		if (ll && buf[end - 1] == '\r')
			ll--;
		if (ll > GI_LINE_MAX) {
			snprintf(err, errlen, "%s%s.gitignore:%zu: line longer than %d bytes", dir,
				 *dir ? "/" : "", lineno, GI_LINE_MAX);
			ret = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(line, buf + i, ll);
		line[ll] = '\0';
		i = end + 1;
		if (ll == 0 || line[0] == '#' || memchr(line, '\0', ll))
			continue; /* a NUL cuts git's line; such a line is junk: skip it */
		trim_trailing_spaces(line);
		if (!parse_rule(line, &r))
			continue;
		if (g->nrules + n >= GI_RULES_MAX) {
			snprintf(err, errlen, "%s%s.gitignore:%zu: more than %d patterns", dir,
				 *dir ? "/" : "", lineno, GI_RULES_MAX);
			ret = -E2BIG;
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct gi_rule *nr = reallocarray(rules, ncap, sizeof(*nr));

			if (!nr) {
				ret = -ENOMEM;
				goto fail;
			}
			rules = nr;
			cap = ncap;
		}
		rules[n].pat = strdup(r.pat);
		if (!rules[n].pat) {
			ret = -ENOMEM;
			goto fail;
		}
		rules[n++].flags = r.flags;
	}

	for (size_t k = 0; k < g->n; k++)
		if (!strcmp(g->lists[k].base, dir))
			l = &g->lists[k];
	if (!l) {
		if (g->n >= GI_FILES_MAX) {
			snprintf(err, errlen, "%s%s.gitignore: more than %d .gitignore files", dir,
				 *dir ? "/" : "", GI_FILES_MAX);
			ret = -E2BIG;
			goto fail;
		}
		if (g->n == g->cap) {
			size_t ncap = g->cap ? g->cap * 2 : 8;
			struct gi_list *nl = reallocarray(g->lists, ncap, sizeof(*nl));

			if (!nl) {
				ret = -ENOMEM;
				goto fail;
			}
			g->lists = nl;
			g->cap = ncap;
		}
		l = &g->lists[g->n];
		memset(l, 0, sizeof(*l));
		l->base = strdup(dir);
		if (!l->base) {
			ret = -ENOMEM;
			goto fail;
		}
		l->baselen = strlen(dir);
		g->n++;
	}
	if (l->n + n > l->cap) {
		size_t ncap = l->n + n;
		struct gi_rule *nr = reallocarray(l->rules, ncap ? ncap : 1, sizeof(*nr));

		if (!nr) {
			ret = -ENOMEM;
			goto fail;
		}
		l->rules = nr;
		l->cap = ncap;
	}
	if (n)
		memcpy(l->rules + l->n, rules, n * sizeof(*rules));
	l->n += n;
	g->nrules += n;
	free(rules);
	free(line);
	return 0;

fail:
	for (size_t k = 0; k < n; k++)
		free(rules[k].pat);
	free(rules);
	free(line);
	return ret;
}

/* ---- matching ---- */

/* git's last_matching_pattern_from_list for one list; -1 none, else its flags. */
static int list_match(const struct gi_list *l, const char *path, size_t pathlen, bool is_dir)
{
	const char *slash = strrchr(path, '/');
	const char *basename = slash ? slash + 1 : path;
	const char *rel;

	/* Only a .gitignore in a parent directory of path applies to it. */
	if (l->baselen) {
		if (pathlen <= l->baselen + 1 || path[l->baselen] != '/' ||
		    memcmp(path, l->base, l->baselen))
			return -1;
		rel = path + l->baselen + 1;
	} else {
		rel = path;
	}
	for (size_t i = l->n; i-- > 0;) {
		const struct gi_rule *r = &l->rules[i];
		const char *pat = r->pat;

		if ((r->flags & GI_MUSTBEDIR) && !is_dir)
			continue;
		if (r->flags & GI_NODIR) {
			/* Without WM_PATHNAME; the basename holds no '/' anyway. */
			if (wildmatch(pat, basename, false))
				return (int)r->flags;
			continue;
		}
		if (*pat == '/')
			pat++;
		if (wildmatch(pat, rel, true))
			return (int)r->flags;
	}
	return -1;
}

/* Whether path itself is ignored, its parents not considered. */
static bool path_ignored(const struct gitignore *g, const char *path, size_t pathlen, bool is_dir)
{
	size_t best_base = 0;
	int best = -1;

	for (size_t i = 0; i < g->n; i++) {
		const struct gi_list *l = &g->lists[i];
		int f;

		if (best >= 0 && l->baselen < best_base)
			continue;
		f = list_match(l, path, pathlen, is_dir);
		if (f >= 0 && (best < 0 || l->baselen >= best_base)) {
			best = f;
			best_base = l->baselen;
		}
	}
	return best >= 0 && !(best & GI_NEGATIVE);
}

bool gi_ignored(const struct gitignore *g, const char *path, bool is_dir)
{
	size_t len = strlen(path);
	unsigned int depth = 0;
	char *buf;
	bool ign = false;

	if (!len || !g->nrules)
		return false;
	buf = strdup(path);
	if (!buf)
		return false;
	/* Parents first, shallowest first: an ignored directory hides all below. */
	for (size_t i = 0; i < len && !ign; i++) {
		if (buf[i] != '/')
			continue;
		if (++depth > GI_DEPTH_MAX)
			break;
		buf[i] = '\0';
		ign = path_ignored(g, buf, i, true);
		buf[i] = '/';
	}
	if (!ign && depth <= GI_DEPTH_MAX)
		ign = path_ignored(g, buf, len, is_dir);
	free(buf);
	return ign;
}
