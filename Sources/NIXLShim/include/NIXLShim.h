// A small C face over NIXL's C API (libnixl_capi.so from the PyPI wheel
// nixl-cu12 / nixl-cu13), loaded at run time with dlopen so PDServe builds
// and runs without NIXL. The wheel ships no header: the few declarations
// this shim needs are its own, and every symbol is checked with dlsym at load.
#ifndef PDSERVE_NIXL_SHIM_H
#define PDSERVE_NIXL_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One NIXL agent with one backend and its registered memory.
typedef struct pds_nixl pds_nixl;

/// Loads the library at `path` once per process and resolves every function
/// the shim uses. 0 on success; otherwise `error` says what is missing.
int pds_nixl_load(const char *path, char *error, size_t error_capacity);

/// Whether the loaded library is NIXL's stub build (no real transfers).
int pds_nixl_is_stub(void);

/// An agent named `name` (progress thread off: progress is driven by this
/// shim's polling; strict thread sync: several transfer threads share it)
/// with a `plugin` backend ("UCX"), its default parameters overridden by
/// `count` key/value pairs. NULL on failure, with `error` set.
pds_nixl *pds_nixl_open(const char *name, const char *plugin, const char *const *keys, const char *const *values,
                        size_t count, char *error, size_t error_capacity);
void pds_nixl_close(pds_nixl *nixl);

/// Drives the agent's progress once (with the progress thread off, a target
/// must poll for peers to connect and write; this is that poll).
int pds_nixl_progress(pds_nixl *nixl);

/// Registers host memory [base, base + length) with the backend.
int pds_nixl_register(pds_nixl *nixl, void *base, size_t length, char *error, size_t error_capacity);

/// This agent's metadata for peers; free it with `pds_nixl_free`.
int pds_nixl_local_metadata(pds_nixl *nixl, void **data, size_t *length);
void pds_nixl_free(void *data);

/// Loads a peer's metadata; writes the peer agent's name into `name`.
int pds_nixl_load_remote(pds_nixl *nixl, const void *data, size_t length, char *name, size_t name_capacity,
                         char *error, size_t error_capacity);
/// Drops what was loaded for a peer.
void pds_nixl_forget_remote(pds_nixl *nixl, const char *name);

/// WRITEs `count` ranges (local address → remote address, length) into the
/// peer's registered memory and returns once NIXL reports the transfer done
/// (with UCX, done means the bytes are in the peer's memory) or failed —
/// never while any of it can still land. 0 on success.
int pds_nixl_write(pds_nixl *nixl, const char *remote, const uint64_t *local_addresses, const uint64_t *remote_addresses,
                   const uint64_t *lengths, size_t count, char *error, size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
