/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writes the seed corpus of the fuzz targets from real encoded messages
 * (proto_encode_request/reply/event): `make fuzz-seeds` runs it as
 *   gen_seeds DIR    -> DIR/codec/NAME, DIR/daemon/NAME
 * The output is deterministic; the committed fuzz/corpus/ is its output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "libioasid.h"
#include "proto/codec.h"
#include "proto/image.h"
#include "util/crc32c.h"

#define NIC	"0000:00:01.0"
#define GiB	(1ULL << 30)
#define RW	(IOASID_MAP_READ | IOASID_MAP_WRITE)

static const char *outdir;
static int devnull;

static void write_file(const char *kind, const char *name,
		       const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, kind, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "gen_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- the daemon target's records ----------------------------------------- */

static unsigned char seq_buf[65536];
static size_t seq_len;
static uint32_t seq_no;

static void seq_begin(void)
{
	seq_len = 0;
	seq_no = 1;
}

/* @fdkinds: per descriptor, fuzz_daemon's kind (0 memfd, 1 pipe...). */
static void seq_add(struct ioasid_op *op, int client_b, unsigned int fdkind)
{
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct nl_msg *msg;
	const void *buf;
	size_t len;

	if (proto_encode_request(op, seq_no++, &msg, fds, &nfds) < 0) {
		fprintf(stderr, "gen_seeds: %s: %s\n", proto_cmd_name(op->cmd),
			op->errmsg);
		exit(1);
	}
	buf = proto_msg_data(msg, &len);
	seq_buf[seq_len++] = (unsigned char)((client_b ? 0x80 : 0) | nfds |
					     (fdkind << 2) | (fdkind << 4));
	seq_buf[seq_len++] = (unsigned char)(len & 0xff);
	seq_buf[seq_len++] = (unsigned char)(len >> 8);
	memcpy(seq_buf + seq_len, buf, len);
	seq_len += len;
	nlmsg_free(msg);
}

static struct ioasid_op *op_new(uint32_t cmd)
{
	static struct ioasid_op op;

	ioasid_op_init(&op, cmd);
	return &op;
}

static void hello(int b)
{
	struct ioasid_op *op = op_new(IOASID_CMD_HELLO);

	snprintf(op->name, sizeof(op->name), "fuzz%d", b);
	seq_add(op, b, 0);
}

static void map_file(int b, uint32_t ioas, uint64_t off, uint64_t len)
{
	struct ioasid_op *op = op_new(IOASID_CMD_MAP_FILE);

	op->ioas_id = ioas;
	op->fd = devnull;
	op->offset = off;
	op->length = len;
	op->flags = RW;
	seq_add(op, b, 0);
}

static void simple(int b, uint32_t cmd, uint32_t ioas, uint32_t dev,
		   uint64_t iova, uint64_t length, uint32_t flags,
		   uint32_t cap)
{
	struct ioasid_op *op = op_new(cmd);

	op->ioas_id = ioas;
	op->dev_id = dev;
	op->iova = iova;
	op->length = length;
	op->flags = flags;
	op->out_cap = cap;
	seq_add(op, b, 0);
}

static void named(int b, uint32_t cmd, const char *name, uint32_t flags,
		  uint32_t cap)
{
	struct ioasid_op *op = op_new(cmd);

	snprintf(op->name, sizeof(op->name), "%s", name);
	op->flags = flags;
	op->out_cap = cap;
	seq_add(op, b, 0);
}

static void daemon_seeds(void)
{
	struct ioasid_iova_range conv[2] = { { 0, 4095 }, { 8192, 16383 } };
	struct ioasid_map_entry ents[2] = {
		{ .offset = 0, .length = 4096 },
		{ .offset = 8192, .length = 8192 },
	};
	unsigned char dma[64];
	struct ioasid_op *op;

	memset(dma, 0x5a, sizeof(dma));

	/* lists and status */
	seq_begin();
	hello(0);
	simple(0, IOASID_CMD_IOMMU_LIST, 0, 0, 0, 0, 0, 1024);
	simple(0, IOASID_CMD_DEVICE_LIST, 0, 0, 0, 0, 0, 4096);
	simple(0, IOASID_CMD_STATUS, 0, 0, 0, 0, 0, 256);
	named(0, IOASID_CMD_DEVICE_INFO, NIC, 0, 256);
	write_file("daemon", "lists", seq_buf, seq_len);

	/* an IOAS, maps, lookups, unmap, copy */
	seq_begin();
	hello(0);
	simple(0, IOASID_CMD_IOAS_ALLOC, 0, 0, 0, 0, 0, 0);
	simple(0, IOASID_CMD_IOAS_ALLOC, 0, 0, 0, 0, 0, 0);
	map_file(0, 1, 0, 1 << 20);
	map_file(0, 1, 1 << 20, 1 << 20);
	simple(0, IOASID_CMD_IOAS_LIST, 0, 0, 0, 0, 0, 64);
	simple(0, IOASID_CMD_IOAS_INFO, 1, 0, 0, 0, 0, 256);
	simple(0, IOASID_CMD_LOOKUP, 1, 0, 0x1000, 0, 0, 256);
	simple(0, IOASID_CMD_MAPPING_NEXT, 1, 0, 0, 0, 0, 256);
	simple(0, IOASID_CMD_IOVA_RANGES, 1, 0, 0, 0, 0, 256);
	op = op_new(IOASID_CMD_COPY);
	op->ioas_id = 2;
	op->ioas_id2 = 1;
	op->iova = 0;
	op->length = 1 << 20;
	op->flags = RW;
	seq_add(op, 0, 0);
	simple(0, IOASID_CMD_UNMAP, 1, 0, 0x1000, 0x2000, 0, 0);
	simple(0, IOASID_CMD_IOAS_DESTROY, 1, 0, 0, 0, 0, 0);
	write_file("daemon", "ioas", seq_buf, seq_len);

	/* a device: bind, attach, DMA, dirty, faults, detach */
	seq_begin();
	hello(0);
	simple(0, IOASID_CMD_IOAS_ALLOC, 0, 0, 0, 0, 0, 0);
	map_file(0, 1, 0, 1 << 20);
	named(0, IOASID_CMD_DEVICE_BIND, NIC, 0, 0);
	simple(0, IOASID_CMD_DEVICE_ATTACH, 1, 2, 0, 0, 0, 0);
	simple(0, IOASID_CMD_DOMAIN_LIST, 1, 0, 0, 0, 0, 256);
	op = op_new(IOASID_CMD_DEVICE_DMA);
	op->dev_id = 2;
	op->iova = 0x1000;
	op->length = sizeof(dma);
	op->flags = IOASID_DMA_WRITE;
	op->in = dma;
	op->in_len = sizeof(dma);
	seq_add(op, 0, 0);
	simple(0, IOASID_CMD_DEVICE_DMA, 0, 2, 0x1000, 64, 0, 64);
	simple(0, IOASID_CMD_DEVICE_DMA, 0, 2, 0x100000, 64, 0, 64);
	simple(0, IOASID_CMD_DIRTY_READ, 1, 0, 0, 1 << 20, 0, 32);
	simple(0, IOASID_CMD_FAULT_READ, 0, 0, 0, 0, 0, 1024);
	simple(0, IOASID_CMD_DEVICE_GET_FD, 0, 2, 0, 0, 0, 0);
	simple(0, IOASID_CMD_DEVICE_DETACH, 0, 2, 0, 0, 0, 0);
	simple(0, IOASID_CMD_DEVICE_UNBIND, 0, 2, 0, 0, 0, 0);
	write_file("daemon", "device", seq_buf, seq_len);

	/* batches and conversions */
	seq_begin();
	hello(0);
	simple(0, IOASID_CMD_IOAS_ALLOC, 0, 0, 0, 0, 0, 0);
	op = op_new(IOASID_CMD_MAP_BATCH);
	op->ioas_id = 1;
	op->fd = devnull;
	op->flags = RW;
	op->in = ents;
	op->in_len = sizeof(ents);
	op->out_cap = 2 * sizeof(uint64_t);
	seq_add(op, 0, 0);
	op = op_new(IOASID_CMD_CONVERT);
	op->ioas_id = 1;
	op->in = conv;
	op->in_len = sizeof(conv);
	seq_add(op, 0, 0);
	op = op_new(IOASID_CMD_ALLOW_IOVAS);
	op->ioas_id = 1;
	op->in = conv;
	op->in_len = sizeof(conv);
	seq_add(op, 0, 0);
	write_file("daemon", "batch-convert", seq_buf, seq_len);

	/* two clients: events, observer, hotplug, cross-session ids */
	seq_begin();
	hello(0);
	hello(1);
	simple(1, IOASID_CMD_SUBSCRIBE, 0, 0, 0, 0, 7, 0);
	simple(0, IOASID_CMD_IOAS_ALLOC, 0, 0, 0, 0, 0, 0);
	named(0, IOASID_CMD_DEVICE_BIND, NIC, 0, 0);
	simple(1, IOASID_CMD_OBSERVE, 0, 0, 0, 0, 1, 0);
	simple(1, IOASID_CMD_IOAS_LIST, 0, 0, 0, 0, 0, 64);
	simple(1, IOASID_CMD_IOAS_DESTROY, 1, 0, 0, 0, 0, 0);
	named(1, IOASID_CMD_SIM_HOTPLUG, NIC, 0, 0);
	named(1, IOASID_CMD_SIM_HOTPLUG, NIC, 1, 0);
	simple(0, IOASID_CMD_DEVICE_ATTACH, 1, 2, 0, 0, 0, 0);
	write_file("daemon", "two-clients", seq_buf, seq_len);
}

/* ---- the codec target ------------------------------------------------------ */

static void codec_request(const char *name, struct ioasid_op *op)
{
	unsigned char buf[65536];
	int fds[IOASID_MAX_FDS];
	unsigned int nfds;
	struct nl_msg *msg;
	const void *p;
	size_t len;

	if (proto_encode_request(op, 7, &msg, fds, &nfds) < 0) {
		fprintf(stderr, "gen_seeds: %s\n", op->errmsg);
		exit(1);
	}
	p = proto_msg_data(msg, &len);
	buf[0] = (unsigned char)nfds;
	buf[1] = buf[2] = buf[3] = 0;
	memcpy(buf + 4, p, len);
	write_file("codec", name, buf, len + 4);
	nlmsg_free(msg);
}

static void codec_reply(const char *name, struct ioasid_op *op, int result,
			uint32_t cap)
{
	unsigned char buf[70000];
	struct nl_msg *msg;
	const void *p;
	size_t len;

	if (proto_encode_reply(op, result, 7, &msg) < 0)
		exit(1);
	p = proto_msg_data(msg, &len);
	buf[0] = 4 | (proto_reply_fd(op, result) >= 0 ? 1 : 0);
	buf[1] = (unsigned char)op->cmd;
	buf[2] = (unsigned char)(cap & 0xff);
	buf[3] = (unsigned char)(cap >> 8);
	memcpy(buf + 4, p, len);
	write_file("codec", name, buf, len + 4);
	nlmsg_free(msg);
}

static void codec_seeds(void)
{
	static unsigned char data[4096];
	struct ioasid_event ev = { .size = sizeof(ev), .type = 1 };
	struct ioasid_op op;
	struct nl_msg *msg;
	unsigned char buf[512];
	const void *p;
	size_t len;

	ioasid_op_init(&op, IOASID_CMD_HELLO);
	snprintf(op.name, sizeof(op.name), "seed");
	codec_request("req-hello", &op);
	ioasid_op_init(&op, IOASID_CMD_MAP_FILE);
	op.ioas_id = 1;
	op.fd = devnull;
	op.offset = 4096;
	op.length = GiB;
	op.flags = RW | IOASID_MAP_FIXED_IOVA;
	op.iova = 1ULL << 32;
	codec_request("req-map-file", &op);
	ioasid_op_init(&op, IOASID_CMD_COPY);
	op.ioas_id = 2;
	op.ioas_id2 = 1;
	op.iova = 4096;
	op.length = 8192;
	op.offset = 0;
	codec_request("req-copy", &op);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
	op.dev_id = 3;
	op.iova = 0;
	op.length = 64;
	op.flags = IOASID_DMA_WRITE;
	op.in = data;
	op.in_len = 64;
	codec_request("req-dma-write", &op);
	ioasid_op_init(&op, IOASID_CMD_VM_BIND);
	op.fd = devnull;
	op.fd2 = devnull;
	op.flags = 1;
	codec_request("req-vm-bind", &op);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_BIND);
	snprintf(op.name, sizeof(op.name), "%s", NIC);
	codec_request("req-device-bind", &op);

	/* replies: a list, a partial list, an id, bytes, a descriptor */
	ioasid_op_init(&op, IOASID_CMD_IOAS_LIST);
	op.out = data;
	op.out_cap = 16;
	op.out_len = 12;
	codec_reply("reply-list", &op, 0, 16);
	op.out_len = 4000;
	codec_reply("reply-list-emsgsize", &op, -EMSGSIZE, 16);
	ioasid_op_init(&op, IOASID_CMD_IOAS_ALLOC);
	op.out_id = 5;
	codec_reply("reply-id", &op, 0, 0);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_DMA);
	op.out = data;
	op.out_cap = 64;
	op.out_len = 32;
	op.out_bytes = 32;
	snprintf(op.errmsg, sizeof(op.errmsg), "fault at 0x1000");
	codec_reply("reply-dma-partial", &op, -EFAULT, 64);
	ioasid_op_init(&op, IOASID_CMD_DEVICE_GET_FD);
	op.out_fd = devnull;
	codec_reply("reply-fd", &op, 0, 0);
	ioasid_op_init(&op, IOASID_CMD_HELLO);
	snprintf(op.name, sizeof(op.name), "sim");
	op.out_id = 1;
	codec_reply("reply-hello", &op, 0, 0);

	if (proto_encode_event(&ev, &msg) < 0)
		exit(1);
	p = proto_msg_data(msg, &len);
	buf[0] = 4;
	buf[1] = buf[2] = buf[3] = 0;
	memcpy(buf + 4, p, len);
	write_file("codec", "event", buf, len + 4);
	nlmsg_free(msg);
}

/* ---- the image target: exported contexts --------------------------------- */

/* Write @ctx's image as seed @name: FD records zeroed (mode 1 fills them). */
static void image_seed(const char *name, struct ioasid_ctx *ctx)
{
	static uint8_t buf[1 << 20];
	struct image_header *h = (struct image_header *)(buf + 1);
	size_t pos = sizeof(*h);
	ssize_t len;
	int memfd;

	if (ioasid_ctx_export(ctx, &memfd) < 0) {
		fprintf(stderr, "gen_seeds: %s\n", ioasid_last_error(ctx));
		exit(1);
	}
	len = pread(memfd, buf + 1, sizeof(buf) - 1, 0);
	if (len < (ssize_t)sizeof(*h))
		exit(1);
	ioasid_ctx_export_abandon(memfd);
	close(memfd);
	buf[0] = 1;
	while (pos < h->size) {
		struct image_record *r = (struct image_record *)(buf + 1 + pos);

		if (r->type == IMAGE_REC_FD) {
			memset(r + 1, 0, r->len);
			r->crc = crc32c(0, r + 1, r->len);
		}
		pos += sizeof(*r) + ((r->len + 7) & ~7U);
	}
	h->records_crc = crc32c(0, buf + 1 + sizeof(*h), h->size - sizeof(*h));
	h->crc = 0;
	h->crc = crc32c(0, h, sizeof(*h));
	write_file("image", name, buf, (size_t)len + 1);
}

static void image_seeds(void)
{
	struct ioasid_iova_range shared = { 0x201000, 0x202fff };
	struct ioasid_iova_range allow = { 0x100000, 0xffffffff };
	struct ioasid_ctx *ctx;
	uint32_t a, b, dev;
	uint64_t iova = 0x100000;
	int ram = memfd_create("seed-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (ram < 0 || ftruncate(ram, 4 << 20) < 0 ||
	    fcntl(ram, F_ADD_SEALS, F_SEAL_SHRINK) < 0 ||
	    ioasid_new("sim", &ctx) < 0)
		exit(1);
	image_seed("empty", ctx);
	if (ioasid_ioas_alloc(ctx, 0, &a) < 0 ||
	    ioasid_allow_iovas(ctx, a, &allow, 1) < 0 ||
	    ioasid_map_file(ctx, a, ram, 0, 1 << 20, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			    &iova) < 0 ||
	    ioasid_unmap(ctx, a, 0x140000, 0x1000, 0, NULL) < 0)
		exit(1);
	image_seed("mappings", ctx);
	iova = 0x200000;
	if (ioasid_ioas_alloc(ctx, IOASID_IOAS_RESTRICTED, &b) < 0 ||
	    ioasid_map_file(ctx, b, ram, 1 << 20, 1 << 20, IOASID_MAP_READ |
			    IOASID_MAP_WRITE | IOASID_MAP_FIXED_IOVA,
			    &iova) < 0 ||
	    ioasid_convert(ctx, b, &shared, 1, IOASID_CONVERT_SHARED,
			   NULL) < 0 ||
	    ioasid_device_bind(ctx, "0000:00:01.0", -1, &dev) < 0 ||
	    ioasid_device_attach(ctx, dev, b, 0) < 0)
		exit(1);
	image_seed("restricted-attached", ctx);
	ioasid_unref(ctx);
	close(ram);
}

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", outdir,
			 i == 2 ? "image" : i ? "daemon" : "codec");
		mkdir(outdir, 0755);
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			perror(path);
			return 1;
		}
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	codec_seeds();
	daemon_seeds();
	image_seeds();
	return 0;
}
