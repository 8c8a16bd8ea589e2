import ArgumentParser
import Bench
import Foundation

/// `pdserve bench transfer`: KV transfer backends vs memcpy and a raw loopback socket.
struct BenchTransferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Measure each KV transfer backend's GB/s against memcpy (the bound of shm and nixl) and a plain loopback TCP socket (tcp's bound), in one run.",
        discussion: "nixl and mooncake are measured between two engines of this process when their wheels are found (PDSERVE_NIXL_LIB / PDSERVE_MOONCAKE_LIB or a virtualenv); set UCX_NET_DEVICES=lo to keep UCX on loopback. Mooncake moves bytes over TCP on a host without RDMA devices, so its bound is the socket."
    )

    @Option(name: .customLong("pages"), parsing: .upToNextOption, help: "Transfer sizes in pages (default 1 4 16 64 256 1024: 256 KiB to 256 MiB with the default layout).")
    var pages: [Int] = [1, 4, 16, 64, 256, 1024]
    @Option(help: "Samples per size (the median is reported).")
    var repeats = 5
    @Option(help: "Layers in the synthetic KV pool.")
    var layers = 8
    @Option(name: .customLong("page-size"), help: "Tokens per page.")
    var pageSize = 16
    @Option(help: "Elements per token row (kv heads × head dim).")
    var width = 256
    @Option(name: .customLong("output-file"), help: "Write the results as JSON here.")
    var outputFile: String?

    func validate() throws {
        guard !pages.isEmpty, pages.allSatisfy({ $0 > 0 }) else { throw ValidationError("--pages takes positive page counts") }
        guard repeats > 0, layers > 0, pageSize > 0, width > 0 else { throw ValidationError("--repeats, --layers, --page-size and --width must be positive") }
    }

    func run() throws {
        var options = TransferBenchmark.Options()
        options.pageCounts = pages
        options.repeats = repeats
        options.layers = layers
        options.pageSize = pageSize
        options.width = width
        let log = FileHandle.standardError
        log.write(Data("bench transfer: \(layers) layers × \(pageSize) tokens × \(width) floats per page (K and V)\n".utf8))
        let rows = try TransferBenchmark(options: options).run { log.write(Data(($0 + "\n").utf8)) }
        print("| size | memcpy GB/s | socket GB/s | tcp GB/s | tcp / socket | shm GB/s | shm / memcpy | nixl GB/s | nixl / memcpy | mooncake GB/s | mooncake / socket |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows {
            let size = r.bytes >= 1 << 20 ? "\(r.bytes >> 20) MiB" : "\(r.bytes >> 10) KiB"
            let nixl = r.nixlGBps.map { String(format: "%.2f | %.2f×", $0, $0 / r.memcpyGBps) } ?? "– | –"
            let mooncake = r.mooncakeGBps.map { String(format: "%.2f | %.2f×", $0, $0 / r.socketGBps) } ?? "– | –"
            print(String(format: "| %@ | %.2f | %.2f | %.2f | %.2f× | %.2f | %.2f× | ", size, r.memcpyGBps, r.socketGBps, r.tcpGBps, r.tcpVsSocket, r.shmGBps, r.shmVsMemcpy)
                  + nixl + " | " + mooncake + " |")
        }
        if let outputFile {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(rows).write(to: URL(fileURLWithPath: outputFile))
        }
    }
}
