/*
 * bench_otel.c - what a span costs the thread that makes it: start, two attributes, end, with
 * telemetry on and the exporter thread serialising and writing every span (to a file in
 * WORKDIR) at the same time; and the same calls with telemetry off.
 *
 *     bench_otel [-n RUNS] [-s SPANS] WORKDIR
 *
 * Each run times SPANS spans on the calling thread in bursts of 512 (one export batch): a burst
 * is timed while the exporter thread serialises it, and the bench waits for the export to end,
 * untimed, before the next burst. The median and the minimum of the runs are shown, in
 * nanoseconds per span. Spans the queue had to drop are counted (a dropped span costs less than
 * an exported one, so a run with drops would say so). One more figure times 100 000 spans held
 * in the queue at once: their memory is fresh, which is what it shows (not a target). The
 * target: a span under 1 µs with export on, the median of the runs.
 *
 * The exit status is 0 when the target holds, 1 when it fails, 2 when the bench could not run.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dtn.h"

#define MAX_RUNS 64
#define TARGET_NS 1000.0

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ns per span: start, a string and an integer attribute, end; n spans in bursts of `burst`,
 * the exporter draining between bursts (untimed) when flush is set. */
static double run_spans(long n, long burst, dtn_otel *flush)
{
	double spent = 0;

	for (long done = 0; done < n; done += burst) {
		double t0 = now_ns();
		for (long i = 0; i < burst; i++) {
			dtn_span *s = dtn_span_start("ObjectStorage.upload", DTN_SPAN_INTERNAL,
						     NULL);
			dtn_span_set_str(s, "dtn.context.path", "/home/user/project/src");
			dtn_span_set_int(s, "dtn.context.bytes", done + i);
			dtn_span_end(s);
		}
		spent += now_ns() - t0;
		if (flush)
			dtn_otel_flush(flush, 60000);
	}
	return spent / (double)n;
}

static void series(const char *what, double *v, int runs)
{
	qsort(v, (size_t)runs, sizeof(*v), cmp);
	printf("  %-44s median %7.1f ns  min %7.1f ns\n", what, v[runs / 2], v[0]);
}

int main(int argc, char **argv)
{
	int runs = 5, opt;
	long spans = 200000;
	double on[MAX_RUNS], off[MAX_RUNS], big;
	char path[PATH_MAX];
	dtn_otel_stats st;
	dtn_otel *o;
	dtn_error err;
	bool ok;

	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			runs = atoi(optarg);
		else if (opt == 's')
			spans = atol(optarg);
		else
			return 2;
	}
	if (optind != argc - 1 || runs < 1 || runs > MAX_RUNS || spans < 1) {
		fprintf(stderr, "usage: bench_otel [-n RUNS] [-s SPANS] WORKDIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/bench-otel.jsonl", argv[optind]);
	/* A queue that holds a run, so every span is exported rather than dropped. */
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "262144", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512", 1);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_TRACES_SAMPLER");
	printf("span cost on the caller's thread (%ld spans per run, %d runs):\n", spans, runs);
	for (int i = 0; i < runs; i++)
		off[i] = run_spans(spans, 512, NULL);
	series("telemetry off (no provider)", off, runs);
	if (dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .trace_file = path}, &err) < 0) {
		fprintf(stderr, "bench_otel: %s\n", err.message);
		return 2;
	}
	dtn_otel_set_default(o);
	run_spans(4096, 512, o); /* warm the allocator and the file */
	for (int i = 0; i < runs; i++)
		on[i] = run_spans(spans, 512, o);
	big = run_spans(100000, 100000, o);
	dtn_otel_get_stats(o, &st);
	series("export on (start + 2 attributes + end)", on, runs);
	printf("  %-44s        %7.1f ns\n", "export on, 100 000 spans queued at once", big);
	printf("  %-44s %llu started, %llu exported, %llu dropped\n", "spans",
	       (unsigned long long)st.spans_started, (unsigned long long)st.spans_exported,
	       (unsigned long long)st.spans_dropped);
	dtn_otel_shutdown(o, 10000);
	unlink(path);
	ok = on[runs / 2] < TARGET_NS;
	printf("\ntargets:\n  %s  a span with export on costs its thread under %.0f ns "
	       "(median %.1f ns)\n", ok ? "PASS" : "FAIL", TARGET_NS, on[runs / 2]);
	return ok ? 0 : 1;
}
