/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state image: writer and validating reader (layout in image.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "proto/codec.h"
#include "proto/image.h"
#include "util/crc32c.h"

#define ALIGN8(x)	(((x) + 7) & ~(size_t)7)
#define REC_HDR		sizeof(struct image_record)
#define SEALS		(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* ---- writing -------------------------------------------------------- */

void image_writer_init(struct image_writer *w, bool dup_fds)
{
	memset(w, 0, sizeof(*w));
	w->dup_fds = dup_fds;
	w->memfd = -1;
	w->version = 1;
}

void image_writer_need_version(struct image_writer *w, uint32_t version)
{
	if (version > w->version && version <= IMAGE_VERSION)
		w->version = version;
}

void image_writer_release(struct image_writer *w, bool close_fds)
{
	for (uint32_t i = 0; close_fds && w->dup_fds && i < w->nr_fds; i++)
		close(w->fds[i].fd);
	free(w->buf);
	free(w->fds);
	w->buf = NULL;
	w->fds = NULL;
	w->len = w->cap = 0;
	w->nr_fds = w->cap_fds = 0;
}

static int reserve(struct image_writer *w, size_t more)
{
	size_t cap = w->cap ? w->cap : 4096;
	uint8_t *p;

	if (w->len + more <= w->cap)
		return 0;
	while (cap < w->len + more)
		cap *= 2;
	p = realloc(w->buf, cap);
	if (!p)
		return -ENOMEM;
	w->buf = p;
	w->cap = cap;
	return 0;
}

/* Room for one record of @len payload bytes: where the payload goes. */
static int record_begin(struct image_writer *w, uint16_t type, uint32_t len,
			uint8_t **payload)
{
	struct image_record *rec;
	size_t total = REC_HDR + ALIGN8((size_t)len);

	if (reserve(w, total) < 0)
		return -ENOMEM;
	rec = (struct image_record *)(w->buf + w->len);
	memset(rec, 0, total);
	rec->type = type;
	rec->len = len;
	*payload = w->buf + w->len + REC_HDR;
	return 0;
}

static void record_end(struct image_writer *w)
{
	struct image_record *rec = (struct image_record *)(w->buf + w->len);

	rec->crc = crc32c(0, w->buf + w->len + REC_HDR, rec->len);
	w->len += REC_HDR + ALIGN8((size_t)rec->len);
	w->nr_records++;
}

int image_put(struct image_writer *w, uint16_t type, const void *payload,
	      uint32_t len)
{
	uint8_t *p;

	if (record_begin(w, type, len, &p) < 0)
		return -ENOMEM;
	if (len)
		memcpy(p, payload, len);
	record_end(w);
	return 0;
}

int image_put_fd(struct image_writer *w, int fd, uint32_t *index)
{
	struct image_fd rec = { 0 }, said;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	for (uint32_t i = 0; S_ISREG(st.st_mode) && i < w->nr_fds; i++) {
		if (w->fds[i].type == S_IFREG &&
		    w->fds[i].dev == (uint64_t)st.st_dev &&
		    w->fds[i].ino == (uint64_t)st.st_ino) {
			*index = i;
			return 0;
		}
	}
	if (w->nr_fds == w->cap_fds) {
		uint32_t cap = w->cap_fds ? w->cap_fds * 2 : 16;
		struct image_fd *p = realloc(w->fds, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->fds = p;
		w->cap_fds = cap;
	}
	rec.type = st.st_mode & S_IFMT;
	rec.dev = (uint64_t)st.st_dev;
	rec.ino = (uint64_t)st.st_ino;
	/* without FD_CLOEXEC: it is for the successor */
	rec.fd = w->dup_fds ? fcntl(fd, F_DUPFD, 3) : fd;
	if (rec.fd < 0)
		return -errno;
	said = rec;
	r = 0;
	if (w->number) {
		said.fd = w->number(w->number_arg, &rec);
		r = said.fd < 0 ? said.fd : 0;
	}
	if (r == 0)
		r = image_put(w, IMAGE_REC_FD, &said, sizeof(said));
	if (r < 0) {
		if (w->dup_fds)
			close(rec.fd);
		return r;
	}
	w->fds[w->nr_fds] = rec;
	*index = w->nr_fds++;
	return 0;
}

int image_put_core(struct image_writer *w, const char *uri)
{
	return image_put(w, IMAGE_REC_CORE, uri, (uint32_t)strlen(uri) + 1);
}

int image_put_session(struct image_writer *w, const struct image_session *s)
{
	return image_put(w, IMAGE_REC_SESSION, s, sizeof(*s));
}

int image_put_next_id(struct image_writer *w, uint32_t next_id)
{
	return image_put(w, IMAGE_REC_NEXT_ID, &next_id, sizeof(next_id));
}

int image_put_kobj(struct image_writer *w, const struct ioasid_kobj *k)
{
	struct image_kobj ik = { .kind = k->kind };
	int r;

	memcpy(ik.id, k->id, sizeof(ik.id));
	for (unsigned int i = 0; i < 2; i++) {
		if (k->fd[i] < 0)
			continue;
		r = image_put_fd(w, k->fd[i], &ik.fd[ik.nfds]);
		if (r < 0)
			return r;
		ik.nfds++;
	}
	return image_put(w, IMAGE_REC_KOBJ, &ik, sizeof(ik));
}

int image_put_counters(struct image_writer *w, uint32_t kind, uint32_t ioas_id,
		       uint64_t nr_conversions, uint64_t nr_faults,
		       uint32_t next_file_id)
{
	struct image_counters ic = {
		.ioas_id = ioas_id,
		.kind = kind,
		.nr_conversions = nr_conversions,
		.nr_faults = nr_faults,
		.next_file_id = next_file_id,
	};

	if (kind != IMAGE_COUNTERS_IOAS)
		image_writer_need_version(w, 3);
	if (next_file_id)
		image_writer_need_version(w, 6);
	return image_put(w, IMAGE_REC_COUNTERS, &ic,
			 next_file_id ? sizeof(ic) : IMAGE_COUNTERS_V5_SIZE);
}

void image_counters_of(const struct image_rec *rec, struct image_counters *ic)
{
	memset(ic, 0, sizeof(*ic));
	memcpy(ic, rec->payload, rec->len < sizeof(*ic) ? rec->len :
						       sizeof(*ic));
}

int image_put_dirty(struct image_writer *w, uint32_t ioas_id,
		    uint32_t domain_id,
		    const struct ioasid_iova_range *runs, uint32_t nr_runs)
{
	struct image_dirty d = {
		.ioas_id = ioas_id, .domain_id = domain_id,
		.nr_runs = nr_runs,
	};
	size_t len = sizeof(runs[0]) * nr_runs;
	uint8_t *p;
	int r;

	if (!nr_runs || nr_runs > IMAGE_DIRTY_MAX_RUNS)
		return -EINVAL;
	r = record_begin(w, IMAGE_REC_DIRTY, (uint32_t)(sizeof(d) + len), &p);
	if (r < 0)
		return r;
	memcpy(p, &d, sizeof(d));
	memcpy(p + sizeof(d), runs, len);
	record_end(w);
	image_writer_need_version(w, 5);
	return 0;
}

/* Ops whose replay only a reader of version 3 does right. */
static bool op_needs_v3(uint32_t cmd)
{
	switch (cmd) {
	case IOASID_CMD_NESTED_ALLOC:
	case IOASID_CMD_NESTED_ATTACH:
	case IOASID_CMD_VIOMMU_ALLOC:
	case IOASID_CMD_VDEVICE_ALLOC:
	case IOASID_CMD_VIOMMU_NESTED_ALLOC:
	case IOASID_CMD_DEVICE_PASID_ATTACH:
	case IOASID_CMD_DEVICE_PASID_ATTACH_NESTED:
		return true;
	default:
		return false;
	}
}

int image_put_op(struct image_writer *w, struct ioasid_op *op,
		 uint32_t expect_id)
{
	struct image_op hdr = { .expect_id = expect_id };
	int fds[IOASID_MAX_FDS];
	unsigned int nfds = 0;
	struct nl_msg *msg;
	const void *data;
	uint8_t *p;
	size_t len;
	int r;

	r = proto_encode_request(op, 0, &msg, fds, &nfds);
	if (r < 0)
		return r;
	hdr.nfds = nfds;
	for (unsigned int i = 0; i < nfds && r == 0; i++) {
		r = image_put_fd(w, fds[i], &hdr.fd[i]);
		if (r < 0)
			op_fail(op, -r, "cannot keep descriptor %d for the "
				"image: %s", fds[i], strerror(-r));
	}
	data = proto_msg_data(msg, &len);
	if (r == 0) {
		r = record_begin(w, IMAGE_REC_OP,
				 (uint32_t)(sizeof(hdr) + len), &p);
		if (r < 0)
			op_fail(op, ENOMEM, "out of memory");
	}
	if (r == 0) {
		memcpy(p, &hdr, sizeof(hdr));
		memcpy(p + sizeof(hdr), data, len);
		record_end(w);
		if (op_needs_v3(op->cmd))
			image_writer_need_version(w, 3);
		/* an older reader would drop a queue's requests or start
		 * tracking afresh */
		if (op->cmd == IOASID_CMD_FAULT_QUEUE_ALLOC ||
		    op->cmd == IOASID_CMD_DIRTY_START)
			image_writer_need_version(w, 5);
	}
	nlmsg_free(msg);
	return r;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static void header_fill(struct image_header *h, uint32_t version,
			uint64_t size, uint32_t nr_records,
			uint32_t records_crc)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, IMAGE_MAGIC, sizeof(h->magic));
	h->version = version;
	h->header_size = sizeof(*h);
	h->size = size;
	h->nr_records = nr_records;
	h->records_crc = records_crc;
	h->crc = crc32c(0, h, sizeof(*h));
}

int image_writer_flush(struct image_writer *w)
{
	struct image_header h;
	int r;

	if (w->memfd < 0) {
		w->memfd = memfd_create("ioasid-image", MFD_ALLOW_SEALING);
		if (w->memfd < 0)
			return -errno;
		w->flushed = sizeof(h);
		w->records_crc = 0;
	}
	r = write_all(w->memfd, w->buf, w->len, (off_t)w->flushed);
	if (r < 0)
		return r;
	/* the records first, then the header that commits them */
	w->records_crc = crc32c(w->records_crc, w->buf, w->len);
	w->flushed += w->len;
	w->len = 0;
	header_fill(&h, w->version, w->flushed, w->nr_records,
		    w->records_crc);
	return write_all(w->memfd, &h, sizeof(h), 0);
}

int image_writer_finish(struct image_writer *w, int *memfd)
{
	int r;

	if (w->memfd >= 0)
		return -EINVAL;
	r = image_writer_flush(w);
	if (r == 0 && fcntl(w->memfd, F_ADD_SEALS, SEALS) < 0)
		r = -errno;
	if (r < 0) {
		if (w->memfd >= 0)
			close(w->memfd);
		w->memfd = -1;
		return r;
	}
	*memfd = w->memfd;
	w->memfd = -1;
	return 0;
}

/* ---- reading -------------------------------------------------------- */

static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_failv(why, whylen, err, fmt, ap);
	va_end(ap);
	return -err;
}

static int read_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int)(done == len);
}

static int check_header(const struct image_header *h, uint64_t file_size,
			char *why, size_t whylen)
{
	struct image_header copy = *h;

	if (memcmp(h->magic, IMAGE_MAGIC, sizeof(h->magic)))
		return fail(why, whylen, EINVAL, "not a state image (magic)");
	copy.crc = 0;
	if (crc32c(0, &copy, sizeof(copy)) != h->crc)
		return fail(why, whylen, EBADMSG, "the image header is "
			    "corrupt (CRC)");
	if (h->version > IMAGE_VERSION)
		return fail(why, whylen, EPROTONOSUPPORT, "the image is of "
			    "version %u, this build reads up to %u",
			    h->version, IMAGE_VERSION);
	if (h->version == 0 || h->header_size != sizeof(*h) || h->flags)
		return fail(why, whylen, EINVAL, "not a state image "
			    "(version %u, header of %u bytes, flags 0x%x)",
			    h->version, h->header_size, h->flags);
	for (size_t i = 0; i < sizeof(h->reserved); i++)
		if (h->reserved[i])
			return fail(why, whylen, EBADMSG, "reserved header "
				    "bytes are set");
	if (h->size < sizeof(*h) || h->size > file_size)
		return fail(why, whylen, EBADMSG, "the image is truncated: "
			    "%llu bytes committed, %llu in the file",
			    (unsigned long long)h->size,
			    (unsigned long long)file_size);
	return 0;
}

static int check_fd(const struct image_fd *f, uint32_t index, char *why,
		    size_t whylen)
{
	struct stat st;

	if ((f->type & ~(uint32_t)S_IFMT) || f->fd < 0)
		return fail(why, whylen, EBADMSG, "descriptor record %u is "
			    "malformed", index);
	if (fstat(f->fd, &st) < 0)
		return fail(why, whylen, EBADMSG, "descriptor %d (record %u) "
			    "was not inherited", f->fd, index);
	if ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino ||
	    (st.st_mode & S_IFMT) != f->type)
		return fail(why, whylen, EBADMSG, "descriptor %d (record %u) "
			    "is another file than the image says", f->fd,
			    index);
	return 0;
}

/* A DIRTY record: its header, then exactly nr_runs runs (1 to the most). */
static bool dirty_size_ok(const uint8_t *p, uint32_t len)
{
	struct image_dirty d;

	if (len < sizeof(d))
		return false;
	memcpy(&d, p, sizeof(d));
	return !d.reserved && d.nr_runs && d.nr_runs <= IMAGE_DIRTY_MAX_RUNS &&
	       len - sizeof(d) ==
	       (uint64_t)d.nr_runs * sizeof(struct ioasid_iova_range);
}

/* Every record's framing, CRC and fixed-size payloads; the FD table. */
static int check_records(struct image *img, const struct image_header *h,
			 char *why, size_t whylen)
{
	size_t pos = sizeof(*h);
	uint32_t n = 0, cores = 0;

	if (crc32c(0, img->buf + pos, img->size - pos) != h->records_crc)
		return fail(why, whylen, EBADMSG, "the image's records are "
			    "corrupt (CRC)");
	while (pos < img->size) {
		const struct image_record *rec;
		const uint8_t *p;

		if (img->size - pos < REC_HDR)
			return fail(why, whylen, EBADMSG, "record %u is "
				    "truncated", n);
		rec = (const struct image_record *)(img->buf + pos);
		p = img->buf + pos + REC_HDR;
		if (rec->flags || rec->reserved ||
		    ALIGN8((uint64_t)rec->len) > img->size - pos - REC_HDR)
			return fail(why, whylen, EBADMSG, "record %u (type "
				    "%u) overruns the image or is malformed",
				    n, rec->type);
		if (crc32c(0, p, rec->len) != rec->crc)
			return fail(why, whylen, EBADMSG, "record %u (type "
				    "%u) is corrupt (CRC)", n, rec->type);
		for (size_t i = rec->len; i < ALIGN8((size_t)rec->len); i++)
			if (p[i])
				return fail(why, whylen, EBADMSG, "record %u "
					    "has stray padding", n);
		switch (rec->type) {
		case IMAGE_REC_CORE:
			if (cores++ || n != 0 || rec->len < 2 ||
			    rec->len > 4096 || p[rec->len - 1] ||
			    strlen((const char *)p) + 1 != rec->len)
				return fail(why, whylen, EBADMSG, "record %u: "
					    "the core record must come "
					    "first, once, a string", n);
			img->uri = (const char *)p;
			break;
		case IMAGE_REC_FD:
			if (rec->len != sizeof(struct image_fd))
				goto size;
			img->nr_fds++;
			break;
		case IMAGE_REC_SESSION:
			if (rec->len != sizeof(struct image_session) ||
			    p[rec->len - 1])
				goto size;
			break;
		case IMAGE_REC_OP:
			if (rec->len < sizeof(struct image_op))
				goto size;
			break;
		case IMAGE_REC_NEXT_ID:
			if (rec->len != sizeof(uint32_t))
				goto size;
			break;
		case IMAGE_REC_KOBJ:
			if (rec->len != sizeof(struct image_kobj) ||
			    ((const struct image_kobj *)p)->nfds > 2)
				goto size;
			break;
		case IMAGE_REC_COUNTERS:
			/* the longer one only of an IOAS, in version 6 */
			if ((rec->len != IMAGE_COUNTERS_V5_SIZE &&
			     (rec->len != sizeof(struct image_counters) ||
			      h->version < 6 ||
			      ((const struct image_counters *)p)->kind !=
			      IMAGE_COUNTERS_IOAS ||
			      ((const struct image_counters *)p)->reserved)) ||
			    ((const struct image_counters *)p)->kind >
			    IMAGE_COUNTERS_VIOMMU)
				goto size;
			break;
		case IMAGE_REC_DIRTY:
			if (!dirty_size_ok(p, rec->len))
				goto size;
			break;
		default:
			if (rec->type < IMAGE_REC_DAEMON_FIRST)
				return fail(why, whylen, EBADMSG, "record %u "
					    "is of unknown type %u", n,
					    rec->type);
		}
		pos += REC_HDR + ALIGN8((size_t)rec->len);
		n++;
	}
	if (n != h->nr_records)
		return fail(why, whylen, EBADMSG, "the image has %u records, "
			    "its header says %u", n, h->nr_records);
	if (!cores)
		return fail(why, whylen, EBADMSG, "the image names no core");
	return 0;
size:
	return fail(why, whylen, EBADMSG, "record %u (type %u) has a wrong "
		    "size", n, ((const struct image_record *)
				(img->buf + pos))->type);
}

static int collect_fds(struct image *img, image_remap_fn remap, void *arg,
		       char *why, size_t whylen)
{
	struct image_rec rec;
	uint32_t i = 0;
	int r;

	if (!img->nr_fds)
		return 0;
	img->fd_table = calloc(img->nr_fds, sizeof(*img->fd_table));
	if (!img->fd_table)
		return fail(why, whylen, ENOMEM, "out of memory");
	while (image_next(img, &rec) > 0) {
		if (rec.type != IMAGE_REC_FD)
			continue;
		memcpy(&img->fd_table[i], rec.payload, sizeof(struct image_fd));
		if (remap) {
			char ignored[8];

			img->fd_table[i].fd = remap(arg, &img->fd_table[i]);
			if (img->fd_table[i].fd >= 0 &&
			    check_fd(&img->fd_table[i], i, ignored,
				     sizeof(ignored)) < 0)
				img->fd_table[i].fd = -1;
			img->nr_missing += img->fd_table[i].fd < 0;
			i++;
			continue;
		}
		r = check_fd(&img->fd_table[i], i, why, whylen);
		if (r < 0)
			return r;
		i++;
	}
	image_rewind(img);
	return 0;
}

int image_read_remap(int fd, struct image **out, image_remap_fn remap,
		     void *arg, char *why, size_t whylen)
{
	struct image_header h;
	struct image *img;
	struct stat st;
	int r;

	why[0] = '\0';
	if (fstat(fd, &st) < 0)
		return fail(why, whylen, errno, "cannot read the image: %s",
			    strerror(errno));
	if ((uint64_t)st.st_size > IMAGE_MAX_SIZE)
		return fail(why, whylen, EFBIG, "the image is larger than "
			    "%llu bytes", (unsigned long long)IMAGE_MAX_SIZE);
	if ((uint64_t)st.st_size < sizeof(h))
		return fail(why, whylen, st.st_size ? EBADMSG : EINVAL,
			    "the image is truncated (%lld bytes)",
			    (long long)st.st_size);
	img = calloc(1, sizeof(*img));
	if (!img || !(img->buf = malloc((size_t)st.st_size))) {
		free(img);
		return fail(why, whylen, ENOMEM, "out of memory");
	}
	r = read_all(fd, img->buf, (size_t)st.st_size);
	if (r < 0) {
		fail(why, whylen, -r, "cannot read the image: %s",
		     strerror(-r));
	} else if (r == 0) {
		r = fail(why, whylen, EBADMSG, "the image shrank while read");
	} else {
		memcpy(&h, img->buf, sizeof(h));
		r = check_header(&h, (uint64_t)st.st_size, why, whylen);
	}
	if (r == 0) {
		img->size = (size_t)h.size;
		img->version = h.version;
		img->nr_records = h.nr_records;
		r = check_records(img, &h, why, whylen);
	}
	if (r == 0) {
		image_rewind(img);
		r = collect_fds(img, remap, arg, why, whylen);
	}
	if (r < 0) {
		image_free(img);
		return r;
	}
	*out = img;
	return 0;
}

int image_read(int fd, struct image **out, char *why, size_t whylen)
{
	return image_read_remap(fd, out, NULL, NULL, why, whylen);
}

void image_free(struct image *img)
{
	if (!img)
		return;
	free(img->fd_table);
	free(img->buf);
	free(img);
}

void image_rewind(struct image *img)
{
	img->pos = sizeof(struct image_header);
	img->next = 0;
}

int image_next(struct image *img, struct image_rec *out)
{
	const struct image_record *rec;

	if (img->pos >= img->size)
		return 0;
	/* check_records() vouched for the framing */
	rec = (const struct image_record *)(img->buf + img->pos);
	out->type = rec->type;
	out->len = rec->len;
	out->payload = img->buf + img->pos + REC_HDR;
	out->index = img->next++;
	img->pos += REC_HDR + ALIGN8((size_t)rec->len);
	return 1;
}

int image_op(const struct image *img, const struct image_rec *rec,
	     struct ioasid_op *op, void *outbuf, uint32_t *expect_id,
	     char *why, size_t whylen)
{
	char reason[IOASID_ERRMSG_MAX];
	int fds[IOASID_MAX_FDS] = { -1, -1 };
	struct proto_msg m;
	struct image_op h;
	int r;

	memcpy(&h, rec->payload, sizeof(h));
	if (h.nfds > IOASID_MAX_FDS)
		return fail(why, whylen, EBADMSG, "record %u names %u "
			    "descriptors", rec->index, h.nfds);
	for (uint32_t i = 0; i < h.nfds; i++) {
		if (h.fd[i] >= img->nr_fds)
			return fail(why, whylen, EBADMSG, "record %u names "
				    "descriptor record %u of %u", rec->index,
				    h.fd[i], img->nr_fds);
		fds[i] = img->fd_table[h.fd[i]].fd;
	}
	r = proto_parse((const uint8_t *)rec->payload + sizeof(h),
			rec->len - sizeof(h), h.nfds, PROTO_FROM_CLIENT, &m,
			reason, sizeof(reason));
	if (r < 0)
		return fail(why, whylen, EBADMSG, "record %u: %s", rec->index,
			    reason);
	if (!(proto_cmd_policy(m.cmd)->flags & PROTO_CMD_REQUEST))
		return fail(why, whylen, EBADMSG, "record %u: %s is not a "
			    "request", rec->index, proto_cmd_name(m.cmd));
	proto_decode_request(&m, fds, op, outbuf);
	*expect_id = h.expect_id;
	return 0;
}

int image_kobj(const struct image *img, const struct image_rec *rec,
	       struct ioasid_kobj *k, char *why, size_t whylen)
{
	struct image_kobj ik;

	memcpy(&ik, rec->payload, sizeof(ik));
	k->kind = ik.kind;
	memcpy(k->id, ik.id, sizeof(k->id));
	k->fd[0] = k->fd[1] = -1;
	for (uint32_t i = 0; i < ik.nfds; i++) {
		if (ik.fd[i] >= img->nr_fds)
			return fail(why, whylen, EBADMSG, "record %u names "
				    "descriptor record %u of %u", rec->index,
				    ik.fd[i], img->nr_fds);
		k->fd[i] = img->fd_table[ik.fd[i]].fd;
	}
	return 0;
}

int image_dirty(const struct image_rec *rec, struct image_dirty *d,
		struct ioasid_iova_range **runs)
{
	memcpy(d, rec->payload, sizeof(*d));
	*runs = malloc(sizeof(**runs) * d->nr_runs);
	if (!*runs)
		return -ENOMEM;
	memcpy(*runs, (const uint8_t *)rec->payload + sizeof(*d),
	       sizeof(**runs) * d->nr_runs);
	return 0;
}

void image_close_fds(const struct image *img)
{
	for (uint32_t i = 0; i < img->nr_fds; i++)
		if (img->fd_table[i].fd >= 0)
			close(img->fd_table[i].fd);
}
