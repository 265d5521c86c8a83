/*
 * telemetry.c - dtn-build's telemetry: the global options (--otel, --no-otel, --trace-file,
 * --otel-summary), the provider, the root span "dtn-build COMMAND" (a child of TRACEPARENT when
 * the environment has one), the build metrics, and the flush at exit within a time budget.
 *
 * Telemetry never changes how a command ends: a provider that cannot start is reported as a
 * warning and the command runs without it; the flush at exit gives up when its budget is spent.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_otel.h"

static struct {
	int mode;               /* 1 --otel, -1 --no-otel, 0 the environment decides */
	const char *trace_file;
	bool summary;
	dtn_otel *otel;
	dtn_span *root;
	const char *command;
	int last_code;          /* the last library error met (cli_exit_code, cli_report) */
	char last_message[512]; /* what cli_report said about it */
} T;

/* Removes argv[i] (and n - 1 following) from the list. */
static void drop_args(int *argc, char **argv, int i, int n)
{
	memmove(argv + i, argv + i + n, (size_t)(*argc - i - n + 1) * sizeof(*argv));
	*argc -= n;
}

bool cli_otel_options(int *argc, char **argv, int *exit_code)
{
	*exit_code = EXIT_OK;
	for (int i = 1; i < *argc;) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "--otel") == 0 || strcmp(a, "--no-otel") == 0) {
			T.mode = a[2] == 'o' ? 1 : -1;
			drop_args(argc, argv, i, 1);
		} else if (strcmp(a, "--otel-summary") == 0) {
			T.summary = true;
			drop_args(argc, argv, i, 1);
		} else if (strncmp(a, "--trace-file=", 13) == 0 && a[13]) {
			T.trace_file = a + 13;
			drop_args(argc, argv, i, 1);
		} else if (strcmp(a, "--trace-file") == 0 || strcmp(a, "--trace-file=") == 0) {
			if (a[12] == '=' || i + 1 >= *argc || !argv[i + 1][0]) {
				cli_error("--trace-file needs a file name");
				*exit_code = EXIT_USAGE;
				return false;
			}
			T.trace_file = argv[i + 1];
			drop_args(argc, argv, i, 2);
		} else {
			i++;
		}
	}
	return true;
}

static void log_line(const char *line, void *payload)
{
	(void)payload;
	fprintf(stderr, "dtn-build: telemetry: %s\n", line);
}

static void summary_line(const char *line, void *payload)
{
	fprintf((FILE *)payload, "%s\n", line);
}

void cli_otel_start(int argc, char **argv)
{
	const char *command = argv[0];
	dtn_otel_opts opts = {.version = 1, .enabled = T.mode, .trace_file = T.trace_file,
			      .log = log_line};
	char name[128];
	dtn_error err;
	int rc;

	T.command = command;
	/* A viewer of trace files makes none (and must not truncate the file it reads). */
	if (strcmp(command, "trace") == 0)
		return;
	dtn_error_clear(&err);
	if ((rc = dtn_otel_new(&T.otel, &opts, &err)) < 0) {
		char buf[2200];
		dtn_error_format(&err, buf, sizeof(buf));
		T.otel = NULL;
		/* An OTLP protocol we do not speak stops the export, not the file asked for. */
		opts.endpoint = "";
		if (rc != DTN_EUNSUPPORTED || !T.trace_file || T.mode < 0 ||
		    dtn_otel_new(&T.otel, &opts, NULL) < 0) {
			T.otel = NULL;
			cli_error("telemetry is off: %s", buf);
			return;
		}
		cli_error("telemetry: no OTLP export, only the trace file: %s", buf);
	}
	/* Off, the provider still hands on a TRACEPARENT the process was given (the propagators
	 * keep working when OTEL_SDK_DISABLED is set), so it is installed either way. */
	dtn_otel_set_default(T.otel);
	if (!dtn_otel_is_enabled(T.otel))
		return;
	snprintf(name, sizeof(name), "dtn-build %s", command);
	T.root = dtn_span_start(name, DTN_SPAN_INTERNAL, NULL);
	/* component and method as on every other span (otel.md §12.2) */
	dtn_span_set_str(T.root, "component", "dtn-build");
	dtn_span_set_str(T.root, "method", command);
	dtn_span_set_str(T.root, "dtn.command", command);
	if (strcmp(command, "build") == 0) {
		bool dry = false;
		for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
			dry |= strcmp(argv[i], "--dry-run") == 0;
		dtn_span_set_bool(T.root, "dtn.dry_run", dry);
	}
}

void cli_otel_daytona(const dtn_daytona *c)
{
	const char *url = c ? dtn_daytona_api_url(c) : NULL, *target;
	char shown[1024];

	if (!dtn_span_is_recording(T.root) || !url)
		return;
	/* the API's base URL, without credentials or query */
	{
		const char *p = strstr(url, "://"), *host = p ? p + 3 : url;
		const char *end = host + strcspn(host, "/?#"), *at = memchr(host, '@',
									   (size_t)(end - host));
		snprintf(shown, sizeof(shown), "%.*s%.*s", p ? (int)(host - url) : 0, url,
			 (int)strcspn(at ? at + 1 : host, "?#"), at ? at + 1 : host);
	}
	dtn_span_set_str(T.root, "daytona.api.url", shown);
	if ((target = dtn_daytona_target(c)))
		dtn_span_set_str(T.root, "daytona.target", target);
}

dtn_span *cli_otel_root(void)
{
	return T.root;
}

void cli_otel_note_code(int code)
{
	if (code < 0)
		T.last_code = code;
}

void cli_otel_note_error(const dtn_error *err)
{
	if (!err || err->code >= 0)
		return;
	T.last_code = err->code;
	dtn_error_format(err, T.last_message, sizeof(T.last_message));
}

void cli_otel_spec(const char *path)
{
	unsigned char digest[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int len = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	EVP_MD_CTX *ctx;
	FILE *f;
	size_t n;
	bool ok;

	if (!dtn_span_is_recording(T.root))
		return;
	dtn_span_set_str(T.root, "dtn.spec.path", path);
	if (!(f = fopen(path, "rbe")))
		return;
	if (!(ctx = EVP_MD_CTX_new())) {
		fclose(f);
		return;
	}
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n) == 1;
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, digest, &len) == 1;
	EVP_MD_CTX_free(ctx);
	fclose(f);
	if (!ok)
		return;
	for (unsigned int i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	dtn_span_set_str(T.root, "dtn.spec.sha256", hex);
}

/* What the exit code says, as error.type and a message. */
static void root_error(int exit_code)
{
	static const char *const types[] = {
		[-DTN_ECONNECT] = "connect_error", [-DTN_ETIMEOUT] = "timeout",
		[-DTN_EAUTH] = "auth_error", [-DTN_ECONFIG] = "config_error",
		[-DTN_EHTTP] = "http_error", [-DTN_ERATELIMIT] = "rate_limited",
		[-DTN_EBUILD] = "build_failed", [-DTN_EPROTOCOL] = "protocol_error",
		[-DTN_EIO] = "io_error", [-DTN_ENOTFOUND] = "not_found",
		[-DTN_EEXISTS] = "already_exists", [-DTN_ECHANGED] = "changed",
	};
	const char *type = NULL;
	int code = T.last_code ? T.last_code : DTN_ERROR;

	if (exit_code == EXIT_INTERRUPTED) {
		dtn_span_record_error(T.root, DTN_EINTR, "cancelled", "interrupted");
		return;
	}
	if (exit_code == EXIT_USAGE)
		type = "usage_error";
	else if (exit_code == EXIT_CONFIG)
		type = "config_error";
	else if (-code > 0 && (size_t)-code < sizeof(types) / sizeof(types[0]))
		type = types[-code];
	dtn_span_record_error(T.root, code, type ? type : "_OTHER",
			      T.last_message[0] ? T.last_message : dtn_strerror(code));
}

int cli_otel_finish(int exit_code)
{
	struct timespec t0, t1;
	long budget, spent, keep;

	if (!T.otel)
		return exit_code;
	if (T.root) {
		dtn_span_set_int(T.root, "process.exit.code", exit_code);
		if (exit_code != EXIT_OK)
			root_error(exit_code);
		else
			dtn_span_set_status(T.root, DTN_SPAN_OK, NULL);
		/* dtn.builds and dtn.build.duration come from the backends (the library), so
		 * applications get them too. */
		dtn_span_end(T.root);
		T.root = NULL;
	}
	if (!T.summary) {
		budget = dtn_otel_flush_timeout(T.otel);
		if (dtn_otel_shutdown(T.otel, -1) == DTN_ETIMEOUT)
			cli_error("telemetry: not everything was exported within %ld ms; the rest "
				  "is dropped", budget);
		T.otel = NULL;
		return exit_code;
	}
	/* The summary counts what was exported: flush first, then stop with what is left of the
	 * budget, keeping a little for cancelling a request the receiver does not answer. */
	budget = dtn_otel_flush_timeout(T.otel);
	keep = budget / 4 < 300 ? budget / 4 : 300;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	dtn_otel_flush(T.otel, budget - keep);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	spent = (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	dtn_otel_summary(T.otel, summary_line, stderr);
	if (dtn_otel_shutdown(T.otel, spent + keep < budget ? budget - spent : keep) == DTN_ETIMEOUT)
		cli_error("telemetry: not everything was exported within %ld ms; the rest is "
			  "dropped", budget);
	T.otel = NULL;
	return exit_code;
}
