/*
 * model.c - Daytona objects made from the server's descriptions, copied and fetched the same
 * way whatever their kind.
 */
#include <string.h>

#include "model.h"

/* The first required member that j lacks, or NULL. */
static const char *missing(const dtn__model *m, const json_t *j)
{
	for (size_t i = 0; m->required && m->required[i]; i++)
		if (!dtn__json_str(j, m->required[i]))
			return m->required[i];
	return NULL;
}

int dtn__model_from_json(const dtn__model *m, const json_t *j, void **out, dtn_error *err)
{
	const char *lacks;
	void *obj;
	int rc;

	*out = NULL;
	if (!json_is_object(j))
		return dtn__error_set(err, DTN_EPROTOCOL, "the server's answer is not a %s",
				      m->noun);
	if ((lacks = missing(m, j)))
		return dtn__error_set(err, DTN_EPROTOCOL, "the server described a %s without %s %s",
				      m->noun, strchr("aeiou", lacks[0]) ? "an" : "a", lacks);
	if (!(obj = dtn__calloc(1, m->size)))
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	if ((rc = m->fill(obj, j, err)) < 0) {
		m->free(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

void *dtn__model_dup(const dtn__model *m, const json_t *j)
{
	void *out = NULL;
	json_t *copy;

	if (!(copy = json_deep_copy(j)))
		return NULL;
	dtn__model_from_json(m, copy, &out, NULL);
	json_decref(copy);
	return out;
}

int dtn__model_call(dtn_daytona *c, const char *method, const char *fmt, const char *arg,
		    const char *what, json_t **out, dtn_error *err)
{
	char *path = dtn__api_path(fmt, arg);
	int rc;

	if (out)
		*out = NULL;
	if (!path)
		return dtn__error_set(err, DTN_ENOMEM, "out of memory");
	rc = dtn__api_call(c, method, path, NULL, what, out, err);
	dtn__free(path);
	return rc;
}

int dtn__model_get(dtn_daytona *c, const dtn__model *m, const char *fmt, const char *arg,
		   const char *what, void **out, dtn_error *err)
{
	json_t *answer = NULL;
	int rc;

	*out = NULL;
	if ((rc = dtn__model_call(c, "GET", fmt, arg, what, &answer, err)) == 0)
		rc = dtn__model_from_json(m, answer, out, err);
	json_decref(answer);
	return rc;
}
