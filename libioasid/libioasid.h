/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libioasid - manage I/O address spaces for virtual machine monitors.
 *
 * Conventions
 *  - Every function that can fail returns 0 or a negative errno and passes
 *    results through out-parameters; out-parameters are untouched on error.
 *  - A failed call changes nothing: no half-applied state.
 *  - After a failure, ioasid_last_error() gives a sentence saying why, for
 *    messages to users.
 *  - Objects inside a context (address spaces, devices, VMs) are named by
 *    non-zero 32-bit ids, as in the Linux iommufd uAPI; an id that does not
 *    exist, or belongs to another client of ioasidd, is -ENOENT.
 *  - The library never exits, aborts or prints on its own: messages go to
 *    the log function (by default: nowhere unless $IOASID_LOG is set).
 *
 * Thread safety
 *  - A context may be used from several threads at once; calls on one
 *    context are serialised internally except ioasid_lookup() and device
 *    DMA, which run concurrently with map and unmap.
 *  - ioasid_ref()/ioasid_unref() are atomic; the last unref must not race
 *    with other calls on the context.
 *  - The log function may be called from any thread that calls into the
 *    library.
 *
 * Full documentation: libioasid(3) and one page per function family.
 */
#ifndef _LIBIOASID_H_
#define _LIBIOASID_H_

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>

#include <ioasid/ioasid.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ioasid_ctx;

/* ---- context --------------------------------------------------------- */

/*
 * uri chooses where the address spaces live:
 *   "sim"               simulated IOMMU, built-in topology (the default)
 *   "sim:PATH"          simulated IOMMU, topology file PATH
 *   "iommufd"           Linux /dev/iommu
 *   "vfio-type1"        Linux VFIO type1 containers
 *   "unix:PATH"         a running ioasidd at socket PATH
 * NULL means $IOASID_URI, or "sim" when that is unset.
 */
int ioasid_new(const char *uri, struct ioasid_ctx **ctx);
struct ioasid_ctx *ioasid_ref(struct ioasid_ctx *ctx);
struct ioasid_ctx *ioasid_unref(struct ioasid_ctx *ctx);

typedef void (*ioasid_log_fn)(void *data, int priority, const char *file,
			      int line, const char *fn, const char *format,
			      va_list args);
void ioasid_set_log_fn(struct ioasid_ctx *ctx, ioasid_log_fn log_fn,
		       void *data);
int ioasid_get_log_priority(const struct ioasid_ctx *ctx);
void ioasid_set_log_priority(struct ioasid_ctx *ctx, int priority);

/* "sim", "iommufd", "vfio-type1"; for "unix:" the daemon's backend. */
const char *ioasid_get_backend(struct ioasid_ctx *ctx);
/* Non-zero when the context talks to ioasidd. */
int ioasid_is_remote(const struct ioasid_ctx *ctx);
/* Why the last failed call on this thread failed; never NULL. */
const char *ioasid_last_error(struct ioasid_ctx *ctx);

/* ---- sessions that outlive their connection (ioasidd) ---------------- */

/*
 * Through ioasidd a session may be named; with the policy's linger it
 * outlives its connection, and a process of the same uid presenting the
 * name and the reclaim token takes it over (ioasid_session(3)).  The
 * URI "unix:PATH?session=NAME&token-file=FILE" does the same at
 * ioasid_new(): it reclaims when FILE holds a token, else names a new
 * session, and leaves the current token in FILE.
 */
int ioasid_session_name(struct ioasid_ctx *ctx, const char *name,
			uint32_t *linger_s);
/* Hex text, IOASID_SESSION_TOKEN_HEX bytes with the NUL; single use. */
int ioasid_session_token(struct ioasid_ctx *ctx, char *token, size_t size);
int ioasid_session_reclaim(struct ioasid_ctx *ctx, const char *name,
			   const char *token);
int ioasid_session_list(struct ioasid_ctx *ctx,
			struct ioasid_session_info *sessions, uint32_t *nr);
int ioasid_session_drop(struct ioasid_ctx *ctx, const char *name);
/* Root: have ioasidd re-execute @binary (NULL: itself) without a gap. */
int ioasid_daemon_upgrade(struct ioasid_ctx *ctx, const char *binary,
			  uint32_t *pid);

/* ---- handing a context to a successor across exec (embedded) --------- */

/*
 * The context's whole state as a sealed memfd (ioasid_ctx_export(3)): its
 * descriptor and every file the state needs stay open without FD_CLOEXEC
 * for the new program image, which rebuilds the context from it.
 */
int ioasid_ctx_export(struct ioasid_ctx *ctx, int *memfd);
int ioasid_ctx_import(int memfd, struct ioasid_ctx **ctx);
/* A hand-over given up: close the files an exported image kept open. */
int ioasid_ctx_export_abandon(int memfd);

/* ---- address spaces -------------------------------------------------- */

int ioasid_ioas_alloc(struct ioasid_ctx *ctx, uint32_t flags,
		      uint32_t *ioas_id);
int ioasid_ioas_destroy(struct ioasid_ctx *ctx, uint32_t ioas_id);
int ioasid_ioas_set_snoop_mode(struct ioasid_ctx *ctx, uint32_t ioas_id,
			       uint32_t mode);
int ioasid_ioas_get_info(struct ioasid_ctx *ctx, uint32_t ioas_id,
			 struct ioasid_ioas_info *info);
/* Ids of this client's IOASes; -EMSGSIZE with *nr set when too small. */
int ioasid_ioas_list(struct ioasid_ctx *ctx, uint32_t *ids, uint32_t *nr);

int ioasid_map_file(struct ioasid_ctx *ctx, uint32_t ioas_id, int fd,
		    uint64_t offset, uint64_t length, uint32_t flags,
		    uint64_t *iova);
/* More of a file the IOAS holds (its file_id), with no descriptor. */
int ioasid_map_file_id(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       uint32_t file_id, uint64_t offset, uint64_t length,
		       uint32_t flags, uint64_t *iova);
int ioasid_map_user(struct ioasid_ctx *ctx, uint32_t ioas_id, void *vaddr,
		    uint64_t length, uint32_t flags, uint64_t *iova);
/* At most what one ioasidd message carries (64 KiB of entries). */
#define IOASID_MAP_BATCH_MAX 2730
int ioasid_map_file_batch(struct ioasid_ctx *ctx, uint32_t ioas_id, int fd,
			  const struct ioasid_map_entry *entries, uint32_t nr,
			  uint32_t flags, uint64_t *iovas);
int ioasid_unmap(struct ioasid_ctx *ctx, uint32_t ioas_id, uint64_t iova,
		 uint64_t length, uint32_t flags, uint64_t *unmapped);
int ioasid_unmap_all(struct ioasid_ctx *ctx, uint32_t ioas_id,
		     uint64_t *unmapped);
int ioasid_copy(struct ioasid_ctx *ctx, uint32_t dst_ioas_id,
		uint32_t src_ioas_id, uint64_t src_iova, uint64_t length,
		uint32_t flags, uint64_t *dst_iova);

int ioasid_iova_ranges(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       struct ioasid_iova_range *ranges, uint32_t *nr,
		       uint64_t *alignment);
int ioasid_allow_iovas(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       const struct ioasid_iova_range *ranges, uint32_t nr);

/* The mapping containing iova. */
int ioasid_lookup(struct ioasid_ctx *ctx, uint32_t ioas_id, uint64_t iova,
		  struct ioasid_mapping *mapping);
/* The first mapping that ends at or after iova (for walks). */
int ioasid_mapping_next(struct ioasid_ctx *ctx, uint32_t ioas_id,
			uint64_t iova, struct ioasid_mapping *mapping);
int ioasid_file_get_info(struct ioasid_ctx *ctx, uint32_t ioas_id,
			 uint32_t file_id, struct ioasid_file_info *info);

/* Walk every mapping of an IOAS in IOVA order. */
#define ioasid_mapping_foreach(ctx, ioas_id, m)				\
	for (int _ioasid_err = ioasid_mapping_next(ctx, ioas_id, 0, (m)); \
	     !_ioasid_err;						\
	     _ioasid_err = ((m)->iova + (m)->length == 0) ? -1 :		\
		ioasid_mapping_next(ctx, ioas_id,			\
				    (m)->iova + (m)->length, (m)))

/*
 * Dirty tracking for live migration: start (every domain of the IOAS;
 * @flags IOASID_DIRTY_START_FALLBACK), stop, read (and clear) one bit per
 * 4 KiB page from @iova, and unmap returning the bits of what it removes.
 */
int ioasid_dirty_start(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       uint32_t flags);
int ioasid_dirty_stop(struct ioasid_ctx *ctx, uint32_t ioas_id);
int ioasid_dirty_read(struct ioasid_ctx *ctx, uint32_t ioas_id, uint64_t iova,
		      uint64_t length, uint64_t *bitmap, uint32_t flags);
int ioasid_unmap_get_dirty(struct ioasid_ctx *ctx, uint32_t ioas_id,
			   uint64_t iova, uint64_t length, uint32_t flags,
			   uint64_t *bitmap, uint64_t *unmapped);

/* ---- confidential memory ----------------------------------------------- */

/*
 * Make pages of a restricted IOAS private (unreachable by DMA when this
 * returns) or shared, for a batch of ranges; all or nothing.
 * @flags: IOASID_CONVERT_PRIVATE or IOASID_CONVERT_SHARED.
 * @converted: bytes whose state changed (may be NULL).
 */
int ioasid_convert(struct ioasid_ctx *ctx, uint32_t ioas_id,
		   const struct ioasid_iova_range *ranges, uint32_t nr,
		   uint32_t flags, uint64_t *converted);

/* ---- IOMMUs, devices, domains -------------------------------------------- */

int ioasid_iommu_list(struct ioasid_ctx *ctx, struct ioasid_iommu_info *iommus,
		      uint32_t *nr);
int ioasid_device_list(struct ioasid_ctx *ctx,
		       struct ioasid_device_info *devices, uint32_t *nr);
int ioasid_device_get_info(struct ioasid_ctx *ctx, const char *name,
			   struct ioasid_device_info *info);
/* @vfio_fd: the VFIO cdev for real devices; -1 lets the library open it. */
int ioasid_device_bind(struct ioasid_ctx *ctx, const char *name, int vfio_fd,
		       uint32_t *dev_id);
int ioasid_device_unbind(struct ioasid_ctx *ctx, uint32_t dev_id);
int ioasid_device_attach(struct ioasid_ctx *ctx, uint32_t dev_id,
			 uint32_t ioas_id, uint32_t flags);
int ioasid_device_replace(struct ioasid_ctx *ctx, uint32_t dev_id,
			  uint32_t ioas_id, uint32_t flags);
int ioasid_device_detach(struct ioasid_ctx *ctx, uint32_t dev_id);
/* A new fd of the device's VFIO file (cdev or group): the caller owns it. */
int ioasid_device_get_fd(struct ioasid_ctx *ctx, uint32_t dev_id, int *fd);
int ioasid_domain_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       struct ioasid_domain_info *domains, uint32_t *nr);
/*
 * PASIDs of a bound device (its PCIe PASID capability and its IOMMU's
 * support required: ioasid_device_info.pasid_bits): each to a domain of
 * an IOAS, as the device's own requests are with ioasid_device_attach.
 * @flags: 0.
 */
int ioasid_device_pasid_attach(struct ioasid_ctx *ctx, uint32_t dev_id,
			       uint32_t pasid, uint32_t ioas_id,
			       uint32_t flags);
int ioasid_device_pasid_replace(struct ioasid_ctx *ctx, uint32_t dev_id,
				uint32_t pasid, uint32_t ioas_id,
				uint32_t flags);
int ioasid_device_pasid_detach(struct ioasid_ctx *ctx, uint32_t dev_id,
			       uint32_t pasid);
int ioasid_device_pasid_list(struct ioasid_ctx *ctx, uint32_t dev_id,
			     struct ioasid_pasid_info *pasids, uint32_t *nr);

/* ---- nested tables (stage 1 over a nest-parent IOAS) --------------------- */

int ioasid_nested_alloc(struct ioasid_ctx *ctx, uint32_t ioas_id,
			uint32_t dev_id, uint32_t type, const void *data,
			uint32_t len, uint32_t flags, uint32_t *nested_id);
int ioasid_nested_destroy(struct ioasid_ctx *ctx, uint32_t nested_id);
int ioasid_device_attach_nested(struct ioasid_ctx *ctx, uint32_t dev_id,
				uint32_t nested_id, uint32_t flags);
int ioasid_device_replace_nested(struct ioasid_ctx *ctx, uint32_t dev_id,
				 uint32_t nested_id, uint32_t flags);
/* A PASID of the device on a nested table (detach, list: as for an IOAS). */
int ioasid_device_pasid_attach_nested(struct ioasid_ctx *ctx, uint32_t dev_id,
				      uint32_t pasid, uint32_t nested_id,
				      uint32_t flags);
int ioasid_device_pasid_replace_nested(struct ioasid_ctx *ctx,
				       uint32_t dev_id, uint32_t pasid,
				       uint32_t nested_id, uint32_t flags);
/* @nr: in the entries, out those done; @errors: NULL or one per entry. */
int ioasid_nested_invalidate(struct ioasid_ctx *ctx, uint32_t nested_id,
			     const struct ioasid_nested_inval *entries,
			     uint32_t *nr, int32_t *errors);
int ioasid_nested_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       struct ioasid_nested_info *tables, uint32_t *nr);

/* ---- vIOMMUs (a VM's slice of an IOMMU over a nest-parent IOAS) ---------- */

int ioasid_viommu_alloc(struct ioasid_ctx *ctx, uint32_t ioas_id,
			uint32_t dev_id, uint32_t type, uint32_t flags,
			uint32_t *viommu_id);
int ioasid_viommu_destroy(struct ioasid_ctx *ctx, uint32_t viommu_id);
int ioasid_vdevice_alloc(struct ioasid_ctx *ctx, uint32_t viommu_id,
			 uint32_t dev_id, uint64_t virt_id,
			 uint32_t *vdevice_id);
int ioasid_vdevice_destroy(struct ioasid_ctx *ctx, uint32_t vdevice_id);
/* A nested table on the vIOMMU: as ioasid_nested_alloc() on its parent. */
int ioasid_viommu_nested_alloc(struct ioasid_ctx *ctx, uint32_t viommu_id,
			       uint32_t dev_id, uint32_t type,
			       const void *data, uint32_t len, uint32_t flags,
			       uint32_t *nested_id);
/* @nr: in the entries, out those done; @errors: NULL or one per entry. */
int ioasid_viommu_invalidate(struct ioasid_ctx *ctx, uint32_t viommu_id,
			     const struct ioasid_viommu_inval *entries,
			     uint32_t *nr, int32_t *errors);
int ioasid_viommu_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
		       struct ioasid_viommu_info *viommus, uint32_t *nr);
int ioasid_vdevice_list(struct ioasid_ctx *ctx, uint32_t ioas_id,
			struct ioasid_vdevice_info *vdevices, uint32_t *nr);

/* ---- KVM ---------------------------------------------------------------- */

/*
 * Tie a KVM VM to the context.  @kvm_vfio_fd: the VM's kvm-vfio device if
 * the VMM already created it (KVM allows one per VM), else -1.
 */
int ioasid_vm_bind(struct ioasid_ctx *ctx, int kvm_vm_fd, int kvm_vfio_fd,
		   uint32_t *vm_id);
int ioasid_vm_unbind(struct ioasid_ctx *ctx, uint32_t vm_id);
int ioasid_vm_get_info(struct ioasid_ctx *ctx, uint32_t vm_id,
		       struct ioasid_vm_info *info);
int ioasid_vm_list(struct ioasid_ctx *ctx, uint32_t *ids, uint32_t *nr);
/* @flags: IOASID_VM_FORBID_NONCOHERENT or 0. */
int ioasid_vm_set_policy(struct ioasid_ctx *ctx, uint32_t vm_id,
			 uint32_t flags);
/* Put a bound device in a VM (0: none) before or after attaching it. */
int ioasid_device_set_vm(struct ioasid_ctx *ctx, uint32_t dev_id,
			 uint32_t vm_id);

/* ---- faults, events, status ----------------------------------------------- */

int ioasid_fault_read(struct ioasid_ctx *ctx, struct ioasid_fault *faults,
		      uint32_t *nr);
/*
 * Recoverable faults (ioasid_fault_queue_alloc(3)): a fault queue of an
 * IOAS or nested table takes its devices' page requests; *@fd (the
 * caller's) polls readable while records wait.  @depth 0 and @timeout_ms
 * 0 mean the defaults (IOASID_FAULT_QUEUE_DEPTH_DEFAULT, ..._TIMEOUT_...).
 */
int ioasid_fault_queue_alloc(struct ioasid_ctx *ctx, uint32_t target_id,
			     uint32_t depth, uint32_t timeout_ms,
			     uint32_t flags, uint32_t *fault_id, int *fd);
int ioasid_fault_queue_destroy(struct ioasid_ctx *ctx, uint32_t fault_id);
/* *@nr in: room, out: records taken (0: none waited). */
int ioasid_fault_queue_read(struct ioasid_ctx *ctx, uint32_t fault_id,
			    struct ioasid_page_request *requests,
			    uint32_t *nr);
/* @code: IOASID_PAGE_RESPONSE_SUCCESS or IOASID_PAGE_RESPONSE_INVALID. */
int ioasid_fault_respond(struct ioasid_ctx *ctx, uint32_t fault_id,
			 uint32_t cookie, uint32_t code);
int ioasid_fault_queue_info(struct ioasid_ctx *ctx, uint32_t fault_id,
			    struct ioasid_fault_queue_info *info);
/* -EMSGSIZE with *nr set when too small. */
int ioasid_fault_queue_list(struct ioasid_ctx *ctx,
			    struct ioasid_fault_queue_info *queues,
			    uint32_t *nr);
/* @groups: IOASID_EVENT_GROUP_* bits (0 unsubscribes). */
int ioasid_event_subscribe(struct ioasid_ctx *ctx, uint32_t groups);
/* A descriptor that polls readable while events are queued. */
int ioasid_event_get_fd(struct ioasid_ctx *ctx);
/* Take one event; -EAGAIN when none is queued. */
int ioasid_event_read(struct ioasid_ctx *ctx, struct ioasid_event *event);
int ioasid_get_status(struct ioasid_ctx *ctx, struct ioasid_status *status);
/*
 * See (read-only) every client's address spaces, devices and VMs: for
 * ioasidctl and monitoring.  Through ioasidd, policy decides who may.
 */
int ioasid_set_observer(struct ioasid_ctx *ctx, int on);

/* ---- simulator only ------------------------------------------------------ */

/*
 * For tests and demonstrations of the simulated IOMMU; exported in their
 * own version node, LIBIOASID_SIM_1, so VMMs need not link against them.
 */
/* A simulated device does DMA of @length bytes at @iova into/from @buf. */
int ioasid_device_dma(struct ioasid_ctx *ctx, uint32_t dev_id, uint64_t iova,
		      void *buf, uint64_t length, uint32_t flags,
		      uint64_t *done);
/* The same DMA tagged with @pasid (LIBIOASID_SIM_2). */
int ioasid_device_dma_pasid(struct ioasid_ctx *ctx, uint32_t dev_id,
			    uint32_t pasid, uint64_t iova, void *buf,
			    uint64_t length, uint32_t flags, uint64_t *done);
/* Unplug (0) or plug back (1) a simulated device. */
int ioasid_sim_hotplug(struct ioasid_ctx *ctx, const char *name, int present);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* _LIBIOASID_H_ */
