import ArgumentParser
import Foundation
import RefineSeg

// Typed option values: ArgumentParser parses them, so a command never splits or compares the
// text itself, and a value that does not parse is refused in one line naming the option
// ("The value 'x' is invalid for '--format <format>'. Please provide one of …", or the
// option's own reason after a colon).

/// An option value with a reason when its text does not parse. `parse` is the `transform:` of
/// the option (ArgumentParser prints the thrown reason after the option's name and value).
protocol ReasonedArgument: ExpressibleByArgument {
    static func parse(_ text: String) throws -> Self
}

extension ReasonedArgument {
    init?(argument: String) {
        guard let value = try? Self.parse(argument) else { return nil }
        self = value
    }
}

/// Why an option value was refused (printed after the option's name and value).
struct ArgumentReason: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}

/// `--format`: a dataset layout, any letter case (docs/DATASETS.md).
extension DatasetFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

/// `--axis`: the axis NIfTI volumes are cut along, any letter case.
extension SliceAxis: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
}

/// `--modalities`: a BraTS modality.
enum BraTSModality: String, CaseIterable, ExpressibleByArgument {
    case flair, t1, t1ce, t2
    init?(argument: String) { self.init(rawValue: argument.trimmingCharacters(in: .whitespaces).lowercased()) }
}

/// `--augment`: the training augmentation (`TrainConfig.augment`).
enum AugmentChoice: String, CaseIterable, ExpressibleByArgument {
    case nnunet, basic
}

/// `--checkpoint`: which weights RUN/model.safetensors holds.
enum CheckpointChoice: String, CaseIterable, ExpressibleByArgument {
    case final, best
}

/// `--postprocess`: the post-processing chosen on validation (from the checkpoint) or none.
enum PostprocessChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, none
}

/// `evaluate --split`: the labelled splits (the unlabelled one has no masks to score).
enum EvaluationSplit: String, CaseIterable, ExpressibleByArgument {
    case test, val, train
    var part: DatasetPart {
        switch self {
        case .test: .test
        case .val: .val
        case .train: .train
        }
    }
}

/// `--device`: `cpu` (the CPU reference backend), an OpenCL device index, or a list of indices
/// (under mpirun/srun, one per local rank).
enum DeviceChoice: ReasonedArgument, Equatable {
    case cpu
    case indices([Int])

    static func parse(_ text: String) throws -> DeviceChoice {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == "cpu" { return .cpu }
        let list = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ ($0 ?? -1) >= 0 }) else {
            throw ArgumentReason("a device index (see `refineseg devices`), a list such as 0,1 (under mpirun) or `cpu` is needed")
        }
        return .indices(list.compactMap { $0 })
    }
}

/// A comma-separated list of values (`--fractions 0.1,0.5,1`, `--variants scratch,bt+lac`).
struct CommaList<Element: ExpressibleByArgument>: ReasonedArgument {
    var values: [Element]

    static func parse(_ text: String) throws -> CommaList {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var values = [Element]()
        for part in parts {
            guard let v = Element(argument: part) else {
                let known = Element.allValueStrings
                throw ArgumentReason(known.isEmpty
                    ? "\(part.isEmpty ? "an empty item" : "'\(part)'") is not a \(Element.self == Double.self ? "number" : "value"); give a comma-separated list such as \(Element.self == Double.self ? "0.1,0.2,0.5,1.0" : "a,b")"
                    : "\(part.isEmpty ? "an empty item" : "'\(part)'") is not one of \(known.joined(separator: ", "))")
            }
            values.append(v)
        }
        return CommaList(values: values)
    }
}

extension StudyVariant: ExpressibleByArgument {}

extension LabelSelection: ExpressibleByArgument {
    /// The rules, for the help of every `--label-selection` (train, study, suggest).
    static let rules = "stratified (the default: of each of k clusters of similar images, k the number labelled, the image with the most content, i.e. most objects standing out from the background; one image: the richest of all), random (a seeded shuffle, the paper's protocol) or diverse (the clusters' most typical images; worse on dsb, docs/study-real)."
}
