import Foundation

/// Finds a shared library that a PyPI wheel installed, without running
/// Python: an explicit path from the environment, else the wheel's folder
/// under the site-packages of the active virtualenv, the project's
/// virtualenvs (`.venv*` in the working directory), `PYTHONPATH`, the
/// `python3` on `PATH`, and the system prefixes.
enum PythonWheelLibrary {
    /// `folders` are the wheel's library folders relative to site-packages
    /// (e.g. `.nixl_cu12.mesonpy.libs`), tried in order; `install` is the
    /// command that installs the wheel, for the error message.
    static func find(file: String, folders: [String], override variable: String, install: String,
                     environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let explicit = environment[variable], !explicit.isEmpty {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw ConfigurationError("\(variable)=\(explicit): no such file; install the engine with `\(install)` or unset \(variable)")
            }
            return explicit
        }
        for site in sitePackages(environment) {
            for folder in folders {
                let path = "\(site)/\(folder)/\(file)"
                if FileManager.default.fileExists(atPath: path) { return path }
            }
        }
        throw ConfigurationError("cannot find \(file) (looked in \(folders.joined(separator: ", ")) under the site-packages of the active and the project's virtualenvs, PYTHONPATH, the python3 on PATH and the system prefixes); install it with `\(install)` or set \(variable) to the library's path")
    }

    static func sitePackages(_ environment: [String: String]) -> [String] {
        var prefixes: [String] = []
        if let venv = environment["VIRTUAL_ENV"] { prefixes.append(venv) }
        let here = FileManager.default.currentDirectoryPath
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: here)) ?? []).sorted() where name.hasPrefix(".venv") {
            prefixes.append("\(here)/\(name)")
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let python = "\(directory)/python3"
            if FileManager.default.isExecutableFile(atPath: python) {
                prefixes.append(URL(fileURLWithPath: python).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent().path)
                prefixes.append(URL(fileURLWithPath: String(directory)).deletingLastPathComponent().path)
            }
        }
        prefixes += ["/usr/local", "/usr", NSHomeDirectory() + "/.local"]
        var sites = (environment["PYTHONPATH"] ?? "").split(separator: ":").map(String.init)
        for prefix in prefixes {
            let lib = "\(prefix)/lib"
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: lib))?.filter { $0.hasPrefix("python3") }.sorted() ?? []
            for version in versions {
                sites.append("\(lib)/\(version)/site-packages")
                sites.append("\(lib)/\(version)/dist-packages")
            }
        }
        sites.append("/usr/lib/python3/dist-packages")
        var seen = Set<String>()
        return sites.filter { seen.insert($0).inserted }
    }
}
