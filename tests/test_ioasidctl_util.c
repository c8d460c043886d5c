/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioasidctl/util.c on its own: sizes both ways, numbers, the table printer
 * and the JSON writer's escaping (checked byte for byte).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../ioasidctl/util.h"

/* Runs @fn writing into a memory stream; returns what it wrote (free it). */
static char *capture(void (*fn)(FILE *f, const void *arg), const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert(f);
	fn(f, arg);
	fclose(f);
	return buf;
}

/* ---- sizes and numbers --------------------------------------------------- */

Test(size, parse)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "0x1000", 4096 }, { "0X1f", 31 },
		{ "4K", 4096 }, { "4k", 4096 }, { "4KiB", 4096 }, { "4kb", 4096 },
		{ "2M", 2 << 20 }, { "1.5M", 3 << 19 }, { "2G", 2ULL << 30 },
		{ "0.5K", 512 }, { "1T", 1ULL << 40 }, { "15E", 15ULL << 60 },
		{ "100B", 100 }, { "18446744073709551615", UINT64_MAX },
		{ "0xffffffffffffffff", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "K", "1Q", "-1", "+1", " 1", "1 ", "0x", "1.", ".5K", "1.5",
		"1.5B", "4Kx", "0x1K", "1KK",
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		cr_assert_eq(str_to_size(good[i].s, &v), 0, "%s", good[i].s);
		cr_assert_eq(v, good[i].v, "%s: %llu", good[i].s,
			     (unsigned long long)v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_assert_eq(str_to_size(bad[i], &v), -EINVAL, "%s", bad[i]);
}

Test(size, parse_range_errors)
{
	uint64_t v;

	cr_assert_eq(str_to_size("16E", &v), -ERANGE);
	cr_assert_eq(str_to_size("18446744073709551616", &v), -ERANGE);
	cr_assert_eq(str_to_size("0x10000000000000000", &v), -ERANGE);
	cr_assert_eq(str_to_size("1.0001K", &v), -ERANGE, "not whole bytes");
	cr_assert_eq(str_to_size("1.25K", &v), 0);
	cr_assert_eq(v, 1280);
}

Test(size, format)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0B" }, { 100, "100B" }, { 1023, "1023B" }, { 4096, "4K" },
		{ 4097, "4K+1B" }, { 3 << 19, "1M+512K" }, { 2ULL << 30, "2G" },
		{ (2 << 20) + 4096, "2M+4K" }, { (1 << 20) + 4096, "1M+4K" },
		{ (1ULL << 30) - 4096, "1023M+1020K" }, { 2162688, "2M+64K" },
		{ (1ULL << 30) + (1 << 20) + 4096, "1G+1M+4K" },
		{ (1ULL << 30) + (1 << 20) + 4096 + 1, "1074794497B" },
		{ UINT64_MAX, "16E-1B" }, { 1ULL << 60, "1E" },
		{ 0 - (1ULL << 39), "16E-512G" }, { 0 - (1ULL << 48), "15E+1023P+768T" },
		{ (4ULL << 30) - 4096 - 1, "4G-4K-1B" },
		{ (4ULL << 30) - (1 << 20) - 4096 - 1, "4293914623B" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_assert_str_eq(size_str(cases[i].v).s, cases[i].s, "%llu",
				 (unsigned long long)cases[i].v);
}

Test(size, round_trip)
{
	uint64_t v;

	for (uint64_t x = 1; x; x <<= 1) {
		cr_assert_eq(str_to_size(size_str(x).s, &v), 0);
		cr_assert_eq(v, x);
	}
	/* exact: every size prints as itself */
	for (uint64_t x = 1; x < (1ULL << 40); x = x * 3 + 4095) {
		cr_assert_eq(str_to_size(size_str(x).s, &v), 0, "%s", size_str(x).s);
		cr_assert_eq(v, x, "%s", size_str(x).s);
	}
	cr_assert_eq(str_to_size("2M+4K", &v), 0);
	cr_assert_eq(v, (2 << 20) + 4096);
	cr_assert_eq(str_to_size("2M+", &v), -EINVAL);
	cr_assert_eq(str_to_size("+4K", &v), -EINVAL);
	cr_assert_eq(str_to_size("2M++4K", &v), -EINVAL);
	cr_assert_eq(str_to_size("15E+1E", &v), -ERANGE);
	/* a size less one, as size_str() prints the top of a 64-bit space */
	cr_assert_eq(str_to_size("16E-512G", &v), 0);
	cr_assert_eq(v, 0 - (1ULL << 39));
	cr_assert_eq(str_to_size("16E-1B", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_eq(str_to_size("4G-4K-1B", &v), 0, "less each part");
	cr_assert_eq(v, (4ULL << 30) - 4096 - 1);
	cr_assert_eq(str_to_size("4G-4K+1B", &v), -EINVAL, "no '+' after '-'");
	cr_assert_eq(str_to_size("4G--4K", &v), -EINVAL);
	cr_assert_eq(str_to_size("4K-8K", &v), -ERANGE);
	cr_assert_eq(str_to_size("-4K", &v), -EINVAL);
	cr_assert_eq(str_to_size("4K-", &v), -EINVAL);
	cr_assert_eq(str_to_size("4K-0", &v), -EINVAL);
	cr_assert_eq(str_to_size("1G+1M-4K", &v), -EINVAL);
	for (uint64_t x = UINT64_MAX; x > (1ULL << 40); x -= x / 3 + 4095) {
		cr_assert_eq(str_to_size(size_str(x).s, &v), 0, "%s", size_str(x).s);
		cr_assert_eq(v, x, "%s", size_str(x).s);
	}
}

Test(number, u32)
{
	uint32_t v;

	cr_assert_eq(str_to_u32("4294967295", &v), 0);
	cr_assert_eq(v, UINT32_MAX);
	cr_assert_eq(str_to_u32("4294967296", &v), -ERANGE);
	cr_assert_eq(str_to_u32("1K", &v), -EINVAL, "no units for ids");
	cr_assert_eq(str_to_u32("0x10", &v), 0);
	cr_assert_eq(v, 16);
}

Test(number, hex_and_page_sizes)
{
	char buf[64];

	cr_assert_str_eq(hex_str(0x1000, true).s, "0x0000000000001000");
	cr_assert_str_eq(hex_str(0x1000, false).s, "0x1000");
	page_sizes_str((1ULL << 12) | (1ULL << 21) | (1ULL << 30), buf,
		       sizeof(buf));
	cr_assert_str_eq(buf, "4K,2M,1G");
	page_sizes_str(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "-");
	cr_assert_str_eq(errno_name(ENOENT).s, "ENOENT");
	cr_assert_str_eq(errno_name(-EADDRINUSE).s, "EADDRINUSE");
	cr_assert_str_eq(errno_name(4000).s, "E4000");
}

/* ---- table --------------------------------------------------------------- */

static void print_table(FILE *f, const void *arg)
{
	static const char *const hdr[] = { "NAME", ">SIZE", "NOTE" };
	struct table t;

	table_init(&t, hdr, 3);
	table_cell(&t, "%s", "a");
	table_cell(&t, "%d", 5);
	table_cell(&t, "x");
	table_cell(&t, "longer");
	table_cell(&t, "%d", 12345);
	table_cell(&t, "-");
	cr_assert_eq(table_print(&t, f, "  "), 0);
	table_free(&t);
}

Test(table, aligns)
{
	char *out = capture(print_table, NULL);

	cr_assert_str_eq(out, "  NAME     SIZE  NOTE\n"
			      "  a           5  x\n"
			      "  longer  12345  -\n");
	free(out);
}

/* ---- JSON ---------------------------------------------------------------- */

static void write_string(FILE *f, const void *arg)
{
	json_write_string(f, arg);
}

static void expect_json_string(const char *in, const char *want)
{
	char *out = capture(write_string, in);

	cr_assert_str_eq(out, want, "for input \"%s\"", in);
	free(out);
}

Test(json, escapes)
{
	expect_json_string("plain", "\"plain\"");
	expect_json_string("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	expect_json_string("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	expect_json_string("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	expect_json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
			   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* not UTF-8: a lone byte, an overlong '/', a surrogate, truncated */
	expect_json_string("a\xff" "b", "\"a\\ufffdb\"");
	expect_json_string("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	expect_json_string("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_json_string("\xe2\x82", "\"\\ufffd\\ufffd\"");
}

static void write_doc(FILE *f, const void *arg)
{
	struct json j;

	json_init(&j, f, *(const bool *)arg);
	json_obj_begin(&j, NULL);
	json_str(&j, "name", "x");
	json_u64(&j, "n", UINT64_MAX);
	json_u64(&j, "iova", 0xfee00000);
	json_id(&j, "none", 0);
	json_id(&j, "some", 7);
	json_bool(&j, "yes", true);
	json_arr_begin(&j, "empty");
	json_arr_end(&j);
	json_arr_begin(&j, "list");
	json_u64(&j, NULL, 1);
	json_obj_begin(&j, NULL);
	json_obj_end(&j);
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

Test(json, documents)
{
	bool pretty = false;
	char *out = capture(write_doc, &pretty);

	cr_assert_str_eq(out, "{\"name\":\"x\",\"n\":18446744073709551615,"
			      "\"iova\":4276092928,\"none\":null,"
			      "\"some\":7,\"yes\":true,\"empty\":[],"
			      "\"list\":[1,{}]}\n");
	free(out);
	pretty = true;
	out = capture(write_doc, &pretty);
	cr_assert_str_eq(out, "{\n  \"name\": \"x\",\n"
			      "  \"n\": 18446744073709551615,\n"
			      "  \"iova\": 4276092928,\n  \"none\": null,\n"
			      "  \"some\": 7,\n  \"yes\": true,\n"
			      "  \"empty\": [],\n  \"list\": [\n    1,\n"
			      "    {}\n  ]\n}\n");
	free(out);
}
