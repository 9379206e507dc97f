/* `minivm image`: export an ext4 root as a one-layer OCI image, inspect (open, verify, unpack) an OCI image, append a tar layer to one. */
#include "vmm/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oci_cli_usage(FILE *f)
{
	fputs("usage: minivm image export IMAGE.img DEST\n"
	      "       minivm image inspect REF\n"
	      "       minivm image append REF LAYER.tar DEST\n"
	      "       minivm image --help\n"
	      "\n"
	      "  export   write the ext4 image IMAGE.img as a one-layer OCI image (linux/amd64)\n"
	      "  inspect  open REF, verify every blob, unpack its layers in memory, and print\n"
	      "           the manifest digest, the layer count and the number of files\n"
	      "  append   write REF plus one layer made from LAYER.tar (OCI whiteouts kept) as DEST,\n"
	      "           as --save does with what the guest changed\n"
	      "\n"
	      "DEST and REF are oci:DIR[:TAG] or oci-archive:FILE[:TAG]; TAG is what follows the\n"
	      "last ':' when it is a valid tag. Export tags the image TAG or \"latest\" and replaces\n"
	      "DEST atomically (only an existing OCI layout directory is ever replaced).\n"
	      "SOURCE_DATE_EPOCH, when set, is the time written into the config.\n",
	      f);
}

static const char *oci_cli_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && t[0] ? t : "/tmp";
}

/* SOURCE_DATE_EPOCH as the config's RFC 3339 time into created (64 bytes);
 * *out NULL when unset ("now"). 0, or 1 with a message printed. */
static int oci_cli_created(char created[64], const char **out)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;
	time_t tt;
	struct tm tm;

	*out = NULL;
	if (!sde || !sde[0])
		return 0;
	errno = 0;
	v = strtoll(sde, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "minivm image: SOURCE_DATE_EPOCH '%s' is not a number of seconds\n", sde);
		return 1;
	}
	tt = (time_t)v;
	if (!gmtime_r(&tt, &tm) || !strftime(created, 64, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		fprintf(stderr, "minivm image: SOURCE_DATE_EPOCH '%s' is out of range\n", sde);
		return 1;
	}
	*out = created;
	return 0;
}

static int oci_cli_export(const char *img, const char *dest)
{
	struct oci_save_req req = { .dest = dest, .base_ext4 = img, .layer_fd = -1 };
	char err[1024], created[64];

	if (oci_cli_created(created, &req.created))
		return 1;
	req.tmpdir = oci_cli_tmpdir();
	if (oci_save(&req, err, sizeof(err)) != 0) {
		fprintf(stderr, "minivm image export: %s\n", err);
		return 1;
	}
	return 0;
}

static int oci_cli_inspect(const char *refs)
{
	struct oci_image *img = NULL;
	struct fstree *t = NULL;
	struct oci_ref ref;
	char err[1024];
	int rc = 1;

	if (oci_ref_parse(refs, &ref, err, sizeof(err)) != 0 ||
	    oci_open(&ref, oci_cli_tmpdir(), &img, err, sizeof(err)) != 0 ||
	    fstree_new(oci_cli_tmpdir(), NULL, &t, err, sizeof(err)) != 0 ||
	    oci_unpack(img, t, err, sizeof(err)) != 0) {
		fprintf(stderr, "minivm image inspect: %s\n", err);
		goto out;
	}
	printf("digest %s\n", oci_image_digest(img));
	printf("layers %u\n", oci_image_manifest(img)->nr_layers);
	/* The root directory is a node too, not a file of the image. */
	printf("files %llu\n", (unsigned long long)(fstree_nodes(t) - 1));
	printf("bytes %llu\n", (unsigned long long)fstree_bytes(t));
	rc = 0;
out:
	fstree_free(t);
	oci_close(img);
	return rc;
}

static int oci_cli_append(const char *refs, const char *layer, const char *dest)
{
	struct oci_save_req req = { .dest = dest, .layer_fd = -1, .created_by = "minivm image append" };
	struct oci_ref ref;
	char err[1024], created[64];
	int rc = 1;

	if (oci_cli_created(created, &req.created))
		return 1;
	req.tmpdir = oci_cli_tmpdir();
	req.layer_fd = open(layer, O_RDONLY | O_CLOEXEC);
	if (req.layer_fd < 0) {
		fprintf(stderr, "minivm image append: %s: %s\n", layer, strerror(errno));
		return 1;
	}
	if (oci_ref_parse(refs, &ref, err, sizeof(err)) != 0 ||
	    oci_open(&ref, oci_cli_tmpdir(), &req.base, err, sizeof(err)) != 0 ||
	    oci_save(&req, err, sizeof(err)) != 0)
		fprintf(stderr, "minivm image append: %s\n", err);
	else
		rc = 0;
	oci_close(req.base);
	close(req.layer_fd);
	return rc;
}

int oci_image_main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		oci_cli_usage(stdout);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "export") == 0)
		return oci_cli_export(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "append") == 0)
		return oci_cli_append(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "inspect") == 0)
		return oci_cli_inspect(argv[2]);
	oci_cli_usage(stderr);
	return 2;
}
