/*
 * poller.c - the one poll loop of snapshot, volume and sandbox waits, and the wait after a
 * delete. The server has no notifications: an object's state is read again every poll interval.
 */
#include <string.h>

#include "poller.h"

/* Logs obj's state; previous: the state it changed from (NULL for the first line). */
static int report(dtn__poll *p, const void *obj, const char *previous)
{
	const dtn__poll_kind *k = p->kind;
	const char *state = k->state(obj), *line;
	int64_t now = dtn__now_ms();
	char buf[700];

	if (previous) {
		dtn_span_add_event(p->span, k->event,
				   (dtn_attr[]){DTN_ATTR_STR(k->state_attr, state),
						DTN_ATTR_STR(k->previous_attr, previous)},
				   2);
		if (k->state_duration)
			dtn_histogram_record(k->state_duration, "s",
					     (double)(now - p->state_since) / 1000.0,
					     (dtn_attr[]){DTN_ATTR_STR(k->state_attr, previous)}, 1);
	}
	p->state_since = now;
	line = k->line(obj, buf, sizeof(buf));
	return dtn__api_log(p->c, p->log, p->payload, DTN_LOG_STATE, line, strlen(line)) != 0
		       ? DTN_EUSER
		       : 0;
}

/* One wait and one poll; the new description replaces the old, its state logged if new. */
static int step(dtn__poll *p, dtn_error *err)
{
	const dtn__poll_kind *k = p->kind;
	void *next = NULL;
	int rc;

	if ((p->polls || !k->poll_at_once) &&
	    (rc = dtn__api_sleep(p->c, p->c->poll_ms, err)) < 0)
		return rc;
	if (k->awake && (rc = k->awake(p, err)) < 0)
		return rc;
	p->polls++;
	if ((rc = k->fetch(p, &next, err)) < 0)
		return rc;
	if (strcmp(k->state(next), k->state(p->cur)) != 0)
		rc = report(p, next, k->state(p->cur));
	k->model->free(p->cur);
	p->cur = next;
	return rc;
}

int dtn__poll_run(dtn__poll *p, dtn_error *err)
{
	const dtn__poll_kind *k = p->kind;
	dtn_daytona *c = p->c;
	int rc;

	p->state_since = dtn__now_ms();
	if ((rc = report(p, p->cur, NULL)) == 0)
		while ((rc = k->judge(p, err)) == 0)
			if ((rc = step(p, err)) < 0)
				break;
	if (rc == DTN_EUSER)
		return dtn__error_set(err, rc, "%s", k->stopped);
	if (rc == DTN_ETIMEOUT && k->late && c->timeout_ms > 0 && dtn__api_remaining_ms(c) == 0)
		return k->late(p, (c->timeout_ms + 999) / 1000, err);
	return rc < 0 ? rc : 0;
}

void dtn__poll_record(dtn__poll *p)
{
	dtn_span_set_int(p->span, "dtn.poll.count", p->polls);
	if (p->cur)
		dtn_span_set_str(p->span, p->kind->state_attr, p->kind->state(p->cur));
}

int dtn__poll_wait(dtn__poll *p, const json_t *from, void **out, dtn_error *err)
{
	int rc;

	*out = NULL;
	if (!(p->cur = dtn__model_dup(p->kind->model, from)))
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
	else
		rc = dtn__poll_run(p, err);
	dtn__poll_record(p);
	dtn_span_end_op(p->span, rc, err);
	if (rc == 0)
		*out = p->cur;
	else if (p->cur)
		p->kind->model->free(p->cur);
	p->cur = NULL;
	return rc;
}

int dtn__poll_until_gone(dtn_daytona *c, const char *id, dtn__poll_gone_fn gone,
			 const char *late_fmt, const char *name, dtn_error *err)
{
	for (;;) {
		dtn_error gerr;
		int rc;

		if ((rc = dtn__api_sleep(c, c->poll_ms, err)) < 0) {
			if (rc == DTN_ETIMEOUT)
				dtn__error_set(err, rc, late_fmt, name);
			return rc;
		}
		/* "not found" is the answer awaited: its message must not reach err */
		dtn_error_clear(&gerr);
		if ((rc = gone(c, id, &gerr)) < 0 && err)
			*err = gerr;
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
}
