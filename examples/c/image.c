/*
 * image.c - the README's example: an image defined with the C DSL, its Dockerfile printed.
 *
 *   cc image.c $(pkg-config --cflags --libs dtn) -o image && ./image PROJECT_DIR
 */
#include <stdio.h>

#include <dtn.h>

int main(int argc, char **argv)
{
	dtn_image *img = dtn_image_debian_slim("3.12");
	int rc = 0;

	dtn_image_resolve_from(img, argc > 1 ? argv[1] : ".");
	dtn_image_pip_install(img, DTN_STRV("requests", "pytest"), NULL);
	dtn_image_pip_install(img, DTN_STRV("torch"), &(dtn_pip_opts){
		.index_url = "https://download.pytorch.org/whl/cpu"});
	dtn_image_apt_get(img, DTN_STRV("git", "curl"));
	dtn_image_add_local_dir(img, "src", "/home/daytona/src", NULL);
	dtn_image_env(img, "PROJECT_ROOT", "/home/daytona");
	dtn_image_workdir(img, "/home/daytona");
	dtn_image_entrypoint(img, DTN_STRV("sleep", "infinity"));
	if (dtn_image_status(img) < 0) {
		char msg[4096];

		dtn_error_format(dtn_image_error(img), msg, sizeof(msg));
		fprintf(stderr, "%s\n", msg);
		rc = 1;
	} else {
		fputs(dtn_image_dockerfile(img), stdout);
	}
	dtn_image_free(img);
	return rc;
}
