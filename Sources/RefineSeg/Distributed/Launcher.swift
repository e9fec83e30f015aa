import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The launcher that started this process, read from its environment: Open MPI's `mpirun`
/// (`OMPI_COMM_WORLD_*`), SLURM's `srun` (`SLURM_STEP_NUM_TASKS`, `SLURM_PROCID`,
/// `SLURM_LOCALID`) or a PMI launcher (`PMI_SIZE`, `PMI_RANK`, `MPI_LOCALRANKID`). A job of one
/// process is not a launch: it runs exactly like a plain start, without MPI.
public struct Launcher: Equatable, Sendable {
    public var name: String
    public var size: Int
    public var rank: Int
    public var localRank: Int

    public static func detect(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Launcher? {
        func int(_ key: String) -> Int? { env[key].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        var found: Launcher?
        if let size = int("OMPI_COMM_WORLD_SIZE"), let rank = int("OMPI_COMM_WORLD_RANK") {
            found = Launcher(name: "mpirun", size: size, rank: rank, localRank: int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0)
        } else if let size = int("SLURM_STEP_NUM_TASKS"), let rank = int("SLURM_PROCID") {
            // SLURM_STEP_NUM_TASKS (not SLURM_NTASKS) is set by srun for its step only, so a
            // process started directly in a batch script is not mistaken for a rank.
            found = Launcher(name: "srun", size: size, rank: rank, localRank: int("SLURM_LOCALID") ?? 0)
        } else if let size = int("PMI_SIZE"), let rank = int("PMI_RANK") {
            found = Launcher(name: "pmi", size: size, rank: rank, localRank: int("MPI_LOCALRANKID") ?? int("PMI_LOCAL_RANK") ?? 0)
        } else if let rank = int("PMIX_RANK"), let size = int("SLURM_STEP_NUM_TASKS") ?? int("OMPI_UNIVERSE_SIZE") {
            found = Launcher(name: "pmix", size: size, rank: rank, localRank: int("PMIX_LOCAL_RANK") ?? int("SLURM_LOCALID") ?? 0)
        }
        guard let l = found, l.size > 1 else { return nil }
        return l
    }
}

/// The process group of this run: nil for a plain (single-process) start. Started once, by the
/// first command that asks, and finalised at exit.
public enum Distributed {
    // Written only by `start()`, which the command calls on its own thread before training starts
    // any other; read-only afterwards.
    nonisolated(unsafe) private static var started = false
    nonisolated(unsafe) private static var world: Communicator?

    /// Detects a launcher and, if there is one, loads Open MPI and initialises it.
    public static func start() throws -> Communicator? {
        if started { return world }
        started = true
        guard let launcher = Launcher.detect() else { return nil }
        // Ranks waiting in a collective yield the CPU instead of spinning (unless the user set
        // it): ranks sharing a CPU device, or a rank waiting while rank 0 validates, would
        // otherwise take the cores the computing ranks need. Large all-reduces lose nothing.
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        let mpi = try MPILibrary()
        let comm = try Communicator(mpi: mpi, launcher: launcher)
        if comm.size == 1 {
            // The launcher said several but MPI sees one process (a singleton start): run alone.
            FileHandle.standardError.write(Data("note: \(launcher.name) reported \(launcher.size) tasks but MPI sees one process; running alone\n".utf8))
            comm.finalize()
            return nil
        }
        world = comm
        atexit { Distributed.current?.finalize() }
        installTerminationMessage(rank: comm.rank, size: comm.size)
        return comm
    }

    /// The communicator if MPI was started.
    public static var current: Communicator? { world }

    /// Ends the whole job after this rank printed its error (so the other ranks do not wait
    /// forever in a collective); a no-op for a single process.
    public static func abortIfRunning(code: Int32) {
        guard let comm = world else { return }
        comm.abort(code: code)
    }

    /// What a rank says when the launcher stops it because another rank ended (set by
    /// training to name the checkpoint that is intact).
    public static func setTerminationNote(_ note: String) {
        guard let comm = world else { return }
        let text = "rank \(comm.rank)/\(comm.size): stopped because another rank of this job ended (the launcher stops the rest); \(note)\n"
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        buffer.initialize(from: bytes, count: bytes.count)
        let old = terminationMessage
        terminationMessage = (UnsafePointer(buffer), bytes.count)
        if let old { old.0.deallocate() }
    }

    // Set by `setTerminationNote` on the training thread; the SIGTERM handler only reads it (the old
    // buffer is freed after the new one is in place).
    nonisolated(unsafe) static var terminationMessage: (UnsafePointer<UInt8>, Int)?

    /// On SIGTERM (what mpirun and srun send the remaining ranks when one dies) each rank
    /// prints one line and exits at once, without writing anything: checkpoints are written
    /// atomically, so the last complete one stays as it was.
    static func installTerminationMessage(rank: Int, size: Int) {
        setTerminationNote("nothing was half-written")
        signal(SIGTERM) { _ in
            if let (p, n) = Distributed.terminationMessage { _ = write(2, p, n) }
            _exit(143)
        }
    }

    /// The OpenCL device index for this rank: the rank's entry of `--device a,b,…` (by local
    /// rank), else the local rank's GPU on this node; on a node without GPUs every rank shares
    /// the default device (PoCL on a CPU), and the first rank of the node says so.
    public static func deviceIndex(requested: [Int], comm: Communicator) throws -> Int? {
        let local = comm.launcher.localRank
        if !requested.isEmpty { return requested[local % requested.count] }
        let devices = try OpenCLDevices.list()
        let gpus = devices.filter { $0.type == "GPU" || $0.type == "ACCELERATOR" }
        if gpus.isEmpty {
            if local == 0 {
                FileHandle.standardError.write(Data("note: no GPU on this node: its ranks share OpenCL device \(try OpenCLDevices.defaultIndex(in: devices)) (\(devices.first?.name ?? "none")); expect no speed-up from several ranks here\n".utf8))
            }
            return nil
        }
        return gpus[local % gpus.count].index
    }
}

/// Which part of a list of items this process handles: contiguous blocks in order, so parts
/// concatenated by part number give the original order.
public struct Shard: Equatable, Sendable {
    public var count: Int
    public var index: Int
    public static let whole = Shard(count: 1, index: 0)

    public init(count: Int, index: Int) { self.count = count; self.index = index }

    public func validate() throws {
        guard count >= 1 else { throw RefineSegError.invalidArgument("--num-parts must be at least 1 (got \(count))") }
        guard (0..<count).contains(index) else {
            throw RefineSegError.invalidArgument("--part-id must be in 0..<\(count) for --num-parts \(count) (got \(index))")
        }
    }

    /// Indices [index·n/count, (index+1)·n/count).
    public func range(of n: Int) -> Range<Int> { (index * n / count)..<((index + 1) * n / count) }

    public func slice<T>(_ items: [T]) -> [T] { Array(items[range(of: items.count)]) }

    /// Folder name of a part's outputs for a later merge.
    public var folderName: String { "part-\(index)-of-\(count)" }
}
