/*
 * fuzz_toml.c - feeds arbitrary bytes to the TOML reader. A document that parses is walked
 * completely, and every key is looked up again to check the table index agrees with the order
 * of keys; a rejected one must come with a usable position.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t walk(const dtn__toml *v)
{
	size_t n = dtn__toml_count(v), sum = 1;

	switch (dtn__toml_type_of(v)) {
	case DTN__TOML_TABLE:
		for (size_t i = 0; i < n; i++) {
			const char *key = dtn__toml_key_at(v, i);
			if (!key || dtn__toml_get(v, key) != dtn__toml_at(v, i))
				__builtin_trap();
			sum += strlen(key) + walk(dtn__toml_at(v, i));
		}
		break;
	case DTN__TOML_ARRAY:
		for (size_t i = 0; i < n; i++)
			sum += walk(dtn__toml_at(v, i));
		break;
	case DTN__TOML_STRING:
	case DTN__TOML_DATETIME:
		sum += strlen(dtn__toml_str(v));
		break;
	case DTN__TOML_INTEGER:
		sum += (size_t)dtn__toml_int(v);
		break;
	case DTN__TOML_FLOAT:
		sum += dtn__toml_float(v) > 0;
		break;
	case DTN__TOML_BOOL:
		sum += dtn__toml_bool(v);
		break;
	default:
		__builtin_trap();
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dtn__toml *root = NULL;
	dtn_error err;
	int rc;

	dtn_error_clear(&err);
	rc = dtn__toml_parse(&root, (const char *)data, size, &err);
	if (rc == 0) {
		if (!root || dtn__toml_type_of(root) != DTN__TOML_TABLE)
			__builtin_trap();
		walk(root);
		dtn__toml_free(root);
	} else if (root || rc != DTN_ESYNTAX || err.code != rc || err.line < 1 ||
		   err.column < 1 || !err.message[0] || err.file[0]) {
		__builtin_trap();
	}
	return 0;
}
