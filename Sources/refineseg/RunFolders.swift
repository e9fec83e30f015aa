import ArgumentParser
import Foundation
import RefineSeg

// Helpers of the commands that train: run folders and MPI ranks.

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

func readRunRecord(_ run: String) throws -> RunRecord {
    let path = run + "/config.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RefineSegError.io(file: path, message: "not found: is \(run) a training run folder?")
    }
    do { return try JSONDecoder().decode(RunRecord.self, from: data) } catch {
        throw RefineSegError.io(file: path, message: "not a RefineSeg run record (\(error.localizedDescription))")
    }
}

/// The settings of a pre-training run folder (RUN/config.json).
func readPretrainConfig(_ run: String) throws -> PretrainConfig {
    let path = run + "/config.json"
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RefineSegError.io(file: path, message: "not found: is \(run) a pre-training run folder?")
    }
    do { return try JSONDecoder().decode(PretrainConfig.self, from: data) } catch {
        throw RefineSegError.io(file: path, message: "not a RefineSeg pre-training config (\(error.localizedDescription))")
    }
}
