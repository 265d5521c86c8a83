/*
 * spec.c - the YAML spec loader (format version 1): reading the file, parsing it with libyaml,
 * and the top of the document (version, image source, snapshot, volumes). The steps are in
 * spec_steps.c and the value readers in spec_node.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "image_internal.h"
#include "image_otel.h"
#include "spec_internal.h"

struct dtn_spec {
	dtn_image *image;
	dtn_spec_snapshot snapshot;
	dtn_spec_volume *volumes;
	size_t nvolumes;
};

/* ---- the spec object ---- */

/* The snapshot and volume strings are the spec's own copies; the public structs show them
 * as const, so freeing them casts that away. */
static void free_str(const char *s)
{
	dtn__free((void *)(size_t)s);
}

void dtn_spec_free(dtn_spec *spec)
{
	if (!spec)
		return;
	dtn_image_free(spec->image);
	free_str(spec->snapshot.name);
	free_str(spec->snapshot.region);
	for (size_t i = 0; i < spec->nvolumes; i++) {
		free_str(spec->volumes[i].name);
		free_str(spec->volumes[i].mount_path);
		free_str(spec->volumes[i].subpath);
	}
	dtn__free(spec->volumes);
	dtn__free(spec);
}

const dtn_image *dtn_spec_image(const dtn_spec *spec)
{
	return spec ? spec->image : NULL;
}

const dtn_spec_snapshot *dtn_spec_snapshot_info(const dtn_spec *spec)
{
	static const dtn_spec_snapshot none;

	return spec ? &spec->snapshot : &none;
}

size_t dtn_spec_volume_count(const dtn_spec *spec)
{
	return spec ? spec->nvolumes : 0;
}

const dtn_spec_volume *dtn_spec_volume_at(const dtn_spec *spec, size_t i)
{
	return spec && i < spec->nvolumes ? &spec->volumes[i] : NULL;
}

/* A copy of a string for the spec, or NULL with the loader's error set. */
static int copy_str(dtn__spec_loader *L, const char *s, const char **out)
{
	if (!(*out = dtn__strdup(s)))
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	return 0;
}

/* ---- version ---- */

static int check_version(dtn__spec_loader *L, yaml_node_t *root)
{
	char shown[80];

	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = dtn__spec_node(L, p->key), *v = dtn__spec_node(L, p->value);
		const char *s = dtn__spec_text(v);
		size_t digits = strspn(s, "0123456789");

		if (!k || k->type != YAML_SCALAR_NODE || strcmp(dtn__spec_text(k), "version") != 0)
			continue;
		if (!v || v->type != YAML_SCALAR_NODE || dtn__spec_is_null(v))
			return dtn__spec_fail(L, v, DTN_EINVAL,
					      "version: expected a version number, got %s",
					      dtn__spec_kind(v));
		if (!digits || s[digits])
			return dtn__spec_fail(L, v, DTN_EINVAL,
					      "version: expected a version number, got \"%s\"",
					      dtn__spec_show(s, shown, sizeof(shown)));
		/* 1, or 1 with leading zeros */
		if (s[digits - 1] == '1' && strspn(s, "0") == digits - 1)
			return 0;
		return dtn__spec_fail(L, v, DTN_EUNSUPPORTED,
				      "unsupported spec version %s (this version of dtn reads "
				      "version 1)",
				      dtn__spec_show(s, shown, sizeof(shown)));
	}
	return 0;
}

/* ---- image ---- */

enum { IMG_BASE, IMG_DEBIAN_SLIM, IMG_FROM_DOCKERFILE, IMG_STEPS, IMG_NKEYS };

static const dtn__spec_key image_keys[IMG_NKEYS] = {
	{"base", NULL},
	{"debian_slim", "debianSlim"},
	{"from_dockerfile", "fromDockerfile"},
	{"steps", NULL},
};

enum { FD_PATH, FD_STRICT, FD_NKEYS };

static const dtn__spec_key from_dockerfile_keys[FD_NKEYS] = {
	{"path", NULL},
	{"strict_context", "strictContext"},
};

/* The Dockerfile's path is passed as written, with the spec's directory as base_dir, so that
 * the DSL's messages name it the way the spec does. */
static int from_dockerfile(dtn__spec_loader *L, yaml_node_t *value)
{
	yaml_node_t *v[FD_NKEYS] = {value, NULL};
	dtn_dockerfile_opts opts = {.version = DTN_OPTS_VERSION, .base_dir = L->dir};
	const char *path, *subject;
	int rc;

	if (value && value->type == YAML_MAPPING_NODE) {
		if ((rc = dtn__spec_keys(L, value, "from_dockerfile", from_dockerfile_keys,
					 FD_NKEYS, v)) < 0)
			return rc;
		if (!v[FD_PATH])
			return dtn__spec_missing(L, value, "from_dockerfile", "path");
		if (v[FD_STRICT] && (rc = dtn__spec_bool(L, v[FD_STRICT],
							 "image.from_dockerfile.strict_context",
							 &opts.strict_context)) < 0)
			return rc;
	}
	subject = v[FD_PATH] == value ? "image.from_dockerfile" : "image.from_dockerfile.path";
	if ((rc = dtn__spec_string(L, v[FD_PATH], subject, &path)) < 0)
		return rc;
	L->img = dtn_image_from_dockerfile(path, &opts);
	return dtn__spec_check(L, value);
}

/* The image source: exactly one of base, debian_slim and from_dockerfile. */
static int image_source(dtn__spec_loader *L, yaml_node_t *image, yaml_node_t **v)
{
	const char *s = NULL;
	int rc;

	if (v[IMG_BASE]) {
		if ((rc = dtn__spec_string(L, v[IMG_BASE], "image.base", &s)) < 0)
			return rc;
		L->img = dtn_image_base(s);
		return dtn__spec_check(L, v[IMG_BASE]);
	}
	if (v[IMG_DEBIAN_SLIM]) {
		/* Null or empty means the newest series. */
		if (!dtn__spec_is_null(v[IMG_DEBIAN_SLIM]) &&
		    (rc = dtn__spec_string(L, v[IMG_DEBIAN_SLIM], "image.debian_slim",
					     &s)) < 0)
			return rc;
		L->img = dtn_image_debian_slim(s && s[0] ? s : NULL);
		return dtn__spec_check(L, v[IMG_DEBIAN_SLIM]);
	}
	if (v[IMG_FROM_DOCKERFILE])
		return from_dockerfile(L, v[IMG_FROM_DOCKERFILE]);
	return dtn__spec_fail(L, image, DTN_EINVAL,
			      "image: missing the image source (one of base, debian_slim, "
			      "from_dockerfile)");
}

/* The canonical name of an image source key, or NULL for other keys. */
static const char *source_name(const char *s)
{
	for (size_t i = 0; i < IMG_STEPS; i++) {
		if (strcmp(s, image_keys[i].name) == 0 ||
		    (image_keys[i].alias && strcmp(s, image_keys[i].alias) == 0))
			return image_keys[i].name;
	}
	return NULL;
}

/* A second image source is reported at its key. */
static int one_source(dtn__spec_loader *L, yaml_node_t *image)
{
	const char *first = NULL, *name;

	for (yaml_node_pair_t *p = image->data.mapping.pairs.start;
	     p < image->data.mapping.pairs.top; p++) {
		yaml_node_t *k = dtn__spec_node(L, p->key);

		if (!(name = source_name(dtn__spec_text(k))))
			continue;
		if (first)
			return dtn__spec_fail(L, k, DTN_EINVAL,
					      "image: more than one image source (\"%s\" and "
					      "\"%s\")",
					      first, name);
		first = name;
	}
	return 0;
}

static int load_image(dtn__spec_loader *L, yaml_node_t *image)
{
	yaml_node_t *v[IMG_NKEYS];
	int rc;

	if (!image || image->type != YAML_MAPPING_NODE || dtn__spec_is_null(image))
		return dtn__spec_fail(L, image, DTN_EINVAL, "image: expected a mapping, got %s",
				      dtn__spec_kind(image));
	if ((rc = dtn__spec_keys(L, image, "image", image_keys, IMG_NKEYS, v)) < 0 ||
	    (rc = one_source(L, image)) < 0 || (rc = image_source(L, image, v)) < 0)
		return rc;
	dtn_image_resolve_from(L->img, L->dir);
	if (dtn_image_status(L->img) < 0) {
		*L->err = *dtn_image_error(L->img);
		dtn__error_at(L->err, L->file, 0, 0);
		return L->err->code < 0 ? L->err->code : DTN_ERROR;
	}
	return dtn__spec_steps(L, v[IMG_STEPS]);
}

/* ---- snapshot ---- */

enum { SNAP_NAME, SNAP_RESOURCES, SNAP_REGION, SNAP_ENTRYPOINT, SNAP_CMD, SNAP_WORKDIR,
       SNAP_NKEYS };

static const dtn__spec_key snapshot_keys[SNAP_NKEYS] = {
	{"name", NULL},       {"resources", NULL}, {"region", NULL},
	{"entrypoint", NULL}, {"cmd", NULL},       {"workdir", NULL},
};

static const dtn__spec_key resource_keys[] = {
	{"cpu", NULL}, {"gpu", NULL}, {"memory", NULL}, {"disk", NULL}};

static int load_resources(dtn__spec_loader *L, yaml_node_t *node, dtn_spec_snapshot *snap)
{
	static const char *const subjects[] = {"snapshot.resources.cpu", "snapshot.resources.gpu",
					       "snapshot.resources.memory",
					       "snapshot.resources.disk"};
	int *fields[] = {&snap->cpu, &snap->gpu, &snap->memory, &snap->disk};
	yaml_node_t *v[DTN__ARRAY_LEN(resource_keys)];
	int rc;

	if (dtn__spec_is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return dtn__spec_fail(L, node, DTN_EINVAL,
				      "snapshot.resources: expected a mapping, got %s",
				      dtn__spec_kind(node));
	if ((rc = dtn__spec_keys(L, node, "snapshot.resources", resource_keys,
				 DTN__ARRAY_LEN(resource_keys), v)) < 0)
		return rc;
	for (size_t i = 0; i < DTN__ARRAY_LEN(resource_keys); i++)
		if (v[i] && (rc = dtn__spec_uint(L, v[i], subjects[i], fields[i])) < 0)
			return rc;
	return 0;
}

static int snapshot_string(dtn__spec_loader *L, yaml_node_t *node, const char *subject,
			   const char **out)
{
	const char *s;
	int rc;

	if ((rc = dtn__spec_string(L, node, subject, &s)) < 0)
		return rc;
	return copy_str(L, s, out);
}

/*
 * Reads the snapshot section. Its entrypoint, cmd and workdir are image steps applied after
 * all of image.steps, in the order they are written here.
 */
static int load_snapshot(dtn__spec_loader *L, yaml_node_t *node, dtn_spec_snapshot *snap)
{
	yaml_node_t *v[SNAP_NKEYS];
	int rc;

	if (!node || dtn__spec_is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return dtn__spec_fail(L, node, DTN_EINVAL, "snapshot: expected a mapping, got %s",
				      dtn__spec_kind(node));
	if ((rc = dtn__spec_keys(L, node, "snapshot", snapshot_keys, SNAP_NKEYS, v)) < 0)
		return rc;
	if ((v[SNAP_NAME] &&
	     (rc = snapshot_string(L, v[SNAP_NAME], "snapshot.name", &snap->name)) < 0) ||
	    (v[SNAP_REGION] &&
	     (rc = snapshot_string(L, v[SNAP_REGION], "snapshot.region", &snap->region)) < 0) ||
	    (v[SNAP_RESOURCES] && (rc = load_resources(L, v[SNAP_RESOURCES], snap)) < 0))
		return rc;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = dtn__spec_node(L, p->key);
		const char *s = dtn__spec_text(k);

		if (strcmp(s, "entrypoint") && strcmp(s, "cmd") && strcmp(s, "workdir"))
			continue;
		if ((rc = dtn__spec_step(L, k, dtn__spec_node(L, p->value))) < 0)
			return rc;
	}
	return 0;
}

/* ---- volumes ---- */

enum { VOL_NAME, VOL_MOUNT_PATH, VOL_SUBPATH, VOL_NKEYS };

static const dtn__spec_key volume_keys[VOL_NKEYS] = {
	{"name", NULL}, {"mount_path", "mountPath"}, {"subpath", NULL}};

static int load_volume(dtn__spec_loader *L, yaml_node_t *node, dtn_spec_volume *vol)
{
	yaml_node_t *v[VOL_NKEYS];
	const char *name, *mount;
	char shown[96];
	int rc;

	if (!node || node->type != YAML_MAPPING_NODE || dtn__spec_is_null(node))
		return dtn__spec_fail(L, node, DTN_EINVAL, "volumes: expected a mapping, got %s",
				      dtn__spec_kind(node));
	if ((rc = dtn__spec_keys(L, node, "volumes", volume_keys, VOL_NKEYS, v)) < 0)
		return rc;
	if (!v[VOL_NAME])
		return dtn__spec_missing(L, node, "volumes", "name");
	if (!v[VOL_MOUNT_PATH])
		return dtn__spec_missing(L, node, "volumes", "mount_path");
	if ((rc = dtn__spec_string(L, v[VOL_NAME], "volumes.name", &name)) < 0 ||
	    (rc = dtn__spec_string(L, v[VOL_MOUNT_PATH], "volumes.mount_path", &mount)) < 0)
		return rc;
	if (!name[0])
		return dtn__spec_fail(L, v[VOL_NAME], DTN_EINVAL,
				      "volumes.name: must not be empty");
	if (mount[0] != '/')
		return dtn__spec_fail(L, v[VOL_MOUNT_PATH], DTN_EINVAL,
				      "volumes.mount_path: must be an absolute path, got \"%s\"",
				      dtn__spec_show(mount, shown, sizeof(shown)));
	if ((rc = copy_str(L, name, &vol->name)) < 0 ||
	    (rc = copy_str(L, mount, &vol->mount_path)) < 0)
		return rc;
	if (v[VOL_SUBPATH])
		return snapshot_string(L, v[VOL_SUBPATH], "volumes.subpath", &vol->subpath);
	return 0;
}

static int load_volumes(dtn__spec_loader *L, yaml_node_t *node, dtn_spec *spec)
{
	size_t n;
	int rc;

	if (!node || dtn__spec_is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return dtn__spec_fail(L, node, DTN_EINVAL, "volumes: expected a list, got %s",
				      dtn__spec_kind(node));
	n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (!(spec->volumes = dtn__calloc(n ? n : 1, sizeof(*spec->volumes))))
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = dtn__spec_node(L, node->data.sequence.items.start[i]);

		/* Counted before loading so a half-filled volume is still freed. */
		spec->nvolumes++;
		if ((rc = dtn__spec_visit(L, item)) < 0 ||
		    (rc = load_volume(L, item, &spec->volumes[i])) < 0)
			return rc;
	}
	return 0;
}

/* ---- the document ---- */

enum { TOP_VERSION, TOP_IMAGE, TOP_SNAPSHOT, TOP_VOLUMES, TOP_NKEYS };

static const dtn__spec_key top_keys[TOP_NKEYS] = {
	{"version", NULL}, {"image", NULL}, {"snapshot", NULL}, {"volumes", NULL}};

/*
 * Errors come in this order: the version, the top-level keys, the image (source, then each
 * step in turn), the snapshot section, the volumes.
 */
static int load_root(dtn__spec_loader *L, yaml_node_t *root, dtn_spec *spec)
{
	yaml_node_t *v[TOP_NKEYS];
	int rc;

	if (root->type != YAML_MAPPING_NODE || dtn__spec_is_null(root))
		return dtn__spec_fail(L, root, DTN_EINVAL, "the spec must be a mapping, got %s",
				      dtn__spec_kind(root));
	if ((rc = check_version(L, root)) < 0 ||
	    (rc = dtn__spec_keys(L, root, NULL, top_keys, TOP_NKEYS, v)) < 0)
		return rc;
	if (!v[TOP_IMAGE])
		return dtn__spec_missing(L, root, NULL, "image");
	if ((rc = load_image(L, v[TOP_IMAGE])) < 0 ||
	    (rc = load_snapshot(L, v[TOP_SNAPSHOT], &spec->snapshot)) < 0 ||
	    (rc = load_volumes(L, v[TOP_VOLUMES], spec)) < 0)
		return rc;
	return 0;
}

/* The 1-based line and column of a byte offset, for libyaml's reader errors (which only give
 * an offset). Columns count characters, as libyaml's marks do. */
static void offset_position(const char *text, size_t len, size_t offset, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (text[i] == '\n') {
			++*line;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			++*col;
		}
	}
}

static int yaml_failure(dtn__spec_loader *L, const yaml_parser_t *p, const char *text,
			size_t len)
{
	int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;

	if (p->error == YAML_MEMORY_ERROR)
		return dtn__spec_fail(L, NULL, DTN_ENOMEM, "out of memory");
	if (p->error == YAML_READER_ERROR) {
		offset_position(text, len, p->problem_offset, &line, &col);
		dtn__error_set(L->err, DTN_ESYNTAX, "%s", p->problem ? p->problem : "bad text");
	} else if (p->context) {
		dtn__error_set(L->err, DTN_ESYNTAX, "%s (%s at line %d, column %d)",
			       p->problem ? p->problem : "not YAML", p->context,
			       (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	} else {
		dtn__error_set(L->err, DTN_ESYNTAX, "%s", p->problem ? p->problem : "not YAML");
	}
	dtn__error_at(L->err, L->file, line, col);
	return DTN_ESYNTAX;
}

/* Parses the one document of the text into *doc; a second document is an error. */
static int parse(dtn__spec_loader *L, yaml_parser_t *p, yaml_document_t *doc, const char *text,
		 size_t len)
{
	yaml_document_t next;
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_load(p, doc))
		return yaml_failure(L, p, text, len);
	if (!yaml_document_get_root_node(doc)) {
		yaml_document_delete(doc);
		dtn__error_set(L->err, DTN_EINVAL, "the spec is empty");
		dtn__error_at(L->err, L->file, 1, 1);
		return DTN_EINVAL;
	}
	if (!yaml_parser_load(p, &next)) {
		rc = yaml_failure(L, p, text, len);
	} else {
		if ((root = yaml_document_get_root_node(&next))) {
			dtn__error_set(L->err, DTN_EINVAL,
				       "the spec must be a single YAML document; a second one "
				       "starts here");
			dtn__error_at(L->err, L->file, (int)next.start_mark.line + 1,
				      (int)next.start_mark.column + 1);
			rc = DTN_EINVAL;
		}
		yaml_document_delete(&next);
	}
	if (rc < 0)
		yaml_document_delete(doc);
	return rc;
}

/* The Spec.load span: the spec's path and digest, then what it made. */
static dtn_span *load_span_start(const char *name, const char *text, size_t len)
{
	dtn_span *span = dtn_span_start_op("Spec.load", NULL);
	unsigned char digest[DTN__SHA256_LEN];
	char hex[DTN__SHA256_HEX];

	if (!dtn_span_is_recording(span))
		return span;
	dtn_span_set_str(span, "dtn.spec.format", "yaml");
	dtn_span_set_str(span, "dtn.spec.path", name);
	if (dtn__sha256_once(digest, text, len) == 0) {
		dtn__sha256_hex(hex, digest);
		dtn_span_set_str(span, "dtn.spec.sha256", hex);
	}
	return span;
}

static void load_span_end(dtn_span *span, int rc, const dtn_spec *spec, const dtn_error *err)
{
	if (spec && spec->image) {
		dtn_span_set_int(span, "dtn.spec.layers",
				 dtn__image_otel_layers(dtn__buf_cstr(&spec->image->dockerfile)));
		dtn_span_set_int(span, "dtn.spec.contexts",
				 (int64_t)dtn_image_context_count(spec->image));
		dtn_span_set_int(span, "dtn.spec.volumes", (int64_t)spec->nvolumes);
	}
	dtn_span_end_op(span, rc, err);
}

/* Loads the text into a new spec; on failure *out stays NULL and err is set. */
static int load(dtn_spec **out, const char *text, size_t len, const char *name, dtn_error *err)
{
	dtn__spec_loader L = {.file = name, .err = err};
	yaml_parser_t parser;
	yaml_document_t doc;
	dtn_spec *spec = NULL;
	char *dir = NULL;
	dtn_span *span;
	int rc;

	if (!yaml_parser_initialize(&parser))
		return dtn__spec_fail(&L, NULL, DTN_ENOMEM, "out of memory");
	span = load_span_start(name, text, len);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if ((rc = parse(&L, &parser, &doc, text, len)) < 0)
		goto out_parser;
	L.doc = &doc;
	if (!(dir = dtn__path_dirname(name)) || !(spec = dtn__calloc(1, sizeof(*spec)))) {
		rc = dtn__spec_fail(&L, NULL, DTN_ENOMEM, "out of memory");
		goto out;
	}
	L.dir = dir;
	/* Every DSL call was checked as it was made, so success here means a sound image. */
	rc = load_root(&L, yaml_document_get_root_node(&doc), spec);
	spec->image = L.img;
	L.img = NULL;
	if (rc >= 0) {
		*out = spec;
		spec = NULL;
	}
out:
	dtn_spec_free(spec);
	dtn_image_free(L.img);
	dtn__free(dir);
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	load_span_end(span, rc, rc < 0 ? NULL : *out, err);
	return rc;
}

int dtn_spec_load_buffer(dtn_spec **out, const char *text, size_t len, const char *name,
			 dtn_error *err)
{
	dtn_error local;

	if (!err)
		err = &local;
	dtn_error_clear(err);
	if (!out)
		return dtn__error_set(err, DTN_EINVAL, "no place for the spec");
	*out = NULL;
	if (!name || (!text && len))
		return dtn__error_set(err, DTN_EINVAL, "no spec text or name");
	if (len > DTN__SPEC_MAX_SIZE) {
		dtn__error_at(err, name, 0, 0);
		return dtn__error_set(err, DTN_EINVAL, "the spec is larger than %zu MiB",
				      DTN__SPEC_MAX_SIZE >> 20);
	}
	return load(out, text ? text : "", len, name, err);
}

/* The error for a spec file that cannot be read, from errno. */
static int read_failure(const char *path, int code, dtn_error *err)
{
	char msg[256];

	dtn__error_at(err, path, 0, 0);
	return dtn__error_set(err, code, "cannot read the spec: %s",
			      strerror_r(errno, msg, sizeof(msg)));
}

/* Reads the whole file, refusing one larger than a spec may be. */
static int read_file(const char *path, char **out, size_t *len, dtn_error *err)
{
	struct stat st;
	size_t size, got = 0;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return read_failure(path, errno == ENOENT || errno == ENOTDIR ? DTN_ENOTFOUND
									      : DTN_EIO,
				    err);
	if (fstat(fd, &st) < 0) {
		rc = read_failure(path, DTN_EIO, err);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		rc = read_failure(path, DTN_EIO, err);
		goto out;
	}
	if (st.st_size > (off_t)DTN__SPEC_MAX_SIZE) {
		dtn__error_at(err, path, 0, 0);
		rc = dtn__error_set(err, DTN_EINVAL, "the spec is larger than %zu MiB",
				    DTN__SPEC_MAX_SIZE >> 20);
		goto out;
	}
	size = (size_t)st.st_size;
	if (!(*out = dtn__malloc(size + 1))) {
		dtn__error_at(err, path, 0, 0);
		rc = dtn__error_set(err, DTN_ENOMEM, "out of memory");
		goto out;
	}
	/* A file that changes while it is read is taken as far as its size said. */
	while (got < size && (n = read(fd, *out + got, size - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = read_failure(path, DTN_EIO, err);
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	if (rc < 0) {
		dtn__free(*out);
		*out = NULL;
	}
	return rc;
}

int dtn_spec_load(dtn_spec **out, const char *path, dtn_error *err)
{
	dtn_error local;
	char *text;
	size_t len = 0;
	int rc;

	if (!err)
		err = &local;
	dtn_error_clear(err);
	if (!out)
		return dtn__error_set(err, DTN_EINVAL, "no place for the spec");
	*out = NULL;
	if (!path)
		return dtn__error_set(err, DTN_EINVAL, "no spec path");
	if ((rc = read_file(path, &text, &len, err)) < 0)
		return rc;
	rc = dtn_spec_load_buffer(out, text, len, path, err);
	dtn__free(text);
	return rc;
}
