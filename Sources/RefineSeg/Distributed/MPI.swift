import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Open MPI, loaded at run time.
///
/// Why `dlopen` and not a `systemLibrary` target linked always: a run without a launcher must
/// behave exactly as before — no MPI initialisation, no `libmpi` needed on the machine — and the
/// static build used for GPU checks must not grow a link-time dependency on Open MPI and its
/// plugins. `libmpi` is therefore opened only after a launcher has been detected
/// (`Launcher.detect`), with `RTLD_GLOBAL` so that the plugins Open MPI itself loads find its
/// symbols. Open MPI's handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, …) are the addresses
/// of global objects (`ompi_mpi_comm_world`, `ompi_mpi_float`, `ompi_mpi_op_sum`), reached
/// with `dlsym`. Only Open MPI's ABI is supported (MPICH's handles are integers); another MPI
/// is refused with a message naming the library.
public final class MPILibrary {
    typealias Handle = UnsafeMutableRawPointer
    typealias InitFn = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32
    typealias CommIntFn = @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    typealias AllreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    typealias IallreduceFn = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle,
                                             UnsafeMutablePointer<Handle?>) -> Int32
    typealias TestFn = @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    typealias WaitFn = @convention(c) (UnsafeMutablePointer<Handle?>, UnsafeMutableRawPointer?) -> Int32
    typealias BcastFn = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    typealias GathervFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, UnsafePointer<Int32>?,
                                          UnsafePointer<Int32>?, Handle, Int32, Handle) -> Int32
    typealias GatherFn = @convention(c) (UnsafeRawPointer?, Int32, Handle, UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    typealias CommFn = @convention(c) (Handle) -> Int32
    typealias AbortFn = @convention(c) (Handle, Int32) -> Int32
    typealias VoidFn = @convention(c) () -> Int32

    let path: String
    let initialize: InitFn, finalize: VoidFn
    let commRank: CommIntFn, commSize: CommIntFn
    let allreduce: AllreduceFn, iallreduce: IallreduceFn
    let test: TestFn, wait: WaitFn
    let bcast: BcastFn, gather: GatherFn, gatherv: GathervFn
    let barrier: CommFn, abort: AbortFn
    let commWorld: Handle, float: Handle, double: Handle, int32: Handle, byte: Handle, sum: Handle, max: Handle

    /// Opens `REFINESEG_MPI_LIBRARY`, else Debian's `libmpi.so.40` (Open MPI 4), else `libmpi.so`.
    init() throws {
        let env = ProcessInfo.processInfo.environment["REFINESEG_MPI_LIBRARY"]
        let candidates = env.map { [$0] } ?? ["libmpi.so.40", "libmpi.so"]
        var opened: UnsafeMutableRawPointer?
        var tried = [String]()
        var chosen = ""
        for name in candidates {
            if let h = dlopen(name, RTLD_NOW | RTLD_GLOBAL) { opened = h; chosen = name; break }
            tried.append("\(name): \(dlerror().map { String(cString: $0) } ?? "not found")")
        }
        guard let lib = opened else {
            throw RefineSegError.invalidArgument("started by an MPI launcher but Open MPI's library could not be loaded (\(tried.joined(separator: "; "))); install libopenmpi-dev or set REFINESEG_MPI_LIBRARY")
        }
        path = chosen
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let s = dlsym(lib, name) else {
                throw RefineSegError.invalidArgument("\(chosen) lacks \(name): RefineSeg supports Open MPI's ABI only (set REFINESEG_MPI_LIBRARY to Open MPI's libmpi.so)")
            }
            return s
        }
        func fn<T>(_ name: String, _: T.Type) throws -> T { unsafeBitCast(try symbol(name), to: T.self) }
        commWorld = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float"); double = try symbol("ompi_mpi_double")
        int32 = try symbol("ompi_mpi_int"); byte = try symbol("ompi_mpi_byte")
        sum = try symbol("ompi_mpi_op_sum"); max = try symbol("ompi_mpi_op_max")
        initialize = try fn("MPI_Init", InitFn.self); finalize = try fn("MPI_Finalize", VoidFn.self)
        commRank = try fn("MPI_Comm_rank", CommIntFn.self); commSize = try fn("MPI_Comm_size", CommIntFn.self)
        allreduce = try fn("MPI_Allreduce", AllreduceFn.self); iallreduce = try fn("MPI_Iallreduce", IallreduceFn.self)
        test = try fn("MPI_Test", TestFn.self); wait = try fn("MPI_Wait", WaitFn.self)
        bcast = try fn("MPI_Bcast", BcastFn.self); gather = try fn("MPI_Gather", GatherFn.self)
        gatherv = try fn("MPI_Gatherv", GathervFn.self)
        barrier = try fn("MPI_Barrier", CommFn.self); abort = try fn("MPI_Abort", AbortFn.self)
    }

    /// `MPI_IN_PLACE` in Open MPI (a constant address, never written through: safe to share).
    nonisolated(unsafe) static let inPlace = UnsafeRawPointer(bitPattern: 1)
}

/// The process group of a data-parallel job: rank, size and the few collectives RefineSeg uses
/// (all on `MPI_COMM_WORLD`). A single process has no `Communicator` at all.
public final class Communicator {
    let mpi: MPILibrary
    public let rank: Int
    public let size: Int
    public let launcher: Launcher

    init(mpi: MPILibrary, launcher: Launcher) throws {
        self.mpi = mpi
        self.launcher = launcher
        try Self.check(mpi.initialize(nil, nil), "MPI_Init")
        var r: Int32 = 0, s: Int32 = 0
        try Self.check(mpi.commRank(mpi.commWorld, &r), "MPI_Comm_rank")
        try Self.check(mpi.commSize(mpi.commWorld, &s), "MPI_Comm_size")
        rank = Int(r); size = Int(s)
    }

    static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else { throw RefineSegError.invalidArgument("\(what) failed with MPI error \(code)") }
    }

    public var isRoot: Bool { rank == 0 }

    /// Sums `values` over all ranks, in place (blocking).
    public func allreduceSum(_ values: inout [Double]) throws {
        let n = Int32(values.count)
        try values.withUnsafeMutableBytes { b in
            try Self.check(mpi.allreduce(MPILibrary.inPlace, b.baseAddress, n, mpi.double, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    /// Sums `values` over all ranks, in place (blocking).
    public func allreduceSum(_ values: inout [Float]) throws {
        let n = Int32(values.count)
        try values.withUnsafeMutableBytes { b in
            try Self.check(mpi.allreduce(MPILibrary.inPlace, b.baseAddress, n, mpi.float, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    /// Rank 0's `values` on every rank (same count on all ranks).
    public func broadcast(_ values: inout [Float]) throws {
        let n = Int32(values.count)
        try values.withUnsafeMutableBytes { b in
            try Self.check(mpi.bcast(b.baseAddress, n, mpi.float, 0, mpi.commWorld), "MPI_Bcast")
        }
    }

    /// Rank 0's bytes on every rank (any count on the others).
    public func broadcast(_ data: Data) throws -> Data {
        var count = [Int32(data.count)]
        try count.withUnsafeMutableBytes { b in
            try Self.check(mpi.bcast(b.baseAddress, 1, mpi.int32, 0, mpi.commWorld), "MPI_Bcast")
        }
        var bytes = isRoot ? [UInt8](data) : [UInt8](repeating: 0, count: Int(count[0]))
        try bytes.withUnsafeMutableBytes { b in
            try Self.check(mpi.bcast(b.baseAddress, count[0], mpi.byte, 0, mpi.commWorld), "MPI_Bcast")
        }
        return Data(bytes)
    }

    /// Every rank's bytes, in rank order, on rank 0 (nil on the others).
    public func gather(_ data: Data) throws -> [Data]? {
        let mine = [Int32(data.count)]
        var counts = [Int32](repeating: 0, count: size)
        try mine.withUnsafeBytes { m in
            try counts.withUnsafeMutableBytes { c in
                try Self.check(mpi.gather(m.baseAddress, 1, mpi.int32, c.baseAddress, 1, mpi.int32, 0, mpi.commWorld), "MPI_Gather")
            }
        }
        var offsets = [Int32](repeating: 0, count: size)
        for i in 1..<max(size, 1) { offsets[i] = offsets[i - 1] + counts[i - 1] }
        let total = isRoot ? Int(counts.reduce(0, +)) : 0
        var all = [UInt8](repeating: 0, count: max(total, 1))
        let bytes = [UInt8](data)
        try bytes.withUnsafeBytes { s in
            try all.withUnsafeMutableBytes { r in
                try Self.check(mpi.gatherv(s.baseAddress, Int32(bytes.count), mpi.byte, r.baseAddress, counts, offsets,
                                           mpi.byte, 0, mpi.commWorld), "MPI_Gatherv")
            }
        }
        guard isRoot else { return nil }
        return (0..<size).map { Data(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
    }

    public func barrier() throws { try Self.check(mpi.barrier(mpi.commWorld), "MPI_Barrier") }

    /// Ends every rank of the job (after this rank printed why).
    public func abort(code: Int32) -> Never {
        _ = mpi.abort(mpi.commWorld, code)
        exit(code)
    }

    func finalize() { _ = mpi.finalize() }
}

/// A started non-blocking all-reduce (sum of floats, in place) over a buffer this object owns.
final class PendingAllreduce {
    let buffer: UnsafeMutableBufferPointer<Float>
    var request: UnsafeMutableRawPointer?
    let started: Date
    var finished: Date?
    private let comm: Communicator

    init(_ values: [Float], comm: Communicator) throws {
        self.comm = comm
        buffer = .allocate(capacity: max(values.count, 1))
        _ = buffer.initialize(from: values)
        started = Date()
        var req: UnsafeMutableRawPointer?
        try Communicator.check(comm.mpi.iallreduce(MPILibrary.inPlace, buffer.baseAddress, Int32(values.count), comm.mpi.float,
                                                   comm.mpi.sum, comm.mpi.commWorld, &req), "MPI_Iallreduce")
        request = req
    }

    /// Lets MPI progress the reduction; true once it is complete.
    @discardableResult
    func test() throws -> Bool {
        if finished != nil { return true }
        var flag: Int32 = 0
        try Communicator.check(comm.mpi.test(&request, &flag, nil), "MPI_Test")
        if flag != 0 { finished = Date() }
        return flag != 0
    }

    func wait() throws {
        if finished != nil { return }
        try Communicator.check(comm.mpi.wait(&request, nil), "MPI_Wait")
        finished = Date()
    }

    deinit { buffer.deallocate() }
}
