/*
 * config.c - where the Daytona client's settings come from: explicit values, then the process
 * environment, then .env.local, then .env, as the Daytona SDKs read them.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"

/* .env files larger than this are not configuration files. */
#define DOTENV_MAX (1024 * 1024)

/* ---- .env parsing ---- */

typedef struct dotenv_parser {
	const char *p, *end;
	int line;
	dtn__buf value;
} dotenv_parser;

static void buf_reset(dtn__buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_key_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
	       (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

static void skip_blanks(dotenv_parser *ps)
{
	while (ps->p < ps->end && is_blank(*ps->p))
		ps->p++;
}

/* Moves past the end of the current line. */
static void skip_line(dotenv_parser *ps)
{
	while (ps->p < ps->end && *ps->p != '\n')
		ps->p++;
	if (ps->p < ps->end) {
		ps->p++;
		ps->line++;
	}
}

/* Whether the rest of the line (from p) mentions s. */
static bool line_mentions(const dotenv_parser *ps, const char *start, const char *s)
{
	const char *e = start;
	size_t n = s ? strlen(s) : 0;

	while (e < ps->end && *e != '\n')
		e++;
	if (!n)
		return true;
	for (const char *q = start; q + n <= e; q++)
		if (memcmp(q, s, n) == 0)
			return true;
	return false;
}

/* A quoted value; p is past the opening quote. Returns false when the quote is not closed. */
static bool parse_quoted(dotenv_parser *ps, char quote)
{
	while (ps->p < ps->end && *ps->p != quote) {
		char c = *ps->p++;

		if (c == '\n')
			ps->line++;
		if (c == '\\' && quote == '"' && ps->p < ps->end) {
			char e = *ps->p++;

			switch (e) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			default:
				dtn__buf_putc(&ps->value, '\\');
				c = e;
			}
		}
		dtn__buf_putc(&ps->value, c);
	}
	if (ps->p >= ps->end)
		return false;
	ps->p++;
	return true;
}

/* A bare value: to the end of the line, without a " #comment" and surrounding blanks. */
static void parse_bare(dotenv_parser *ps)
{
	const char *s = ps->p, *e;

	while (ps->p < ps->end && *ps->p != '\n') {
		if (*ps->p == '#' && (ps->p == s || is_blank(ps->p[-1])))
			break;
		ps->p++;
	}
	e = ps->p;
	while (e > s && (is_blank(e[-1]) || e[-1] == '\r'))
		e--;
	dtn__buf_add(&ps->value, s, (size_t)(e - s));
}

/* One KEY=VALUE line into key/value; returns false for a malformed line. */
static bool parse_assignment(dotenv_parser *ps, dtn__buf *key)
{
	const char *k;

	if ((size_t)(ps->end - ps->p) > 7 && memcmp(ps->p, "export", 6) == 0 && is_blank(ps->p[6])) {
		ps->p += 6;
		skip_blanks(ps);
	}
	k = ps->p;
	if (ps->p >= ps->end || !is_key_char(*ps->p, true))
		return false;
	while (ps->p < ps->end && is_key_char(*ps->p, false))
		ps->p++;
	dtn__buf_add(key, k, (size_t)(ps->p - k));
	skip_blanks(ps);
	if (ps->p >= ps->end || (*ps->p != '=' && *ps->p != ':'))
		return false;
	ps->p++;
	skip_blanks(ps);
	if (ps->p < ps->end && (*ps->p == '"' || *ps->p == '\'' || *ps->p == '`')) {
		char q = *ps->p++;

		return parse_quoted(ps, q);
	}
	parse_bare(ps);
	return true;
}

static int dotenv_set(dtn__dotenv *out, const char *key, const char *value)
{
	for (size_t i = 0; i < out->keys.len; i++)
		if (strcmp(out->keys.items[i], key) == 0) {
			char *v = dtn__strdup(value);

			if (!v)
				return DTN_ENOMEM;
			dtn__free(out->values.items[i]);
			out->values.items[i] = v;
			return 0;
		}
	if (dtn__strv_push(&out->keys, key) < 0)
		return DTN_ENOMEM;
	if (dtn__strv_push(&out->values, value) < 0) {
		dtn__free(out->keys.items[--out->keys.len]);
		out->keys.items[out->keys.len] = NULL;
		return DTN_ENOMEM;
	}
	return 0;
}

static void warn_line(const char *name, int line, dtn_daytona_warn_fn warn, void *payload)
{
	char msg[1200];

	if (!warn)
		return;
	snprintf(msg, sizeof(msg), "%s:%d: not a KEY=VALUE line (or an unclosed quote), ignored",
		 name, line);
	warn(msg, payload);
}

int dtn__dotenv_parse(dtn__dotenv *out, const char *text, size_t len, const char *name,
		      const char *prefix, dtn_daytona_warn_fn warn, void *payload)
{
	dotenv_parser ps = {text, text + len, 1, DTN__BUF_INIT};
	dtn__buf key = DTN__BUF_INIT;
	int rc = 0;

	/* a byte-order mark some editors write is not part of the first key */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		ps.p += 3;
	while (ps.p < ps.end && rc == 0) {
		const char *start;
		int line;

		skip_blanks(&ps);
		start = ps.p;
		line = ps.line;
		if (ps.p >= ps.end || *ps.p == '\n' || *ps.p == '\r' || *ps.p == '#') {
			skip_line(&ps);
			continue;
		}
		buf_reset(&key);
		buf_reset(&ps.value);
		if (!parse_assignment(&ps, &key)) {
			if (line_mentions(&ps, start, prefix))
				warn_line(name, line, warn, payload);
			skip_line(&ps);
			continue;
		}
		skip_line(&ps);
		if (key.failed || ps.value.failed) {
			rc = DTN_ENOMEM;
			break;
		}
		if (!prefix || strncmp(dtn__buf_cstr(&key), prefix, strlen(prefix)) == 0)
			rc = dotenv_set(out, dtn__buf_cstr(&key), dtn__buf_cstr(&ps.value));
	}
	dtn__buf_free(&key);
	dtn__buf_free(&ps.value);
	return rc;
}

const char *dtn__dotenv_get(const dtn__dotenv *env, const char *key)
{
	for (size_t i = env->keys.len; i-- > 0;)
		if (strcmp(env->keys.items[i], key) == 0)
			return env->values.items[i];
	return NULL;
}

void dtn__dotenv_clear(dtn__dotenv *env)
{
	/* values may hold credentials: wipe them before freeing */
	for (size_t i = 0; i < env->values.len; i++)
		if (env->values.items[i])
			explicit_bzero(env->values.items[i], strlen(env->values.items[i]));
	dtn__strv_free(&env->keys);
	dtn__strv_free(&env->values);
}

/* ---- resolution ---- */

typedef struct sources {
	const dtn_daytona_opts *opts;
	dtn__dotenv local, dotenv; /* .env.local, .env */
	char local_name[1100], dotenv_name[1100];
} sources;

static int load_dotenv(dtn__dotenv *env, char *shown, size_t shown_size, const char *dir,
		       const char *file, const dtn_daytona_opts *o, dtn_error *err)
{
	char *path, *text = NULL;
	size_t len;
	dtn_error ferr = {0};
	int rc;

	path = dir ? dtn__path_join(dir, file) : dtn__strdup(file);
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	snprintf(shown, shown_size, "%s", path);
	rc = dtn__read_file(&text, &len, path, path, DOTENV_MAX, &ferr);
	dtn__free(path);
	if (rc == DTN_ENOTFOUND)
		return 0;
	if (rc < 0)
		return dtn__error_set(err, rc == DTN_ENOMEM ? DTN_ENOMEM : DTN_ECONFIG, "%s",
				      ferr.message);
	rc = dtn__dotenv_parse(env, text, len, shown, "DAYTONA_", o->warn, o->payload);
	explicit_bzero(text, len);
	dtn__free(text);
	return rc < 0 ? dtn__error_set(err, rc, "out of memory") : 0;
}

/* The value of a variable from the environment, then .env.local, then .env; "" is unset. */
static const char *lookup(const sources *s, const char *name, const char **from)
{
	const char *v = NULL;

	if (!s->opts->ignore_environment && (v = getenv(name)) && *v) {
		*from = "the environment";
		return v;
	}
	if ((v = dtn__dotenv_get(&s->local, name)) && *v) {
		*from = s->local_name;
		return v;
	}
	if ((v = dtn__dotenv_get(&s->dotenv, name)) && *v) {
		*from = s->dotenv_name;
		return v;
	}
	return NULL;
}

static const char *explicit(const char *v)
{
	return v && *v ? v : NULL;
}

static int take(char **dst, const char *v, dtn_error *err)
{
	if (!v)
		return 0;
	if (!(*dst = dtn__strdup(v)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	return 0;
}

/* Credentials: explicit ones as a group, else the environment's; an API key beats a token. */
static int resolve_credentials(dtn__daytona_config *cfg, const sources *s, dtn_error *err)
{
	const dtn_daytona_opts *o = s->opts;
	const char *key, *jwt, *org, *from;
	int rc;

	if (explicit(o->api_key) || explicit(o->jwt_token)) {
		key = explicit(o->api_key);
		jwt = explicit(o->jwt_token);
	} else {
		key = lookup(s, "DAYTONA_API_KEY", &from);
		jwt = lookup(s, "DAYTONA_JWT_TOKEN", &from);
	}
	org = explicit(o->organization_id) ? o->organization_id
					   : lookup(s, "DAYTONA_ORGANIZATION_ID", &from);
	if (key)
		jwt = NULL;
	if (!key && !jwt) {
		if (o->no_credentials)
			return 0;
		return dtn__error_set(err, DTN_ECONFIG,
				      "no Daytona credentials: set DAYTONA_API_KEY, or "
				      "DAYTONA_JWT_TOKEN and DAYTONA_ORGANIZATION_ID (in the "
				      "environment, .env.local or .env)");
	}
	if (jwt && !org)
		return dtn__error_set(err, DTN_ECONFIG,
				      "DAYTONA_JWT_TOKEN needs DAYTONA_ORGANIZATION_ID (the "
				      "organization the token acts for)");
	if ((key && strpbrk(key, "\r\n")) || (jwt && strpbrk(jwt, "\r\n")))
		return dtn__error_set(err, DTN_ECONFIG, "%s contains a line break",
				      key ? "DAYTONA_API_KEY" : "DAYTONA_JWT_TOKEN");
	if (jwt && strpbrk(org, "\r\n"))
		return dtn__error_set(err, DTN_ECONFIG,
				      "DAYTONA_ORGANIZATION_ID contains a line break");
	if ((rc = take(&cfg->api_key, key, err)) < 0 || (rc = take(&cfg->jwt_token, jwt, err)) < 0)
		return rc;
	return jwt ? take(&cfg->organization_id, org, err) : 0;
}

static void warn(const dtn_daytona_opts *o, const char *msg)
{
	if (o->warn)
		o->warn(msg, o->payload);
}

static int resolve_url(dtn__daytona_config *cfg, const sources *s, dtn_error *err)
{
	const char *url = explicit(s->opts->api_url), *from = "the options", *name;
	char shown[300];
	size_t len;

	name = "DAYTONA_API_URL";
	if (!url && !(url = lookup(s, name, &from))) {
		name = "DAYTONA_SERVER_URL";
		if ((url = lookup(s, name, &from)))
			warn(s->opts, "DAYTONA_SERVER_URL is deprecated; set DAYTONA_API_URL instead");
	}
	if (!url)
		url = DTN__DAYTONA_DEFAULT_URL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return dtn__error_set(err, DTN_ECONFIG, "%s (from %s): \"%s\" is not an http(s) URL",
				      explicit(s->opts->api_url) ? "the API URL" : name, from,
				      dtn__printable(shown, sizeof(shown), url));
	if (strpbrk(url, " \t\r\n"))
		return dtn__error_set(err, DTN_ECONFIG, "%s (from %s) contains blanks",
				      explicit(s->opts->api_url) ? "the API URL" : name, from);
	if (!(cfg->api_url = dtn__strdup(url)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	len = strlen(cfg->api_url);
	while (len > 8 && cfg->api_url[len - 1] == '/')
		cfg->api_url[--len] = '\0';
	return 0;
}

int dtn__daytona_config_resolve(dtn__daytona_config *out, const dtn_daytona_opts *opts,
				dtn_error *err)
{
	static const dtn_daytona_opts none;
	sources s;
	const char *target, *from;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	s.opts = opts ? opts : &none;
	if (!s.opts->env_dir || *s.opts->env_dir) {
		if ((rc = load_dotenv(&s.local, s.local_name, sizeof(s.local_name), s.opts->env_dir,
				      ".env.local", s.opts, err)) < 0 ||
		    (rc = load_dotenv(&s.dotenv, s.dotenv_name, sizeof(s.dotenv_name),
				      s.opts->env_dir, ".env", s.opts, err)) < 0)
			goto out;
	}
	if ((rc = resolve_credentials(out, &s, err)) < 0 || (rc = resolve_url(out, &s, err)) < 0)
		goto out;
	target = explicit(s.opts->target) ? s.opts->target : lookup(&s, "DAYTONA_TARGET", &from);
	rc = take(&out->target, target, err);
out:
	dtn__dotenv_clear(&s.local);
	dtn__dotenv_clear(&s.dotenv);
	if (rc < 0)
		dtn__daytona_config_clear(out);
	return rc;
}

void dtn__daytona_config_clear(dtn__daytona_config *cfg)
{
	dtn__free_secret(cfg->api_key);
	dtn__free_secret(cfg->jwt_token);
	dtn__free(cfg->organization_id);
	dtn__free(cfg->api_url);
	dtn__free(cfg->target);
	memset(cfg, 0, sizeof(*cfg));
}
