/*
 * test_config.c - the Daytona configuration: .env parsing, and explicit values over the
 * environment over .env.local over .env.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "testutil.h"

static const char *const vars[] = {"DAYTONA_API_KEY", "DAYTONA_JWT_TOKEN",
				   "DAYTONA_ORGANIZATION_ID", "DAYTONA_API_URL",
				   "DAYTONA_SERVER_URL", "DAYTONA_TARGET"};

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

typedef struct warnings {
	int n;
	char last[1024];
} warnings;

static void on_warn(const char *message, void *payload)
{
	warnings *w = payload;

	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", message);
}

static void parse(dtn__dotenv *env, const char *text, warnings *w)
{
	memset(env, 0, sizeof(*env));
	assert_int_equal(dtn__dotenv_parse(env, text, strlen(text), ".env", "DAYTONA_", on_warn, w),
			 0);
}

static void test_snapshots_config__dotenv_forms(void **state)
{
	dtn__dotenv env;
	warnings w = {0};

	(void)state;
	parse(&env,
	      "# a comment\n"
	      "\n"
	      "DAYTONA_API_KEY=plain-value # trailing comment\n"
	      "export DAYTONA_TARGET = eu\n"
	      "DAYTONA_API_URL='http://h/api#not-a-comment'\n"
	      "DAYTONA_JWT_TOKEN=\"a\\nb \\\"q\\\"\"\r\n"
	      "DAYTONA_ORGANIZATION_ID=\"multi\n"
	      "line\"\n"
	      "OTHER_KEY=ignored\n"
	      "DAYTONA_SERVER_URL=first\n"
	      "DAYTONA_SERVER_URL=second\n"
	      "DAYTONA_EMPTY=\n"
	      "DAYTONA_HASH=a#b\n",
	      &w);
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_API_KEY"), "plain-value");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_TARGET"), "eu");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_API_URL"), "http://h/api#not-a-comment");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_JWT_TOKEN"), "a\nb \"q\"");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_ORGANIZATION_ID"), "multi\nline");
	assert_null(dtn__dotenv_get(&env, "OTHER_KEY"));
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_SERVER_URL"), "second");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_EMPTY"), "");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_HASH"), "a#b");
	assert_int_equal(w.n, 0);
	dtn__dotenv_clear(&env);
}

/* A byte-order mark before the first key leaves the key whole; one anywhere else is not skipped. */
static void test_snapshots_config__dotenv_byte_order_mark(void **state)
{
	dtn__dotenv env;
	warnings w = {0};

	(void)state;
	parse(&env, "\xef\xbb\xbf" "DAYTONA_API_KEY=k\nDAYTONA_TARGET=us\n", &w);
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_API_KEY"), "k");
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_TARGET"), "us");
	assert_int_equal(w.n, 0);
	dtn__dotenv_clear(&env);
	parse(&env, "DAYTONA_TARGET=us\n\xef\xbb\xbf" "DAYTONA_API_KEY=k\n", &w);
	assert_null(dtn__dotenv_get(&env, "DAYTONA_API_KEY"));
	assert_int_equal(w.n, 1);
	dtn__dotenv_clear(&env);
}

static void test_snapshots_config__dotenv_malformed_lines_warn_without_values(void **state)
{
	dtn__dotenv env;
	warnings w = {0};

	(void)state;
	parse(&env,
	      "this is not an assignment\n"
	      "DAYTONA_API_KEY secret-without-equals\n"
	      "DAYTONA_TARGET=us\n"
	      "DAYTONA_JWT_TOKEN='unterminated-secret\n",
	      &w);
	/* only the lines about DAYTONA_ keys are worth a warning; values are never shown */
	assert_int_equal(w.n, 2);
	assert_non_null(strstr(w.last, ".env:4:"));
	assert_null(strstr(w.last, "unterminated-secret"));
	assert_string_equal(dtn__dotenv_get(&env, "DAYTONA_TARGET"), "us");
	assert_null(dtn__dotenv_get(&env, "DAYTONA_API_KEY"));
	assert_null(dtn__dotenv_get(&env, "DAYTONA_JWT_TOKEN"));
	dtn__dotenv_clear(&env);
}

static int resolve(dtn__daytona_config *cfg, const dtn_daytona_opts *o, dtn_error *err)
{
	dtn_error_clear(err);
	return dtn__daytona_config_resolve(cfg, o, err);
}

static void test_snapshots_config__precedence(void **state)
{
	const char *dir = tu_mkdtemp();
	dtn__daytona_config cfg;
	dtn_error err;

	(void)state;
	tu_write(dir, ".env", "DAYTONA_API_KEY=from-dotenv\nDAYTONA_TARGET=dotenv-target\n"
			      "DAYTONA_API_URL=http://dotenv/api\n");
	tu_write(dir, ".env.local", "DAYTONA_TARGET=local-target\n");

	/* files alone: .env.local over .env */
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = dir}, &err), 0);
	assert_string_equal(cfg.api_key, "from-dotenv");
	assert_string_equal(cfg.target, "local-target");
	assert_string_equal(cfg.api_url, "http://dotenv/api");
	dtn__daytona_config_clear(&cfg);

	/* the environment over the files */
	setenv("DAYTONA_TARGET", "env-target", 1);
	setenv("DAYTONA_API_URL", "http://env/api/", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = dir}, &err), 0);
	assert_string_equal(cfg.target, "env-target");
	assert_string_equal(cfg.api_url, "http://env/api"); /* trailing '/' dropped */
	assert_string_equal(cfg.api_key, "from-dotenv");
	dtn__daytona_config_clear(&cfg);

	/* explicit values over everything */
	assert_int_equal(resolve(&cfg,
				 &(dtn_daytona_opts){.env_dir = dir, .api_key = "flag-key",
						     .target = "flag-target",
						     .api_url = "https://flag/api"},
				 &err),
			 0);
	assert_string_equal(cfg.api_key, "flag-key");
	assert_string_equal(cfg.target, "flag-target");
	assert_string_equal(cfg.api_url, "https://flag/api");
	dtn__daytona_config_clear(&cfg);

	/* no files, no environment: the default URL */
	unsetenv("DAYTONA_API_URL");
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = "", .api_key = "k"}, &err),
			 0);
	assert_string_equal(cfg.api_url, "https://app.daytona.io/api");
	dtn__daytona_config_clear(&cfg);
	tu_rmtree(dir);
}

static void test_snapshots_config__missing_credentials_names_the_variables(void **state)
{
	dtn__daytona_config cfg;
	dtn_error err;

	(void)state;
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = ""}, &err), DTN_ECONFIG);
	assert_non_null(strstr(err.message, "DAYTONA_API_KEY"));
	assert_non_null(strstr(err.message, "DAYTONA_JWT_TOKEN"));
	assert_non_null(strstr(err.message, "DAYTONA_ORGANIZATION_ID"));
	assert_null(cfg.api_url);

	/* a token needs its organization */
	setenv("DAYTONA_JWT_TOKEN", "jwt-secret-value", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = ""}, &err), DTN_ECONFIG);
	assert_non_null(strstr(err.message, "DAYTONA_ORGANIZATION_ID"));
	assert_null(strstr(err.message, "jwt-secret-value"));

	setenv("DAYTONA_ORGANIZATION_ID", "org-1", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = ""}, &err), 0);
	assert_null(cfg.api_key);
	assert_string_equal(cfg.jwt_token, "jwt-secret-value");
	assert_string_equal(cfg.organization_id, "org-1");
	dtn__daytona_config_clear(&cfg);

	/* an API key wins over a token */
	setenv("DAYTONA_API_KEY", "key", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = ""}, &err), 0);
	assert_string_equal(cfg.api_key, "key");
	assert_null(cfg.jwt_token);
	assert_null(cfg.organization_id);
	dtn__daytona_config_clear(&cfg);

	/* explicit credentials make the environment's unused */
	assert_int_equal(resolve(&cfg,
				 &(dtn_daytona_opts){.env_dir = "", .jwt_token = "flag-jwt",
						     .organization_id = "flag-org"},
				 &err),
			 0);
	assert_null(cfg.api_key);
	assert_string_equal(cfg.jwt_token, "flag-jwt");
	assert_string_equal(cfg.organization_id, "flag-org");
	dtn__daytona_config_clear(&cfg);

	/* without credentials when none are needed */
	unsetenv("DAYTONA_API_KEY");
	unsetenv("DAYTONA_JWT_TOKEN");
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = "", .no_credentials = true},
				 &err),
			 0);
	assert_null(cfg.api_key);
	assert_null(cfg.jwt_token);
	dtn__daytona_config_clear(&cfg);
}

static void test_snapshots_config__server_url_is_a_deprecated_alias(void **state)
{
	dtn__daytona_config cfg;
	dtn_error err;
	warnings w = {0};
	dtn_daytona_opts o = {.env_dir = "", .api_key = "k", .warn = on_warn, .payload = &w};

	(void)state;
	setenv("DAYTONA_SERVER_URL", "http://old/api", 1);
	assert_int_equal(resolve(&cfg, &o, &err), 0);
	assert_string_equal(cfg.api_url, "http://old/api");
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "DAYTONA_SERVER_URL is deprecated"));
	dtn__daytona_config_clear(&cfg);

	/* DAYTONA_API_URL wins, without a warning */
	setenv("DAYTONA_API_URL", "http://new/api", 1);
	assert_int_equal(resolve(&cfg, &o, &err), 0);
	assert_string_equal(cfg.api_url, "http://new/api");
	assert_int_equal(w.n, 1);
	dtn__daytona_config_clear(&cfg);
}

static void test_snapshots_config__bad_url_and_values(void **state)
{
	dtn__daytona_config cfg;
	dtn_error err;

	(void)state;
	setenv("DAYTONA_API_URL", "app.daytona.io/api", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = "", .api_key = "k"}, &err),
			 DTN_ECONFIG);
	assert_non_null(strstr(err.message, "DAYTONA_API_URL"));
	assert_non_null(strstr(err.message, "not an http(s) URL"));
	unsetenv("DAYTONA_API_URL");

	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = "", .api_key = "a\r\nX: y"},
				 &err),
			 DTN_ECONFIG);
	assert_non_null(strstr(err.message, "line break"));
	assert_null(strstr(err.message, "X: y"));
}

static void test_snapshots_config__ignore_environment(void **state)
{
	dtn__daytona_config cfg;
	dtn_error err;

	(void)state;
	setenv("DAYTONA_API_KEY", "env-key", 1);
	assert_int_equal(resolve(&cfg, &(dtn_daytona_opts){.env_dir = "", .ignore_environment = true},
				 &err),
			 DTN_ECONFIG);
}

static void test_snapshots_config__client_accessors(void **state)
{
	dtn_daytona *c;
	dtn_error err;

	(void)state;
	assert_int_equal(dtn_daytona_new(&c,
					 &(dtn_daytona_opts){.env_dir = "", .api_key = "k",
							     .api_url = "http://127.0.0.1:9/api//",
							     .target = "us"},
					 &err),
			 0);
	assert_string_equal(dtn_daytona_api_url(c), "http://127.0.0.1:9/api");
	assert_string_equal(dtn_daytona_target(c), "us");
	assert_true(dtn_daytona_has_credentials(c));
	dtn_daytona_free(c);
	dtn_daytona_free(NULL);

	assert_int_equal(dtn_daytona_new(&c, &(dtn_daytona_opts){.env_dir = ""}, &err),
			 DTN_ECONFIG);
	assert_null(c);
}

static void test_snapshots_config__allocation_failures(void **state)
{
	const char *dir = tu_mkdtemp();

	(void)state;
	tu_write(dir, ".env", "DAYTONA_API_KEY=k\nDAYTONA_TARGET=t\n");
	tu_write(dir, ".env.local", "DAYTONA_API_URL=http://x/api\n");
	for (long n = 1;; n++) {
		dtn_daytona *c = NULL;
		dtn_error err;
		int rc;

		tu_fail_alloc_after(n);
		rc = dtn_daytona_new(&c, &(dtn_daytona_opts){.env_dir = dir}, &err);
		tu_alloc_reset();
		if (rc == 0) {
			assert_string_equal(dtn_daytona_api_url(c), "http://x/api");
			dtn_daytona_free(c);
			break;
		}
		assert_int_equal(rc, DTN_ENOMEM);
		assert_null(c);
	}
	tu_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_snapshots_config__dotenv_forms, setup),
		cmocka_unit_test_setup(test_snapshots_config__dotenv_byte_order_mark, setup),
		cmocka_unit_test_setup(test_snapshots_config__dotenv_malformed_lines_warn_without_values,
				       setup),
		cmocka_unit_test_setup(test_snapshots_config__precedence, setup),
		cmocka_unit_test_setup(test_snapshots_config__missing_credentials_names_the_variables,
				       setup),
		cmocka_unit_test_setup(test_snapshots_config__server_url_is_a_deprecated_alias, setup),
		cmocka_unit_test_setup(test_snapshots_config__bad_url_and_values, setup),
		cmocka_unit_test_setup(test_snapshots_config__ignore_environment, setup),
		cmocka_unit_test_setup(test_snapshots_config__client_accessors, setup),
		cmocka_unit_test_setup(test_snapshots_config__allocation_failures, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
