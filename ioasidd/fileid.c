/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the fd store's files are told apart (journal.c, kstate.c): a
 * regular file by its inode, any other as the open file itself.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "ioasidd.h"

/*
 * A regular file's inode is its content, but every KVM VM and kvm-vfio
 * device is one anonymous inode, and a character device's inode is
 * shared by each open of it.
 */
bool inode_is_the_file(int fd, const struct stat *st)
{
	struct statfs sf;

	return S_ISREG(st->st_mode) && fstatfs(fd, &sf) == 0 &&
	       sf.f_type != ANON_INODE_FS_MAGIC;
}

/* As the fd store tells them apart too. */
bool same_open_file(int a, int b)
{
#ifdef SYS_kcmp
	pid_t self = getpid();

	return a >= 0 && b >= 0 &&
	       syscall(SYS_kcmp, self, self, 0 /* KCMP_FILE */, a, b) == 0;
#else
	return false;
#endif
}
