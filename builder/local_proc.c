/*
 * local_proc.c - runs a container engine: posix_spawn with an argument vector (never a shell),
 * its own process group, its output read through one pipe and cut into lines, and a clean stop
 * of the whole group on cancel, deadline or a callback's request.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"

extern char **environ;

/* How often cancel and the deadline are looked at while the process is quiet. */
#define POLL_MS 100

/* How long output is still read after the process ended (a child it left may hold the pipe). */
#define DRAIN_MS 2000

long long dtn__local_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char **dtn__split_blanks(const char *text)
{
	dtn__strv v = {0};
	const char *p = text ? text : "";

	for (;;) {
		size_t n;

		p += strspn(p, " \t\n\r");
		if (!*p)
			break;
		n = strcspn(p, " \t\n\r");
		if (dtn__strv_push_owned(&v, dtn__strndup(p, n)) < 0) {
			dtn__strv_free(&v);
			return NULL;
		}
		p += n;
	}
	if (!v.items)
		return dtn__calloc(1, sizeof(char *));
	return v.items;
}

bool dtn__find_on_path(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	const char *p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";

	while (*p) {
		size_t n = strcspn(p, ":");
		struct stat st;
		int len = snprintf(out, size, "%.*s/%s", (int)n, n ? p : ".", name);

		if (len > 0 && (size_t)len < size && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

/* The environment for the child: ours, with the names in `add` replaced by its entries. */
static char **child_env(const char *const *add)
{
	size_t n = 0, nadd = dtn_strv_len(add), k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	if (!(env = dtn__calloc(n + nadd + 1, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;

		for (size_t j = 0; j < nadd && !replaced; j++) {
			size_t len = strcspn(add[j], "=");

			replaced = strncmp(environ[i], add[j], len) == 0 && environ[i][len] == '=';
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nadd; j++)
		env[k++] = (char *)add[j];
	return env;
}

static int spawn(const dtn__proc *p, int wfd, pid_t *pid, dtn_error *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	char **env = child_env(p->env);
	int rc;

	if (!env)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGQUIT);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, wfd, 1);
	posix_spawn_file_actions_adddup2(&fa, wfd, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dflt);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, p->argv[0], &fa, &at, (char *const *)p->argv, env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	dtn__free(env);
	if (rc != 0)
		return dtn__error_set(err, DTN_EIO, "cannot run %s: %s", p->argv[0], strerror(rc));
	return 0;
}

/* Output not yet delivered: the start of a line. */
typedef struct run_state {
	const dtn__proc *p;
	char buf[DTN__LINE_MAX + 1];
	size_t len;
	int why;             /* DTN_EINTR, DTN_ETIMEOUT or DTN_EUSER once stopping */
	long long term_at;   /* when SIGTERM went to the group */
	bool killed;
	bool exited;
	long long exited_at;
	int wstatus;
	pid_t pid;
} run_state;

static void deliver(run_state *s, size_t n)
{
	char saved = s->buf[n];

	if (n && s->buf[n - 1] == '\r')
		n--;
	s->buf[n] = '\0';
	if (!s->why && s->p->line && s->p->line(s->buf, n, s->p->payload) != 0)
		s->why = DTN_EUSER;
	s->buf[n] = saved;
}

/* Cuts what was read into lines; a line longer than the bound goes out in pieces. */
static void take(run_state *s, const char *data, size_t len)
{
	while (len) {
		size_t room = DTN__LINE_MAX - s->len, n = len < room ? len : room;
		const char *nl = memchr(data, '\n', n);

		if (nl)
			n = (size_t)(nl - data) + 1;
		memcpy(s->buf + s->len, data, n);
		s->len += n;
		data += n;
		len -= n;
		if (nl || s->len == DTN__LINE_MAX) {
			deliver(s, nl ? s->len - 1 : s->len);
			s->len = 0;
		}
	}
}

/* Decides whether to stop and signals the group: SIGTERM first, SIGKILL after the grace. */
static void check_stop(run_state *s, long long now)
{
	const dtn__proc *p = s->p;

	if (!s->why && p->cancel && *p->cancel)
		s->why = DTN_EINTR;
	if (!s->why && p->deadline && now >= p->deadline)
		s->why = DTN_ETIMEOUT;
	if (s->why && !s->term_at) {
		kill(-s->pid, SIGTERM);
		s->term_at = now;
	}
	if (s->why && !s->killed && now - s->term_at >= DTN__PROC_GRACE * 1000LL) {
		kill(-s->pid, SIGKILL);
		s->killed = true;
	}
	if (s->exited && now - s->exited_at >= DRAIN_MS && !s->killed) {
		/* whatever of the group is left holds our pipe: end it */
		kill(-s->pid, SIGKILL);
		s->killed = true;
	}
}

static void reap(run_state *s, long long now)
{
	int st;

	if (s->exited)
		return;
	if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
		s->exited = true;
		s->exited_at = now;
		s->wstatus = st;
	}
}

/* Reads until end of output and the process's end, stopping it when asked. */
static void pump(run_state *s, int rfd)
{
	char chunk[16384];
	bool eof = false;

	while (!eof || !s->exited) {
		struct pollfd pfd = {rfd, POLLIN, 0};
		long long now;

		if (!eof && poll(&pfd, 1, POLL_MS) > 0) {
			ssize_t n = read(rfd, chunk, sizeof(chunk));

			if (n > 0)
				take(s, chunk, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				eof = true;
		} else if (eof) {
			struct timespec ts = {0, 20 * 1000000L};

			nanosleep(&ts, NULL);
		}
		now = dtn__local_now_ms();
		reap(s, now);
		check_stop(s, now);
		if (s->exited && s->killed)
			break;
	}
	if (s->len)
		deliver(s, s->len);
}

int dtn__proc_run(const dtn__proc *p, int *status, dtn_error *err)
{
	run_state *s;
	int fds[2], rc;

	*status = -1;
	if (!(s = dtn__calloc(1, sizeof(*s))))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	s->p = p;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		dtn__free(s);
		return dtn__error_set(err, DTN_EIO, "cannot make a pipe: %s", strerror(errno));
	}
	rc = spawn(p, fds[1], &s->pid, err);
	close(fds[1]);
	if (rc == 0) {
		pump(s, fds[0]);
		if (!s->exited && waitpid(s->pid, &s->wstatus, 0) == s->pid)
			s->exited = true;
		if (WIFEXITED(s->wstatus))
			*status = WEXITSTATUS(s->wstatus);
		else if (WIFSIGNALED(s->wstatus))
			*status = 128 + WTERMSIG(s->wstatus);
		if (s->why == DTN_EINTR)
			rc = dtn__error_set(err, DTN_EINTR, "interrupted: %s was stopped", p->argv[0]);
		else if (s->why == DTN_ETIMEOUT)
			rc = dtn__error_set(err, DTN_ETIMEOUT, "out of time: %s was stopped",
					    p->argv[0]);
		else if (s->why == DTN_EUSER)
			rc = dtn__error_set(err, DTN_EUSER, "stopped by the log callback");
	}
	close(fds[0]);
	dtn__free(s);
	return rc;
}
