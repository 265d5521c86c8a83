/*
 * poller.h - waiting for a Daytona object (a snapshot, a volume, a sandbox) by polling the
 * server: one loop for every kind, which logs each state it sees and marks each change on the
 * operation's span; and waiting for a deleted object to be gone. Not installed.
 */
#ifndef DTN_SNAPSHOTS_POLLER_H
#define DTN_SNAPSHOTS_POLLER_H

#include "api.h"
#include "dtn_otel.h"
#include "model.h"

typedef struct dtn__poll dtn__poll;

/* What differs between the kinds of object waited for. */
typedef struct dtn__poll_kind {
	const dtn__model *model;     /* what is waited for */
	const char *event;           /* the span event of a state change */
	const char *state_attr;      /* the new state's attribute (also the span's last state) */
	const char *previous_attr;   /* the state before */
	const char *state_duration;  /* a histogram of the seconds spent in each state; or NULL */
	const char *stopped;         /* the message when the log callback asks to stop */
	bool poll_at_once;           /* the first poll comes without waiting the poll interval */
	const char *(*state)(const void *obj);
	/* The line that logs obj's state: buf filled, or a string of obj. */
	const char *(*line)(const void *obj, char *buf, size_t size);
	/* Before each wait: 1 when the wait is over, 0 to poll again, or an error (message set). */
	int (*judge)(dtn__poll *p, dtn_error *err);
	/* After each wait, before the poll (may be NULL): 0 to go on, or an error. */
	int (*awake)(dtn__poll *p, dtn_error *err);
	/* One poll: the object as the server describes it now, into *next (an object of model). */
	int (*fetch)(dtn__poll *p, void **next, dtn_error *err);
	/* The message of the client's time limit running out (may be NULL: left as it is). */
	int (*late)(dtn__poll *p, long seconds, dtn_error *err);
} dtn__poll_kind;

/* A wait in progress; a kind may embed it first in a larger struct of its own. */
struct dtn__poll {
	const dtn__poll_kind *kind;
	dtn_daytona *c;
	dtn_log_fn log;
	void *payload;
	dtn_span *span;      /* the operation's */
	void *cur;           /* the last description seen (owned) */
	long polls;
	int64_t state_since; /* when cur's state was first seen */
};

/*
 * Logs p->cur's state, then until judge says the wait is over: waits the poll interval, polls,
 * and logs the state when it changed (a span event, and the time spent in the previous state
 * when the kind records it). Returns 0 or the first error; DTN_EUSER (with the kind's message)
 * when the log callback asked to stop; DTN_ETIMEOUT (with late's message when the client's
 * time limit ran out), DTN_EINTR, the kind's errors.
 */
int dtn__poll_run(dtn__poll *p, dtn_error *err);

/* Sets the span's dtn.poll.count and, when there is one, the last state seen. */
void dtn__poll_record(dtn__poll *p);

/*
 * A whole wait in the operation's span p->span (which the caller started, with p's log and
 * payload set): for a copy of the object that `from` describes, dtn__poll_run, then the span
 * recorded and ended. *out receives the object on success, NULL otherwise. Errors: those of
 * dtn__poll_run, DTN_ENOMEM.
 */
int dtn__poll_wait(dtn__poll *p, const json_t *from, void **out, dtn_error *err);

/* Whether an object is gone (1), still there (0), or an error (negative, err set). */
typedef int (*dtn__poll_gone_fn)(dtn_daytona *c, const char *id, dtn_error *err);

/*
 * After a delete: every poll interval, asks gone() until the object is gone. Returns 0, gone's
 * error, or dtn__api_sleep's: DTN_ETIMEOUT with the message late_fmt, whose one %s is `name`.
 */
int dtn__poll_until_gone(dtn_daytona *c, const char *id, dtn__poll_gone_fn gone,
			 const char *late_fmt, const char *name, dtn_error *err);

#endif
