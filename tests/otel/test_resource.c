/*
 * test_resource.c - the resource (service, instance, Daytona sandbox, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_SERVICE_NAME) and the sampling of this machine's resource usage from its cgroups,
 * /proc and statfs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "otel_internal.h"
#include "otlp_check.h"

static int setup(void **state)
{
	(void)state;
	tu_otel_clear_env();
	return 0;
}

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static long long read_number(const char *path)
{
	FILE *f = fopen(path, "re");
	long long v = -1;

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void test_otel_resource__cgroup_of_this_machine(void **state)
{
	dtn__usage_src src;
	dtn__usage u;
	char path[700];

	(void)state;
	dtn__usage_src_init(&src);
	if (exists("/sys/fs/cgroup/cgroup.controllers"))
		assert_int_equal(src.version, 2);
	else if (exists("/sys/fs/cgroup/cpuacct/cpuacct.usage") ||
		 exists("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"))
		assert_int_equal(src.version, 1);
	else
		assert_int_equal(src.version, 0);
	dtn__usage_sample(&src, &u, true);
	assert_true(u.has_cpu);
	assert_true(u.cpu_usec > 0);
	assert_true(u.cpu_limit > 0);
	assert_true(u.has_mem);
	assert_true(u.mem_usage > 0);
	assert_true(u.mem_limit >= u.mem_usage);
	assert_true(u.has_fs);
	assert_true(u.fs_total > 0);
	assert_true(u.fs_available <= u.fs_total);
	assert_true(u.fs_used <= u.fs_total);
	assert_int_equal(u.fs_device[0], '/');
	/* the memory figure is the cgroup's own, read the same way */
	if (src.version == 2) {
		snprintf(path, sizeof(path), "%s/memory.current", src.mem_dir);
		assert_string_equal(u.source, "cgroup2");
	} else if (src.version == 1 && src.mem_dir[0]) {
		snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", src.mem_dir);
		assert_string_equal(u.source, "cgroup1");
	} else {
		path[0] = '\0';
	}
	if (path[0]) {
		long long direct = read_number(path);
		assert_true(direct > 0);
		/* within a factor of two: the process allocates between the two reads */
		assert_true(u.mem_usage > direct / 2 && u.mem_usage < direct * 2);
	}
}

static void test_otel_resource__filesystem_matches_statvfs(void **state)
{
	dtn__usage_src src;
	dtn__usage u;
	struct statvfs st;

	(void)state;
	dtn__usage_src_init(&src);
	dtn__usage_sample(&src, &u, true);
	assert_int_equal(statvfs(".", &st), 0);
	assert_int_equal(u.fs_total, (int64_t)(st.f_blocks * (st.f_frsize ? st.f_frsize
									    : st.f_bsize)));
	/* a start sample reads the CPU time only */
	dtn__usage_sample(&src, &u, false);
	assert_true(u.has_cpu);
	assert_false(u.has_fs);
}

static void test_otel_resource__cpu_utilisation_between_samples(void **state)
{
	dtn__usage_src src;
	dtn__usage a, b;
	struct timespec t0, t;
	volatile unsigned long spin = 0;
	double pct;

	(void)state;
	dtn__usage_src_init(&src);
	dtn__usage_sample(&src, &a, false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 100000; i++)
			spin += (unsigned long)i;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 100);
	dtn__usage_sample(&src, &b, true);
	pct = dtn__usage_cpu_percent(&a, &b);
	assert_true(pct > 0.0);
	assert_true(pct <= 100.0);
	/* unknown when the second sample is older or lacks the CPU */
	b.has_cpu = false;
	assert_true(dtn__usage_cpu_percent(&a, &b) < 0);
}

static const char *resource_str(dtn_otel *o, const char *key)
{
	const dtn__oattr *a = dtn__oattr_find(o->resource, key);

	return a && a->type == DTN_ATTR_TYPE_STRING ? a->u.s : NULL;
}

static void test_otel_resource__attributes(void **state)
{
	dtn_otel *o, *o2;
	dtn_error err;
	const dtn__oattr *pid;

	(void)state;
	setenv("DAYTONA_SANDBOX_ID", "sbx-123", 1);
	setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci,service.name=from-attrs",
	       1);
	assert_int_equal(dtn_otel_new(&o, NULL, &err), 0);
	assert_string_equal(resource_str(o, "daytona.sandbox.id"), "sbx-123");
	assert_string_equal(resource_str(o, "deployment.environment.name"), "ci");
	assert_string_equal(resource_str(o, "service.name"), "from-attrs");
	assert_string_equal(resource_str(o, "telemetry.sdk.language"), "c");
	assert_string_equal(resource_str(o, "telemetry.sdk.name"), "dtn-build");
	assert_string_equal(resource_str(o, "service.version"), DTN_VERSION);
	pid = dtn__oattr_find(o->resource, "process.pid");
	assert_int_equal(pid->u.i, getpid());
	/* a fresh UUID v4 per process... per provider */
	assert_int_equal(strlen(resource_str(o, "service.instance.id")), 36);
	assert_int_equal(resource_str(o, "service.instance.id")[14], '4');
	assert_int_equal(dtn_otel_new(&o2, &(dtn_otel_opts){.version = 1,
		.service_name = "my-app",
		.resource = (dtn_attr[]){DTN_ATTR_STR("deployment.environment.name", "prod")},
		.nresource = 1}, &err), 0);
	assert_string_not_equal(resource_str(o, "service.instance.id"),
				resource_str(o2, "service.instance.id"));
	/* the application's settings win over OTEL_RESOURCE_ATTRIBUTES */
	assert_string_equal(resource_str(o2, "service.name"), "my-app");
	assert_string_equal(resource_str(o2, "deployment.environment.name"), "prod");
	dtn_otel_shutdown(o2, 100);
	/* ... and OTEL_SERVICE_NAME over everything */
	setenv("OTEL_SERVICE_NAME", "from-env", 1);
	assert_int_equal(dtn_otel_new(&o2, &(dtn_otel_opts){.version = 1,
		.service_name = "my-app"}, &err), 0);
	assert_string_equal(resource_str(o2, "service.name"), "from-env");
	dtn_otel_shutdown(o2, 100);
	dtn_otel_shutdown(o, 100);
}

static int warned;

static void on_warning(const char *line, void *payload)
{
	(void)payload;
	if (strstr(line, "OTEL_RESOURCE_ATTRIBUTES"))
		warned++;
}

static void test_otel_resource__bad_variable_is_discarded(void **state)
{
	dtn_otel *o;
	dtn_error err;

	(void)state;
	setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,bad", 1);
	warned = 0;
	assert_int_equal(dtn_otel_new(&o, &(dtn_otel_opts){.version = 1, .log = on_warning}, &err),
			 0);
	assert_int_equal(warned, 1);
	assert_null(dtn__oattr_find(o->resource, "good"));
	assert_string_equal(resource_str(o, "service.name"), "dtn-build");
	assert_null(dtn__oattr_find(o->resource, "daytona.sandbox.id"));
	dtn_otel_shutdown(o, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_otel_resource__cgroup_of_this_machine, setup),
		cmocka_unit_test_setup(test_otel_resource__filesystem_matches_statvfs, setup),
		cmocka_unit_test_setup(test_otel_resource__cpu_utilisation_between_samples, setup),
		cmocka_unit_test_setup(test_otel_resource__attributes, setup),
		cmocka_unit_test_setup(test_otel_resource__bad_variable_is_discarded, setup),
	};

	return cmocka_run_group_tests_name("otel/resource", tests, NULL, NULL);
}
