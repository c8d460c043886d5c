/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The differential scenarios (see diff.h).  Each starts with the device
 * bound and detached and no IOAS; whatever it creates is torn down after
 * it.  Record only what both backends can mean the same way: no object
 * ids (a failure on one side shifts them), no addresses of this process,
 * no backend names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "diff.h"

#define PG		0x1000ull
#define BASE		0x1000000ull	/* fixed IOVAs: 16 MiB up */
#define RW		(IOASID_MAP_READ | IOASID_MAP_WRITE)
#define FIXED		IOASID_MAP_FIXED_IOVA
#define MSI_START	0xfee00000ull

/* ---- recording ----------------------------------------------------------- */

static void rec(struct diff_env *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rec(struct diff_env *e, const char *key, const char *fmt, ...)
{
	va_list ap;

	fprintf(e->out, "%sDIFF %s.%s ", e->prefix, e->scenario, key);
	va_start(ap, fmt);
	vfprintf(e->out, fmt, ap);
	va_end(ap);
	fputc('\n', e->out);
	fflush(e->out);
}

static const char *errname(int r)
{
	const char *n;

	if (r >= 0)
		return "ok";
	n = strerrorname_np(-r);
	return n ? n : "E?";
}

/* Record a return code; returns it. */
static int rc(struct diff_env *e, const char *key, int r)
{
	rec(e, key, "%s", errname(r));
	return r;
}

static void rec_hex(struct diff_env *e, const char *key, uint64_t v)
{
	rec(e, key, "0x%llx", (unsigned long long)v);
}

static void rec_mappings(struct diff_env *e, const char *key, uint32_t ioas)
{
	struct ioasid_mapping m;
	char buf[2048] = "";
	size_t n = 0;
	int count = 0;

	ioasid_mapping_foreach(e->ctx, ioas, &m) {
		if (n < sizeof(buf) - 96) {
			if (m.flags & IOASID_MAPPING_USER)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"%s0x%llx+0x%llx:user:%x", count ? ";" : "",
					(unsigned long long)m.iova,
					(unsigned long long)m.length, m.flags);
			else
				n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					"%s0x%llx+0x%llx@0x%llx:f%u:%x",
					count ? ";" : "",
					(unsigned long long)m.iova,
					(unsigned long long)m.length,
					(unsigned long long)m.offset, m.file_id,
					m.flags);
		}
		count++;
	}
	rec(e, key, "%d [%s]", count, buf);
}

static void rec_ranges(struct diff_env *e, const char *key, uint32_t ioas)
{
	struct ioasid_iova_range r[16];
	uint32_t nr = 16;
	uint64_t align = 0;
	char buf[1024] = "";
	size_t n = 0;
	int ret = ioasid_iova_ranges(e->ctx, ioas, r, &nr, &align);

	if (ret < 0) {
		rec(e, key, "%s", errname(ret));
		return;
	}
	for (uint32_t i = 0; i < nr && i < 16; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s0x%llx-0x%llx",
				      i ? "," : "",
				      (unsigned long long)r[i].start,
				      (unsigned long long)r[i].last);
	rec(e, key, "%u [%s] align 0x%llx", nr, buf,
	    (unsigned long long)align);
}

#define DEV_FLAGS (IOASID_DEVICE_NO_SNOOP | IOASID_DEVICE_NO_SNOOP_UNKNOWN | \
		   IOASID_DEVICE_ATS | IOASID_DEVICE_TRANSLATES |	    \
		   IOASID_DEVICE_BOUND | IOASID_DEVICE_ATTACHED |	    \
		   IOASID_DEVICE_NONCOHERENT | IOASID_DEVICE_NO_SNOOP_HINTED | \
		   IOASID_DEVICE_GROUP_VIABLE)

static void rec_device(struct diff_env *e, const char *key)
{
	struct ioasid_device_info d;
	int r = ioasid_device_get_info(e->ctx, e->dev_name, &d);

	if (r < 0) {
		rec(e, key, "%s", errname(r));
		return;
	}
	rec(e, key, "flags 0x%x iommu %s group %u vendor 0x%x device 0x%x "
	    "class 0x%x attached %s vm %s platform 0x%x", d.flags & DEV_FLAGS,
	    d.iommu, d.group, d.vendor, d.device, d.class_code,
	    d.ioas_id ? "yes" : "no", d.vm_id ? "yes" : "no", d.platform);
}

static void rec_domains(struct diff_env *e, const char *key, uint32_t ioas)
{
	struct ioasid_domain_info d[4];
	uint32_t nr = 4;
	char buf[512] = "";
	size_t n = 0;
	int r = ioasid_domain_list(e->ctx, ioas, d, &nr);

	if (r < 0) {
		rec(e, key, "%s", errname(r));
		return;
	}
	for (uint32_t i = 0; i < nr && i < 4; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "%s%s:flags 0x%x:pages 0x%llx:devs %u",
				      i ? ";" : "", d[i].iommu, d[i].flags,
				      (unsigned long long)d[i].page_sizes,
				      d[i].nr_devices);
	rec(e, key, "%u [%s]", nr, buf);
}

static void rec_ioas(struct diff_env *e, const char *key, uint32_t ioas)
{
	struct ioasid_ioas_info i;
	int r = ioasid_ioas_get_info(e->ctx, ioas, &i);

	if (r < 0) {
		rec(e, key, "%s", errname(r));
		return;
	}
	rec(e, key, "flags 0x%x snoop %u mappings %llu bytes 0x%llx devices %u "
	    "domains %u", i.flags, i.snoop_mode,
	    (unsigned long long)i.nr_mappings,
	    (unsigned long long)i.bytes_mapped, i.nr_devices, i.nr_domains);
}

static void rec_dirty_flags(struct diff_env *e, const char *key,
			    uint32_t ioas)
{
	struct ioasid_ioas_info i;
	int r = ioasid_ioas_get_info(e->ctx, ioas, &i);

	if (r < 0)
		rec(e, key, "%s", errname(r));
	else
		rec(e, key, "dirty_flags 0x%x", i.dirty_flags);
}

/* ---- scenario resources -------------------------------------------------- */

static uint32_t new_ioas(struct diff_env *e, uint32_t flags)
{
	uint32_t id = 0;

	if (e->nr_ioas < 8 && ioasid_ioas_alloc(e->ctx, flags, &id) == 0)
		e->ioas[e->nr_ioas++] = id;
	return id;
}

static int keep_fd(struct diff_env *e, int fd)
{
	if (fd >= 0 && e->nr_fds < 16)
		e->fds[e->nr_fds++] = fd;
	return fd;
}

/* A memfd sealed against shrinking, every page filled with its index. */
static int memfd(struct diff_env *e, uint64_t size)
{
	int fd = memfd_create("diff", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t page[PG];

	if (fd < 0 || ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (uint64_t off = 0; off < size; off += PG) {
		memset(page, (int)(0x40 + off / PG), sizeof(page));
		if (pwrite(fd, page, PG, (off_t)off) != (ssize_t)PG)
			break;
	}
	return keep_fd(e, fd);
}

static int map(struct diff_env *e, uint32_t ioas, int fd, uint64_t off,
	       uint64_t len, uint32_t flags, uint64_t *iova)
{
	return ioasid_map_file(e->ctx, ioas, fd, off, len, flags, iova);
}

/* Map @len of a fresh memfd at @iova (fixed). */
static int map_new(struct diff_env *e, uint32_t ioas, uint64_t iova,
		   uint64_t len, int *fdp)
{
	int fd = memfd(e, len);

	if (fdp)
		*fdp = fd;
	return map(e, ioas, fd, 0, len, RW | FIXED, &iova);
}

static int attach(struct diff_env *e, uint32_t ioas)
{
	return ioasid_device_attach(e->ctx, e->dev, ioas, 0);
}

/* ---- DMA probes ---------------------------------------------------------- */

static uint32_t attached_ioas(struct diff_env *e)
{
	struct ioasid_device_info d;

	return ioasid_device_get_info(e->ctx, e->dev_name, &d) == 0 ?
	       d.ioas_id : 0;
}

/* Map the staging page where the device is; 0 when it is nowhere. */
static uint32_t stage_begin(struct diff_env *e)
{
	struct ioasid_iova_range r = { DIFF_STAGE_IOVA,
				       DIFF_STAGE_IOVA + PG - 1 };
	struct ioasid_ioas_info info;
	uint32_t ioas = attached_ioas(e);
	uint64_t iova = DIFF_STAGE_IOVA;

	if (!ioas)
		return 0;
	if (map(e, ioas, e->stage_fd, 0, PG, RW | FIXED, &iova) < 0) {
		fprintf(stderr, "diff: %s: cannot map the staging page: %s\n",
			e->scenario, ioasid_last_error(e->ctx));
		return 0;
	}
	if (ioasid_ioas_get_info(e->ctx, ioas, &info) == 0 &&
	    (info.flags & IOASID_IOAS_RESTRICTED))
		ioasid_convert(e->ctx, ioas, &r, 1, IOASID_CONVERT_SHARED, NULL);
	return ioas;
}

static void stage_end(struct diff_env *e, uint32_t ioas)
{
	if (ioas)
		ioasid_unmap(e->ctx, ioas, DIFF_STAGE_IOVA, PG, 0, NULL);
}

static void pattern(struct diff_env *e, uint8_t *p, uint32_t len)
{
	e->seed += 37;
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(e->seed + i * 13 + (i >> 5));
}

static const char *verdict(const uint8_t *after, const uint8_t *want,
			   const uint8_t *before, uint32_t len)
{
	if (!memcmp(after, want, len))
		return "hit";
	return !memcmp(after, before, len) ? "miss" : "garbled";
}

/* The device writes at @iova; did it land in @fd at @off? */
static void probe_write(struct diff_env *e, const char *key, uint64_t iova,
			int fd, uint64_t off)
{
	uint8_t pat[DIFF_PROBE_LEN], before[DIFF_PROBE_LEN];
	uint8_t after[DIFF_PROBE_LEN];
	uint32_t stage;

	if (pread(fd, before, sizeof(before), (off_t)off) != sizeof(before)) {
		rec(e, key, "unreadable");
		return;
	}
	pattern(e, pat, sizeof(pat));
	stage = stage_begin(e);
	e->dma->write(e, iova, pat, sizeof(pat));
	stage_end(e, stage);
	if (pread(fd, after, sizeof(after), (off_t)off) != sizeof(after))
		memset(after, 0, sizeof(after));
	rec(e, key, "%s", verdict(after, pat, before, sizeof(pat)));
}

/* The same for memory at @p (user mappings). */
static void probe_write_mem(struct diff_env *e, const char *key,
			    uint64_t iova, uint8_t *p)
{
	uint8_t pat[DIFF_PROBE_LEN], before[DIFF_PROBE_LEN];
	uint32_t stage;

	memcpy(before, p, sizeof(before));
	pattern(e, pat, sizeof(pat));
	stage = stage_begin(e);
	e->dma->write(e, iova, pat, sizeof(pat));
	stage_end(e, stage);
	rec(e, key, "%s", verdict(p, pat, before, sizeof(pat)));
}

/* The device reads at @iova; did it see what @fd has at @off? */
static void probe_read(struct diff_env *e, const char *key, uint64_t iova,
		       int fd, uint64_t off)
{
	uint8_t want[DIFF_PROBE_LEN], got[DIFF_PROBE_LEN];
	uint32_t stage;

	pattern(e, want, sizeof(want));
	if (pwrite(fd, want, sizeof(want), (off_t)off) != sizeof(want)) {
		rec(e, key, "unwritable");
		return;
	}
	memset(got, 0, sizeof(got));
	stage = stage_begin(e);
	e->dma->read(e, iova, got, sizeof(got));
	stage_end(e, stage);
	rec(e, key, "%s", !memcmp(got, want, sizeof(got)) ? "hit" : "miss");
}

/* ==== scenarios: map ====================================================== */

static void s_map_fixed(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "rc", map_new(e, a, BASE, 4 * PG, NULL));
	rec_mappings(e, "mappings", a);
	rec_ioas(e, "ioas", a);
}

static void s_map_auto(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG);
	uint64_t i1 = 0, i2 = 0;

	rc(e, "rc1", map(e, a, fd, 0, 4 * PG, RW, &i1));
	rc(e, "rc2", map(e, a, fd, 0, 2 * PG, RW, &i2));
	rec_hex(e, "iova1", i1);
	rec_hex(e, "iova2", i2);
	rec_mappings(e, "mappings", a);
}

static void s_map_auto_2m(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 0x200000);
	uint64_t i1 = 0, i2 = 0;

	map(e, a, fd, 0, PG, RW, &i1);
	rc(e, "rc", map(e, a, fd, 0, 0x200000, RW, &i2));
	rec_hex(e, "iova", i2);
}

static void s_map_auto_after_attach(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG);
	uint64_t i = 0;

	rc(e, "attach", attach(e, a));
	rc(e, "rc", map(e, a, fd, 0, 4 * PG, RW, &i));
	rec_hex(e, "iova", i);
}

static void s_map_overlap(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "inside", map_new(e, a, BASE + PG, PG, NULL));
	rc(e, "straddle", map_new(e, a, BASE - PG, 2 * PG, NULL));
	rc(e, "adjacent", map_new(e, a, BASE + 4 * PG, PG, NULL));
	rec_mappings(e, "mappings", a);
}

static void s_map_bad_args(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG);
	uint64_t iova = BASE;

	rc(e, "zero_len", map(e, a, fd, 0, 0, RW | FIXED, &iova));
	rc(e, "unaligned_len", map(e, a, fd, 0, PG + 1, RW | FIXED, &iova));
	iova = BASE + 1;
	rc(e, "unaligned_iova", map(e, a, fd, 0, PG, RW | FIXED, &iova));
	iova = BASE;
	rc(e, "no_prot", map(e, a, fd, 0, PG, FIXED, &iova));
	rc(e, "bad_flags", map(e, a, fd, 0, PG, RW | FIXED | 0x100, &iova));
	rc(e, "unaligned_off", map(e, a, fd, 1, PG, RW | FIXED, &iova));
	iova = 0xfffffffffffff000ull;
	rc(e, "wrap", map(e, a, fd, 0, 2 * PG, RW | FIXED, &iova));
	rec_mappings(e, "mappings", a);
}

static void s_map_bad_files(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG), p[2] = { -1, -1 };
	int unsealed = keep_fd(e, memfd_create("u", MFD_CLOEXEC));
	uint64_t iova = BASE;
	char path[64];
	int ro;

	rc(e, "beyond_eof", map(e, a, fd, 2 * PG, 4 * PG, RW | FIXED, &iova));
	if (unsealed >= 0 && ftruncate(unsealed, 4 * PG) == 0)
		rc(e, "unsealed", map(e, a, unsealed, 0, PG, RW | FIXED,
				      &iova));
	if (pipe(p) == 0) {
		keep_fd(e, p[0]);
		keep_fd(e, p[1]);
		rc(e, "pipe", map(e, a, p[0], 0, PG, RW | FIXED, &iova));
	}
	rc(e, "bad_fd", map(e, a, 1000, 0, PG, RW | FIXED, &iova));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = keep_fd(e, open(path, O_RDONLY | O_CLOEXEC));
	rc(e, "ro_write", map(e, a, ro, 0, PG, RW | FIXED, &iova));
	rc(e, "ro_read", map(e, a, ro, 0, PG, IOASID_MAP_READ | FIXED, &iova));
	rec_mappings(e, "mappings", a);
}

static void s_map_user(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t iova = BASE;
	void *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		e->skip = "no memory";
		return;
	}
	rc(e, "rc", ioasid_map_user(e->ctx, a, p, 4 * PG, RW | FIXED, &iova));
	rc(e, "null", ioasid_map_user(e->ctx, a, NULL, PG, RW, &iova));
	rc(e, "unaligned", ioasid_map_user(e->ctx, a, (char *)p + 1, PG, RW,
					   &iova));
	rec_mappings(e, "mappings", a);
	ioasid_unmap_all(e->ctx, a, NULL);
	munmap(p, 4 * PG);
}

static void s_map_same_file_twice(struct diff_env *e)
{
	struct ioasid_file_info fi;
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 8 * PG);
	uint64_t i1 = BASE, i2 = BASE + 0x100000;
	struct ioasid_mapping m;

	map(e, a, fd, 0, 4 * PG, RW | FIXED, &i1);
	map(e, a, fd, 4 * PG, 4 * PG, IOASID_MAP_READ | FIXED, &i2);
	ioasid_lookup(e->ctx, a, i2, &m);
	if (rc(e, "file_info", ioasid_file_get_info(e->ctx, a, m.file_id,
						    &fi)) == 0)
		rec(e, "file", "kind %u size 0x%llx page 0x%llx mappings %u",
		    fi.kind, (unsigned long long)fi.file_size,
		    (unsigned long long)fi.page_size, fi.nr_mappings);
	rec_mappings(e, "mappings", a);
}

static void s_map_many(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 64 * PG), bad = 0;
	uint64_t unmapped = 0;

	for (int i = 0; i < 64; i++) {
		uint64_t iova = BASE + (uint64_t)i * 2 * PG;

		bad += map(e, a, fd, (uint64_t)i * PG, PG, RW | FIXED,
			   &iova) < 0;
	}
	rec(e, "failed", "%d", bad);
	rec_ioas(e, "ioas", a);
	rc(e, "unmap_all", ioasid_unmap_all(e->ctx, a, &unmapped));
	rec_hex(e, "unmapped", unmapped);
}

/* ==== scenarios: unmap ==================================================== */

static void s_unmap_exact(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "rc", ioasid_unmap(e->ctx, a, BASE, 4 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
}

static void s_unmap_missing(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 7;

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "missing", ioasid_unmap(e->ctx, a, BASE + 0x100000, PG, 0, &n));
	rc(e, "missing_ok", ioasid_unmap(e->ctx, a, BASE + 0x100000, PG,
					 IOASID_UNMAP_MISSING_OK, &n));
	rec_hex(e, "bytes", n);
	rc(e, "bad_flags", ioasid_unmap(e->ctx, a, BASE, PG, 0x10, &n));
	rc(e, "unaligned", ioasid_unmap(e->ctx, a, BASE + 1, PG, 0, &n));
	rc(e, "zero", ioasid_unmap(e->ctx, a, BASE, 0, 0, &n));
	rc(e, "wrap", ioasid_unmap(e->ctx, a, 0xfffffffffffff000ull, 2 * PG,
				   0, &n));
	rec_mappings(e, "mappings", a);
}

static void cut(struct diff_env *e, uint64_t off, uint64_t len)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	map_new(e, a, BASE, 8 * PG, NULL);
	rc(e, "rc", ioasid_unmap(e->ctx, a, BASE + off, len, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
	rec_ioas(e, "ioas", a);
}

static void s_unmap_cut_middle(struct diff_env *e)
{
	cut(e, 3 * PG, 2 * PG);
}

static void s_unmap_cut_head(struct diff_env *e)
{
	cut(e, 0, 3 * PG);
}

static void s_unmap_cut_tail(struct diff_env *e)
{
	cut(e, 5 * PG, 3 * PG);
}

static void s_unmap_cut_beyond(struct diff_env *e)
{
	cut(e, 6 * PG, 8 * PG);		/* past the end: a tail */
}

static void s_unmap_span_two(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	map_new(e, a, BASE, 4 * PG, NULL);
	map_new(e, a, BASE + 4 * PG, 4 * PG, NULL);
	rc(e, "rc", ioasid_unmap(e->ctx, a, BASE + 2 * PG, 4 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
}

static void s_unmap_whole_several(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	map_new(e, a, BASE, 2 * PG, NULL);
	map_new(e, a, BASE + 4 * PG, 2 * PG, NULL);
	map_new(e, a, BASE + 8 * PG, 2 * PG, NULL);
	rc(e, "rc", ioasid_unmap(e->ctx, a, BASE, 16 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
}

static void s_unmap_cut_twice(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	map_new(e, a, BASE, 16 * PG, NULL);
	rc(e, "rc1", ioasid_unmap(e->ctx, a, BASE + 4 * PG, PG, 0, &n));
	rc(e, "rc2", ioasid_unmap(e->ctx, a, BASE + 10 * PG, 2 * PG, 0, &n));
	rc(e, "rc3", ioasid_unmap(e->ctx, a, BASE + 2 * PG, 10 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
}

static void s_unmap_all(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t n = 0;

	rc(e, "empty", ioasid_unmap_all(e->ctx, a, &n));
	rec_hex(e, "empty_bytes", n);
	map_new(e, a, BASE, 4 * PG, NULL);
	map_new(e, a, 0x8000000, 2 * PG, NULL);
	rc(e, "rc", ioasid_unmap_all(e->ctx, a, &n));
	rec_hex(e, "bytes", n);
	rec_ioas(e, "ioas", a);
}

static void s_lookup(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	struct ioasid_mapping m;
	int r;

	map_new(e, a, BASE, 4 * PG, NULL);
	r = rc(e, "hit", ioasid_lookup(e->ctx, a, BASE + 2 * PG + 5, &m));
	if (r == 0)
		rec(e, "mapping", "0x%llx+0x%llx flags 0x%x",
		    (unsigned long long)m.iova, (unsigned long long)m.length,
		    m.flags);
	rc(e, "miss", ioasid_lookup(e->ctx, a, BASE + 4 * PG, &m));
	r = rc(e, "next", ioasid_mapping_next(e->ctx, a, 0x1000, &m));
	if (r == 0)
		rec_hex(e, "next_iova", m.iova);
	rc(e, "next_none", ioasid_mapping_next(e->ctx, a, BASE + 4 * PG, &m));
	rc(e, "bad_ioas", ioasid_lookup(e->ctx, 999999, BASE, &m));
}

/* ==== scenarios: copy ===================================================== */

static void s_copy_fixed(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	uint64_t dst = 0x2000000;

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "rc", ioasid_copy(e->ctx, b, a, BASE + PG, 2 * PG, RW | FIXED,
				&dst));
	rec_mappings(e, "dst", b);
	rec_mappings(e, "src", a);
}

static void s_copy_auto(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	uint64_t dst = 0;

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "rc", ioasid_copy(e->ctx, b, a, BASE, 4 * PG, RW, &dst));
	rec_hex(e, "dst_iova", dst);
}

static void s_copy_errors(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG);
	uint64_t iova = BASE, dst = 0x2000000;

	map(e, a, fd, 0, 4 * PG, IOASID_MAP_READ | FIXED, &iova);
	rc(e, "hole", ioasid_copy(e->ctx, b, a, BASE + 2 * PG, 4 * PG,
				  IOASID_MAP_READ | FIXED, &dst));
	rc(e, "prot", ioasid_copy(e->ctx, b, a, BASE, PG, RW | FIXED, &dst));
	rc(e, "unmapped", ioasid_copy(e->ctx, b, a, 0x8000000, PG,
				      IOASID_MAP_READ | FIXED, &dst));
	map_new(e, b, dst, PG, NULL);
	rc(e, "dst_busy", ioasid_copy(e->ctx, b, a, BASE, PG,
				      IOASID_MAP_READ | FIXED, &dst));
	rec_mappings(e, "dst", b);
}

static void s_copy_pieces(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	uint64_t dst = 0x2000000;

	map_new(e, a, BASE, 4 * PG, NULL);
	map_new(e, a, BASE + 4 * PG, 4 * PG, NULL);
	rc(e, "rc", ioasid_copy(e->ctx, b, a, BASE + 2 * PG, 4 * PG,
				RW | FIXED, &dst));
	rec_mappings(e, "dst", b);
}

/* ==== scenarios: ranges =================================================== */

static void s_ranges_empty(struct diff_env *e)
{
	rec_ranges(e, "ranges", new_ioas(e, 0));
}

static void s_ranges_attached(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "attach", attach(e, a));
	rec_ranges(e, "ranges", a);
	ioasid_device_detach(e->ctx, e->dev);
	rec_ranges(e, "after_detach", a);
}

static void s_ranges_small_buffer(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), nr = 1;
	struct ioasid_iova_range r[1];

	attach(e, a);
	rc(e, "rc", ioasid_iova_ranges(e->ctx, a, r, &nr, NULL));
	rec(e, "nr", "%u", nr);
}

static void s_allow_iovas(struct diff_env *e)
{
	struct ioasid_iova_range allow[2] = {
		{ 0x100000, 0x1ffffff }, { 0x4000000, 0x4ffffff },
	};
	uint32_t a = new_ioas(e, 0);
	uint64_t iova = 0;
	int fd = memfd(e, 4 * PG);

	rc(e, "rc", ioasid_allow_iovas(e->ctx, a, allow, 2));
	rec_ranges(e, "ranges", a);
	rc(e, "map_in", map_new(e, a, BASE, PG, NULL));
	rc(e, "map_out", map_new(e, a, 0x3000000, PG, NULL));
	rc(e, "map_auto", map(e, a, fd, 0, 4 * PG, RW, &iova));
	rec_hex(e, "auto_iova", iova);
	rc(e, "attach", attach(e, a));
	rec_ranges(e, "attached", a);
}

static void s_allow_iovas_errors(struct diff_env *e)
{
	struct ioasid_iova_range overlap[2] = {
		{ 0x100000, 0x2fffff }, { 0x200000, 0x3fffff },
	};
	struct ioasid_iova_range unaligned = { 0x100000, 0x100ffe };
	struct ioasid_iova_range reversed = { 0x200000, 0x100000 };
	struct ioasid_iova_range excl = { 0x4000000, 0x4ffffff };
	uint32_t a = new_ioas(e, 0);

	rc(e, "overlap", ioasid_allow_iovas(e->ctx, a, overlap, 2));
	rc(e, "unaligned", ioasid_allow_iovas(e->ctx, a, &unaligned, 1));
	rc(e, "reversed", ioasid_allow_iovas(e->ctx, a, &reversed, 1));
	map_new(e, a, BASE, PG, NULL);
	rc(e, "excludes_mapping", ioasid_allow_iovas(e->ctx, a, &excl, 1));
	rc(e, "reset", ioasid_allow_iovas(e->ctx, a, NULL, 0));
	rec_ranges(e, "ranges", a);
}

static void s_reserved_msi(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);

	rc(e, "map_before_attach", map_new(e, a, MSI_START, PG, NULL));
	rc(e, "attach_over_mapping", attach(e, a));
	rc(e, "attach_clean", attach(e, b));
	rc(e, "map_in_msi", map_new(e, b, MSI_START + 0x10000, PG, NULL));
	rc(e, "map_below_msi", map_new(e, b, MSI_START - PG, PG, NULL));
	rc(e, "map_above_msi", map_new(e, b, 0xfef00000ull, PG, NULL));
}

static void s_address_width(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);

	rc(e, "map_high_detached", map_new(e, a, 1ull << 40, PG, NULL));
	rc(e, "attach_with_high", attach(e, a));
	rc(e, "attach", attach(e, b));
	rc(e, "map_top", map_new(e, b, (1ull << 39) - PG, PG, NULL));
	rc(e, "map_beyond", map_new(e, b, 1ull << 39, PG, NULL));
}

/* ==== scenarios: devices and domains ====================================== */

static void s_iommu_info(struct diff_env *e)
{
	const uint32_t mask = IOASID_IOMMU_CAPS_KNOWN |
			      IOASID_IOMMU_SNOOP_CONTROL |
			      IOASID_IOMMU_DIRTY_TRACKING |
			      IOASID_IOMMU_NESTING | IOASID_IOMMU_PASID;
	struct ioasid_iommu_info u[4];
	uint32_t nr = 4;

	if (rc(e, "rc", ioasid_iommu_list(e->ctx, u, &nr)) < 0)
		return;
	rec(e, "nr", "%u", nr);
	for (uint32_t i = 0; i < nr && i < 4; i++)
		rec(e, u[i].name, "flags 0x%x pages 0x%llx width %u devices %u",
		    u[i].flags & mask, (unsigned long long)u[i].page_sizes,
		    u[i].addr_width, u[i].nr_devices);
}

static void s_device_info(struct diff_env *e)
{
	struct ioasid_device_info d;

	rec_device(e, "bound");
	rc(e, "unknown", ioasid_device_get_info(e->ctx, "0000:99:00.0", &d));
}

static void s_bind_errors(struct diff_env *e)
{
	uint32_t id;

	rc(e, "again", ioasid_device_bind(e->ctx, e->dev_name, -1, &id));
	rc(e, "unknown", ioasid_device_bind(e->ctx, "0000:99:00.0", -1, &id));
	rc(e, "unbind_unknown", ioasid_device_unbind(e->ctx, 999999));
}

static void s_attach_basic(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "rc", attach(e, a));
	rec_device(e, "device");
	rec_domains(e, "domains", a);
	rec_ioas(e, "ioas", a);
	rc(e, "detach", ioasid_device_detach(e->ctx, e->dev));
	rec_domains(e, "after_detach", a);
	rec_device(e, "device_after");
}

static void s_attach_errors(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "detach_unattached", ioasid_device_detach(e->ctx, e->dev));
	rc(e, "replace_unattached", ioasid_device_replace(e->ctx, e->dev, a,
							   0));
	rc(e, "bad_flags", ioasid_device_attach(e->ctx, e->dev, a, 0x80));
	rc(e, "bad_ioas", ioasid_device_attach(e->ctx, e->dev, 999999, 0));
	rc(e, "bad_dev", ioasid_device_attach(e->ctx, 999999, a, 0));
	rc(e, "attach", attach(e, a));
	rc(e, "twice", attach(e, a));
	rc(e, "destroy_busy", ioasid_ioas_destroy(e->ctx, a));
}

static void s_attach_with_mappings(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	map_new(e, a, BASE, 8 * PG, NULL);
	map_new(e, a, 0x8000000, 2 * PG, NULL);
	rc(e, "rc", attach(e, a));
	rec_mappings(e, "mappings", a);
	rec_domains(e, "domains", a);
}

static void s_replace(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);

	attach(e, a);
	rc(e, "same", ioasid_device_replace(e->ctx, e->dev, a, 0));
	rc(e, "rc", ioasid_device_replace(e->ctx, e->dev, b, 0));
	rec_domains(e, "old", a);
	rec_domains(e, "new", b);
	rec_ioas(e, "old_ioas", a);
	rec_ioas(e, "new_ioas", b);
	rc(e, "bad", ioasid_device_replace(e->ctx, e->dev, 999999, 0));
}

static void s_snoop_allow(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "set", ioasid_ioas_set_snoop_mode(e->ctx, a, IOASID_SNOOP_ALLOW));
	rc(e, "attach", attach(e, a));
	rec_domains(e, "domains", a);
	rec_device(e, "device");
}

static void s_snoop_enforce(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "set", ioasid_ioas_set_snoop_mode(e->ctx, a,
						IOASID_SNOOP_ENFORCE));
	rc(e, "attach", attach(e, a));
	rec_domains(e, "domains", a);
}

static void s_snoop_mode_rules(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "bad_mode", ioasid_ioas_set_snoop_mode(e->ctx, a, 7));
	attach(e, a);
	rc(e, "with_domain", ioasid_ioas_set_snoop_mode(e->ctx, a,
							IOASID_SNOOP_AUTO));
	ioasid_device_detach(e->ctx, e->dev);
	rc(e, "after_detach", ioasid_ioas_set_snoop_mode(e->ctx, a,
							 IOASID_SNOOP_ENFORCE));
	rec_ioas(e, "ioas", a);
}

static void s_hint(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);

	rc(e, "attach", ioasid_device_attach(e->ctx, e->dev, a,
					     IOASID_ATTACH_NO_SNOOP_UNUSED));
	rec_device(e, "device");
}

static void s_ioas_lifecycle(struct diff_env *e)
{
	uint32_t ids[8], nr = 8, a = new_ioas(e, 0);
	uint32_t r = new_ioas(e, IOASID_IOAS_RESTRICTED), x;

	rc(e, "list", ioasid_ioas_list(e->ctx, ids, &nr));
	rec(e, "nr", "%u", nr);
	rec_ioas(e, "plain", a);
	rec_ioas(e, "restricted", r);
	rc(e, "bad_flags", ioasid_ioas_alloc(e->ctx, 0x100, &x));
	map_new(e, a, BASE, PG, NULL);
	rc(e, "destroy_mapped", ioasid_ioas_destroy(e->ctx, a));
	e->ioas[0] = 0;
	rc(e, "destroy_again", ioasid_ioas_destroy(e->ctx, a));
	rc(e, "info_gone", ioasid_ioas_get_info(e->ctx, a,
						&(struct ioasid_ioas_info){ 0 }));
}

static void s_status(struct diff_env *e)
{
	struct ioasid_status st;

	if (rc(e, "rc", ioasid_get_status(e->ctx, &st)) < 0)
		return;
	rec(e, "counts", "iommus %u devices %u", st.nr_iommus, st.nr_devices);
}

/* ==== scenarios: DMA ====================================================== */

static void s_dma_basic(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	map_new(e, a, BASE, 4 * PG, &fd);
	attach(e, a);
	probe_write(e, "write", BASE + PG, fd, PG);
	probe_read(e, "read", BASE + 2 * PG, fd, 2 * PG);
	probe_write(e, "write_offset", BASE + 3 * PG + 0x800, fd,
		    3 * PG + 0x800);
}

static void s_dma_unmapped(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	map_new(e, a, BASE, 4 * PG, &fd);
	attach(e, a);
	ioasid_unmap(e->ctx, a, BASE, 4 * PG, 0, NULL);
	probe_write(e, "write", BASE + PG, fd, PG);
	probe_read(e, "read", BASE + 2 * PG, fd, 2 * PG);
}

static void s_dma_cut(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	map_new(e, a, BASE, 8 * PG, &fd);
	attach(e, a);
	rc(e, "cut", ioasid_unmap(e->ctx, a, BASE + 3 * PG, 2 * PG, 0, NULL));
	probe_write(e, "kept_below", BASE + 2 * PG, fd, 2 * PG);
	probe_write(e, "hole", BASE + 4 * PG, fd, 4 * PG);
	probe_write(e, "kept_above", BASE + 5 * PG, fd, 5 * PG);
}

static void s_dma_prot(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd = memfd(e, 4 * PG);
	uint64_t i1 = BASE, i2 = BASE + 2 * PG;

	map(e, a, fd, 0, 2 * PG, IOASID_MAP_READ | FIXED, &i1);
	map(e, a, fd, 2 * PG, 2 * PG, IOASID_MAP_WRITE | FIXED, &i2);
	attach(e, a);
	probe_write(e, "write_ro", BASE, fd, 0);
	probe_read(e, "read_ro", BASE + PG, fd, PG);
	probe_write(e, "write_wo", BASE + 2 * PG, fd, 2 * PG);
	probe_read(e, "read_wo", BASE + 3 * PG, fd, 3 * PG);
}

static void s_dma_detached(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	map_new(e, a, BASE, 4 * PG, &fd);
	attach(e, a);
	ioasid_device_detach(e->ctx, e->dev);
	probe_write(e, "write", BASE, fd, 0);
}

static void s_dma_replace(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	int fa, fb;

	map_new(e, a, BASE, 4 * PG, &fa);
	map_new(e, b, BASE, 4 * PG, &fb);
	attach(e, a);
	probe_write(e, "in_a", BASE, fa, 0);
	rc(e, "replace", ioasid_device_replace(e->ctx, e->dev, b, 0));
	probe_write(e, "in_b", BASE + PG, fb, PG);
	probe_write(e, "not_a", BASE + PG, fa, PG);
}

static void s_dma_copy(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), b = new_ioas(e, 0);
	uint64_t dst = 0x3000000;
	int fd;

	map_new(e, a, BASE, 4 * PG, &fd);
	rc(e, "copy", ioasid_copy(e->ctx, b, a, BASE, 4 * PG, RW | FIXED,
				  &dst));
	attach(e, b);
	probe_write(e, "via_copy", dst + PG, fd, PG);
	probe_read(e, "read_copy", dst + 2 * PG, fd, 2 * PG);
}

static void s_dma_user(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t iova = BASE;
	uint8_t *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		e->skip = "no memory";
		return;
	}
	memset(p, 0x2a, 4 * PG);
	rc(e, "map", ioasid_map_user(e->ctx, a, p, 4 * PG, RW | FIXED, &iova));
	attach(e, a);
	probe_write_mem(e, "write", BASE + PG, p + PG);
	ioasid_device_detach(e->ctx, e->dev);
	ioasid_unmap_all(e->ctx, a, NULL);
	munmap(p, 4 * PG);
}

static void s_dma_map_after_attach(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	attach(e, a);
	map_new(e, a, BASE, 4 * PG, &fd);
	probe_write(e, "write", BASE + 3 * PG, fd, 3 * PG);
}

static void s_dma_remap(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int f1, f2;

	map_new(e, a, BASE, 4 * PG, &f1);
	attach(e, a);
	ioasid_unmap(e->ctx, a, BASE, 4 * PG, 0, NULL);
	map_new(e, a, BASE, 4 * PG, &f2);
	probe_write(e, "new_file", BASE, f2, 0);
	probe_write(e, "old_file", BASE + PG, f1, PG);
}

static void s_dma_unmap_all(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	int fd;

	map_new(e, a, BASE, 4 * PG, &fd);
	attach(e, a);
	ioasid_unmap_all(e->ctx, a, NULL);
	probe_write(e, "write", BASE, fd, 0);
}

/* ==== scenarios: confidential (restricted IOAS) =========================== */

static void s_restricted_map(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_RESTRICTED);
	struct ioasid_iova_range r = { BASE + PG, BASE + 3 * PG - 1 };
	uint64_t n = 0;

	rc(e, "map", map_new(e, a, BASE, 8 * PG, NULL));
	rc(e, "shared", ioasid_convert(e->ctx, a, &r, 1, IOASID_CONVERT_SHARED,
				       &n));
	rec_hex(e, "converted", n);
	rc(e, "again", ioasid_convert(e->ctx, a, &r, 1, IOASID_CONVERT_SHARED,
				      &n));
	rec_hex(e, "converted_again", n);
	rec_ioas(e, "ioas", a);
}

static void s_restricted_dma(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_RESTRICTED);
	struct ioasid_iova_range sh = { BASE, BASE + 4 * PG - 1 };
	struct ioasid_iova_range pr = { BASE + PG, BASE + 2 * PG - 1 };
	int fd;

	map_new(e, a, BASE, 8 * PG, &fd);
	attach(e, a);
	probe_write(e, "private", BASE, fd, 0);
	ioasid_convert(e->ctx, a, &sh, 1, IOASID_CONVERT_SHARED, NULL);
	probe_write(e, "shared", BASE, fd, 0);
	rc(e, "to_private", ioasid_convert(e->ctx, a, &pr, 1,
					   IOASID_CONVERT_PRIVATE, NULL));
	probe_write(e, "converted", BASE + PG, fd, PG);
	probe_write(e, "neighbour", BASE + 2 * PG, fd, 2 * PG);
}

/* Cuts of a page-granular IOAS: first, last and middle pages. */
static void s_pg_cut(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_PAGE_GRANULAR);
	int fd;

	map_new(e, a, BASE, 16 * PG, &fd);
	attach(e, a);
	rec_ioas(e, "ioas", a);
	rec_domains(e, "domains", a);
	rc(e, "cut_first", ioasid_unmap(e->ctx, a, BASE, PG, 0, NULL));
	rc(e, "cut_last", ioasid_unmap(e->ctx, a, BASE + 15 * PG, PG, 0, NULL));
	rc(e, "cut_middle", ioasid_unmap(e->ctx, a, BASE + 6 * PG, 3 * PG, 0,
					 NULL));
	rec_mappings(e, "mappings", a);
	probe_write(e, "first", BASE, fd, 0);
	probe_write(e, "second", BASE + PG, fd, PG);
	probe_write(e, "below_cut", BASE + 5 * PG, fd, 5 * PG);
	probe_write(e, "in_cut", BASE + 7 * PG, fd, 7 * PG);
	probe_write(e, "above_cut", BASE + 9 * PG, fd, 9 * PG);
	probe_write(e, "next_to_last", BASE + 14 * PG, fd, 14 * PG);
	probe_write(e, "last", BASE + 15 * PG, fd, 15 * PG);
}

/* One cut across two mappings and the hole between them. */
static void s_pg_cut_span(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_PAGE_GRANULAR);
	int f1, f2;
	uint64_t n = 0;

	map_new(e, a, BASE, 4 * PG, &f1);
	map_new(e, a, BASE + 6 * PG, 4 * PG, &f2);
	attach(e, a);
	rc(e, "cut", ioasid_unmap(e->ctx, a, BASE + 2 * PG, 6 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
	probe_write(e, "kept_low", BASE + PG, f1, PG);
	probe_write(e, "cut_low", BASE + 3 * PG, f1, 3 * PG);
	probe_write(e, "cut_high", BASE + 7 * PG, f2, PG);
	probe_write(e, "kept_high", BASE + 8 * PG, f2, 2 * PG);
	rc(e, "again", ioasid_unmap(e->ctx, a, BASE + 2 * PG, 6 * PG, 0, NULL));
}

/* Conversions by runs: two runs shared, a range across both private. */
static void s_convert_runs(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_RESTRICTED);
	struct ioasid_iova_range sh[2] = {
		{ BASE, BASE + 6 * PG - 1 }, { BASE + 8 * PG, BASE + 16 * PG - 1 },
	};
	struct ioasid_iova_range pr = { BASE + 4 * PG, BASE + 10 * PG - 1 };
	struct ioasid_ioas_info info = { .size = sizeof(info) };
	uint64_t n = 0;
	int fd;

	map_new(e, a, BASE, 16 * PG, &fd);
	attach(e, a);
	rc(e, "to_shared", ioasid_convert(e->ctx, a, sh, 2,
					  IOASID_CONVERT_SHARED, &n));
	rec_hex(e, "shared_bytes", n);
	rc(e, "to_private", ioasid_convert(e->ctx, a, &pr, 1,
					   IOASID_CONVERT_PRIVATE, &n));
	rec_hex(e, "private_bytes", n);
	ioasid_ioas_get_info(e->ctx, a, &info);
	rec_hex(e, "bytes_shared", info.bytes_shared);
	probe_write(e, "shared_low", BASE + 3 * PG, fd, 3 * PG);
	probe_write(e, "private_low", BASE + 5 * PG, fd, 5 * PG);
	probe_write(e, "never_shared", BASE + 6 * PG, fd, 6 * PG);
	probe_write(e, "private_high", BASE + 9 * PG, fd, 9 * PG);
	probe_write(e, "shared_high", BASE + 10 * PG, fd, 10 * PG);
	probe_write(e, "shared_last", BASE + 15 * PG, fd, 15 * PG);
}

static void s_restricted_unmap(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_RESTRICTED);
	struct ioasid_iova_range sh = { BASE, BASE + 8 * PG - 1 };
	uint64_t n = 0;
	int fd;

	map_new(e, a, BASE, 8 * PG, &fd);
	ioasid_convert(e->ctx, a, &sh, 1, IOASID_CONVERT_SHARED, NULL);
	attach(e, a);
	rc(e, "cut", ioasid_unmap(e->ctx, a, BASE + 2 * PG, 3 * PG, 0, &n));
	rec_hex(e, "bytes", n);
	rec_mappings(e, "mappings", a);
	probe_write(e, "kept", BASE + 5 * PG, fd, 5 * PG);
	probe_write(e, "cut_page", BASE + 3 * PG, fd, 3 * PG);
}

static void s_convert_errors(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0), r = new_ioas(e, IOASID_IOAS_RESTRICTED);
	struct ioasid_iova_range x = { BASE, BASE + PG - 1 };
	struct ioasid_iova_range bad = { BASE + 1, BASE + PG };

	rc(e, "plain", ioasid_convert(e->ctx, a, &x, 1, IOASID_CONVERT_SHARED,
				      NULL));
	rc(e, "both", ioasid_convert(e->ctx, r, &x, 1, IOASID_CONVERT_SHARED |
				     IOASID_CONVERT_PRIVATE, NULL));
	rc(e, "unaligned", ioasid_convert(e->ctx, r, &bad, 1,
					  IOASID_CONVERT_SHARED, NULL));
	rc(e, "none", ioasid_convert(e->ctx, r, &x, 0, IOASID_CONVERT_SHARED,
				     NULL));
}

/* ==== scenarios: what only one backend can do ============================= */

/*
 * Dirty tracking where neither side can track (edu behind emulated VT-d;
 * the topology's unit has no dirty-tracking=yes): the start is refused,
 * the fallback reports every mapped page, in reads and in an unmap.
 */
static void s_dirty(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint64_t bitmap[1] = { 0 };

	map_new(e, a, BASE, 4 * PG, NULL);
	rc(e, "not_started", ioasid_dirty_read(e->ctx, a, BASE, 4 * PG,
					       bitmap, 0));
	rc(e, "start_no_domain", ioasid_dirty_start(e->ctx, a, 0));
	rc(e, "no_domain", ioasid_dirty_read(e->ctx, a, BASE, 4 * PG, bitmap,
					     0));
	rec_hex(e, "no_domain_bits", bitmap[0]);
	rc(e, "stop", ioasid_dirty_stop(e->ctx, a));
	attach(e, a);
	rc(e, "start", ioasid_dirty_start(e->ctx, a, 0));
	rec_dirty_flags(e, "refused", a);
	rc(e, "start_fallback", ioasid_dirty_start(e->ctx, a,
						   IOASID_DIRTY_START_FALLBACK));
	bitmap[0] = 0;
	rc(e, "attached", ioasid_dirty_read(e->ctx, a, BASE, 4 * PG, bitmap,
					    0));
	rec_hex(e, "fallback_bits", bitmap[0]);
	rec_dirty_flags(e, "fallback", a);
	rc(e, "bad_flags", ioasid_dirty_read(e->ctx, a, BASE, 4 * PG, bitmap,
					     0x10));
	bitmap[0] = 0;
	rc(e, "unmap_get_dirty", ioasid_unmap_get_dirty(e->ctx, a, BASE + PG,
							PG, 0, bitmap, NULL));
	rec_hex(e, "unmap_bits", bitmap[0]);
	rc(e, "stop_fallback", ioasid_dirty_stop(e->ctx, a));
}

static void s_device_dma_api(struct diff_env *e)
{
	uint32_t a = new_ioas(e, 0);
	uint8_t buf[64];
	uint64_t done = 0;

	map_new(e, a, BASE, PG, NULL);
	attach(e, a);
	rc(e, "read", ioasid_device_dma(e->ctx, e->dev, BASE, buf, sizeof(buf),
					0, &done));
}

static void s_faults(struct diff_env *e)
{
	struct ioasid_fault f[8];
	uint32_t a = new_ioas(e, 0), nr = 8;
	int fd;

	map_new(e, a, BASE, PG, &fd);
	attach(e, a);
	do {				/* drain what earlier scenarios left */
		nr = 8;
	} while (ioasid_fault_read(e->ctx, f, &nr) == 0 && nr);
	probe_write(e, "blocked", BASE + 0x10000, fd, 0);
	nr = 8;
	rc(e, "rc", ioasid_fault_read(e->ctx, f, &nr));
	rec(e, "nr", "%u", nr);
}

static void s_vm(struct diff_env *e)
{
	struct ioasid_vm_info vi;
	uint32_t a = new_ioas(e, 0);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0 || (e->vm_fds[0] = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
		if (kvm >= 0)
			close(kvm);
		e->skip = "no /dev/kvm";
		return;
	}
	e->vm_fds[1] = kvm;
	if (rc(e, "bind", ioasid_vm_bind(e->ctx, e->vm_fds[0], -1, &e->vm)))
		return;
	rc(e, "bad_fd", ioasid_vm_bind(e->ctx, kvm, -1, &(uint32_t){ 0 }));
	rc(e, "set_vm", ioasid_device_set_vm(e->ctx, e->dev, e->vm));
	attach(e, a);
	rec_device(e, "device");
	if (rc(e, "info", ioasid_vm_get_info(e->ctx, e->vm, &vi)) == 0)
		rec(e, "vm", "flags 0x%x devices %u noncoherent %u "
		    "registrations %llu", vi.flags, vi.nr_devices,
		    vi.nr_noncoherent, (unsigned long long)vi.registrations);
	rc(e, "forbid", ioasid_vm_set_policy(e->ctx, e->vm,
					     IOASID_VM_FORBID_NONCOHERENT));
	rc(e, "out", ioasid_device_set_vm(e->ctx, e->dev, 0));
	rc(e, "unbind", ioasid_vm_unbind(e->ctx, e->vm));
	e->vm = 0;
}

/* ==== scenarios of a tracking, nesting unit (iommufd:mock vs the sim) ===== */

/*
 * Dirty tracking where both sides track: the mock IOMMU behind
 * "iommufd:mock" and a sim unit with dirty-tracking=yes (mock.topology).
 * The device dirties pages through e->dma->dirty (the sim: a DMA write;
 * the mock: IOMMU_TEST_OP_DIRTY, as its DMA writes no IOPTE).  The IOAS
 * is page-granular: one 4 KiB IOPTE per page on both.
 */
static void s_mock_dirty(struct diff_env *e)
{
	uint32_t a = new_ioas(e, IOASID_IOAS_PAGE_GRANULAR);
	uint64_t bm[1] = { 0 }, unmapped = 0;

	rc(e, "map", map_new(e, a, BASE, 16 * PG, NULL));
	rc(e, "attach", attach(e, a));
	rc(e, "start", ioasid_dirty_start(e->ctx, a, 0));
	rec_dirty_flags(e, "started", a);
	rc(e, "again", ioasid_dirty_start(e->ctx, a, 0));
	rc(e, "clean", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm, 0));
	rec_hex(e, "clean_bits", bm[0]);
	e->dma->dirty(e, BASE + 1 * PG);
	e->dma->dirty(e, BASE + 3 * PG);
	e->dma->dirty(e, BASE + 8 * PG);
	rc(e, "no_clear", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm,
					    IOASID_DIRTY_NO_CLEAR));
	rec_hex(e, "no_clear_bits", bm[0]);
	rc(e, "clear", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm, 0));
	rec_hex(e, "clear_bits", bm[0]);
	rc(e, "cleared", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm, 0));
	rec_hex(e, "cleared_bits", bm[0]);
	e->dma->dirty(e, BASE + 8 * PG);
	e->dma->dirty(e, BASE + 9 * PG);
	rc(e, "one_page", ioasid_dirty_read(e->ctx, a, BASE + 8 * PG, PG, bm,
					    0));
	rec_hex(e, "one_page_bits", bm[0]);
	e->dma->dirty(e, BASE + 5 * PG);
	e->dma->dirty(e, BASE + 6 * PG);
	e->dma->dirty(e, BASE + 12 * PG);
	bm[0] = 0;
	rc(e, "unmap_get_dirty", ioasid_unmap_get_dirty(e->ctx, a, BASE + 4 * PG,
							4 * PG, 0, bm,
							&unmapped));
	rec_hex(e, "unmap_bits", bm[0]);
	rec_hex(e, "unmapped", unmapped);
	rc(e, "after_unmap", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm,
					       0));
	rec_hex(e, "after_unmap_bits", bm[0]);
	rc(e, "unaligned", ioasid_dirty_read(e->ctx, a, BASE + 1, PG, bm, 0));
	rc(e, "stop", ioasid_dirty_stop(e->ctx, a));
	rec_dirty_flags(e, "stopped", a);
	rc(e, "stopped_read", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm,
						0));
	rc(e, "restart", ioasid_dirty_start(e->ctx, a, 0));
	rc(e, "restarted", ioasid_dirty_read(e->ctx, a, BASE, 16 * PG, bm, 0));
	rec_hex(e, "restarted_bits", bm[0]);
	rc(e, "stop_again", ioasid_dirty_stop(e->ctx, a));
}

/*
 * A nested table's life where both sides nest, in each one's format
 * (e->nested_type: the sim's VT-d first stage, the mock's selftest data):
 * what is recorded is what the core and the backends decide alike.
 */
static void s_mock_nested(struct diff_env *e)
{
	uint32_t parent = new_ioas(e, IOASID_IOAS_NEST_PARENT);
	uint32_t plain = new_ioas(e, 0), n = 0, nr;
	struct ioasid_nested_inval all = { .flags = IOASID_NESTED_INVAL_ALL };
	struct ioasid_nested_inval page = { .addr = 0, .npages = 1 };
	struct ioasid_nested_inval bad[3] = {
		{ .addr = 0, .npages = 1 }, { .addr = 0x10, .npages = 1 },
		{ .addr = 0, .npages = 1 },
	};
	struct ioasid_nested_info ni;
	int32_t errs[3] = { 1, 1, 1 };

	rc(e, "map", map_new(e, parent, BASE, 4 * PG, NULL));
	rc(e, "not_parent", ioasid_nested_alloc(e->ctx, plain, e->dev,
						e->nested_type, e->nested_data,
						e->nested_len, 0, &n));
	rc(e, "bad_flags", ioasid_nested_alloc(e->ctx, parent, e->dev,
					       e->nested_type, e->nested_data,
					       e->nested_len, 0x8, &n));
	rc(e, "alloc", ioasid_nested_alloc(e->ctx, parent, e->dev,
					   e->nested_type, e->nested_data,
					   e->nested_len, 0, &n));
	rc(e, "attach", ioasid_device_attach_nested(e->ctx, e->dev, n, 0));
	rc(e, "attach_again", ioasid_device_attach_nested(e->ctx, e->dev, n,
							  0));
	nr = 1;
	rc(e, "inval_all", ioasid_nested_invalidate(e->ctx, n, &all, &nr,
						    errs));
	rec(e, "inval_all_done", "%u %d", nr, errs[0]);
	nr = 1;
	rc(e, "inval_page", ioasid_nested_invalidate(e->ctx, n, &page, &nr,
						     NULL));
	rec(e, "inval_page_done", "%u", nr);
	nr = 3;
	rc(e, "inval_bad", ioasid_nested_invalidate(e->ctx, n, bad, &nr,
						    errs));
	rec(e, "inval_bad_done", "%u %s %s %s", nr, errname(errs[0]),
	    errname(errs[1]), errname(errs[2]));
	nr = 1;
	rc(e, "list", ioasid_nested_list(e->ctx, parent, &ni, &nr));
	rec(e, "listed", "nr %u devices %u invalidations %llu", nr,
	    ni.nr_devices, (unsigned long long)ni.nr_invalidations);
	rc(e, "destroy_busy", ioasid_nested_destroy(e->ctx, n));
	rc(e, "replace_parent", ioasid_device_replace(e->ctx, e->dev, parent,
						      0));
	nr = 1;
	ioasid_nested_list(e->ctx, parent, &ni, &nr);
	rec(e, "left", "devices %u", ni.nr_devices);
	rc(e, "replace_nested", ioasid_device_replace_nested(e->ctx, e->dev, n,
							     0));
	rc(e, "detach", ioasid_device_detach(e->ctx, e->dev));
	rc(e, "destroy", ioasid_nested_destroy(e->ctx, n));
	rc(e, "destroy_again", ioasid_nested_destroy(e->ctx, n));
}

/*
 * A vIOMMU's life where both sides have one, each of its own type
 * (e->viommu_type) with nested tables in its format: only entries both
 * types read alike (a device's whole cache by virtual ID) and refusals
 * the core decides (unknown virtual ID, a range a selftest vIOMMU does
 * not take and the sim refuses unaligned) are recorded.
 */
static void s_mock_viommu(struct diff_env *e)
{
	const uint32_t other = e->viommu_type == IOASID_VIOMMU_SIM ?
			       IOASID_VIOMMU_SELFTEST : IOASID_VIOMMU_SIM;
	uint32_t parent = new_ioas(e, IOASID_IOAS_NEST_PARENT);
	uint32_t plain = new_ioas(e, 0), v = 0, vd = 0, x = 0, n = 0, nr;
	struct ioasid_viommu_inval all = {
		.virt_id = 0x10, .flags = IOASID_VIOMMU_INVAL_ALL,
	};
	struct ioasid_viommu_inval bad[3] = {
		all, { .virt_id = 0x99, .flags = IOASID_VIOMMU_INVAL_ALL }, all,
	};
	struct ioasid_viommu_inval range = {
		.virt_id = 0x10, .addr = 0x10, .npages = 1,
	};
	struct ioasid_viommu_info vi = { 0 };
	struct ioasid_vdevice_info vdi = { 0 };
	int32_t errs[3] = { 1, 1, 1 };

	rc(e, "map", map_new(e, parent, BASE, 4 * PG, NULL));
	rc(e, "not_parent", ioasid_viommu_alloc(e->ctx, plain, e->dev,
						e->viommu_type, 0, &x));
	rc(e, "bad_flags", ioasid_viommu_alloc(e->ctx, parent, e->dev,
					       e->viommu_type, 0x8, &x));
	rc(e, "bad_type", ioasid_viommu_alloc(e->ctx, parent, e->dev, 77, 0,
					      &x));
	rc(e, "other_type", ioasid_viommu_alloc(e->ctx, parent, e->dev, other,
						0, &x));
	rc(e, "alloc", ioasid_viommu_alloc(e->ctx, parent, e->dev,
					   e->viommu_type, 0, &v));
	rc(e, "nested_alloc",
	   ioasid_viommu_nested_alloc(e->ctx, v, e->dev, e->nested_type,
				      e->nested_data, e->nested_len, 0, &n));
	rc(e, "attach_no_vdevice", ioasid_device_attach_nested(e->ctx, e->dev,
							       n, 0));
	rc(e, "vdevice", ioasid_vdevice_alloc(e->ctx, v, e->dev, 0x10, &vd));
	rc(e, "vdevice_again", ioasid_vdevice_alloc(e->ctx, v, e->dev, 0x11,
						    &x));
	rc(e, "attach", ioasid_device_attach_nested(e->ctx, e->dev, n, 0));
	nr = 1;
	rc(e, "inval_all", ioasid_viommu_invalidate(e->ctx, v, &all, &nr,
						    errs));
	rec(e, "inval_all_done", "%u %d", nr, errs[0]);
	nr = 3;
	rc(e, "inval_bad", ioasid_viommu_invalidate(e->ctx, v, bad, &nr,
						    errs));
	rec(e, "inval_bad_done", "%u %s %s %s", nr, errname(errs[0]),
	    errname(errs[1]), errname(errs[2]));
	nr = 1;
	rc(e, "inval_range", ioasid_viommu_invalidate(e->ctx, v, &range, &nr,
						      NULL));
	rec(e, "inval_range_done", "%u", nr);
	nr = 1;
	rc(e, "list", ioasid_viommu_list(e->ctx, parent, &vi, &nr));
	rec(e, "listed", "nr %u vdevices %u nested %u invalidations %llu", nr,
	    vi.nr_vdevices, vi.nr_nested,
	    (unsigned long long)vi.nr_invalidations);
	nr = 1;
	rc(e, "vdevices", ioasid_vdevice_list(e->ctx, parent, &vdi, &nr));
	rec(e, "vdevices_listed", "nr %u virt 0x%llx", nr,
	    (unsigned long long)vdi.virt_id);
	rc(e, "destroy_busy", ioasid_viommu_destroy(e->ctx, v));
	rc(e, "parent_busy", ioasid_ioas_destroy(e->ctx, parent));
	rc(e, "vdevice_destroy", ioasid_vdevice_destroy(e->ctx, vd));
	nr = 1;
	rc(e, "inval_gone", ioasid_viommu_invalidate(e->ctx, v, &all, &nr,
						     NULL));
	rc(e, "destroy_nested_left", ioasid_viommu_destroy(e->ctx, v));
	rc(e, "detach", ioasid_device_detach(e->ctx, e->dev));
	rc(e, "nested_destroy", ioasid_nested_destroy(e->ctx, n));
	rc(e, "destroy", ioasid_viommu_destroy(e->ctx, v));
	rc(e, "destroy_again", ioasid_viommu_destroy(e->ctx, v));
}

/* ---- the list ------------------------------------------------------------ */

struct scenario {
	const char *name;
	void (*fn)(struct diff_env *e);
};

#define S(n) { #n, s_##n }
static const struct scenario scenarios[] = {
	S(map_fixed), S(map_auto), S(map_auto_2m), S(map_auto_after_attach),
	S(map_overlap), S(map_bad_args), S(map_bad_files), S(map_user),
	S(map_same_file_twice), S(map_many),
	S(unmap_exact), S(unmap_missing), S(unmap_cut_middle),
	S(unmap_cut_head), S(unmap_cut_tail), S(unmap_cut_beyond),
	S(unmap_span_two), S(unmap_whole_several), S(unmap_cut_twice),
	S(unmap_all), S(lookup),
	S(copy_fixed), S(copy_auto), S(copy_errors), S(copy_pieces),
	S(ranges_empty), S(ranges_attached), S(ranges_small_buffer),
	S(allow_iovas), S(allow_iovas_errors), S(reserved_msi),
	S(address_width),
	S(iommu_info), S(device_info), S(bind_errors), S(attach_basic),
	S(attach_errors), S(attach_with_mappings), S(replace),
	S(snoop_allow), S(snoop_enforce), S(snoop_mode_rules), S(hint),
	S(ioas_lifecycle), S(status),
	S(dma_basic), S(dma_unmapped), S(dma_cut), S(dma_prot),
	S(dma_detached), S(dma_replace), S(dma_copy), S(dma_user),
	S(dma_map_after_attach), S(dma_remap), S(dma_unmap_all),
	S(restricted_map), S(restricted_dma), S(restricted_unmap),
	S(convert_errors), S(pg_cut), S(pg_cut_span), S(convert_runs),
	S(dirty), S(device_dma_api), S(faults), S(vm),
};
#define ARRAY_SIZE_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static const struct scenario mock_scenarios[] = {
	{ "mock_dirty", s_mock_dirty }, { "mock_nested", s_mock_nested },
	{ "mock_viommu", s_mock_viommu },
};

unsigned int diff_nr_scenarios(void)
{
	return ARRAY_SIZE_SCENARIOS;
}

static void teardown(struct diff_env *e)
{
	ioasid_device_set_vm(e->ctx, e->dev, 0);
	ioasid_device_detach(e->ctx, e->dev);
	if (e->vm)
		ioasid_vm_unbind(e->ctx, e->vm);
	for (unsigned int i = 0; i < e->nr_ioas; i++)
		if (e->ioas[i])
			ioasid_ioas_destroy(e->ctx, e->ioas[i]);
	for (unsigned int i = 0; i < e->nr_fds; i++)
		close(e->fds[i]);
	for (int i = 0; i < 2; i++)
		if (e->vm_fds[i] >= 0)
			close(e->vm_fds[i]);
	e->nr_ioas = e->nr_fds = 0;
	e->vm = 0;
	e->vm_fds[0] = e->vm_fds[1] = -1;
}

static int run_list(struct diff_env *e, const struct scenario *list,
		    size_t nr, void (*ran)(struct diff_env *e, const char *name,
					   const char *skip))
{
	int skips = 0;

	e->vm_fds[0] = e->vm_fds[1] = -1;
	for (size_t i = 0; i < nr; i++) {
		e->scenario = list[i].name;
		e->skip = NULL;
		list[i].fn(e);
		if (e->skip) {
			rec(e, "skipped", "%s", e->skip);
			skips++;
		}
		teardown(e);
		if (ran)
			ran(e, list[i].name, e->skip);
	}
	return skips;
}

int diff_run_all(struct diff_env *e, void (*ran)(struct diff_env *e,
						 const char *name,
						 const char *skip))
{
	return run_list(e, scenarios, ARRAY_SIZE_SCENARIOS, ran);
}

unsigned int diff_nr_mock_scenarios(void)
{
	return sizeof(mock_scenarios) / sizeof(mock_scenarios[0]);
}

int diff_run_mock(struct diff_env *e, void (*ran)(struct diff_env *e,
						  const char *name,
						  const char *skip))
{
	return run_list(e, mock_scenarios, diff_nr_mock_scenarios(), ran);
}

int diff_find_device(struct ioasid_ctx *ctx, char *name, size_t len)
{
	struct ioasid_device_info v[64];
	uint32_t nr = 64;

	if (ioasid_device_list(ctx, v, &nr) < 0)
		return -ENOENT;
	for (uint32_t i = 0; i < nr && i < 64; i++)
		if (v[i].vendor == 0x1234 && v[i].device == 0x11e8) {
			snprintf(name, len, "%s", v[i].name);
			return 0;
		}
	return -ENOENT;
}
