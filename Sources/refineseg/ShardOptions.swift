import ArgumentParser
import Foundation
import RefineSeg

/// Splitting a command's images across the tasks of a job array (without MPI).
struct ShardOptions: ParsableArguments {
    @Option(help: "Split the images into this many parts (for a job array without MPI); this task does --part-id. Under mpirun/srun the ranks split them by themselves.")
    var numParts: Int = 1
    @Option(help: "Which part this task does, 0 ..< --num-parts; writes OUT/part-K-of-N/.") var partId: Int = 0
    @Flag(help: "Merge the finished OUT/part-K-of-N/ folders into OUT as one run would have written it.") var merge = false

    func shard() throws -> Shard {
        let s = Shard(count: numParts, index: partId)
        try s.validate()
        if numParts > 1, let comm = try Distributed.start() {
            throw RefineSegError.invalidArgument("--num-parts is for job arrays without MPI; under \(comm.launcher.name) the \(comm.size) ranks split the images by themselves")
        }
        return s
    }
}
