/*
 * testutil.c - helpers shared by the test programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static long fail_at, calls;

static void *failing_malloc(size_t size)
{
	if (fail_at > 0 && ++calls >= fail_at)
		return NULL;
	return malloc(size);
}

static void *failing_realloc(void *ptr, size_t size)
{
	if (fail_at > 0 && ++calls >= fail_at)
		return NULL;
	return realloc(ptr, size);
}

void tu_fail_alloc_after(long n)
{
	fail_at = n;
	calls = 0;
	dtn_set_allocator(&(dtn_allocator){failing_malloc, failing_realloc, free});
}

long tu_alloc_calls(void)
{
	return calls;
}

void tu_alloc_reset(void)
{
	fail_at = 0;
	dtn_set_allocator(NULL);
}

const char *tu_mkdtemp(void)
{
	static char path[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/dtn-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmtree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			perror(path);
			abort();
		}
		*p = '/';
	}
}

void tu_write(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	make_parents(path);
	if (!(f = fopen(path, "wb")) || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

void tu_wait_older(const char *dir, const char *name, int seconds)
{
	const struct timespec tick = {.tv_nsec = 100 * 1000 * 1000};
	char path[PATH_MAX];
	struct stat st;
	time_t newest;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) < 0) {
		perror(path);
		abort();
	}
	newest = st.st_ctime > st.st_mtime ? st.st_ctime : st.st_mtime;
	for (int waited = 0; time(NULL) <= newest + seconds; waited++) {
		if (waited >= 600) {
			fprintf(stderr, "%s: the clock stays behind its timestamps\n", path);
			abort();
		}
		nanosleep(&tick, NULL);
	}
}

const char *tu_data_dir(void)
{
	const char *d = getenv("DTN_TEST_DATA");

	return d && *d ? d : "tests/data";
}

static char *slurp_fd(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	if (!buf)
		abort();
	buf[len] = '\0';
	close(fd);
	return buf;
}

static int temp_fd(void)
{
	char path[] = "/tmp/dtn-test-out-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	unlink(path);
	return fd;
}

/*
 * Waits for the child and returns its wait status. One that outlives TU_RUN_TIMEOUT_MS is
 * killed, so that a hanging command fails its test instead of stalling the whole suite.
 */
static int wait_for(pid_t pid, const char *what)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	long waited = 0;
	pid_t got;
	int st;

	while ((got = waitpid(pid, &st, WNOHANG)) != pid) {
		if (got < 0 && errno != EINTR)
			abort();
		if (waited >= TU_RUN_TIMEOUT_MS) {
			fprintf(stderr, "%s did not finish within %d ms; killed\n", what,
			        TU_RUN_TIMEOUT_MS);
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0)
				if (errno != EINTR)
					abort();
			break;
		}
		nanosleep(&tick, NULL);
		waited += 10;
	}
	return st;
}

tu_run tu_run_cmd(char *const argv[], const char *cwd)
{
	tu_run r = {0};
	int out = temp_fd(), err = temp_fd(), st;
	pid_t pid = fork();

	if (pid < 0)
		abort();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);

		if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
		    (cwd && chdir(cwd) < 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	st = wait_for(pid, argv[0]);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = slurp_fd(out);
	r.err = slurp_fd(err);
	return r;
}

void tu_run_free(tu_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

const char *tu_dtn_build(void)
{
	static char abs[PATH_MAX];
	const char *p = getenv("DTN_BUILD");

	/* absolute, since commands may run in another directory */
	if (!realpath(p && *p ? p : "build/dtn-build", abs))
		abort();
	return abs;
}
