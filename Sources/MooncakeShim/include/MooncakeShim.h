// A small C face over Mooncake's transfer engine (create an engine, register
// memory, open a segment, batch write and wait for its status), loaded at
// run time with dlopen so PDServe builds and runs without Mooncake. Behind
// it: either the C++ methods of mooncake::TransferEngine that the PyPI
// wheel exports (it ships no C API; the ABI of one pinned wheel build, every
// symbol resolved at load), or Mooncake's own C API (transfer_engine_c.h)
// of a source-built libtransfer_engine.so.
#ifndef PDSERVE_MOONCAKE_SHIM_H
#define PDSERVE_MOONCAKE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One transfer engine in P2P-handshake mode with its registered memory.
typedef struct pds_mooncake pds_mooncake;

/// Loads `engine_path` (the wheel's mooncake/engine.so, or a
/// libtransfer_engine.so that exports createTransferEngine) once per process,
/// after `python_library` (a libpython, loaded globally only so the
/// extension's CPython symbols resolve: nothing in it is called; NULL to
/// skip), and resolves every method the shim calls. 0 on success.
int pds_mooncake_load(const char *engine_path, const char *python_library, char *error, size_t error_capacity);

/// An engine whose segment other engines reach at `host` (an address or
/// name, no port; Mooncake picks its RPC port and listens on every
/// interface). `devices`: a comma-separated RDMA device filter, or NULL for
/// every device (the C API takes none: a filter is refused there); with no
/// RDMA device, or MC_FORCE_TCP set, Mooncake uses TCP.
pds_mooncake *pds_mooncake_open(const char *host, const char *devices, char *error, size_t error_capacity);
void pds_mooncake_close(pds_mooncake *engine);

/// This engine's segment name, "host:rpc_port", what a peer opens.
int pds_mooncake_session(pds_mooncake *engine, char *session, size_t capacity);

/// Registers host memory [base, base + length) for remote access.
int pds_mooncake_register(pds_mooncake *engine, void *base, size_t length, char *error, size_t error_capacity);

/// Opens a peer's segment by its session name.
int pds_mooncake_open_segment(pds_mooncake *engine, const char *session, uint64_t *segment, char *error, size_t error_capacity);
void pds_mooncake_close_segment(pds_mooncake *engine, uint64_t segment);

/// WRITEs `count` ranges (local address → address in the peer's registered
/// memory, length) as one batch and returns once Mooncake reports every one
/// completed (the TCP transport completes only after the peer acknowledged
/// the bytes) or the batch failed — never while any of it can still land.
int pds_mooncake_write(pds_mooncake *engine, uint64_t segment, const uint64_t *local_addresses,
                       const uint64_t *remote_addresses, const uint64_t *lengths, size_t count, char *error,
                       size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
