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
    ],
    targets: [
        // System headers for the POSIX layer; no Python.
        .target(name: "CSystem"),
        .target(name: "CPythonShim", dependencies: ["CSystem"]),
        .target(
            name: "SwiftSocketExt",
            dependencies: ["CSystem", "CPythonShim"],
            linkerSettings: [
                // Export PyInit__swiftsocket only, so our Swift symbols never
                // clash with another extension module's.
                .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/CPythonShim/exports.map"]),
            ]
        ),
    ]
)
