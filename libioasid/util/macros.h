/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers used everywhere inside libioasid, ioasidd and ioasidctl. */
#ifndef IOASID_UTIL_MACROS_H
#define IOASID_UTIL_MACROS_H

#include <stddef.h>
#include <stdint.h>

/* Marks a definition as part of the library ABI (see libioasid.sym). */
#define IOASID_EXPORT __attribute__((visibility("default")))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define min_t(type, a, b) ((type)(a) < (type)(b) ? (type)(a) : (type)(b))
#define max_t(type, a, b) ((type)(a) > (type)(b) ? (type)(a) : (type)(b))

#define SZ_4K	0x1000ULL
#define SZ_2M	0x200000ULL
#define SZ_1G	0x40000000ULL

#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define ALIGN_UP(x, a) (((x) + ((__typeof__(x))(a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Close an fd kept in a variable and mark the variable empty. */
#define close_fd(fd) do { if ((fd) >= 0) close(fd); (fd) = -1; } while (0)

#endif
