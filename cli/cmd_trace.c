/*
 * cmd_trace.c - `dtn-build trace show FILE`: the spans of an OTLP/JSON trace file (one request
 * body per line, as --trace-file writes) drawn as a waterfall: one trace after another, spans
 * indented under their parents, each with its start offset, duration, a bar on the trace's time
 * scale and its status.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "cli_otel.h"

static const char usage[] =
	"usage: dtn-build trace show FILE [--no-color] [--width N]\n"
	"\n"
	"Draw the traces in FILE (OTLP/JSON request bodies, one per line, as written by\n"
	"`dtn-build --trace-file FILE COMMAND`; - reads standard input) as a waterfall: each\n"
	"trace's spans indented under their parents, with the start offset from the trace's\n"
	"start, the duration, a bar on the trace's time scale and the status (OK, ERROR with\n"
	"the error.type). Spans whose parent is not in the file start at the left, marked\n"
	"\"parent not in file\". Metrics lines are counted and skipped.\n"
	"\n"
	"  --no-color   no colours (they are used only on a terminal, and never when NO_COLOR\n"
	"               is set)\n"
	"  --width N    the width of the bars in characters (default: fit the terminal, else 40)\n"
	"\n"
	"A line that is not an OTLP/JSON body is reported with its number; the other lines are\n"
	"still drawn, and the exit code is then 1.\n";

typedef struct tspan {
	char trace[33], id[17], parent[17];
	char *name, *error_type, *service;
	uint64_t start, end;
	int status, kind;
	size_t first_child, next_sibling; /* indexes + 1; 0: none */
	bool shown;
	int line;
} tspan;

typedef struct tfile {
	tspan *v;
	size_t n, cap;
	size_t metric_lines, bad_lines;
	const char *name;
} tfile;

/* ---- reading ---- */

static bool u64_of(json_t *j, uint64_t *out)
{
	const char *s;
	char *end;

	if (json_is_integer(j) && json_integer_value(j) >= 0) {
		*out = (uint64_t)json_integer_value(j);
		return true;
	}
	if (!(s = json_string_value(j)) || !*s)
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end;
}

static bool hex_id(json_t *j, char *out, size_t len)
{
	const char *s = json_string_value(j);

	if (!s || strlen(s) != len || strspn(s, "0123456789abcdefABCDEF") != len)
		return false;
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	return true;
}

static const char *string_attr(json_t *attrs, const char *key)
{
	size_t i;
	json_t *kv;

	json_array_foreach(attrs, i, kv) {
		const char *k = json_string_value(json_object_get(kv, "key"));
		if (k && strcmp(k, key) == 0)
			return json_string_value(
				json_object_get(json_object_get(kv, "value"), "stringValue"));
	}
	return NULL;
}

/*
 * A string of the file as it may reach a terminal: each control character (C0, DEL, C1) and
 * each mark that reorders text (bidirectional embeddings, overrides and isolates) is written
 * as an escape (\x1b, \u202e), so a crafted file can neither move the cursor nor make a line
 * read differently from what it holds; a byte that is not UTF-8 is escaped the same way. NULL
 * for NULL or when memory runs out.
 */
static char *shown(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out, *o;

	if (!s || !(out = malloc(strlen(s) * 6 + 1)))
		return NULL;
	o = out;
	while (*u) {
		unsigned cp = *u, len = 1;

		if (*u >= 0xc0 && *u < 0xf8) {
			len = *u >= 0xf0 ? 4 : *u >= 0xe0 ? 3 : 2;
			cp = *u & (0x3f >> (len - 1));
			for (unsigned i = 1; i < len && cp < 0x110000; i++)
				cp = (u[i] & 0xc0) == 0x80 ? cp << 6 | (u[i] & 0x3f) : 0x110000;
		}
		if (cp >= 0x110000 || (cp >= 0x80 && len == 1)) {
			/* not UTF-8 (only in jansson's messages): the byte alone, escaped */
			len = 1;
			o += sprintf(o, "\\x%02x", *u);
		} else if (cp < 0x20 || cp == 0x7f) {
			o += sprintf(o, "\\x%02x", cp);
		} else if ((cp >= 0x80 && cp < 0xa0) || (cp >= 0x202a && cp <= 0x202e) ||
			   (cp >= 0x2066 && cp <= 0x2069)) {
			o += sprintf(o, "\\u%04x", cp);
		} else {
			memcpy(o, u, len);
			o += len;
		}
		u += len;
	}
	*o = '\0';
	return out;
}

/* The columns a shown string takes: one per character. */
static int columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* The bytes of s's first `cols` characters. */
static size_t first_columns(const char *s, int cols)
{
	size_t i = 0;

	for (; s[i]; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && cols-- == 0)
			break;
	return i;
}

static void bad(tfile *f, int line, const char *what)
{
	/* jansson's messages quote the text near the error, which is the file's */
	char *clean = shown(what);

	cli_error("trace show: %s:%d: %s", f->name, line, clean ? clean : what);
	free(clean);
	f->bad_lines++;
}

static bool add_span(tfile *f, json_t *js, const char *service, int line)
{
	tspan s = {.line = line};
	json_t *parent = json_object_get(js, "parentSpanId");
	const char *name = json_string_value(json_object_get(js, "name"));
	const char *et;

	if (!hex_id(json_object_get(js, "traceId"), s.trace, 32) ||
	    !hex_id(json_object_get(js, "spanId"), s.id, 16) || !name ||
	    !u64_of(json_object_get(js, "startTimeUnixNano"), &s.start) ||
	    !u64_of(json_object_get(js, "endTimeUnixNano"), &s.end))
		return false;
	if (parent && json_string_length(parent) && !hex_id(parent, s.parent, 16))
		return false;
	if (s.end < s.start)
		s.end = s.start;
	s.status = (int)json_integer_value(json_object_get(json_object_get(js, "status"), "code"));
	s.kind = (int)json_integer_value(json_object_get(js, "kind"));
	et = string_attr(json_object_get(js, "attributes"), "error.type");
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		tspan *v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return false;
		f->v = v;
		f->cap = cap;
	}
	s.name = shown(name);
	s.error_type = shown(et);
	s.service = shown(service);
	if (!s.name || (et && !s.error_type) || (service && !s.service)) {
		free(s.name);
		free(s.error_type);
		free(s.service);
		return false;
	}
	f->v[f->n++] = s;
	return true;
}

/* One request body: spans are added, metrics counted; false (reported) when malformed. */
static void read_body(tfile *f, json_t *root, int line)
{
	json_t *rs = json_object_get(root, "resourceSpans"), *r, *ss, *sp;
	size_t i, j, k;

	if (!rs) {
		if (json_object_get(root, "resourceMetrics"))
			f->metric_lines++;
		else
			bad(f, line, "not an OTLP/JSON body (no resourceSpans or resourceMetrics)");
		return;
	}
	if (!json_is_array(rs)) {
		bad(f, line, "resourceSpans is not an array");
		return;
	}
	json_array_foreach(rs, i, r) {
		const char *service = string_attr(
			json_object_get(json_object_get(r, "resource"), "attributes"), "service.name");
		json_array_foreach(json_object_get(r, "scopeSpans"), j, ss) {
			json_array_foreach(json_object_get(ss, "spans"), k, sp) {
				if (!add_span(f, sp, service, line)) {
					bad(f, line, "a span without a valid traceId, spanId, name or "
						     "start and end times");
					return;
				}
			}
		}
	}
}

static int read_file(tfile *f, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int no = 0;

	while ((len = getline(&line, &cap, in)) >= 0) {
		json_error_t jerr;
		json_t *root;

		no++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strspn(line, " \t") == (size_t)len)
			continue;
		if (!(root = json_loadb(line, (size_t)len, 0, &jerr))) {
			char msg[300];
			snprintf(msg, sizeof(msg), "not JSON: %s (column %d)", jerr.text, jerr.column);
			bad(f, no, msg);
			continue;
		}
		if (!json_is_object(root))
			bad(f, no, "not an OTLP/JSON body (not an object)");
		else
			read_body(f, root, no);
		json_decref(root);
	}
	free(line);
	return ferror(in) ? -1 : 0;
}

/* ---- drawing ---- */

typedef struct style {
	bool color;
	int width;       /* of the bars */
	int name_width;
} style;

static void fmt_dur(char *buf, size_t size, uint64_t ns)
{
	if (ns < 1000000)
		snprintf(buf, size, "%.3f ms", (double)ns / 1e6);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, size, "%.2f s", (double)ns / 1e9);
}

static void draw_bar(const style *st, uint64_t t0, uint64_t total, const tspan *s)
{
	int from = (int)((double)(s->start - t0) / (double)total * st->width);
	int to = (int)(((double)(s->end - t0) / (double)total) * st->width + 0.999);

	if (from >= st->width)
		from = st->width - 1;
	if (to <= from)
		to = from + 1;
	if (to > st->width)
		to = st->width;
	putchar('|');
	for (int i = 0; i < from; i++)
		putchar(' ');
	if (st->color)
		fputs(s->status == 2 ? "\033[31m" : "\033[32m", stdout);
	for (int i = from; i < to; i++)
		fputs(st->color ? "\xe2\x96\x88" : "#", stdout);
	if (st->color)
		fputs("\033[0m", stdout);
	for (int i = to; i < st->width; i++)
		putchar(' ');
	putchar('|');
}

static void draw_span(const tfile *f, const style *st, uint64_t t0, uint64_t total, size_t i,
		      int depth, bool orphan)
{
	const tspan *s = &f->v[i];
	char off[32], dur[32];
	/* deep spans keep room for a character and the dots */
	int indent = depth * 2 < st->name_width - 4 ? depth * 2 : st->name_width - 4;
	int cols = indent + columns(s->name), room = st->name_width - indent;

	fmt_dur(off, sizeof(off), s->start - t0);
	fmt_dur(dur, sizeof(dur), s->end - s->start);
	printf("%s+%-11s%s %11s  %*s", st->color ? "\033[2m" : "", off,
	       st->color ? "\033[0m" : "", dur, indent, "");
	if (cols > st->name_width) {
		/* cut between characters, never inside one */
		printf("%.*s...", (int)first_columns(s->name, room - 3), s->name);
		cols = st->name_width;
	} else {
		fputs(s->name, stdout);
	}
	printf("%*s ", st->name_width - cols, "");
	draw_bar(st, t0, total, s);
	if (s->status == 2)
		printf(" %sERROR%s%s%s", st->color ? "\033[31m" : "", s->error_type ? " " : "",
		       s->error_type ? s->error_type : "", st->color ? "\033[0m" : "");
	else if (s->status == 1)
		fputs(" OK", stdout);
	if (orphan)
		printf(" (parent %s not in file)", s->parent);
	putchar('\n');
}

/*
 * Depth-first from span i, children in order; visited spans are marked so a cycle cannot loop.
 * The path from i is kept in `stack` (room for every span of the trace: each is entered once),
 * not on the call stack, since a file may nest spans as deep as it likes.
 */
static void draw_tree(tfile *f, const style *st, uint64_t t0, uint64_t total, size_t i,
		      bool orphan, size_t *stack)
{
	size_t depth = 0;

	f->v[i].shown = true;
	draw_span(f, st, t0, total, i, 0, orphan);
	stack[depth++] = f->v[i].first_child; /* the next child to visit at each level */
	while (depth) {
		size_t c = stack[depth - 1];

		if (!c) {
			depth--;
			continue;
		}
		stack[depth - 1] = f->v[c - 1].next_sibling;
		if (f->v[c - 1].shown)
			continue;
		f->v[c - 1].shown = true;
		draw_span(f, st, t0, total, c - 1, depth > 20 ? 20 : (int)depth, false);
		stack[depth++] = f->v[c - 1].first_child;
	}
}

static int by_start(const void *a, const void *b)
{
	const tspan *x = a, *y = b;
	int t = strcmp(x->trace, y->trace);

	if (t)
		return t;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->line - y->line;
}

/* The spans of one trace ordered by id (then by position), to find a parent quickly. */
static int by_id(const void *a, const void *b)
{
	const tspan *const *x = a, *const *y = b;
	int t = strcmp((*x)->id, (*y)->id);

	return t ? t : *x < *y ? -1 : *x > *y;
}

/* The first span of the trace with this id, or -1. */
static ssize_t find(tspan *const *ids, size_t n, const tspan *v, const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ids[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && strcmp(ids[lo]->id, id) == 0 ? ids[lo] - v : -1;
}

/* Links children to parents inside [from, to) (sorted by start, so children come in order). */
static void link_children(tfile *f, tspan *const *ids, size_t from, size_t to)
{
	for (size_t i = to; i-- > from;) {
		ssize_t p = f->v[i].parent[0] ? find(ids, to - from, f->v, f->v[i].parent) : -1;
		if (p < 0 || (size_t)p == i)
			continue;
		f->v[i].next_sibling = f->v[p].first_child;
		f->v[p].first_child = i + 1;
	}
}

/* ids and stack: room for the spans of the trace. */
static void draw_trace(tfile *f, style *st, size_t from, size_t to, tspan **ids, size_t *stack)
{
	uint64_t t0 = f->v[from].start, t1 = 0;
	char total_text[32];
	const char *service = NULL;
	int widest = 0;

	for (size_t i = from; i < to; i++) {
		int w = columns(f->v[i].name);
		if (f->v[i].end > t1)
			t1 = f->v[i].end;
		if (!service)
			service = f->v[i].service;
		if (w > widest)
			widest = w;
	}
	st->name_width = widest + 8 < 24 ? 24 : widest + 8 > 56 ? 56 : widest + 8;
	for (size_t i = from; i < to; i++)
		ids[i - from] = &f->v[i];
	qsort(ids, to - from, sizeof(*ids), by_id);
	link_children(f, ids, from, to);
	fmt_dur(total_text, sizeof(total_text), t1 - t0);
	printf("%strace %s%s  %s  %zu span%s  %s\n", st->color ? "\033[1m" : "", f->v[from].trace,
	       st->color ? "\033[0m" : "", service ? service : "", to - from,
	       to - from == 1 ? "" : "s", total_text);
	/* Roots first (no parent, or a parent that is not in the file), then anything a cycle
	 * left unvisited. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = from; i < to; i++) {
			tspan *s = &f->v[i];
			bool orphan = s->parent[0] && find(ids, to - from, f->v, s->parent) < 0;
			if (!s->shown && (pass == 1 || !s->parent[0] || orphan))
				draw_tree(f, st, t0, t1 > t0 ? t1 - t0 : 1, i, orphan, stack);
		}
}

static int terminal_width(void)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");
	long n = cols ? strtol(cols, NULL, 10) : 0;

	if (n > 0 && n < 10000)
		return (int)n;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
		return ws.ws_col;
	return 0;
}

static int show(const char *path, bool no_color, int width)
{
	tfile f = {.name = path};
	const char *nc = getenv("NO_COLOR");
	style st = {.color = !no_color && isatty(STDOUT_FILENO) && !(nc && *nc), .width = width};
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	tspan **ids;
	size_t *stack;
	int rc;

	if (!in) {
		cli_error("trace show: %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	rc = read_file(&f, in);
	if (in != stdin)
		fclose(in);
	if (rc < 0) {
		cli_error("trace show: %s: %s", path, strerror(errno));
		return EXIT_FAILED;
	}
	if (!st.width) {
		int cols = terminal_width();
		st.width = cols > 100 ? cols - 80 : 40;
		if (st.width > 80)
			st.width = 80;
	}
	if (f.n)
		qsort(f.v, f.n, sizeof(*f.v), by_start);
	ids = malloc((f.n ? f.n : 1) * sizeof(*ids));
	stack = malloc((f.n ? f.n : 1) * sizeof(*stack));
	if (!ids || !stack) {
		cli_error("trace show: %s: out of memory", path);
		f.bad_lines++;
	}
	for (size_t from = 0, to; ids && stack && from < f.n; from = to) {
		for (to = from + 1; to < f.n && strcmp(f.v[to].trace, f.v[from].trace) == 0; to++)
			;
		if (from)
			putchar('\n');
		draw_trace(&f, &st, from, to, ids, stack);
	}
	free(ids);
	free(stack);
	if (!f.n && !f.bad_lines)
		printf("no spans in %s%s\n", path, f.metric_lines ? " (metrics only)" : "");
	for (size_t i = 0; i < f.n; i++) {
		free(f.v[i].name);
		free(f.v[i].error_type);
		free(f.v[i].service);
	}
	free(f.v);
	return f.bad_lines ? EXIT_FAILED : EXIT_OK;
}

static int run(int argc, char **argv)
{
	const char *pos[2], *width_text = NULL;
	bool no_color = false;
	const cli_option options[] = {
		{"--no-color", &no_color, NULL},
		{"--width", NULL, &width_text},
		{NULL, NULL, NULL},
	};
	int code, width = 0;
	char *end;

	if (!cli_parse_args(&cli_cmd_trace, argc, argv, options, pos, 2, &code))
		return code;
	if (strcmp(pos[0], "show") != 0) {
		cli_error("trace: unknown subcommand \"%s\" (see dtn-build trace --help)", pos[0]);
		return EXIT_USAGE;
	}
	if (width_text) {
		long w = strtol(width_text, &end, 10);
		if (*end || w < 10 || w > 400) {
			cli_error("trace: --width: \"%s\" is not a number from 10 to 400", width_text);
			return EXIT_USAGE;
		}
		width = (int)w;
	}
	return show(pos[1], no_color, width);
}

const cli_command cli_cmd_trace = {
	"trace",
	"draw a trace file written with --trace-file as a waterfall",
	usage,
	run,
};
