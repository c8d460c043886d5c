/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allocation failure injection for tests/test_fail_nth (and a daemon built
 * for it): the program is linked with -Wl,--wrap=SYMBOL for every
 * allocator the library calls, so every call from the convenience library
 * (and from the test itself) comes here first.  Nothing in the library
 * knows: the failure looks exactly like an allocator running out.
 *
 * failnth_arm(n) makes the n-th allocation from now on fail (once);
 * failnth_disarm() stops counting and says whether that allocation came.
 *
 * Control may also live in a shared page (failnth_attach()): then the
 * counters are in a MAP_SHARED file that another process -- the test
 * driving a daemon built with these wrappers -- arms and reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <netlink/msg.h>

#include "failnth.h"

static struct failnth_ctl local_ctl;
static struct failnth_ctl *ctl = &local_ctl;

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
char *__real_strdup(const char *s);
void *__real_aligned_alloc(size_t alignment, size_t size);
int __real_posix_memalign(void **memptr, size_t alignment, size_t size);
char *__real_realpath(const char *path, char *resolved);
struct nl_msg *__real_nlmsg_alloc_size(size_t max);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
char *__wrap_strdup(const char *s);
void *__wrap_aligned_alloc(size_t alignment, size_t size);
int __wrap_posix_memalign(void **memptr, size_t alignment, size_t size);
char *__wrap_realpath(const char *path, char *resolved);
struct nl_msg *__wrap_nlmsg_alloc_size(size_t max);

/* true when this allocation is the one that must fail */
static bool should_fail(void)
{
	uint64_t n;

	if (!__atomic_load_n(&ctl->armed, __ATOMIC_ACQUIRE))
		return false;
	n = __atomic_add_fetch(&ctl->count, 1, __ATOMIC_ACQ_REL);
	if (n != __atomic_load_n(&ctl->fail_at, __ATOMIC_ACQUIRE))
		return false;
	__atomic_store_n(&ctl->hit, 1, __ATOMIC_RELEASE);
	return true;
}

void failnth_ctl_arm(struct failnth_ctl *c, uint64_t n)
{
	__atomic_store_n(&c->count, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&c->hit, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&c->fail_at, n, __ATOMIC_RELEASE);
	__atomic_store_n(&c->armed, 1, __ATOMIC_RELEASE);
}

bool failnth_ctl_disarm(struct failnth_ctl *c)
{
	__atomic_store_n(&c->armed, 0, __ATOMIC_RELEASE);
	return __atomic_load_n(&c->hit, __ATOMIC_ACQUIRE);
}

void failnth_arm(uint64_t n)
{
	failnth_ctl_arm(ctl, n);
}

bool failnth_disarm(void)
{
	return failnth_ctl_disarm(ctl);
}

uint64_t failnth_count(void)
{
	return __atomic_load_n(&ctl->count, __ATOMIC_ACQUIRE);
}

struct failnth_ctl *failnth_map(const char *path)
{
	struct failnth_ctl *shared;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600), e;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, sizeof(*shared)) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED, fd, 0);
	e = errno;
	close(fd);
	errno = e;
	return shared == MAP_FAILED ? NULL : shared;
}

int failnth_attach(const char *path)
{
	struct failnth_ctl *shared = failnth_map(path);

	if (!shared)
		return -errno;
	ctl = shared;
	return 0;
}

void *__wrap_malloc(size_t size)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(size);
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(nmemb, size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(ptr, size);
}

char *__wrap_strdup(const char *s)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
	if (should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_aligned_alloc(alignment, size);
}

int __wrap_posix_memalign(void **memptr, size_t alignment, size_t size)
{
	if (should_fail())
		return ENOMEM;
	return __real_posix_memalign(memptr, alignment, size);
}

char *__wrap_realpath(const char *path, char *resolved)
{
	if (!resolved && should_fail()) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realpath(path, resolved);
}

struct nl_msg *__wrap_nlmsg_alloc_size(size_t max)
{
	if (should_fail())
		return NULL;
	return __real_nlmsg_alloc_size(max);
}
