// swift-tools-version:5.9
// swiftsocket: CPython's `_socket` with its socket logic in Swift.
//
// Build with setup.py (`pip install .`), which passes the Python include
// directory and the flags below:
//   swift build -c release -Xcc -I<python include> -Xcc -D_GNU_SOURCE -Xswiftc -static-stdlib
import PackageDescription

let package = Package(
    name: "swiftsocket",
    products: [
        // Loaded by CPython as swiftsocket/_swiftsocket<EXT_SUFFIX>.
        .library(name: "SwiftSocketExt", type: .dynamic, targets: ["SwiftSocketExt"]),
        // The bench's syscall patterns with no Python: the limit column of
        // `python -m swiftsocket bench`. Built on demand, never shipped.
        .executable(name: "swiftsocket-limit", targets: ["swiftsocket-limit"]),
    ],
    targets: [
        // System headers for the POSIX layer; no Python.
        .target(name: "CSystem"),
        // Layer 1, POSIX: typed wrappers over the socket syscalls, addresses,
        // names, the clock. It cannot import Python: its only dependency is
        // CSystem, so the compiler enforces the layer rule.
        // Cross-module optimization: the extension inlines and specializes
        // this module's code as if it were its own (constants such as
        // Errno.interrupted fold instead of going through an addressor, generic
        // helpers specialize), without an @inlinable on every small function.
        .target(name: "SocketPOSIX", dependencies: ["CSystem"],
                swiftSettings: [.unsafeFlags(["-cross-module-optimization"])]),
        .executableTarget(name: "swiftsocket-limit", dependencies: ["SocketPOSIX"]),
        .target(name: "CPythonShim", dependencies: ["CSystem"]),
        // Layers 2 and 3, in Bridge/ (PyObject conversions, GIL, errors,
        // sockCall) and Methods/ (the @_cdecl entry points).
        .target(
            name: "SwiftSocketExt",
            dependencies: ["CSystem", "SocketPOSIX", "CPythonShim"],
            linkerSettings: [
                // Export PyInit__swiftsocket only, so our Swift symbols never
                // clash with another extension module's.
                .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/CPythonShim/exports.map"]),
            ]
        ),
    ]
)
