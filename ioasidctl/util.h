/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl helpers: sizes, numbers, an aligned table printer, a small
 * JSON writer and errno names.  Nothing here knows about libioasid.
 */
#ifndef IOASIDCTL_UTIL_H
#define IOASIDCTL_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A short string returned by value: valid until the end of the statement. */
struct str32 {
	char s[32];
};

/* ---- time ------------------------------------------------------------- */

/* The wall-clock time of a CLOCK_MONOTONIC stamp, as clock_gettime(). */
struct timespec mono_to_wall(uint64_t mono_ns);
/* "2026-12-02T10:00:00.123456+01:00": local time, ISO 8601 (64 bytes do). */
void mono_iso_time(uint64_t mono_ns, char *buf, size_t len);

/* ---- numbers and sizes ------------------------------------------------ */

/*
 * "4096", "0x1000", "4K", "4KiB", "1.5M", "2G" (binary units K M G T P E,
 * either case), and what size_str() prints ("2M+4K", "16E-512G"): bytes.
 * 0 or -EINVAL (not a size), -ERANGE (too big, or a fraction that is not
 * a whole number of bytes).
 */
int str_to_size(const char *s, uint64_t *out);
/* Decimal or 0x-hex without suffix; 0 or -EINVAL / -ERANGE. */
int str_to_u64(const char *s, uint64_t *out);
int str_to_u32(const char *s, uint32_t *out);

/*
 * Exact: 2147483648 -> "2G", 1572864 -> "1M+512K", 4097 -> "4K+1B",
 * 2^64 - 2^39 -> "16E-512G", 1074794497 -> "1074794497B".
 */
struct str32 size_str(uint64_t bytes);
/* "0x0000000000100000" (16 digits) or "0x100000" (short). */
struct str32 hex_str(uint64_t v, bool wide);
/* Page-size bit mask -> "4K,2M,1G" ("-" when empty). */
void page_sizes_str(uint64_t mask, char *buf, size_t len);

/* ---- errno ------------------------------------------------------------ */

/* "ENOENT" for ENOENT, "E123" for what it does not know. */
struct str32 errno_name(int errnum);

/* ---- table ------------------------------------------------------------ */

/*
 * Columns are left aligned; a header starting with '>' is right aligned
 * (the '>' is not printed).  Cells are added left to right, rows fill up
 * by themselves.  Allocation failures are remembered and reported by
 * table_print().
 */
struct table {
	unsigned int ncols;
	const char *const *headers;
	char **cells;
	size_t nr_cells, cap;
	bool failed;
};

void table_init(struct table *t, const char *const *headers,
		unsigned int ncols);
void table_cell(struct table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prints headers and rows, each line prefixed by @indent; -ENOMEM. */
int table_print(struct table *t, FILE *f, const char *indent);
void table_free(struct table *t);

/* ---- JSON ------------------------------------------------------------- */

#define JSON_MAX_DEPTH 16

/*
 * A streaming writer.  Inside an object every value has a key; inside an
 * array and at the top level the key is NULL.  Strings are escaped as
 * RFC 8259 asks, and bytes that are not UTF-8 become U+FFFD.
 */
struct json {
	FILE *f;
	bool pretty;
	int depth;
	bool first[JSON_MAX_DEPTH];
};

void json_init(struct json *j, FILE *f, bool pretty);
void json_obj_begin(struct json *j, const char *key);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *value);
/*
 * Every integer ioasidctl prints in JSON -- address, IOVA, offset, size,
 * count, register -- is a plain decimal number, exact to 64 bits (the one
 * rule of ioasidctl(8), JSON OUTPUT).
 */
void json_u64(struct json *j, const char *key, uint64_t value);
void json_bool(struct json *j, const char *key, bool value);
void json_null(struct json *j, const char *key);
/* An id, or null when it is 0 ("none"). */
void json_id(struct json *j, const char *key, uint32_t id);
/* Ends the document with a newline and flushes. */
void json_finish(struct json *j);
/* Writes @s as a JSON string literal (quotes included). */
void json_write_string(FILE *f, const char *s);

#endif
