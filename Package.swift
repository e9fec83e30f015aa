// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "RefineSeg",
    // Linux only, so no `platforms` entry (SwiftPM lists no Linux platform): COpenCL expects
    // <CL/cl.h> and a pkg-config "OpenCL" (Debian's ocl-icd), which macOS (OpenCL.framework,
    // <OpenCL/opencl.h>) does not provide.
    products: [
        .executable(name: "refineseg", targets: ["refineseg"]),
        .library(name: "RefineSeg", targets: ["RefineSeg"]),
    ],
    dependencies: [
        // Pinned exactly: Package.resolved stays out of git (these machines' package copies carry
        // other commit ids than upstream), so the version is fixed here.
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        // ONNX export: protobuf messages (the ONNX schema's Swift code is generated once and committed).
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        // System libraries: module maps only (Debian: ocl-icd-opencl-dev + opencl-headers, libpng-dev).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL", pkgConfig: "OpenCL",
                       providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Small C helpers that Swift cannot express (setjmp-based libpng error recovery).
        .target(name: "CShims", dependencies: ["CPNG"], path: "Sources/CShims"),
        // Build tool that turns Kernels/*.cl into Swift string literals, so the binary runs anywhere.
        .executableTarget(name: "embed-kernels", path: "Sources/embed-kernels"),
        .plugin(name: "EmbedKernels", capability: .buildTool(), dependencies: ["embed-kernels"],
                path: "Plugins/EmbedKernels"),
        .target(
            name: "RefineSeg",
            dependencies: ["COpenCL", "CPNG", "CShims", "CTurboJPEG", "CZlib"],
            path: "Sources/RefineSeg",
            plugins: ["EmbedKernels"]
        ),
        // Diagnostics: the op-case registry and its checks (Check/), the kernel, training-step and
        // roofline benches (Bench/). Built on the library; nothing in the library depends on it.
        .target(
            name: "RefineSegDiagnostics",
            dependencies: ["RefineSeg"],
            path: "Sources/RefineSegDiagnostics"
        ),
        // ONNX export of a trained model: the ONNX schema (generated Swift) and the graph writer.
        .target(
            name: "RefineSegONNX",
            dependencies: ["RefineSeg", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/RefineSegONNX"
        ),
        .executableTarget(
            name: "refineseg",
            dependencies: [
                "RefineSeg",
                "RefineSegDiagnostics",
                "RefineSegONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/refineseg"
        ),
        .testTarget(name: "RefineSegTests", dependencies: ["RefineSeg", "RefineSegDiagnostics", "RefineSegONNX"], path: "Tests/RefineSegTests",
                    // Golden values written by scripts/*.py, read from the source tree (TestSupport.fixture).
                    exclude: ["Fixtures"]),
    ],
    // Swift 6 language mode: strict concurrency checking is on; shared state is Sendable, locked
    // (`@unchecked Sendable` with the lock named) or a `nonisolated(unsafe)` global with its reason.
    swiftLanguageModes: [.v6]
)
