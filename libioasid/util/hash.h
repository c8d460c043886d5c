/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * uthash, configured so that running out of memory can never end the
 * process.  Every file of the tree includes this header, never <uthash.h>
 * directly (tests/check-noexit.sh enforces both rules).
 *
 * By default uthash calls exit() when an allocation of its table fails;
 * inside ioasidd that would end every tenant.  With HASH_NONFATAL_OOM the
 * HASH_ADD family instead leaves the table as it was and clears the new
 * item's handle (item->hh.tbl == NULL).  Do not use HASH_ADD itself: use
 * hash_add(), which says whether the item went in (0) or not (-ENOMEM),
 * and undo what the caller did before it on -ENOMEM.
 *
 * HASH_DELETE, HASH_FIND and HASH_ITER allocate nothing.  HASH_SELECT and
 * the sorting macros are not used in the tree.
 */
#ifndef IOASID_UTIL_HASH_H
#define IOASID_UTIL_HASH_H

#include <errno.h>
#include <stdlib.h>

#ifdef UTHASH_H
#error "<uthash.h> was included before util/hash.h: it would exit on OOM"
#endif

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) malloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#define uthash_nonfatal_oom(obj) do { } while (0)
/* unreachable with HASH_NONFATAL_OOM; if a uthash update ever changed
 * that, the build breaks here rather than exiting at run time */
#define uthash_fatal(msg) hash_fatal_is_not_allowed(msg)

#include <uthash.h>

/*
 * Add @item to the table @head through its handle @hh, keyed by
 * @item->@field (@keylen bytes): 0, or -ENOMEM with the table unchanged.
 */
#define hash_add(hh, head, field, keylen, item)				\
	__extension__({							\
		HASH_ADD(hh, head, field, keylen, item);		\
		(item)->hh.tbl ? 0 : -ENOMEM;				\
	})

#endif
