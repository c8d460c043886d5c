/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replays a fuzz target's committed inputs in the normal test suite:
 * every file of fuzz/corpus/TARGET and fuzz/regressions/TARGET under
 * $srcdir (or the files and directories named on the command line).
 * A crash reproducer saved in fuzz/regressions/ stays fixed this way, in
 * every build (the ASan/UBSan one too), without clang or libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replayed;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
		fprintf(stderr, "%s: cannot read\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	replayed++;
	return 0;
}

static int replay(const char *path, bool missing_ok)
{
	struct dirent **names;
	struct stat st;
	int n, r = 0;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT && missing_ok)
			return 0;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char sub[4096];

		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path,
				 names[i]->d_name);
			if (replay(sub, false) < 0)
				r = -1;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	char dir[4096];
	int r = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay(argv[i], false) < 0)
				r = 1;
	} else {
		static const char *const kinds[] = { "corpus", "regressions" };

		for (int i = 0; i < 2; i++) {
			snprintf(dir, sizeof(dir), "%s/fuzz/%s/%s",
				 srcdir ? srcdir : ".", kinds[i], FUZZ_TARGET);
			/* no reproducer yet: no regressions directory */
			if (replay(dir, i == 1) < 0)
				r = 1;
		}
	}
	printf("fuzz_%s: %d input(s) replayed\n", FUZZ_TARGET, replayed);
	if (!replayed) {
		fprintf(stderr, "nothing to replay: is srcdir set?\n");
		return 1;
	}
	return r;
}
