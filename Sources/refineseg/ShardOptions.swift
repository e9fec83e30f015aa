import ArgumentParser
import Foundation
import RefineSeg

/// Splitting a command's work across the tasks of a job array (without MPI): the images of
/// evaluate and annotate, the seeds of a study.
struct ShardOptions: ParsableArguments {
    @Option(help: "Split the work into this many parts (for a job array without MPI: evaluate and annotate split the images, study the seeds); this task does --part-id. Under mpirun/srun the ranks split it by themselves.")
    var numParts: Int = 1
    @Option(help: "Which part this task does, 0 ..< --num-parts.") var partId: Int = 0

    func shard() throws -> Shard {
        let s = Shard(count: numParts, index: partId)
        try s.validate()
        if numParts > 1, let comm = try Distributed.start() {
            throw RefineSegError.invalidArgument("--num-parts is for job arrays without MPI; under \(comm.launcher.name) the \(comm.size) ranks split the work by themselves")
        }
        return s
    }
}

/// The parts of the commands that write one folder per part, and `--merge` to join them.
struct PartFolderOptions: ParsableArguments {
    @OptionGroup var parts: ShardOptions
    @Flag(help: "Merge the finished OUT/part-K-of-N/ folders (one per part) into OUT as one run would have written it.") var merge = false

    func shard() throws -> Shard { try parts.shard() }
}
