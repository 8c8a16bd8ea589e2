#define _GNU_SOURCE
#include "NIXLShim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Our declarations of NIXL's C API (names and signatures as the wheel's
// libnixl_capi.so exports them). Handles are opaque pointers.
typedef void *agent_t, *backend_t, *params_t, *mem_list_t, *opt_args_t, *reg_dlist_t, *xfer_dlist_t, *xfer_req_t, *notif_map_t;
enum { CAPI_SUCCESS = 0, CAPI_IN_PROG = 1 };
enum { MEM_DRAM = 0 };
enum { XFER_WRITE = 1 };
enum { THREAD_SYNC_STRICT = 1 };

// nixl_capi_agent_config_t, field by field (offsets checked against 1.5.1).
typedef struct {
    bool enable_prog_thread;
    bool enable_listen_thread;
    uint16_t listen_port;
    int thread_sync;
    unsigned int num_workers;
    uint64_t pthr_delay_us;
    uint64_t lthr_delay_us;
    bool capture_telemetry;
} agent_config_t;

static struct {
    int (*create_configured_agent)(const char *, const agent_config_t *, agent_t *);
    int (*destroy_agent)(agent_t);
    int (*get_plugin_params)(agent_t, const char *, mem_list_t *, params_t *);
    int (*params_add)(params_t, const char *, const char *);
    int (*destroy_mem_list)(mem_list_t);
    int (*destroy_params)(params_t);
    int (*create_backend)(agent_t, const char *, params_t, backend_t *);
    int (*destroy_backend)(backend_t);
    int (*create_opt_args)(opt_args_t *);
    int (*destroy_opt_args)(opt_args_t);
    int (*opt_args_add_backend)(opt_args_t, backend_t);
    int (*create_reg_dlist)(int, reg_dlist_t *, bool);
    int (*reg_dlist_add_desc)(reg_dlist_t, uintptr_t, size_t, uint64_t, const void *, size_t);
    int (*destroy_reg_dlist)(reg_dlist_t);
    int (*register_mem)(agent_t, reg_dlist_t, opt_args_t);
    int (*deregister_mem)(agent_t, reg_dlist_t, opt_args_t);
    int (*get_local_md)(agent_t, void **, size_t *);
    int (*load_remote_md)(agent_t, const void *, size_t, char **);
    int (*invalidate_remote_md)(agent_t, const char *);
    int (*create_xfer_dlist)(int, xfer_dlist_t *, bool);
    int (*xfer_dlist_add_desc)(xfer_dlist_t, uintptr_t, size_t, uint64_t);
    int (*destroy_xfer_dlist)(xfer_dlist_t);
    int (*create_xfer_req)(agent_t, int, xfer_dlist_t, xfer_dlist_t, const char *, xfer_req_t *, opt_args_t);
    int (*post_xfer_req)(agent_t, xfer_req_t, opt_args_t);
    int (*get_xfer_status)(agent_t, xfer_req_t);
    int (*release_xfer_req)(agent_t, xfer_req_t);
    int (*destroy_xfer_req)(xfer_req_t);
    int (*create_notif_map)(notif_map_t *);
    int (*destroy_notif_map)(notif_map_t);
    int (*get_notifs)(agent_t, notif_map_t, opt_args_t);
    int (*notif_map_clear)(notif_map_t);
    bool (*is_stub)(void);
} api;

struct pds_nixl {
    agent_t agent;
    backend_t backend;
    opt_args_t backend_args;
    reg_dlist_t registered;
    notif_map_t notifications;
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static void *library;

static void say(char *error, size_t capacity, const char *format, const char *detail, int code) {
    if (error && capacity) snprintf(error, capacity, format, detail, code);
}

int pds_nixl_load(const char *path, char *error, size_t error_capacity) {
    pthread_mutex_lock(&load_lock);
    int result = 0;
    if (library) goto done;
    // UCX's EFA module links the system's libefa, and with it the system's
    // libibverbs and libnl beside the copies the wheel bundles under other
    // file names. UCX loads its modules into the global namespace, so the
    // two libnl copies bind to each other and one's destructors crash the
    // process at exit (SIGSEGV in rtnl_tc_unregister) on any host with
    // Debian's ibverbs-providers. EFA needs NIXL's LIBFABRIC backend anyway;
    // leave UCX_MODULES alone when the user set it.
    setenv("UCX_MODULES", "^*efa*", 0);
    // RTLD_LOCAL: UCX and NIXL's own dependencies stay out of the global namespace.
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        say(error, error_capacity, "cannot load %s (%d)", dlerror(), 0);
        result = -1;
        goto done;
    }
#define RESOLVE(field, symbol)                                                             \
    *(void **)(&api.field) = dlsym(handle, symbol);                                        \
    if (!api.field) {                                                                      \
        say(error, error_capacity, "%s does not export " symbol " (version mismatch?)", path, 0); \
        dlclose(handle);                                                                   \
        memset(&api, 0, sizeof api);                                                       \
        result = -1;                                                                       \
        goto done;                                                                         \
    }
    RESOLVE(create_configured_agent, "nixl_capi_create_configured_agent")
    RESOLVE(destroy_agent, "nixl_capi_destroy_agent")
    RESOLVE(get_plugin_params, "nixl_capi_get_plugin_params")
    RESOLVE(params_add, "nixl_capi_params_add")
    RESOLVE(destroy_mem_list, "nixl_capi_destroy_mem_list")
    RESOLVE(destroy_params, "nixl_capi_destroy_params")
    RESOLVE(create_backend, "nixl_capi_create_backend")
    RESOLVE(destroy_backend, "nixl_capi_destroy_backend")
    RESOLVE(create_opt_args, "nixl_capi_create_opt_args")
    RESOLVE(destroy_opt_args, "nixl_capi_destroy_opt_args")
    RESOLVE(opt_args_add_backend, "nixl_capi_opt_args_add_backend")
    RESOLVE(create_reg_dlist, "nixl_capi_create_reg_dlist")
    RESOLVE(reg_dlist_add_desc, "nixl_capi_reg_dlist_add_desc")
    RESOLVE(destroy_reg_dlist, "nixl_capi_destroy_reg_dlist")
    RESOLVE(register_mem, "nixl_capi_register_mem")
    RESOLVE(deregister_mem, "nixl_capi_deregister_mem")
    RESOLVE(get_local_md, "nixl_capi_get_local_md")
    RESOLVE(load_remote_md, "nixl_capi_load_remote_md")
    RESOLVE(invalidate_remote_md, "nixl_capi_invalidate_remote_md")
    RESOLVE(create_xfer_dlist, "nixl_capi_create_xfer_dlist")
    RESOLVE(xfer_dlist_add_desc, "nixl_capi_xfer_dlist_add_desc")
    RESOLVE(destroy_xfer_dlist, "nixl_capi_destroy_xfer_dlist")
    RESOLVE(create_xfer_req, "nixl_capi_create_xfer_req")
    RESOLVE(post_xfer_req, "nixl_capi_post_xfer_req")
    RESOLVE(get_xfer_status, "nixl_capi_get_xfer_status")
    RESOLVE(release_xfer_req, "nixl_capi_release_xfer_req")
    RESOLVE(destroy_xfer_req, "nixl_capi_destroy_xfer_req")
    RESOLVE(create_notif_map, "nixl_capi_create_notif_map")
    RESOLVE(destroy_notif_map, "nixl_capi_destroy_notif_map")
    RESOLVE(get_notifs, "nixl_capi_get_notifs")
    RESOLVE(notif_map_clear, "nixl_capi_notif_map_clear")
    RESOLVE(is_stub, "nixl_capi_is_stub")
#undef RESOLVE
    library = handle;
done:
    pthread_mutex_unlock(&load_lock);
    return result;
}

int pds_nixl_is_stub(void) { return api.is_stub && api.is_stub() ? 1 : 0; }

pds_nixl *pds_nixl_open(const char *name, const char *plugin, const char *const *keys, const char *const *values,
                        size_t count, char *error, size_t error_capacity) {
    if (!library) {
        say(error, error_capacity, "%s", "NIXL is not loaded", 0);
        return NULL;
    }
    pds_nixl *nixl = calloc(1, sizeof *nixl);
    if (!nixl) return NULL;
    // A progress thread with no delay spins a whole core; this shim polls instead.
    agent_config_t config = {.enable_prog_thread = false, .enable_listen_thread = false, .listen_port = 0,
                             .thread_sync = THREAD_SYNC_STRICT, .num_workers = 1};
    int status = api.create_configured_agent(name, &config, &nixl->agent);
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "cannot create a NIXL agent %s (status %d)", name, status);
        free(nixl);
        return NULL;
    }
    mem_list_t mems = NULL;
    params_t params = NULL;
    status = api.get_plugin_params(nixl->agent, plugin, &mems, &params);
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "the NIXL %s plugin cannot be loaded here (status %d)", plugin, status);
        pds_nixl_close(nixl);
        return NULL;
    }
    for (size_t i = 0; i < count && status == CAPI_SUCCESS; i++) status = api.params_add(params, keys[i], values[i]);
    if (status == CAPI_SUCCESS) status = api.create_backend(nixl->agent, plugin, params, &nixl->backend);
    api.destroy_mem_list(mems);
    api.destroy_params(params);
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "cannot create the NIXL %s backend (status %d)", plugin, status);
        pds_nixl_close(nixl);
        return NULL;
    }
    if (api.create_opt_args(&nixl->backend_args) != CAPI_SUCCESS ||
        api.opt_args_add_backend(nixl->backend_args, nixl->backend) != CAPI_SUCCESS ||
        api.create_notif_map(&nixl->notifications) != CAPI_SUCCESS) {
        say(error, error_capacity, "%s", "cannot set up NIXL backend arguments", 0);
        pds_nixl_close(nixl);
        return NULL;
    }
    return nixl;
}

void pds_nixl_close(pds_nixl *nixl) {
    if (!nixl) return;
    if (nixl->registered) {
        api.deregister_mem(nixl->agent, nixl->registered, nixl->backend_args);
        api.destroy_reg_dlist(nixl->registered);
    }
    if (nixl->notifications) api.destroy_notif_map(nixl->notifications);
    if (nixl->backend_args) api.destroy_opt_args(nixl->backend_args);
    if (nixl->backend) api.destroy_backend(nixl->backend);
    if (nixl->agent) api.destroy_agent(nixl->agent);
    free(nixl);
}

int pds_nixl_register(pds_nixl *nixl, void *base, size_t length, char *error, size_t error_capacity) {
    reg_dlist_t list = NULL;
    int status = api.create_reg_dlist(MEM_DRAM, &list, false);
    if (status == CAPI_SUCCESS) status = api.reg_dlist_add_desc(list, (uintptr_t)base, length, 0, NULL, 0);
    if (status == CAPI_SUCCESS) status = api.register_mem(nixl->agent, list, nixl->backend_args);
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "cannot register the KV pool with NIXL (%s, status %d)", "DRAM", status);
        if (list) api.destroy_reg_dlist(list);
        return -1;
    }
    nixl->registered = list;
    return 0;
}

int pds_nixl_local_metadata(pds_nixl *nixl, void **data, size_t *length) {
    return api.get_local_md(nixl->agent, data, length) == CAPI_SUCCESS ? 0 : -1;
}

int pds_nixl_progress(pds_nixl *nixl) {
    // Notifications are not used (completion goes over PDServe's own channel): drop them.
    int status = api.get_notifs(nixl->agent, nixl->notifications, NULL);
    api.notif_map_clear(nixl->notifications);
    return status == CAPI_SUCCESS ? 0 : -1;
}

// The 1.5.1 library hands out malloc'ed blobs and strdup'ed names.
void pds_nixl_free(void *data) { free(data); }

int pds_nixl_load_remote(pds_nixl *nixl, const void *data, size_t length, char *name, size_t name_capacity,
                         char *error, size_t error_capacity) {
    char *loaded = NULL;
    int status = api.load_remote_md(nixl->agent, data, length, &loaded);
    if (status != CAPI_SUCCESS || !loaded) {
        say(error, error_capacity, "the peer's NIXL metadata cannot be loaded (%s, status %d)", "load_remote_md", status);
        return -1;
    }
    snprintf(name, name_capacity, "%s", loaded);
    free(loaded);
    return 0;
}

void pds_nixl_forget_remote(pds_nixl *nixl, const char *name) { api.invalidate_remote_md(nixl->agent, name); }

int pds_nixl_write(pds_nixl *nixl, const char *remote, const uint64_t *local_addresses, const uint64_t *remote_addresses,
                   const uint64_t *lengths, size_t count, char *error, size_t error_capacity) {
    xfer_dlist_t local = NULL, target = NULL;
    xfer_req_t request = NULL;
    int status = api.create_xfer_dlist(MEM_DRAM, &local, false);
    if (status == CAPI_SUCCESS) status = api.create_xfer_dlist(MEM_DRAM, &target, false);
    for (size_t i = 0; i < count && status == CAPI_SUCCESS; i++) {
        status = api.xfer_dlist_add_desc(local, (uintptr_t)local_addresses[i], lengths[i], 0);
        if (status == CAPI_SUCCESS) status = api.xfer_dlist_add_desc(target, (uintptr_t)remote_addresses[i], lengths[i], 0);
    }
    if (status == CAPI_SUCCESS) status = api.create_xfer_req(nixl->agent, XFER_WRITE, local, target, remote, &request, nixl->backend_args);
    int result = -1;
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "NIXL refused the write to %s (status %d)", remote, status);
        goto cleanup;
    }
    status = api.post_xfer_req(nixl->agent, request, nixl->backend_args);
    // Progress comes from polling, and with UCX's cma transport the copy
    // itself advances inside these polls: keep polling, yielding the core to
    // other threads between rounds. No timeout: returning while the request
    // is in flight would let a write land after the caller thinks it ended
    // (UCX fails a dead peer's request by itself).
    for (unsigned round = 0; status == CAPI_IN_PROG; round++) {
        if (round > 64) sched_yield();
        status = api.get_xfer_status(nixl->agent, request);
    }
    if (status != CAPI_SUCCESS) {
        say(error, error_capacity, "NIXL write to %s failed (status %d)", remote, status);
        goto cleanup;
    }
    result = 0;
cleanup:
    if (request) {
        if (api.release_xfer_req(nixl->agent, request) == CAPI_SUCCESS) api.destroy_xfer_req(request);
    }
    if (local) api.destroy_xfer_dlist(local);
    if (target) api.destroy_xfer_dlist(target);
    return result;
}
