// Mooncake's transfer engine, bound two ways behind one C face:
//  - the C++ methods its PyPI wheel exports (mooncake-transfer-engine-non-cuda
//    0.3.13.post1; the Swift side checks the installed version before
//    loading). The types below are this shim's own declarations of that
//    build's ABI, read from the wheel's debug info; a wheel whose layout
//    differs is refused by version, not discovered by a crash.
//  - Mooncake's own C API (transfer_engine_c.h) of a source-built
//    libtransfer_engine.so, chosen when the library exports
//    createTransferEngine; its structs have been stable since 2024-11.
#include "MooncakeShim.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace {

// mooncake::Status: a code and a message that its (inline) destructor
// delete[]s. Non-trivial, so the methods return it through a hidden pointer,
// exactly as a free function returning this type does.
struct Status {
    uint16_t code = 0;
    const char *message = nullptr;
    Status() = default;
    Status(const Status &) = delete;
    ~Status() { delete[] message; }
    bool ok() const { return code == 0; }
};
static_assert(sizeof(Status) == 16, "mooncake::Status is 16 bytes in 0.3.13");

// mooncake::Transport::TransferRequest in 0.3.13.post1.
struct TransferRequest {
    int32_t opcode;  // READ 0, WRITE 1
    void *source;
    int64_t target_id;
    uint64_t target_offset;
    uint64_t length;
    int32_t advise_retry_cnt;
    int32_t transport_hint;
    uint64_t task_group_id;  // kNoTaskGroup is 0
};
static_assert(sizeof(TransferRequest) == 56, "TransferRequest is 56 bytes in 0.3.13");
static_assert(offsetof(TransferRequest, source) == 8 && offsetof(TransferRequest, target_id) == 16 &&
                  offsetof(TransferRequest, target_offset) == 24 && offsetof(TransferRequest, length) == 32 &&
                  offsetof(TransferRequest, advise_retry_cnt) == 40 && offsetof(TransferRequest, transport_hint) == 44 &&
                  offsetof(TransferRequest, task_group_id) == 48,
              "TransferRequest field offsets of 0.3.13");

// mooncake::Transport::TransferStatus and its states.
struct TransferStatus {
    int32_t state;
    uint64_t transferred_bytes;
};
static_assert(sizeof(TransferStatus) == 16, "TransferStatus is 16 bytes in 0.3.13");
enum { WAITING = 0, PENDING = 1, COMPLETED = 4 };
enum { OPCODE_WRITE = 1 };
constexpr uint64_t INVALID_BATCH = UINT64_MAX;
// sizeof(mooncake::TransferEngine) in 0.3.13 (a pimpl and a few flags).
constexpr size_t ENGINE_BYTES = 56;

using Strings = std::vector<std::string>;

// Each method as a free function taking `this` first (Itanium C++ ABI).
struct Methods {
    void (*construct)(void *self, bool auto_discover);
    void (*construct_filtered)(void *self, bool auto_discover, const Strings &filter);
    void (*destruct)(void *self);
    int (*init)(void *self, const std::string &metadata, const std::string &local_server_name,
                const std::string &ip_or_host_name, uint64_t rpc_port);
    int (*rpc_port)(void *self);
    int (*register_memory)(void *self, void *address, size_t length, const std::string &location,
                           bool remote_accessible, bool update_metadata);
    int (*unregister_memory)(void *self, void *address, bool update_metadata);
    uint64_t (*open_segment)(void *self, const std::string &name);
    int (*close_segment)(void *self, uint64_t segment);
    uint64_t (*allocate_batch)(void *self, size_t size);
    Status (*submit)(void *self, uint64_t batch, const std::vector<TransferRequest> &requests);
    Status (*task_status)(void *self, uint64_t batch, size_t task, TransferStatus &status);
    Status (*batch_status)(void *self, uint64_t batch, TransferStatus &status);
    Status (*free_batch)(void *self, uint64_t batch);
};

// Mooncake's C API (transfer_engine_c.h), our own declarations.
struct CTransferRequest {
    int opcode;
    void *source;
    int32_t target_id;
    uint64_t target_offset;
    uint64_t length;
};
struct CTransferStatus {
    int status;
    uint64_t transferred_bytes;
};
struct CFunctions {
    void *(*create)(const char *metadata, const char *local_server_name, const char *ip_or_host_name, uint64_t rpc_port,
                    int auto_discover);
    int (*local_ip_and_port)(void *engine, char *out, size_t capacity);
    int (*register_memory)(void *engine, void *address, size_t length, const char *location, int remote_accessible);
    int (*unregister_memory)(void *engine, void *address);
    int32_t (*open_segment)(void *engine, const char *name);
    int (*close_segment)(void *engine, int32_t segment);
    uint64_t (*allocate_batch)(void *engine, size_t size);
    int (*submit)(void *engine, uint64_t batch, CTransferRequest *requests, size_t count);
    int (*task_status)(void *engine, uint64_t batch, size_t task, CTransferStatus *status);
    int (*free_batch)(void *engine, uint64_t batch);
    void (*destroy)(void *engine);
};

Methods methods;
CFunctions c_api;
bool uses_c_api = false;
std::mutex load_lock;
void *engine_library = nullptr;

void say(char *error, size_t capacity, const std::string &text) {
    if (error && capacity) snprintf(error, capacity, "%s", text.c_str());
}

std::string describe(const Status &status) {
    std::string text = "status " + std::to_string(status.code);
    if (status.message && *status.message) text += ": " + std::string(status.message);
    return text;
}

Strings split(const char *list) {
    Strings names;
    std::string current;
    for (const char *c = list; c && *c; c++) {
        if (*c == ',') {
            if (!current.empty()) names.push_back(current);
            current.clear();
        } else if (*c != ' ') {
            current += *c;
        }
    }
    if (!current.empty()) names.push_back(current);
    return names;
}

}  // namespace

struct pds_mooncake {
    alignas(16) unsigned char engine[ENGINE_BYTES];  // the wheel's TransferEngine, constructed in place
    void *c_engine = nullptr;                        // or the C API's handle
    std::string session;
    void *registered = nullptr;
};

extern "C" int pds_mooncake_load(const char *engine_path, const char *python_library, char *error, size_t error_capacity) {
    std::lock_guard<std::mutex> guard(load_lock);
    if (engine_library) return 0;
    if (python_library && !dlopen(python_library, RTLD_NOW | RTLD_GLOBAL)) {
        say(error, error_capacity, std::string("cannot load ") + dlerror());
        return -1;
    }
    // RTLD_DEEPBIND: the engine's own libraries resolve their symbols first.
    // NIXL's wheel bundles its own copies of libibverbs and libnl under other
    // file names; without this, once both engines are loaded (the transfer
    // benchmark, the test process) libnl's constructors of one copy register
    // into the other and its destructors crash the process at exit.
    void *handle = dlopen(engine_path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
        say(error, error_capacity, std::string("cannot load ") + dlerror());
        return -1;
    }
    // glog prints every INFO line to stderr (before InitGoogleLogging it
    // ignores GLOG_minloglevel's default); keep warnings and errors unless
    // the user chose a level.
    if (!getenv("GLOG_minloglevel")) {
        if (auto *level = static_cast<int *>(dlsym(handle, "_ZN3fLI17FLAGS_minloglevelE"))) *level = 1;
    }
    bool complete = true;
    auto resolve = [&](auto &field, const char *symbol) {
        void *found = dlsym(handle, symbol);
        if (!found) {
            if (complete) say(error, error_capacity, std::string(engine_path) + " does not export " + symbol + " (another Mooncake build?)");
            complete = false;
        }
        memcpy(&field, &found, sizeof found);
    };
    uses_c_api = dlsym(handle, "createTransferEngine") != nullptr;
    if (uses_c_api) {
        resolve(c_api.create, "createTransferEngine");
        resolve(c_api.local_ip_and_port, "getLocalIpAndPort");
        resolve(c_api.register_memory, "registerLocalMemory");
        resolve(c_api.unregister_memory, "unregisterLocalMemory");
        resolve(c_api.open_segment, "openSegment");
        resolve(c_api.close_segment, "closeSegment");
        resolve(c_api.allocate_batch, "allocateBatchID");
        resolve(c_api.submit, "submitTransfer");
        resolve(c_api.task_status, "getTransferStatus");
        resolve(c_api.free_batch, "freeBatchID");
        resolve(c_api.destroy, "destroyTransferEngine");
    } else {
        resolve(methods.construct, "_ZN8mooncake14TransferEngineC1Eb");
        resolve(methods.construct_filtered,
                "_ZN8mooncake14TransferEngineC1EbRKSt6vectorINSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEESaIS7_EE");
        resolve(methods.destruct, "_ZN8mooncake14TransferEngineD1Ev");
        resolve(methods.init,
                "_ZN8mooncake14TransferEngine4initERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEES8_S8_m");
        resolve(methods.rpc_port, "_ZN8mooncake14TransferEngine10getRpcPortEv");
        resolve(methods.register_memory,
                "_ZN8mooncake14TransferEngine19registerLocalMemoryEPvmRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEEbb");
        resolve(methods.unregister_memory, "_ZN8mooncake14TransferEngine21unregisterLocalMemoryEPvb");
        resolve(methods.open_segment,
                "_ZN8mooncake14TransferEngine11openSegmentERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE");
        resolve(methods.close_segment, "_ZN8mooncake14TransferEngine12closeSegmentEm");
        resolve(methods.allocate_batch, "_ZN8mooncake14TransferEngine15allocateBatchIDEm");
        resolve(methods.submit, "_ZN8mooncake14TransferEngine14submitTransferEmRKSt6vectorINS_9Transport15TransferRequestESaIS3_EE");
        resolve(methods.task_status, "_ZN8mooncake14TransferEngine17getTransferStatusEmmRNS_9Transport14TransferStatusE");
        resolve(methods.batch_status, "_ZN8mooncake14TransferEngine22getBatchTransferStatusEmRNS_9Transport14TransferStatusE");
        resolve(methods.free_batch, "_ZN8mooncake14TransferEngine11freeBatchIDEm");
    }
    if (!complete) {
        methods = Methods{};
        c_api = CFunctions{};
        dlclose(handle);
        return -1;
    }
    engine_library = handle;
    return 0;
}

extern "C" pds_mooncake *pds_mooncake_open(const char *host, const char *devices, char *error, size_t error_capacity) {
    if (!engine_library) {
        say(error, error_capacity, "Mooncake is not loaded");
        return nullptr;
    }
    auto *engine = new (std::nothrow) pds_mooncake();
    if (!engine) return nullptr;
    if (uses_c_api) {
        // The C API takes no device filter: refuse one rather than ignore it.
        if (!split(devices).empty()) {
            say(error, error_capacity, "Mooncake's C API (libtransfer_engine.so) takes no RDMA device filter; unset --disaggregation-ib-device or use the wheel's engine.so");
            delete engine;
            return nullptr;
        }
        engine->c_engine = c_api.create("P2PHANDSHAKE", host, "", 0, 1);
        char name[300] = {0};
        if (!engine->c_engine || c_api.local_ip_and_port(engine->c_engine, name, sizeof name) != 0 || !strchr(name, ':')) {
            say(error, error_capacity, "the Mooncake transfer engine did not start (createTransferEngine failed)");
            if (engine->c_engine) c_api.destroy(engine->c_engine);
            delete engine;
            return nullptr;
        }
        engine->session = name;
        return engine;
    }
    // auto_discover: Mooncake installs RDMA over the devices it finds (or the
    // filter names), and TCP where there are none or MC_FORCE_TCP is set.
    Strings filter = split(devices);
    if (filter.empty()) {
        methods.construct(engine->engine, true);
    } else {
        methods.construct_filtered(engine->engine, true, filter);
    }
    // P2P handshake: no metadata server; the engine picks a free RPC port and
    // names its segment "host:port".
    int status = methods.init(engine->engine, "P2PHANDSHAKE", host, "", 0);
    int port = status == 0 ? methods.rpc_port(engine->engine) : 0;
    if (status != 0 || port <= 0) {
        say(error, error_capacity, "the Mooncake transfer engine did not start (init status " + std::to_string(status) + ")");
        methods.destruct(engine->engine);
        delete engine;
        return nullptr;
    }
    std::string name(host);
    engine->session = (name.find(':') != std::string::npos ? "[" + name + "]" : name) + ":" + std::to_string(port);
    return engine;
}

extern "C" void pds_mooncake_close(pds_mooncake *engine) {
    if (!engine) return;
    if (engine->c_engine) {
        if (engine->registered) c_api.unregister_memory(engine->c_engine, engine->registered);
        c_api.destroy(engine->c_engine);
        delete engine;
        return;
    }
    if (engine->registered) methods.unregister_memory(engine->engine, engine->registered, true);
    methods.destruct(engine->engine);
    delete engine;
}

extern "C" int pds_mooncake_session(pds_mooncake *engine, char *session, size_t capacity) {
    if (engine->session.size() + 1 > capacity) return -1;
    memcpy(session, engine->session.c_str(), engine->session.size() + 1);
    return 0;
}

extern "C" int pds_mooncake_register(pds_mooncake *engine, void *base, size_t length, char *error, size_t error_capacity) {
    int status = engine->c_engine ? c_api.register_memory(engine->c_engine, base, length, "*", 1)
                                  : methods.register_memory(engine->engine, base, length, "*", true, true);
    if (status != 0) {
        say(error, error_capacity, "cannot register the KV pool with Mooncake (status " + std::to_string(status) + ")");
        return -1;
    }
    engine->registered = base;
    return 0;
}

extern "C" int pds_mooncake_open_segment(pds_mooncake *engine, const char *session, uint64_t *segment, char *error,
                                         size_t error_capacity) {
    uint64_t handle = engine->c_engine ? static_cast<uint64_t>(static_cast<int64_t>(c_api.open_segment(engine->c_engine, session)))
                                       : methods.open_segment(engine->engine, session);
    // Failures come back as negative error codes in the unsigned handle.
    if (static_cast<int64_t>(handle) < 0) {
        say(error, error_capacity, std::string("Mooncake cannot open the peer's segment ") + session + " (status " +
                                       std::to_string(static_cast<int64_t>(handle)) + ")");
        return -1;
    }
    *segment = handle;
    return 0;
}

extern "C" void pds_mooncake_close_segment(pds_mooncake *engine, uint64_t segment) {
    if (engine->c_engine) {
        c_api.close_segment(engine->c_engine, static_cast<int32_t>(segment));
    } else {
        methods.close_segment(engine->engine, segment);
    }
}

namespace {
bool settled(int32_t state) { return state != WAITING && state != PENDING; }

// Polls `read` until `state` settles: a few rounds yielding the core, then
// short sleeps (the transport's own threads move the bytes meanwhile).
template <typename Read> int32_t waitUntilSettled(Read read) {
    for (unsigned round = 0;; round++) {
        int32_t state = read();
        if (settled(state)) return state;
        if (round < 64) {
            sched_yield();
        } else {
            usleep(20);
        }
    }
}
}  // namespace

namespace {
// The C API's write: one batch, then every task polled until it settled (the
// C API has no batch status), so nothing can land once this returns.
int writeThroughCAPI(pds_mooncake *engine, uint64_t segment, const uint64_t *local_addresses,
                     const uint64_t *remote_addresses, const uint64_t *lengths, size_t count, char *error,
                     size_t error_capacity) {
    std::vector<CTransferRequest> requests(count);
    for (size_t i = 0; i < count; i++) {
        requests[i] = CTransferRequest{OPCODE_WRITE, reinterpret_cast<void *>(local_addresses[i]),
                                       static_cast<int32_t>(segment), remote_addresses[i], lengths[i]};
    }
    uint64_t batch = c_api.allocate_batch(engine->c_engine, count);
    if (batch == INVALID_BATCH || batch == 0) {
        say(error, error_capacity, "Mooncake could not allocate a transfer batch");
        return -1;
    }
    if (c_api.submit(engine->c_engine, batch, requests.data(), count) != 0) {
        say(error, error_capacity, "Mooncake refused the write");
        c_api.free_batch(engine->c_engine, batch);
        return -1;
    }
    int32_t failed = COMPLETED;
    for (size_t task = 0; task < count; task++) {
        int32_t state = waitUntilSettled([&] {
            CTransferStatus status{};
            return c_api.task_status(engine->c_engine, batch, task, &status) == 0 ? int32_t(status.status) : int32_t(-1);
        });
        if (state != COMPLETED && failed == COMPLETED) failed = state;
    }
    int freed = c_api.free_batch(engine->c_engine, batch);
    if (failed != COMPLETED) {
        say(error, error_capacity, "Mooncake write failed (task state " + std::to_string(failed) + ")");
        return -1;
    }
    if (freed != 0) {
        say(error, error_capacity, "Mooncake could not free a finished batch");
        return -1;
    }
    return 0;
}
}  // namespace

extern "C" int pds_mooncake_write(pds_mooncake *engine, uint64_t segment, const uint64_t *local_addresses,
                                  const uint64_t *remote_addresses, const uint64_t *lengths, size_t count, char *error,
                                  size_t error_capacity) {
    if (count == 0) return 0;
    if (engine->c_engine) {
        return writeThroughCAPI(engine, segment, local_addresses, remote_addresses, lengths, count, error, error_capacity);
    }
    std::vector<TransferRequest> requests(count);
    for (size_t i = 0; i < count; i++) {
        requests[i] = TransferRequest{OPCODE_WRITE, reinterpret_cast<void *>(local_addresses[i]), static_cast<int64_t>(segment),
                                      remote_addresses[i], lengths[i], 0, 0, 0};
    }
    uint64_t batch = methods.allocate_batch(engine->engine, count);
    if (batch == INVALID_BATCH || batch == 0) {
        say(error, error_capacity, "Mooncake could not allocate a transfer batch");
        return -1;
    }
    {
        Status submitted = methods.submit(engine->engine, batch, requests);
        if (!submitted.ok()) {
            // Refused before any task was handed to a transport: nothing to wait for.
            say(error, error_capacity, "Mooncake refused the write (" + describe(submitted) + ")");
            Status freed = methods.free_batch(engine->engine, batch);
            (void)freed;
            return -1;
        }
    }
    std::string failure;
    int32_t state = waitUntilSettled([&] {
        TransferStatus status{};
        Status read = methods.batch_status(engine->engine, batch, status);
        return read.ok() ? status.state : int32_t(-1);
    });
    if (state != COMPLETED) {
        // The batch failed; wait for every task to settle so none can still
        // land once this returns.
        for (size_t task = 0; task < count; task++) {
            waitUntilSettled([&] {
                TransferStatus status{};
                Status read = methods.task_status(engine->engine, batch, task, status);
                return read.ok() ? status.state : int32_t(-1);
            });
        }
        failure = "Mooncake write failed (batch state " + std::to_string(state) + ")";
    }
    Status freed = methods.free_batch(engine->engine, batch);
    if (!failure.empty()) {
        say(error, error_capacity, failure);
        return -1;
    }
    if (!freed.ok()) {
        say(error, error_capacity, "Mooncake could not free a finished batch (" + describe(freed) + ")");
        return -1;
    }
    return 0;
}
