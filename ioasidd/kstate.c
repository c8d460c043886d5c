/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Crash survival on iommufd and vfio-type1: each named session's state
 * image, and the kernel descriptors it names, in the service manager's fd
 * store (vfio-type1: the containers and groups instead of the session's
 * iommufd and cdevs; after the crash the backend makes the kernel forget
 * the dead daemon's addresses of each mapping and registers its own,
 * VFIO_DMA_UNMAP_FLAG_VADDR then VFIO_DMA_MAP_FLAG_VADDR, which also
 * moves the locked-memory charge).
 *
 * The simulated backend rebuilds from a journal of changes (journal.c).
 * A kernel backend cannot: its IOASes, HWPTs and device bindings live in
 * the kernel, as long as some process holds the session's /dev/iommu.
 * So under a service manager (NOTIFY_SOCKET, built with libsystemd) on
 * iommufd, after every change a named session makes (and when it is
 * named or reclaimed), before the reply leaves, ioasidd writes the
 * session's state image (proto/image.h, the one a live upgrade uses:
 * ops plus KOBJ records naming the kernel objects) into a new sealed
 * memfd and stores it as "kimg<SESSION>.<0|1>" (the other generation is
 * removed after); every descriptor the image names that is not stored
 * yet goes to the store as "k<SESSION>.<KEY>" (KEY: its number in the
 * process that stored it, what the image's FD records say for it): the
 * session's iommufd, its devices' VFIO cdevs (mock devices: their access
 * files), its mapped files, its KVM VMs.  Those a session no longer names
 * leave the store; so does everything of a session that ends.  The
 * kernel objects therefore outlive a crash: devices keep DMA-ing into the
 * mapped pages while the daemon is down.
 *
 * After a crash the service manager passes them back.  kstate_start()
 * reads each session's newest image whose records check, finds each of
 * its descriptors by name (one the store lost, or that is another file,
 * is missing: the ops that need it fail and are logged), and replays it
 * into a new core session with the old ids: the backend adopts the
 * kernel objects (checked against the kernel: IOMMU_IOAS_IOVA_RANGES,
 * IOMMU_GET_HW_INFO, the attach as a replace by the same HWPT, each
 * mapping with IOMMU_IOAS_COPY), makes again what the kernel lost, and
 * takes the pinned-page accounting over (IOMMU_IOAS_CHANGE_PROCESS).
 * The session then lingers as if its client had disconnected at the
 * crash, until its token reclaims it.  The log says, per session, what
 * was rebuilt, what failed, and what was made again; the daemon starts
 * whatever it could not rebuild.  Then every session is stored again
 * under its new id (the old names are removed first: the store keeps one
 * copy of a file, whatever its names).
 *
 * A live upgrade hands the entries over (kstate_export(), the state
 * image's IMAGE_REC_DAEMON_KSTATE_UP): the successor keeps every entry
 * under its name, since the store keeps one copy of a file and a name
 * could only move through a moment where no entry holds the file.  Its
 * descriptors have other numbers: at its first image (kstate_resume(),
 * once the predecessor was told to go, so that the store has one writer
 * at a time) each FD record finds the handed entry of the same file and
 * says its key (number_fd()): a regular file by its inode, any other
 * (every KVM VM and kvm-vfio device is the one anonymous inode) as the
 * open file whose descriptor the predecessor handed over with it.  A
 * session's image also names the token its last reclaim presented
 * (IMAGE_REC_DAEMON_KSTATE_PREV) until the reclaimer's next request shows
 * the reply arrived.
 *
 * The cost: a change rewrites the session's whole image (its mappings
 * are records), so it grows with the session's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioasidd.h"
#include "proto/codec.h"
#include "proto/image.h"
#include "util/macros.h"

/* The session's facts, first record after CORE. */
struct ks_session_rec {
	uint32_t uid, gid, linger_s, reserved;
	uint64_t generation;
	struct ioasid_session_resume resume;
	char name[IOASID_NAME_MAX];
	unsigned char token[IOASID_SESSION_TOKEN_LEN];
};

struct ks_fd {
	int fd;				/* ours; -1: not known yet */
	int32_t key;			/* stored as k<sid>.<key> */
	int32_t from;			/* while writing: its old entry, -1 */
	uint64_t dev, ino;
	/*
	 * a live upgrade's successor, until fd is known: the predecessor's
	 * descriptor of a file its inode does not name, to tell it apart
	 * (ours, else -1)
	 */
	int handed;
};

struct ks_sess {
	struct ks_sess *next;
	uint32_t sid;
	uint32_t gid;
	uint64_t generation;		/* of its last image */
	struct ks_fd *fds;
	uint32_t nr_fds, cap_fds;
	uint32_t found;			/* entries whose fd became known */
};

/* An image being written: the FD records so far, as stored. */
struct ks_write {
	const struct ks_sess *e;
	struct ks_fd *fds;
	uint32_t nr_fds, cap_fds;
};

struct kstate {
	struct server *srv;
	struct ks_sess *list;
	bool broken;			/* the store refused: off */
};

static struct ks_sess *find_sess(struct kstate *k, uint32_t sid)
{
	for (struct ks_sess *e = k->list; e; e = e->next)
		if (e->sid == sid)
			return e;
	return NULL;
}

static void fd_name(char *buf, size_t len, uint32_t sid, int32_t key)
{
	snprintf(buf, len, "k%u.%d", sid, key);
}

static void kstate_off(struct kstate *k, const char *why)
{
	if (k->broken)
		return;
	k->broken = true;
	log_err(k->srv, "kernel state: %s: crash survival is off until the "
		"next start", why);
}

static bool same_file(const struct ks_fd *a, const struct image_fd *f)
{
	return a->dev == f->dev && a->ino == f->ino;
}

/*
 * Whether @a, whose descriptor is not known yet, is @f: as the open file
 * the predecessor handed over where it did (every KVM VM and kvm-vfio
 * device is the one anonymous inode), else by its inode.
 */
static bool is_handed_file(const struct ks_fd *a, const struct image_fd *f)
{
	if (a->handed >= 0)
		return same_open_file(a->handed, f->fd);
	return same_file(a, f);
}

static void close_handed(struct ks_fd *fds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (fds[i].handed >= 0) {
			close(fds[i].handed);
			fds[i].handed = -1;
		}
}

static bool key_taken(const struct ks_write *x, int32_t key)
{
	for (uint32_t i = 0; i < x->e->nr_fds; i++)
		if (x->e->fds[i].key == key)
			return true;
	for (uint32_t i = 0; i < x->nr_fds; i++)
		if (x->fds[i].key == key)
			return true;
	return false;
}

/*
 * The number an FD record of the image says: the key of the store
 * entry that holds the descriptor (image_writer.number).  In a fresh
 * process a key is the descriptor's number; a live upgrade's successor
 * holds the same files under other numbers and keeps the keys its
 * predecessor stored them under (the fd store keeps one copy of a file,
 * so a name cannot move to a new entry without a moment where no entry
 * holds it): an entry whose descriptor is not known yet (fd -1) is the
 * first of the same file not taken by an earlier record (is_handed_file():
 * the same open file where the predecessor handed it, else the same
 * st_dev, st_ino).
 */
static int32_t number_fd(void *arg, const struct image_fd *f)
{
	struct ks_write *x = arg;
	const struct ks_sess *e = x->e;
	struct ks_fd n = {
		.fd = f->fd, .key = f->fd, .from = -1,
		.dev = f->dev, .ino = f->ino, .handed = -1,
	};
	bool found = false;

	for (uint32_t i = 0; i < x->nr_fds; i++)
		if (x->fds[i].fd == f->fd && same_file(&x->fds[i], f))
			return x->fds[i].key;
	for (uint32_t i = 0; i < e->nr_fds && !found; i++)
		if (e->fds[i].fd == f->fd && same_file(&e->fds[i], f)) {
			n.key = e->fds[i].key;
			n.from = (int32_t)i;
			found = true;
		}
	for (uint32_t i = 0; i < e->nr_fds && !found; i++) {
		bool used = false;

		if (e->fds[i].fd >= 0 || !is_handed_file(&e->fds[i], f))
			continue;
		for (uint32_t j = 0; j < x->nr_fds && !used; j++)
			used = x->fds[j].from == (int32_t)i;
		if (used)
			continue;
		n.key = e->fds[i].key;
		n.from = (int32_t)i;
		found = true;
	}
	while (!found && key_taken(x, n.key)) {
		if (n.key == INT32_MAX)
			return -EMFILE;
		n.key++;
	}
	if (x->nr_fds == x->cap_fds) {
		uint32_t cap = x->cap_fds ? x->cap_fds * 2 : 8;
		struct ks_fd *p = realloc(x->fds, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		x->fds = p;
		x->cap_fds = cap;
	}
	x->fds[x->nr_fds++] = n;
	return n.key;
}

/*
 * Store what @x names that @e has not stored; drop what it no longer
 * names; @x's entries become @e's.
 */
static int sync_fds(struct ks_sess *e, struct ks_write *x)
{
	char name[64];
	uint32_t n;
	int r = 0;

	for (uint32_t i = 0; i < e->nr_fds; i++) {
		bool kept = false;

		for (uint32_t j = 0; j < x->nr_fds && !kept; j++)
			kept = x->fds[j].from == (int32_t)i;
		e->found += kept && e->fds[i].fd < 0;
		if (kept)
			continue;
		fd_name(name, sizeof(name), e->sid, e->fds[i].key);
		sd_fdstore_remove(name);
	}
	for (uint32_t i = 0; i < x->nr_fds && r == 0; i++) {
		if (x->fds[i].from >= 0)
			continue;
		fd_name(name, sizeof(name), e->sid, x->fds[i].key);
		r = sd_fdstore(name, x->fds[i].fd);
		if (r == 0)
			continue;
		/* refused: @e keeps what is stored, to remove it with @e */
		n = i;
		for (uint32_t j = i + 1; j < x->nr_fds; j++)
			if (x->fds[j].from >= 0)
				x->fds[n++] = x->fds[j];
		x->nr_fds = n;
	}
	close_handed(e->fds, e->nr_fds);
	free(e->fds);
	e->fds = x->fds;
	e->nr_fds = x->nr_fds;
	e->cap_fds = x->cap_fds;
	x->fds = NULL;
	return r;
}

static int write_session(struct kstate *k, struct ks_sess *e,
			 const struct sessions_ident *id)
{
	struct server *srv = k->srv;
	struct ks_session_rec rec = {
		.uid = id->uid, .gid = e->gid, .linger_s = id->linger_s,
		.generation = e->generation + 1, .resume = id->resume,
	};
	struct image_session is = { .id = e->sid, .uid = id->uid };
	struct image_writer w;
	struct ks_write x = { .e = e };
	struct ioasid_op why;
	char name[64];
	int memfd = -1, r;

	snprintf(rec.name, sizeof(rec.name), "%s", id->name);
	memcpy(rec.token, id->token, sizeof(rec.token));
	ioasid_op_init(&why, IOASID_CMD_UNSPEC);
	image_writer_init(&w, false);
	w.number = number_fd;
	w.number_arg = &x;
	r = image_put_core(&w, srv->backend_uri);
	if (r == 0)
		r = image_put(&w, IMAGE_REC_DAEMON_KSTATE, &rec, sizeof(rec));
	/* a reclaim whose reply may be lost: its token is good too */
	if (r == 0 && id->prev_ok)
		r = image_put(&w, IMAGE_REC_DAEMON_KSTATE_PREV,
			      id->prev_token, sizeof(id->prev_token));
	if (r == 0)
		r = image_put_session(&w, &is);
	if (r == 0)
		r = core_session_export(id->session, daemon_put_export, &w,
					&why);
	if (r == 0)
		r = image_put_next_id(&w, core_next_id(srv->core));
	if (r == 0)
		r = image_writer_finish(&w, &memfd);
	explicit_bzero(rec.token, sizeof(rec.token));
	if (r == 0)
		r = sync_fds(e, &x);
	if (r == 0) {
		snprintf(name, sizeof(name), "kimg%u.%u", e->sid,
			 (unsigned int)(rec.generation & 1));
		r = sd_fdstore(name, memfd);
	}
	if (r == 0) {
		snprintf(name, sizeof(name), "kimg%u.%u", e->sid,
			 (unsigned int)(~rec.generation & 1));
		sd_fdstore_remove(name);
		e->generation = rec.generation;
	}
	if (memfd >= 0)
		close(memfd);
	free(x.fds);
	image_writer_release(&w, false);
	if (r < 0)
		log_err(srv, "kernel state: session \"%s\": %s", id->name,
			why.errmsg[0] ? why.errmsg : strerror(-r));
	return r;
}

void kstate_changed(struct server *srv, struct named *n, uint32_t gid)
{
	struct kstate *k = srv->kstate;
	struct sessions_ident id;
	struct ks_sess *e;

	if (!k || k->broken || !n)
		return;
	sessions_ident(n, &id);
	e = find_sess(k, core_session_id(id.session));
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			kstate_off(k, "out of memory");
			return;
		}
		e->sid = core_session_id(id.session);
		e->gid = gid;
		e->next = k->list;
		k->list = e;
	}
	if (write_session(k, e, &id) < 0)
		kstate_off(k, "a session's state could not be stored");
	explicit_bzero(&id, sizeof(id));
}

static void forget(struct kstate *k, struct ks_sess *e)
{
	struct ks_sess **p = &k->list;
	char name[64];

	for (uint32_t i = 0; i < e->nr_fds; i++) {
		fd_name(name, sizeof(name), e->sid, e->fds[i].key);
		sd_fdstore_remove(name);
	}
	for (unsigned int g = 0; g < 2; g++) {
		snprintf(name, sizeof(name), "kimg%u.%u", e->sid, g);
		sd_fdstore_remove(name);
	}
	while (*p && *p != e)
		p = &(*p)->next;
	if (*p)
		*p = e->next;
	close_handed(e->fds, e->nr_fds);
	free(e->fds);
	free(e);
}

void kstate_end(struct server *srv, struct session *s)
{
	struct kstate *k = srv->kstate;
	struct ks_sess *e;

	if (k && s && (e = find_sess(k, core_session_id(s))))
		forget(k, e);
}

/* ---- live upgrade -------------------------------------------------------- */

/*
 * IMAGE_REC_DAEMON_KSTATE_UP (image version 4): the sessions' store
 * entries, for the successor to go on with them: a ks_up, then per
 * session a ks_up_sess and its ks_up_fds.
 */
struct ks_up {
	uint32_t nr_sessions, reserved;
};

struct ks_up_sess {
	uint32_t sid, gid;
	uint64_t generation;
	uint32_t nr_fds, reserved;
};

struct ks_up_fd {
	int32_t key;
	/*
	 * the FD record index + 1 of our descriptor of a file its inode does
	 * not name (inode_is_the_file()), else 0 (and before it: matched
	 * by its inode)
	 */
	uint32_t handed;
	uint64_t dev, ino;
};

/*
 * @a's descriptor for the successor to tell it apart, if it needs one and
 * this kernel has kcmp(2) (CONFIG_KCMP) to tell it with.
 */
static int put_handed(struct image_writer *w, const struct ks_fd *a,
		      uint32_t *handed)
{
	struct stat st;
	uint32_t idx;
	int r;

	*handed = 0;
	if (a->fd < 0 || fstat(a->fd, &st) < 0 ||
	    (uint64_t)st.st_dev != a->dev || (uint64_t)st.st_ino != a->ino ||
	    inode_is_the_file(a->fd, &st) ||
	    !same_open_file(a->fd, a->fd))	/* no kcmp(2): by inode */
		return 0;
	r = image_put_fd(w, a->fd, &idx);
	if (r == 0 && idx == UINT32_MAX)
		r = -E2BIG;
	if (r == 0)
		*handed = idx + 1;
	return r;
}

/* The ks_state is not handed over when it is off: it stays off. */
int kstate_export(const struct kstate *k, struct image_writer *w)
{
	struct ks_up up = { 0 };
	size_t len = sizeof(up);
	char *buf, *p;
	int r = 0;

	if (!k || k->broken)
		return 0;
	for (const struct ks_sess *e = k->list; e; e = e->next) {
		up.nr_sessions++;
		len += sizeof(struct ks_up_sess) +
		       (size_t)e->nr_fds * sizeof(struct ks_up_fd);
	}
	if (len > UINT32_MAX)
		return -E2BIG;
	buf = p = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	memcpy(p, &up, sizeof(up));
	p += sizeof(up);
	for (const struct ks_sess *e = k->list; e; e = e->next) {
		struct ks_up_sess us = {
			.sid = e->sid, .gid = e->gid,
			.generation = e->generation, .nr_fds = e->nr_fds,
		};

		memcpy(p, &us, sizeof(us));
		p += sizeof(us);
		for (uint32_t i = 0; i < e->nr_fds && r == 0; i++) {
			struct ks_up_fd uf = {
				.key = e->fds[i].key, .dev = e->fds[i].dev,
				.ino = e->fds[i].ino,
			};

			r = put_handed(w, &e->fds[i], &uf.handed);
			memcpy(p, &uf, sizeof(uf));
			p += sizeof(uf);
		}
	}
	if (r < 0) {
		free(buf);
		return r;
	}
	/* an older successor would not go on with the store's entries */
	image_writer_need_version(w, 4);
	r = image_put(w, IMAGE_REC_DAEMON_KSTATE_UP, buf, (uint32_t)len);
	free(buf);
	return r;
}

int kstate_adopt(struct server *srv, struct image *img, image_take_fn take,
		 void *arg, char *why, size_t whylen)
{
	struct image_rec rec;
	struct kstate *k;
	struct ks_up up;
	const char *p, *end;
	bool found = false;

	image_rewind(img);
	while (!found && image_next(img, &rec) > 0)
		found = rec.type == IMAGE_REC_DAEMON_KSTATE_UP;
	if (!found)
		return 0;		/* the predecessor had none */
	if (rec.len < sizeof(up))
		goto bad;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->srv = srv;
	p = rec.payload;
	end = p + rec.len;
	memcpy(&up, p, sizeof(up));
	p += sizeof(up);
	for (uint32_t i = 0; i < up.nr_sessions; i++) {
		struct ks_up_sess us;
		struct ks_sess *e;

		if ((size_t)(end - p) < sizeof(us))
			goto bad_free;
		memcpy(&us, p, sizeof(us));
		p += sizeof(us);
		if ((size_t)(end - p) / sizeof(struct ks_up_fd) < us.nr_fds ||
		    !us.sid || find_sess(k, us.sid))
			goto bad_free;
		e = calloc(1, sizeof(*e));
		if (e && us.nr_fds)
			e->fds = calloc(us.nr_fds, sizeof(*e->fds));
		if (!e || (us.nr_fds && !e->fds)) {
			free(e);
			kstate_free(k);
			return -ENOMEM;
		}
		e->sid = us.sid;
		e->gid = us.gid;
		e->generation = us.generation;
		e->nr_fds = e->cap_fds = us.nr_fds;
		e->next = k->list;
		k->list = e;
		for (uint32_t j = 0; j < us.nr_fds; j++)
			e->fds[j].handed = -1;
		for (uint32_t j = 0; j < us.nr_fds; j++) {
			struct ks_up_fd uf;
			int r;

			memcpy(&uf, p, sizeof(uf));
			p += sizeof(uf);
			if (uf.key < 0)
				goto bad_free;
			/* our descriptor of it: found at the next image */
			e->fds[j] = (struct ks_fd){
				.fd = -1, .key = uf.key, .from = -1,
				.dev = uf.dev, .ino = uf.ino, .handed = -1,
			};
			r = uf.handed ? take(arg, uf.handed - 1) : -1;
			if (uf.handed && r < 0) {
				kstate_free(k);
				snprintf(why, whylen, "the kernel state's "
					 "descriptor k%u.%d: %s", us.sid,
					 uf.key, strerror(-r));
				return r;
			}
			e->fds[j].handed = r;
		}
	}
	if (p != end)
		goto bad_free;
	srv->kstate = k;
	return 0;
bad_free:
	kstate_free(k);
bad:
	snprintf(why, whylen, "record %u: the kernel state record is "
		 "malformed", rec.index);
	return -EBADMSG;
}

void kstate_resume(struct server *srv)
{
	struct kstate *k = srv->kstate;
	uint32_t nr = 0, kept = 0, had = 0;

	if (!k)
		return;
	for (struct ks_sess *e = k->list, *next; e && !k->broken; e = next) {
		struct named *nm = sessions_find_by_session(srv, e->sid);
		struct sessions_ident id;

		next = e->next;
		if (!nm) {
			log_warn(srv, "kernel state: session %u is not a named "
				 "session here: its entries leave the store",
				 e->sid);
			forget(k, e);
			continue;
		}
		sessions_ident(nm, &id);
		had += e->nr_fds;
		e->found = 0;
		if (write_session(k, e, &id) < 0)
			kstate_off(k, "a session's state could not be stored "
				   "after the upgrade");
		explicit_bzero(&id, sizeof(id));
		kept += e->found;
		nr++;
	}
	if (kept < had)
		log_warn(srv, "kernel state: %u of the %u descriptor(s) the "
			 "predecessor stored are not this process's: they "
			 "left the store", had - kept, had);
	log_info(srv, "kernel state: taken over (%u session(s), %u stored "
		 "descriptor(s) kept under their names)", nr, kept);
}

/* ---- after a crash ------------------------------------------------------- */

struct passed {
	const int *fds;
	char **names;
	unsigned int n;
	uint32_t sid;			/* the image being read */
};

/* "k<sid>.<fd>" and "kimg<sid>.<g>" */
static bool parse_k(const char *name, const char *prefix, uint32_t *sid,
		    long *num)
{
	size_t len = strlen(prefix);
	char *end;
	unsigned long s;
	long v;

	if (strncmp(name, prefix, len) || name[len] < '0' || name[len] > '9')
		return false;
	errno = 0;
	s = strtoul(name + len, &end, 10);
	if (errno || *end != '.' || !s || s > UINT32_MAX || end[1] < '0' ||
	    end[1] > '9')
		return false;
	v = strtol(end + 1, &end, 10);
	if (errno || *end || v < 0 || v > INT32_MAX)
		return false;
	*sid = (uint32_t)s;
	*num = v;
	return true;
}

static int remap(void *arg, const struct image_fd *f)
{
	const struct passed *p = arg;
	uint32_t sid;
	long num;

	for (unsigned int i = 0; i < p->n; i++)
		if (p->fds[i] >= 0 && parse_k(p->names[i], "k", &sid, &num) &&
		    sid == p->sid && num == f->fd)
			return p->fds[i];
	return -1;
}

struct rebuild {
	struct server *srv;
	struct ks_session_rec rec;
	struct session *session;
	struct session_limits limits;
	uint32_t failed, adopted_kobjs, next_id;
	bool no_adopt;			/* its iommufd is gone */
	bool prev_ok;			/* prev_token: a reclaim's, reply lost? */
	unsigned char prev_token[IOASID_SESSION_TOKEN_LEN];
};

static int open_session(struct rebuild *b)
{
	struct policy_result res;
	int r;

	policy_lookup(b->srv->policy, b->rec.uid, b->rec.gid, NULL, 0, &res);
	if (!res.allow) {
		log_err(b->srv, "kernel state: session \"%s\" of uid %u not "
			"rebuilt: the policy no longer allows that user",
			b->rec.name, b->rec.uid);
		return -EACCES;
	}
	r = server_session_limits(b->srv, &res, &b->limits);
	if (r == 0)
		r = core_session_new(b->srv->core, &b->limits, &b->session);
	if (r < 0) {
		policy_limits_release(&b->limits);
		log_err(b->srv, "kernel state: session \"%s\": cannot make a "
			"session: %s", b->rec.name, strerror(-r));
		return r;
	}
	core_session_set_owner(b->session, 0, b->rec.uid, b->rec.name);
	return 0;
}

/* Replay @img into b->session, going on past what fails (logged). */
static void replay(struct rebuild *b, struct image *img)
{
	struct server *srv = b->srv;
	struct image_rec rec;
	char why[IOASID_ERRMSG_MAX];

	image_rewind(img);
	while (image_next(img, &rec) > 0) {
		struct ioasid_op op;
		struct ioasid_kobj k;
		uint32_t expect;
		int r = 0;

		why[0] = '\0';
		ioasid_op_init(&op, IOASID_CMD_UNSPEC);
		switch (rec.type) {
		case IMAGE_REC_KOBJ:
			r = image_kobj(img, &rec, &k, why, sizeof(why));
			if (r == 0 && k.kind == IOASID_KOBJ_TENANT &&
			    k.fd[0] < 0) {
				snprintf(why, sizeof(why), "its iommufd is "
					 "not in the fd store: its kernel "
					 "objects are gone, made again");
				b->no_adopt = true;
				r = -EBADF;
			} else if (r == 0 && !b->no_adopt) {
				r = core_adopt(b->session, &k, &op);
				b->adopted_kobjs++;
			}
			break;
		case IMAGE_REC_OP:
			r = image_op(img, &rec, &op, srv->outbuf, &expect, why,
				     sizeof(why));
			if (r == 0)
				r = core_replay(b->session, &op, expect);
			close_fd(op.out_fd);
			break;
		case IMAGE_REC_COUNTERS: {
			struct core_ioas_counters c = { 0 };
			struct image_counters ic;

			image_counters_of(&rec, &ic);
			c.ioas_id = ic.ioas_id;
			c.kind = ic.kind;
			c.nr_conversions = ic.nr_conversions;
			c.nr_faults = ic.nr_faults;
			c.next_file_id = ic.next_file_id;
			core_replay_counters(b->session, &c);
			break;
		}
		case IMAGE_REC_NEXT_ID:
			memcpy(&b->next_id, rec.payload, sizeof(b->next_id));
			break;
		case IMAGE_REC_DIRTY:	/* a kernel backend's refuse them */
			r = daemon_replay_dirty(b->session, &rec, why,
						sizeof(why));
			break;
		}
		if (r < 0) {
			b->failed++;
			log_err(srv, "kernel state: session \"%s\": record %u "
				"(%s): %s", b->rec.name, rec.index,
				rec.type == IMAGE_REC_OP ?
				proto_cmd_name(op.cmd) :
				rec.type == IMAGE_REC_DIRTY ? "dirty pages" :
				"kernel object",
				why[0] ? why : op.errmsg[0] ? op.errmsg :
				strerror(-r));
		}
	}
}

/*
 * The newest readable image of session @sid; NULL when none.  *@prev_ok:
 * it has the token of a reclaim whose reply may be lost, in @prev.
 */
static struct image *newest(struct server *srv, struct passed *p,
			    uint32_t sid, struct ks_session_rec *out,
			    bool *prev_ok, unsigned char *prev)
{
	struct image *best = NULL;
	uint64_t best_gen = 0;

	p->sid = sid;
	for (unsigned int i = 0; i < p->n; i++) {
		char why[IOASID_ERRMSG_MAX];
		struct ks_session_rec rec;
		struct image_rec r;
		struct image *img;
		unsigned char tok[IOASID_SESSION_TOKEN_LEN] = { 0 };
		uint32_t s;
		long g;
		bool found = false, has_prev = false;

		if (p->fds[i] < 0 || !parse_k(p->names[i], "kimg", &s, &g) ||
		    s != sid)
			continue;
		if (image_read_remap(p->fds[i], &img, remap, p, why,
				     sizeof(why)) < 0) {
			log_err(srv, "kernel state: %s cannot be read: %s",
				p->names[i], why);
			continue;
		}
		while (image_next(img, &r) > 0) {
			if (r.type == IMAGE_REC_DAEMON_KSTATE && !found &&
			    r.len == sizeof(rec)) {
				memcpy(&rec, r.payload, sizeof(rec));
				found = true;
			} else if (r.type == IMAGE_REC_DAEMON_KSTATE_PREV &&
				   r.len == sizeof(tok)) {
				memcpy(tok, r.payload, sizeof(tok));
				has_prev = true;
			}
		}
		if (!found || !img->uri || strcmp(img->uri, srv->backend_uri)) {
			log_err(srv, "kernel state: %s is not a session of "
				"this backend (%s)", p->names[i],
				img->uri ? img->uri : "?");
			image_free(img);
			explicit_bzero(tok, sizeof(tok));
			continue;
		}
		if (!best || rec.generation > best_gen) {
			image_free(best);
			best = img;
			best_gen = rec.generation;
			*out = rec;
			*prev_ok = has_prev;
			memcpy(prev, tok, sizeof(tok));
		} else {
			image_free(img);
		}
		explicit_bzero(tok, sizeof(tok));
		explicit_bzero(&rec, sizeof(rec));
	}
	return best;
}

static uint32_t rebuild_all(struct kstate *k, struct passed *p,
			    uint32_t *max_id)
{
	struct server *srv = k->srv;
	uint32_t done = 0;

	for (unsigned int i = 0; i < p->n; i++) {
		struct rebuild b = { .srv = srv };
		struct image *img;
		struct ioasid_op why;
		uint32_t sid;
		long g;
		int n, r;

		if (p->fds[i] < 0 || !parse_k(p->names[i], "kimg", &sid, &g))
			continue;
		/* each session once: at its first image */
		for (unsigned int j = 0; j < i; j++) {
			uint32_t s2;
			long g2;

			if (parse_k(p->names[j], "kimg", &s2, &g2) &&
			    s2 == sid)
				sid = 0;
		}
		if (!sid || !(img = newest(srv, p, sid, &b.rec, &b.prev_ok,
					   b.prev_token)))
			continue;
		b.rec.name[sizeof(b.rec.name) - 1] = '\0';
		if (img->nr_missing)
			log_err(srv, "kernel state: session \"%s\": %u "
				"descriptor(s) it names are not in the fd "
				"store (or are other files): what needs them "
				"is not rebuilt", b.rec.name, img->nr_missing);
		if (open_session(&b) < 0) {
			image_free(img);
			continue;
		}
		replay(&b, img);
		image_free(img);
		ioasid_op_init(&why, IOASID_CMD_UNSPEC);
		n = core_adopt_end(b.session, &why);
		if (n != 0)
			log_warn(srv, "kernel state: session \"%s\": %d kernel "
				 "object(s) or mapping(s) made again or not "
				 "taken over: %s", b.rec.name, n, why.errmsg);
		if (b.next_id > *max_id)
			*max_id = b.next_id;
		r = sessions_restore(srv, b.rec.name, b.rec.uid,
				     b.rec.linger_s, b.rec.token,
				     b.prev_ok ? b.prev_token : NULL,
				     &b.rec.resume,
				     b.session, &b.limits);
		explicit_bzero(b.rec.token, sizeof(b.rec.token));
		explicit_bzero(b.prev_token, sizeof(b.prev_token));
		if (r < 0) {
			log_err(srv, "kernel state: session \"%s\" not "
				"rebuilt: %s", b.rec.name, strerror(-r));
			core_session_free(b.session);
			policy_limits_release(&b.limits);
			continue;
		}
		log_info(srv, "kernel state: session \"%s\" of uid %u rebuilt "
			 "(%u kernel object(s) adopted, %u record(s) failed, "
			 "%d made again)", b.rec.name, b.rec.uid,
			 b.adopted_kobjs, b.failed, n > 0 ? n : 0);
		/* stored again below, under its new id */
		{
			struct ks_sess *e = calloc(1, sizeof(*e));

			if (e) {
				e->sid = core_session_id(b.session);
				e->gid = b.rec.gid;
				e->next = k->list;
				k->list = e;
			}
		}
		done++;
	}
	return done;
}

int kstate_start(struct server *srv, const int *fds, char **names,
		 unsigned int n)
{
	struct kstate *k = calloc(1, sizeof(*k));
	struct passed p = { .fds = fds, .names = names, .n = n };
	uint32_t max_id = core_next_id(srv->core), done;

	if (!k) {
		for (unsigned int i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return -ENOMEM;
	}
	k->srv = srv;
	srv->kstate = k;
	for (unsigned int i = 0; i < n; i++) {
		uint32_t sid;
		long v;

		if (fds[i] >= 0 && !parse_k(names[i], "kimg", &sid, &v) &&
		    !parse_k(names[i], "k", &sid, &v))
			log_warn(srv, "the fd store passed \"%s\", which "
				 "ioasidd does not know on this backend: "
				 "closed", names[i]);
	}
	done = rebuild_all(k, &p, &max_id);
	core_set_next_id(srv->core, max_id);
	/* the old names go first: the store keeps one copy of a file */
	for (unsigned int i = 0; i < n; i++) {
		sd_fdstore_remove(names[i]);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	for (struct ks_sess *e = k->list; e; e = e->next) {
		struct named *nm = sessions_find_by_session(srv, e->sid);
		struct sessions_ident id;

		if (!nm)
			continue;
		sessions_ident(nm, &id);
		if (write_session(k, e, &id) < 0)
			kstate_off(k, "a rebuilt session could not be stored");
		explicit_bzero(&id, sizeof(id));
	}
	if (n)
		log_info(srv, "kernel state: %u session(s) rebuilt", done);
	return 0;
}

void kstate_free(struct kstate *k)
{
	if (!k)
		return;
	while (k->list) {
		struct ks_sess *e = k->list;

		k->list = e->next;
		close_handed(e->fds, e->nr_fds);
		free(e->fds);
		free(e);
	}
	free(k);
}
