/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ioasidctl map: map a file, an inherited fd or fresh memory into an IOAS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioasidctl.h"

static const char usage[] =
	"Usage: ioasidctl map IOAS FILE [OPTIONS]\n"
	"       ioasidctl map IOAS --fd N [OPTIONS]\n"
	"       ioasidctl map IOAS --memfd --length L [OPTIONS]\n"
	"       ioasidctl map IOAS --file-id F --length L [OPTIONS]\n"
	"\n"
	"Map part of a file into an address space and print where.\n"
	"FILE is opened by ioasidctl; --fd N maps a descriptor ioasidctl\n"
	"inherited (ioasidctl map 1 --fd 3 --length 2G 3</dev/shm/ram);\n"
	"--memfd maps a new sealed memfd of --length bytes; --file-id F\n"
	"maps more of the file IOAS holds as F (ioas show gives each\n"
	"mapping's file id; in a session kept with --session).  The file\n"
	"must be memfd, tmpfs,\n"
	"hugetlbfs or guest_memfd.\n"
	"\n"
	"  --offset O     where in the file to start (default 0)\n"
	"  --length L     how much to map (default: up to the end of FILE)\n"
	"  --iova X       map at this IOVA (default: the library chooses)\n"
	"  --prot P       rw (default), r or w: what the device may do\n"
	"  --json         print the mapping as JSON\n"
	"\n"
	"Sizes: bytes, 0x hex or K/M/G/T suffixes (4K, 2M, 1.5G).\n";

enum {
	OPT_FD = 0x300, OPT_MEMFD, OPT_FILE_ID, OPT_OFFSET, OPT_LENGTH,
	OPT_IOVA, OPT_PROT,
};

struct map_args {
	uint32_t ioas;
	const char *path;
	int fd;				/* --fd, else -1 */
	bool memfd;
	uint32_t file_id;		/* --file-id, else 0 */
	uint64_t offset, length, iova;
	bool has_length, has_iova;
	uint32_t prot;
};

static int parse_prot(struct ctl *ctl, const char *arg, uint32_t *prot)
{
	if (!strcmp(arg, "rw") || !strcmp(arg, "wr"))
		*prot = IOASID_MAP_READ | IOASID_MAP_WRITE;
	else if (!strcmp(arg, "r"))
		*prot = IOASID_MAP_READ;
	else if (!strcmp(arg, "w"))
		*prot = IOASID_MAP_WRITE;
	else
		return ctl_usage(ctl, "--prot '%s' is not rw, r or w", arg);
	return EXIT_OK;
}

static int parse_opt(struct ctl *ctl, int c, struct map_args *a)
{
	uint32_t fd;

	switch (c) {
	case OPT_FD:
		if (str_to_u32(optarg, &fd) < 0 || fd > INT32_MAX)
			return ctl_usage(ctl, "--fd '%s' is not a descriptor",
					 optarg);
		a->fd = (int)fd;
		return EXIT_OK;
	case OPT_MEMFD:
		a->memfd = true;
		return EXIT_OK;
	case OPT_FILE_ID:
		return ctl_parse_id(ctl, "file id", optarg, &a->file_id);
	case OPT_OFFSET:
		return ctl_parse_size(ctl, "offset", optarg, &a->offset);
	case OPT_LENGTH:
		a->has_length = true;
		return ctl_parse_size(ctl, "length", optarg, &a->length);
	case OPT_IOVA:
		a->has_iova = true;
		return ctl_parse_size(ctl, "IOVA", optarg, &a->iova);
	case OPT_PROT:
		return parse_prot(ctl, optarg, &a->prot);
	default:
		return c;	/* CTL_OPT_HELP or CTL_OPT_ERROR */
	}
}

static int parse_args(struct ctl *ctl, int argc, char **argv,
		      struct map_args *a)
{
	static const struct option opts[] = {
		COMMON_OPTS,
		{ "fd", required_argument, NULL, OPT_FD },
		{ "memfd", no_argument, NULL, OPT_MEMFD },
		{ "file-id", required_argument, NULL, OPT_FILE_ID },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "iova", required_argument, NULL, OPT_IOVA },
		{ "prot", required_argument, NULL, OPT_PROT },
		{ 0 },
	};
	int c, r, sources;

	while ((c = ctl_opt(ctl, argc, argv, "h", opts, usage)) != -1) {
		r = parse_opt(ctl, c, a);
		if (r)
			return r;
	}
	r = ctl_nargs(ctl, argc, 1, 2) ?:
	    ctl_parse_id(ctl, "IOAS id", argv[optind], &a->ioas);
	if (r)
		return r;
	a->path = optind + 1 < argc ? argv[optind + 1] : NULL;
	sources = !!a->path + (a->fd >= 0) + a->memfd + !!a->file_id;
	if (sources != 1)
		return ctl_usage(ctl, "give exactly one of FILE, --fd N, "
				 "--memfd and --file-id F");
	if (a->memfd && !a->has_length)
		return ctl_usage(ctl, "--memfd needs --length");
	if (a->file_id && !a->has_length)
		return ctl_usage(ctl, "--file-id needs --length");
	return EXIT_OK;
}

/* ---- the backing file --------------------------------------------------- */

static int open_memfd(struct ctl *ctl, struct map_args *a, int *fd)
{
	uint64_t size = a->offset + a->length;

	if (size < a->offset)
		return ctl_usage(ctl, "--offset + --length overflows");
	*fd = memfd_create("ioasidctl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*fd < 0)
		return ctl_syserr(ctl, errno, "memfd_create");
	if (ftruncate(*fd, (off_t)size) < 0 ||
	    fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		return ctl_syserr(ctl, e, "cannot make a %s memfd",
				  size_str(size).s);
	}
	return EXIT_OK;
}

static int open_backing(struct ctl *ctl, struct map_args *a, int *fd)
{
	int mode = O_RDWR;

	if (a->memfd)
		return open_memfd(ctl, a, fd);
	if (a->fd >= 0) {
		if (fcntl(a->fd, F_GETFD) < 0)
			return ctl_usage(ctl, "fd %d is not open: pass it to "
					 "ioasidctl (e.g. %d</dev/shm/ram)",
					 a->fd, a->fd);
		*fd = a->fd;
		return EXIT_OK;
	}
	if (a->prot == IOASID_MAP_READ)
		mode = O_RDONLY;
	else if (a->prot == IOASID_MAP_WRITE)
		mode = O_WRONLY;
	*fd = open(a->path, mode | O_CLOEXEC);
	if (*fd < 0)
		return ctl_syserr(ctl, errno, "cannot open %s", a->path);
	return EXIT_OK;
}

/* Without --length: from --offset to the end of the file. */
static int default_length(struct ctl *ctl, struct map_args *a, int fd)
{
	struct stat st;

	if (a->has_length)
		return EXIT_OK;
	if (fstat(fd, &st) < 0)
		return ctl_syserr(ctl, errno, "fstat");
	if ((uint64_t)st.st_size <= a->offset) {
		ctl_err(ctl, "map: nothing to map: the file is %s and the "
			"offset %s (give --length)",
			size_str((uint64_t)st.st_size).s,
			size_str(a->offset).s);
		return EXIT_FAIL;
	}
	a->length = (uint64_t)st.st_size - a->offset;
	return EXIT_OK;
}

/* ---- output -------------------------------------------------------------- */

static void print_result(struct ctl *ctl, const struct map_args *a,
			 uint64_t iova)
{
	const char *what = a->path ? a->path : a->memfd ? "a new memfd" :
			   a->file_id ? "the IOAS's file" : "the inherited fd";
	struct json j;

	if (!ctl->json && a->file_id) {
		printf("mapped %s of file %u (offset %s) at IOVA %s-%s in IOAS "
		       "%u (%s)\n", size_str(a->length).s, a->file_id,
		       hex_str(a->offset, false).s, hex_str(iova, false).s,
		       hex_str(iova + (a->length - 1), false).s, a->ioas,
		       prot_str(a->prot));
		return;
	}
	if (!ctl->json) {
		printf("mapped %s of %s at IOVA %s-%s in IOAS %u (%s)\n",
		       size_str(a->length).s, what, hex_str(iova, false).s,
		       hex_str(iova + (a->length - 1), false).s, a->ioas,
		       prot_str(a->prot));
		return;
	}
	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_u64(&j, "ioas", a->ioas);
	json_u64(&j, "iova", iova);
	json_u64(&j, "length", a->length);
	json_u64(&j, "offset", a->offset);
	json_str(&j, "prot", prot_str(a->prot));
	if (a->path)
		json_str(&j, "file", a->path);
	else if (a->file_id)
		json_u64(&j, "file_id", a->file_id);
	else if (a->fd >= 0)
		json_u64(&j, "fd", (uint64_t)a->fd);
	else
		json_str(&j, "file", "memfd");
	json_obj_end(&j);
	json_finish(&j);
}

int cmd_map(struct ctl *ctl, int argc, char **argv)
{
	struct map_args a = {
		.fd = -1,
		.prot = IOASID_MAP_READ | IOASID_MAP_WRITE,
	};
	uint32_t flags;
	uint64_t iova;
	int fd = -1, r;

	r = parse_args(ctl, argc, argv, &a);
	if (r < 0)
		return ctl_opt_status(r);
	r = r ?: ctl_open(ctl);
	if (r)
		return r;
	if (!a.file_id)
		r = open_backing(ctl, &a, &fd) ?: default_length(ctl, &a, fd);
	if (r)
		goto out;
	flags = a.prot | (a.has_iova ? IOASID_MAP_FIXED_IOVA : 0);
	iova = a.iova;
	if (a.file_id)
		r = ioasid_map_file_id(ctl->ctx, a.ioas, a.file_id, a.offset,
				       a.length, flags, &iova);
	else
		r = ioasid_map_file(ctl->ctx, a.ioas, fd, a.offset, a.length,
				    flags, &iova);
	if (r < 0) {
		r = ctl_fail(ctl, r, "cannot map %s into IOAS %u",
			     size_str(a.length).s, a.ioas);
		goto out;
	}
	ctl_set_result_addr(ctl, iova);
	print_result(ctl, &a, iova);
	r = EXIT_OK;
out:
	/* the library keeps its own reference to the file */
	if (fd >= 0 && fd != a.fd)
		close(fd);
	return r;
}
