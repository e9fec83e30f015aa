import ArgumentParser
import Foundation
import RefineSeg

// Helpers of the commands that train: run folders and MPI ranks.

/// Where `train` and `pretrain` read and write, or the run they continue.
struct RunFolderOptions: ParsableArguments {
    @Option(help: "Dataset folder (train/images, train/masks, test/…, optional val/… and unlabeled/…; with --format, a public dataset as downloaded).")
    var data: String?
    @Option(help: "Run folder to write.") var out: String?
    @Option(help: "Continue the run in this folder from its last.safetensors, with its own settings (RUN/config.json); --epochs may change how long it runs.")
    var resume: String?
    @Flag(help: "Under mpirun/srun: the network's batch-norm statistics over the global batch (all ranks), not per rank (Barlow Twins' projector always uses the global batch).")
    var syncBn = false

    func validate() throws {
        if resume == nil && (data == nil || out == nil) { throw ValidationError("--data and --out are required (or --resume RUN)") }
    }

    /// Refuses settings given with --resume (a resumed run keeps those of RUN/config.json; only
    /// --epochs can change), naming them, instead of ignoring them.
    func refuseWithResume(_ given: [String]) throws {
        guard let resume else { return }
        let all = (data == nil ? [] : ["--data"]) + (out == nil ? [] : ["--out"]) + given
        if !all.isEmpty {
            throw ValidationError("--resume \(resume) continues with the settings in \(resume)/config.json; only --epochs can change (remove \(all.joined(separator: ", ")))")
        }
    }
}

/// " (rank 0 of N, global batch B)" under MPI, else "".
var ranksNote: String { Distributed.current.map { " (rank \($0.rank) of \($0.size) ranks, data-parallel)" } ?? "" }

/// Runs `body` on rank 0 first, then on the other ranks (so files it makes, such as a split,
/// are written once); in a single process just runs it.
func rankZeroFirst<T>(_ body: () throws -> T) throws -> T {
    guard let comm = Distributed.current else { return try body() }
    if comm.isRoot { let r = try body(); try comm.barrier(); return r }
    try comm.barrier()
    return try body()
}

/// The record of a training run folder (RUN/config.json).
func readRunRecord(_ run: String) throws -> RunRecord {
    try readRunFile(run, folder: "a training run folder", record: "a RefineSeg run record")
}

/// The settings of a pre-training run folder (RUN/config.json).
func readPretrainConfig(_ run: String) throws -> PretrainConfig {
    try readRunFile(run, folder: "a pre-training run folder", record: "a RefineSeg pre-training config")
}

/// Decodes RUN/config.json, naming the file when it is missing or not what `record` says.
private func readRunFile<T: Decodable>(_ run: String, folder: String, record: String) throws -> T {
    let path = run + "/config.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RefineSegError.io(file: path, message: "not found: is \(run) \(folder)?")
    }
    do { return try JSONDecoder().decode(T.self, from: data) } catch {
        throw RefineSegError.io(file: path, message: "not \(record) (\(error.localizedDescription))")
    }
}
