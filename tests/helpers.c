/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

int test_memfd_unsealed(uint64_t size)
{
	int fd = memfd_create("test-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	cr_assert(fd >= 0, "memfd_create");
	cr_assert(ftruncate(fd, (off_t)size) == 0, "ftruncate");
	return fd;
}

int test_memfd(uint64_t size)
{
	int fd = test_memfd_unsealed(size);

	cr_assert(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal");
	return fd;
}

struct ioasid_ctx *test_ctx(void)
{
	struct ioasid_ctx *ctx = NULL;
	const char *uri = getenv("IOASID_TEST_URI");
	int r = ioasid_new(uri ? uri : "sim", &ctx);

	cr_assert(r == 0, "ioasid_new(%s): %d %s", uri ? uri : "sim", r,
		  ioasid_last_error(NULL));
	return ctx;
}

struct ioasid_ctx *test_ctx_ioas(uint32_t *ioas_id)
{
	struct ioasid_ctx *ctx = test_ctx();

	cr_assert(ioasid_ioas_alloc(ctx, 0, ioas_id) == 0);
	return ctx;
}

int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

ssize_t send_fds_flags(int s, const void *buf, size_t len, const int *fds,
		       int nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control = { { 0 } };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	cr_assert(nfds >= 0 && nfds <= 8, "%d descriptors", nfds);
	if (nfds) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(s, &mh, flags);
}

ssize_t send_fds(int s, const void *buf, size_t len, const int *fds,
		 int nfds)
{
	return send_fds_flags(s, buf, len, fds, nfds, MSG_NOSIGNAL);
}

bool test_find_session(struct ioasid_ctx *ctx, const char *name,
		       struct ioasid_session_info *out)
{
	struct ioasid_session_info v[16];
	uint32_t nr = 16;

	cr_assert_eq(ioasid_session_list(ctx, v, &nr), 0, "%s",
		     ioasid_last_error(ctx));
	for (uint32_t i = 0; i < nr; i++) {
		if (strcmp(v[i].name, name) || v[i].uid != getuid())
			continue;
		if (out)
			*out = v[i];
		return true;
	}
	return false;
}

void test_dma_lands(struct ioasid_ctx *ctx, uint32_t dev_id, uint64_t iova,
		    int memfd, uint64_t offset, const char *text)
{
	size_t len = strlen(text) + 1;
	char buf[64] = "";
	uint64_t done = 0;

	cr_assert_lt(len, sizeof(buf));
	cr_assert_eq(ioasid_device_dma(ctx, dev_id, iova, (void *)text, len,
				       IOASID_DMA_WRITE, &done), 0, "%s",
		     ioasid_last_error(ctx));
	cr_assert_eq(done, len);
	cr_assert_eq(pread(memfd, buf, len, (off_t)offset), (ssize_t)len);
	cr_assert_str_eq(buf, text);
}
