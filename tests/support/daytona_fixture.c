/*
 * daytona_fixture.c - the Daytona test server's fixture, shared by the snapshots, builder and
 * CLI tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daytona_fixture.h"

tu_server tu_srv;

int tu_daytona_group_setup(void **state)
{
	(void)state;
	return tu_server_start(&tu_srv);
}

int tu_daytona_group_teardown(void **state)
{
	(void)state;
	tu_server_stop(&tu_srv);
	return 0;
}

void tu_daytona_reset(double time_scale)
{
	char json[64];

	tu_server_reset(&tu_srv);
	if (time_scale > 0) {
		snprintf(json, sizeof(json), "{\"time_scale\": %g}", time_scale);
		tu_server_scenario(&tu_srv, json);
	}
}

int tu_daytona_setup(void **state)
{
	(void)state;
	tu_daytona_reset(0);
	return 0;
}

const char *tu_daytona_seed(const char *kind, const char *json)
{
	static char id[64];
	char path[64], *resp = NULL;
	json_t *j;

	snprintf(path, sizeof(path), "/_control/%s", kind);
	assert_int_equal(tu_server_control(&tu_srv, "POST", path, json, &resp), 200);
	j = json_loads(resp, 0, NULL);
	assert_non_null(j);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(resp);
	return id;
}

dtn_daytona *tu_daytona_client(dtn_daytona_opts o)
{
	dtn_daytona *c = NULL;
	dtn_error err;

	o.env_dir = "";
	o.ignore_environment = true;
	if (!o.api_url)
		o.api_url = tu_srv.api_url;
	if (!o.api_key && !o.jwt_token)
		o.api_key = tu_srv.api_key;
	if (!o.target)
		o.target = "us";
	if (!o.backoff_ms)
		o.backoff_ms = 10;
	if (!o.poll_interval_ms)
		o.poll_interval_ms = 50;
	if (!o.log_grace_ms)
		o.log_grace_ms = 300;
	if (dtn_daytona_new(&c, &o, &err) < 0)
		fail_msg("dtn_daytona_new: %s", err.message);
	return c;
}

void tu_daytona_forget_requests(void)
{
	assert_int_equal(tu_server_control(&tu_srv, "DELETE", "/_control/requests", NULL, NULL),
			 200);
}

json_t *tu_daytona_requests(const char *server)
{
	json_t *log = tu_server_requests(&tu_srv, server);

	assert_non_null(log);
	return log;
}

size_t tu_daytona_count(const char *server, const char *method, const char *path_part)
{
	json_t *log = tu_daytona_requests(server), *r;
	size_t i, n = 0;

	json_array_foreach(log, i, r)
	{
		const char *m = json_string_value(json_object_get(r, "method"));
		const char *p = json_string_value(json_object_get(r, "path"));

		if ((!method || (m && strcmp(m, method) == 0)) &&
		    (!path_part || (p && strstr(p, path_part))))
			n++;
	}
	json_decref(log);
	return n;
}

const char *tu_daytona_header(const json_t *req, const char *name)
{
	const json_t *pair;
	size_t i;

	json_array_foreach(json_object_get(req, "headers"), i, pair)
	{
		if (strcasecmp(json_string_value(json_array_get(pair, 0)), name) == 0)
			return json_string_value(json_array_get(pair, 1));
	}
	return NULL;
}

static tu_run run_cli(const char *cwd, const char *first, va_list ap)
{
	char *argv[32] = {(char *)tu_dtn_build(), (char *)first};
	tu_run r;
	int n = 2;

	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	argv[n] = NULL;
	r = tu_run_cmd(argv, cwd);
	/* no credential ever shows */
	assert_null(strstr(r.out, tu_srv.api_key));
	assert_null(strstr(r.err, tu_srv.api_key));
	return r;
}

tu_run tu_daytona_cli(const char *cwd, const char *first, ...)
{
	va_list ap;
	tu_run r;

	va_start(ap, first);
	r = run_cli(cwd, first, ap);
	va_end(ap);
	return r;
}

void tu_daytona_cli_expect(const char *cwd, int status, const char *out, const char *err,
			   const char *first, ...)
{
	va_list ap;
	tu_run r;

	va_start(ap, first);
	r = run_cli(cwd, first, ap);
	va_end(ap);
	assert_int_equal(r.status, status);
	if (out)
		tu_assert_contains(r.out, out);
	if (err)
		tu_assert_contains(r.err, err);
	tu_run_free(&r);
}

void tu_assert_contains(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("\"%s\" does not contain \"%s\"", text, needle);
}
