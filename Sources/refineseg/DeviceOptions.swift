import ArgumentParser
import Foundation
import RefineSeg

/// Options shared by every command that opens a device.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "OpenCL device index from `refineseg devices`, or `cpu` for the (slow) CPU reference backend (default: REFINESEG_DEVICE, else the first GPU, else 0). Under mpirun/srun a list such as 0,1,2,3 gives each rank on a node its own (by local rank); without one each rank takes its node's GPU of its local rank.",
            transform: { try DeviceChoice.parse($0) })
    var device: DeviceChoice?

    /// True for `--device cpu`.
    var isCPU: Bool { device == .cpu }

    /// The OpenCL device index asked for (nil: the default, `cpu` or a list).
    var index: Int? {
        if case .indices(let list) = device, list.count == 1 { return list[0] }
        return nil
    }

    /// Every index of `--device a,b,…` (empty for none or `cpu`).
    var indices: [Int] {
        if case .indices(let list) = device { return list }
        return []
    }

    /// The backend asked for: the CPU reference for `cpu`, else an OpenCL device. Started by
    /// an MPI launcher, MPI is initialised here and each rank opens its own device.
    func open() throws -> Backend { try openDevice().backend }

    /// `open()`, and the same backend typed as OpenCL when it is one, for the diagnostics that
    /// launch their own kernels (the roofline probes) without downcasting a backend.
    func openDevice() throws -> (backend: Backend, openCL: CLBackend?) {
        if isCPU { _ = try Distributed.start(); return (CPUBackend(), nil) }
        let cl: CLBackend
        if let comm = try Distributed.start() {
            cl = try CLBackend(device: try Distributed.deviceIndex(requested: indices, comm: comm))
        } else if indices.count > 1 {
            throw RefineSegError.invalidArgument("--device \(indices.map(String.init).joined(separator: ",")) lists several devices: start one rank per device with `mpirun -np \(indices.count)`")
        } else {
            cl = try CLBackend(device: index)
        }
        return (cl, cl)
    }

    /// An OpenCL device (commands that check or time kernels need one).
    func openCL() throws -> CLBackend {
        if isCPU { throw RefineSegError.invalidArgument("--device cpu: this command needs an OpenCL device") }
        return try CLBackend(device: index)
    }
}
