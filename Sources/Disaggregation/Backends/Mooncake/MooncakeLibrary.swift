import Foundation

/// Where Mooncake's engine is and what it needs loaded first. PDServe binds
/// either the C++ methods that the PyPI wheel's `mooncake/engine.so`
/// exports, whose ABI (struct layouts, mangled names) is one build's — the
/// installed version is checked against the pin before anything is loaded —
/// or Mooncake's own C API in a source-built `libtransfer_engine.so`.
struct MooncakeLibrary: Equatable {
    /// The wheel's extension module, or a `libtransfer_engine.so`.
    var engine: String
    /// For the wheel: a libpython for the extension's CPython symbols (loaded, never initialised or called).
    var python: String?

    static let pinnedVersion = "0.3.13.post1"
    static let installCommand = "pip install --no-deps mooncake-transfer-engine-non-cuda==\(pinnedVersion)"
    /// The wheel's distribution names (the CUDA build shares the engine's ABI).
    static let distributions = ["mooncake_transfer_engine_non_cuda", "mooncake_transfer_engine"]
    static let debianPackages = "libibverbs1 libnuma1 libcurl4"

    /// `PDSERVE_MOONCAKE_LIB` (a wheel's engine.so or a source-built
    /// libtransfer_engine.so), else the wheel in the active or project
    /// virtualenv, PYTHONPATH, the python3 on PATH, the system.
    static func find(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> MooncakeLibrary {
        let engine = try PythonWheelLibrary.find(file: "engine.so", folders: ["mooncake"], override: "PDSERVE_MOONCAKE_LIB",
                                                 install: installCommand, environment: environment)
        if isSourceBuiltCAPI(engine) {
            // Mooncake's C API: plain C functions and structs, no Python, no pinned build.
            return MooncakeLibrary(engine: engine, python: nil)
        }
        let site = URL(fileURLWithPath: engine).deletingLastPathComponent().deletingLastPathComponent().path
        let pythonVersion = try checkVersion(site: site, engine: engine)
        return MooncakeLibrary(engine: engine, python: pythonLibrary(version: pythonVersion, site: site))
    }

    /// Mooncake's CMake build names its C API library libtransfer_engine.so.
    static func isSourceBuiltCAPI(_ path: String) -> Bool {
        URL(fileURLWithPath: path).lastPathComponent.hasPrefix("libtransfer_engine.so")
    }

    /// Refuses any build but the pinned one; returns the CPython version the wheel was built for ("3.11").
    static func checkVersion(site: String, engine: String) throws -> String {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: site)) ?? []
        let infos = entries.filter { entry in
            entry.hasSuffix(".dist-info") && distributions.contains { entry.hasPrefix($0 + "-") }
        }
        guard let info = infos.sorted().first else {
            throw ConfigurationError("cannot tell which Mooncake build \(engine) is (no mooncake_transfer_engine*.dist-info beside it); PDServe binds \(pinnedVersion): install it with `\(installCommand)`")
        }
        let version = String(info.dropLast(".dist-info".count).split(separator: "-").last ?? "")
        guard version == pinnedVersion else {
            throw ConfigurationError("Mooncake \(version) is installed (\(site)); PDServe binds the C++ ABI of \(pinnedVersion) only: install it with `\(installCommand)`")
        }
        let wheel = (try? String(contentsOfFile: "\(site)/\(info)/WHEEL", encoding: .utf8)) ?? ""
        guard let tag = wheel.split(separator: "\n").first(where: { $0.hasPrefix("Tag: cp3") }),
              let digits = tag.dropFirst("Tag: cp3".count).split(separator: "-").first, let minor = Int(digits) else {
            throw ConfigurationError("\(site)/\(info)/WHEEL names no CPython tag")
        }
        return "3.\(minor)"
    }

    /// The libpython of the wheel's CPython: beside the virtualenv's base
    /// interpreter, else by its soname from the system's library path.
    static func pythonLibrary(version: String, site: String) -> String {
        let soname = "libpython\(version).so.1.0"
        // site = <prefix>/lib/pythonX.Y/site-packages
        let prefix = URL(fileURLWithPath: site).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var candidates = [prefix.appendingPathComponent("lib/\(soname)").path]
        if let config = try? String(contentsOf: prefix.appendingPathComponent("pyvenv.cfg"), encoding: .utf8),
           let home = config.split(separator: "\n").first(where: { $0.hasPrefix("home") })?.split(separator: "=").last {
            let bin = URL(fileURLWithPath: home.trimmingCharacters(in: .whitespaces))
            candidates.append(bin.deletingLastPathComponent().appendingPathComponent("lib/\(soname)").path)
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? soname
    }
}
