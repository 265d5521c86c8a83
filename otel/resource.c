/*
 * resource.c - the resource (who is reporting) and the resource usage of the environment
 * running each operation (CPU, memory, the working directory's filesystem), read from cgroup v2,
 * else cgroup v1, else /proc, and statfs. The usage is reported under the names and units of
 * Daytona's sandbox telemetry (daytona.sandbox.*), with the operation as an attribute.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "otel_internal.h"

/* ---- small file readers ---- */

/* The first line of a file into buf; false when it cannot be read. */
static bool read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static bool read_i64(const char *path, int64_t *out)
{
	char buf[64], *end;
	long long v;

	if (!read_line(path, buf, sizeof(buf)))
		return false;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || end == buf)
		return false;
	*out = v;
	return true;
}

static bool file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

/* A value "key N" from a file of such lines (cpu.stat, meminfo). */
static bool read_keyed(const char *path, const char *key, int64_t *out)
{
	FILE *f = fopen(path, "re");
	char line[256];
	size_t klen = strlen(key);
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == ':' ||
						      line[klen] == '\t')) {
			char *p = line + klen + 1;
			while (*p == ' ' || *p == '\t' || *p == ':')
				p++;
			*out = strtoll(p, NULL, 10);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* ---- finding the cgroup ---- */

/* The path of this process's cgroup for a v1 controller ("cpuacct"), or for v2 (NULL). */
static bool own_cgroup(const char *controller, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		line[strcspn(line, "\n")] = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		if (!controller) {
			found = strcmp(line, "0") == 0 && c1[1] == '\0';
		} else {
			/* the controller list is comma-separated: "cpu,cpuacct" */
			for (char *p = c1 + 1; *p && !found;) {
				size_t n = strcspn(p, ",");
				found = n == strlen(controller) && strncmp(p, controller, n) == 0;
				p += n + (p[n] == ',');
			}
		}
		if (found)
			snprintf(out, size, "%s", c2 + 1);
	}
	fclose(f);
	return found;
}

/* base + cgroup path when that directory holds `probe`, else base itself (a cgroup namespace
 * or a container mounts the cgroup at the root). */
static bool pick_dir(char *out, size_t size, const char *base, const char *cg, const char *probe)
{
	char path[1024];

	snprintf(out, size, "%s%s", base, strcmp(cg, "/") == 0 ? "" : cg);
	snprintf(path, sizeof(path), "%s/%s", out, probe);
	if (file_exists(path))
		return true;
	snprintf(out, size, "%s", base);
	snprintf(path, sizeof(path), "%s/%s", out, probe);
	return file_exists(path);
}

static double online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (double)n : 1.0;
}

static int64_t mem_total(void)
{
	int64_t kb;

	return read_keyed("/proc/meminfo", "MemTotal", &kb) ? kb * 1024 : 0;
}

void dtn__usage_src_init(dtn__usage_src *src)
{
	char cg[512];

	memset(src, 0, sizeof(*src));
	src->cpus = online_cpus();
	src->mem_total = mem_total();
	if (file_exists("/sys/fs/cgroup/cgroup.controllers") && own_cgroup(NULL, cg, sizeof(cg))) {
		if (pick_dir(src->cpu_dir, sizeof(src->cpu_dir), "/sys/fs/cgroup", cg, "cpu.stat")) {
			snprintf(src->mem_dir, sizeof(src->mem_dir), "%s", src->cpu_dir);
			src->version = 2;
			return;
		}
	}
	if (own_cgroup("cpuacct", cg, sizeof(cg)) &&
	    (pick_dir(src->cpu_dir, sizeof(src->cpu_dir), "/sys/fs/cgroup/cpuacct", cg,
		      "cpuacct.usage") ||
	     pick_dir(src->cpu_dir, sizeof(src->cpu_dir), "/sys/fs/cgroup/cpu,cpuacct", cg,
		      "cpuacct.usage"))) {
		src->version = 1;
		if (!(own_cgroup("cpu", cg, sizeof(cg)) &&
		      (pick_dir(src->cpu_limit_dir, sizeof(src->cpu_limit_dir), "/sys/fs/cgroup/cpu",
				cg, "cpu.cfs_quota_us") ||
		       pick_dir(src->cpu_limit_dir, sizeof(src->cpu_limit_dir),
				"/sys/fs/cgroup/cpu,cpuacct", cg, "cpu.cfs_quota_us"))))
			src->cpu_limit_dir[0] = '\0';
		if (!(own_cgroup("memory", cg, sizeof(cg)) &&
		      pick_dir(src->mem_dir, sizeof(src->mem_dir), "/sys/fs/cgroup/memory", cg,
			       "memory.usage_in_bytes")))
			src->mem_dir[0] = '\0';
	}
}

/* ---- sampling ---- */

/* The smallest limit set on the cgroup or its ancestors (v2 "max" files); 0 when none. */
static void v2_limits(const char *dir, double *cpus, int64_t *mem)
{
	char d[512], path[600], buf[128];

	*cpus = 0;
	*mem = 0;
	snprintf(d, sizeof(d), "%s", dir);
	for (;;) {
		long long quota, period, m;
		snprintf(path, sizeof(path), "%s/cpu.max", d);
		if (read_line(path, buf, sizeof(buf)) &&
		    sscanf(buf, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0 &&
		    (*cpus == 0 || (double)quota / (double)period < *cpus))
			*cpus = (double)quota / (double)period;
		snprintf(path, sizeof(path), "%s/memory.max", d);
		if (read_line(path, buf, sizeof(buf)) && sscanf(buf, "%lld", &m) == 1 && m > 0 &&
		    (*mem == 0 || m < *mem))
			*mem = m;
		if (strcmp(d, "/sys/fs/cgroup") == 0 || !strrchr(d, '/'))
			break;
		*strrchr(d, '/') = '\0';
		if (strlen(d) < strlen("/sys/fs/cgroup"))
			break;
	}
}

static void sample_v2(const dtn__usage_src *src, dtn__usage *u, bool full)
{
	char path[600];
	double cpus;
	int64_t limit;

	snprintf(path, sizeof(path), "%s/cpu.stat", src->cpu_dir);
	u->has_cpu = read_keyed(path, "usage_usec", &u->cpu_usec);
	u->source = "cgroup2";
	if (!full)
		return;
	snprintf(path, sizeof(path), "%s/memory.current", src->mem_dir);
	u->has_mem = read_i64(path, &u->mem_usage);
	v2_limits(src->cpu_dir, &cpus, &limit);
	u->cpu_limit = cpus > 0 ? cpus : src->cpus;
	u->mem_limit = limit > 0 ? limit : src->mem_total;
}

static void sample_v1(const dtn__usage_src *src, dtn__usage *u, bool full)
{
	char path[600];
	int64_t ns, quota, period, limit;

	snprintf(path, sizeof(path), "%s/cpuacct.usage", src->cpu_dir);
	if ((u->has_cpu = read_i64(path, &ns)))
		u->cpu_usec = ns / 1000;
	u->source = "cgroup1";
	if (!full)
		return;
	u->cpu_limit = src->cpus;
	if (src->cpu_limit_dir[0]) {
		snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", src->cpu_limit_dir);
		if (read_i64(path, &quota) && quota > 0) {
			snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", src->cpu_limit_dir);
			if (read_i64(path, &period) && period > 0)
				u->cpu_limit = (double)quota / (double)period;
		}
	}
	u->mem_limit = src->mem_total;
	if (src->mem_dir[0]) {
		snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", src->mem_dir);
		u->has_mem = read_i64(path, &u->mem_usage);
		snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", src->mem_dir);
		/* "no limit" is a huge number: the machine's memory is the limit then */
		if (read_i64(path, &limit) && limit > 0 && (!src->mem_total || limit < src->mem_total))
			u->mem_limit = limit;
	}
}

static void sample_proc(const dtn__usage_src *src, dtn__usage *u, bool cpu, bool mem)
{
	char line[512];
	long tick = sysconf(_SC_CLK_TCK);
	int64_t avail;

	if (cpu && read_line("/proc/stat", line, sizeof(line)) && strncmp(line, "cpu ", 4) == 0) {
		unsigned long long v[8] = {0};
		if (sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4 && tick > 0) {
			/* busy time: everything but idle (3) and iowait (4) */
			unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
			u->cpu_usec = (int64_t)(busy * 1000000ULL / (unsigned long long)tick);
			u->cpu_limit = src->cpus;
			u->has_cpu = true;
		}
	}
	if (mem && (u->mem_limit = src->mem_total) > 0 &&
	    read_keyed("/proc/meminfo", "MemAvailable", &avail)) {
		u->mem_usage = u->mem_limit - avail * 1024;
		u->has_mem = true;
	}
	if (!u->source)
		u->source = "proc";
}

/* The mount point holding path: the longest mount point that is a prefix of it. */
static void mount_point(const char *path, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	size_t best = 0;

	snprintf(out, size, "/");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mnt[1024];
		size_t n;
		/* id parent major:minor root mount-point ... */
		if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1)
			continue;
		n = strlen(mnt);
		if (n < best || strncmp(path, mnt, n) != 0 ||
		    !(path[n] == '/' || path[n] == '\0' || strcmp(mnt, "/") == 0))
			continue;
		if (strchr(mnt, '\\'))
			continue; /* escaped characters: leave the shorter match */
		best = n;
		if (n >= size)
			n = size - 1;
		memcpy(out, mnt, n);
		out[n] = '\0';
	}
	fclose(f);
}

void dtn__usage_sample(const dtn__usage_src *src, dtn__usage *u, bool full)
{
	struct statvfs st;
	char cwd[PATH_MAX];

	memset(u, 0, sizeof(*u));
	u->wall_ns = dtn__otel_mono_ns();
	if (src->version == 2)
		sample_v2(src, u, full);
	else if (src->version == 1)
		sample_v1(src, u, full);
	if (!u->has_cpu || (full && !u->has_mem))
		sample_proc(src, u, !u->has_cpu, full && !u->has_mem);
	if (!full)
		return;
	if (getcwd(cwd, sizeof(cwd)) && statvfs(cwd, &st) == 0 && st.f_blocks > 0) {
		uint64_t frsize = st.f_frsize ? st.f_frsize : st.f_bsize;
		u->fs_total = (int64_t)(st.f_blocks * frsize);
		u->fs_available = (int64_t)(st.f_bavail * frsize);
		u->fs_used = (int64_t)((st.f_blocks - st.f_bfree) * frsize);
		u->has_fs = true;
		mount_point(cwd, u->fs_device, sizeof(u->fs_device));
	}
}

double dtn__usage_cpu_percent(const dtn__usage *a, const dtn__usage *b)
{
	double wall_us = (double)(b->wall_ns - a->wall_ns) / 1000.0, pct;

	if (!a->has_cpu || !b->has_cpu || wall_us <= 0 || b->cpu_limit <= 0 ||
	    b->cpu_usec < a->cpu_usec)
		return -1;
	pct = (double)(b->cpu_usec - a->cpu_usec) / wall_us / b->cpu_limit * 100.0;
	return pct > 100.0 ? 100.0 : pct;
}

static void gauge(dtn_otel *o, const char *name, const char *unit, bool integer, double value,
		  const dtn_attr *attrs, size_t n)
{
	dtn_metric_def def = {.name = name, .unit = unit, .kind = DTN_METRIC_GAUGE,
			      .integer = integer};

	dtn__metric_record(o, &def, value, attrs, n);
}

void dtn__usage_record(dtn_otel *o, const char *operation, const dtn__usage *start)
{
	dtn__usage now;
	double cpu;
	dtn_attr op[2] = {DTN_ATTR_STR("dtn.operation", operation)};

	dtn__usage_sample(&o->usage_src, &now, true);
	if (now.has_cpu) {
		gauge(o, "daytona.sandbox.cpu.limit", "cores", false, now.cpu_limit, op, 1);
		if ((cpu = dtn__usage_cpu_percent(start, &now)) >= 0)
			gauge(o, "daytona.sandbox.cpu.utilization", "percent", false, cpu, op, 1);
	}
	if (now.has_mem && now.mem_limit > 0) {
		gauge(o, "daytona.sandbox.memory.limit", "bytes", true, (double)now.mem_limit, op, 1);
		gauge(o, "daytona.sandbox.memory.usage", "bytes", true, (double)now.mem_usage, op, 1);
		gauge(o, "daytona.sandbox.memory.utilization", "percent", false,
		      (double)now.mem_usage * 100.0 / (double)now.mem_limit, op, 1);
	}
	if (now.has_fs) {
		op[1] = DTN_ATTR_STR("device", now.fs_device);
		gauge(o, "daytona.sandbox.filesystem.usage", "bytes", true, (double)now.fs_used, op,
		      2);
		gauge(o, "daytona.sandbox.filesystem.total", "bytes", true, (double)now.fs_total, op,
		      2);
		gauge(o, "daytona.sandbox.filesystem.available", "bytes", true,
		      (double)now.fs_available, op, 2);
		gauge(o, "daytona.sandbox.filesystem.utilization", "percent", false,
		      (double)now.fs_used * 100.0 / (double)now.fs_total, op, 2);
	}
}

/* ---- the resource ---- */

/* A random UUID v4 for service.instance.id. */
static void uuid4(char out[37])
{
	uint8_t b[16];
	char hex[33];

	dtn__otel_random(b, 16);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	dtn__otel_hex(hex, b, 16);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static const char *getenv_nonempty(const dtn_otel_opts *opts, const char *name)
{
	const char *v;

	if (opts && opts->ignore_env)
		return NULL;
	v = getenv(name);
	return v && *v ? v : NULL;
}

/* Replaces (or adds) key in the list: later settings win over earlier ones. */
static int set_attr(dtn__oattr **list, const dtn_attr *a)
{
	dtn__oattr **pp = list, *node;

	if (!a->key || !*a->key || (a->type == DTN_ATTR_TYPE_STRING && !a->value.s) ||
	    (a->type == DTN_ATTR_TYPE_STRV && !a->value.v))
		return 0; /* nothing known: no attribute */
	if (!(node = dtn__oattr_new(a)))
		return DTN_ENOMEM;
	while (*pp) {
		if (strcmp((*pp)->key, a->key) == 0) {
			dtn__oattr *old = *pp;
			node->next = old->next;
			*pp = node;
			dtn__free(old);
			return 0;
		}
		pp = &(*pp)->next;
	}
	*pp = node;
	return 0;
}

int dtn__otel_resource_build(dtn_otel *o, const dtn_otel_opts *opts)
{
	char host[256] = "", uuid[37];
	const char *v, *ci_name = NULL, *ci_run = NULL;
	int rc = 0;

	uuid4(uuid);
	if (gethostname(host, sizeof(host) - 1) != 0)
		host[0] = '\0';
	if ((v = getenv_nonempty(opts, "GITHUB_WORKFLOW"))) {
		ci_name = v;
		ci_run = getenv_nonempty(opts, "GITHUB_RUN_ID");
	} else if ((v = getenv_nonempty(opts, "GITLAB_CI"))) {
		ci_name = getenv_nonempty(opts, "CI_PIPELINE_NAME");
		if (!ci_name)
			ci_name = getenv_nonempty(opts, "CI_PROJECT_PATH");
		ci_run = getenv_nonempty(opts, "CI_PIPELINE_ID");
	}
	{
		const dtn_attr base[] = {
			DTN_ATTR_STR("service.name", "dtn-build"),
			DTN_ATTR_STR("service.version",
				     opts && opts->service_version ? opts->service_version
								   : DTN_VERSION),
			DTN_ATTR_STR("service.instance.id", uuid),
			DTN_ATTR_STR("telemetry.sdk.name", "dtn-build"),
			DTN_ATTR_STR("telemetry.sdk.language", "c"),
			DTN_ATTR_STR("telemetry.sdk.version", DTN_VERSION),
			DTN_ATTR_INT("process.pid", (int64_t)getpid()),
			DTN_ATTR_STR("host.name", host[0] ? host : NULL),
			DTN_ATTR_STR("os.type", "linux"),
			DTN_ATTR_STR("cicd.pipeline.name", ci_name),
			DTN_ATTR_STR("cicd.pipeline.run.id", ci_run),
			/* Inside a Daytona sandbox: the join key with the sandbox's own telemetry
			 * (service.name "sandbox-<id>"). */
			DTN_ATTR_STR("daytona.sandbox.id",
				     getenv_nonempty(opts, "DAYTONA_SANDBOX_ID")),
		};
		for (size_t i = 0; rc == 0 && i < DTN__ARRAY_LEN(base); i++)
			rc = set_attr(&o->resource, &base[i]);
	}
	/* OTEL_RESOURCE_ATTRIBUTES, then the application's, then the service name. */
	for (const dtn__oattr *a = o->cfg.resource_env; rc == 0 && a; a = a->next)
		rc = set_attr(&o->resource, &DTN_ATTR_STR(a->key, a->u.s));
	for (size_t i = 0; rc == 0 && opts && opts->resource && i < opts->nresource; i++)
		rc = set_attr(&o->resource, &opts->resource[i]);
	if (rc == 0 && o->cfg.service_name)
		rc = set_attr(&o->resource, &DTN_ATTR_STR("service.name", o->cfg.service_name));
	return rc;
}
