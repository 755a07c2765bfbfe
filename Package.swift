// swift-tools-version:6.0
import PackageDescription

// The C kernels are built at -O3 in every configuration, so debug test runs stay fast.
// ISA-specific code uses per-function target attributes, so no -march flag is set here:
// one binary runs on any x86-64 CPU and picks AVX-512, AVX2 or scalar code at start-up.
let kernelFlags: [String] = ["-O3", "-fopenmp", "-D_GNU_SOURCE", "-ffp-contract=off"]

let package = Package(
    name: "TailDraft",
    products: [
        .library(name: "TailDraft", targets: ["TailDraft"]),
        .executable(name: "taildraft", targets: ["TailDraftCLI"]),
        .executable(name: "taildraft-bench", targets: ["TailDraftBench"]),
    ],
    targets: [
        .target(
            name: "Kernels",
            path: "Kernels",
            publicHeadersPath: "include",
            cSettings: [.unsafeFlags(kernelFlags)],
            linkerSettings: [.linkedLibrary("omp5")]
        ),
        .target(
            name: "TailDraft",
            dependencies: ["Kernels"],
            path: "Sources/TailDraft",
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "TailDraftCLI",
            dependencies: ["TailDraft"],
            path: "Sources/TailDraftCLI"
        ),
        .executableTarget(
            name: "TailDraftBench",
            dependencies: ["TailDraft", "Kernels"],
            path: "Bench",
            exclude: ["RESULTS.md", "prompts"]
        ),
        .testTarget(
            name: "TailDraftTests",
            dependencies: ["TailDraft", "Kernels"],
            path: "Tests/TailDraftTests"
        ),
    ]
)
