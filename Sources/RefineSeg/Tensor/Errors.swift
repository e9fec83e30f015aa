import Foundation

/// Every error RefineSeg throws. Each case renders as one line that names the op, file or
/// setting at fault, so the CLI can print it as it is and exit non-zero.
public enum RefineSegError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// Two tensors (or a tensor and an expectation) disagree; both shapes are named.
    case shapeMismatch(op: String, detail: String)
    /// A setting or argument is out of range.
    case invalidArgument(String)
    /// An OpenCL call failed. `log` holds the build log for program builds.
    case openCL(op: String, call: String, status: String, log: String?)
    /// No OpenCL platform or device could be used.
    case noDevice(String)
    /// A file could not be read, parsed or written.
    case io(file: String, message: String)
    /// A numerical failure during training (NaN/Inf loss and the like).
    case numerical(String)
    /// The backend does not implement this op.
    case unsupported(op: String, backend: String)
    /// The device could not provide memory for an op; `detail` gives the bytes asked for and the limit.
    case outOfMemory(op: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "[\(op)] shape mismatch: \(detail)"
        case let .invalidArgument(message): return message
        case let .openCL(op, call, status, log):
            var text = "[\(op)] \(call) failed with \(status)"
            if let log, !log.isEmpty { text += "\nbuild log:\n\(log)" }
            return text
        case let .noDevice(message): return message
        case let .io(file, message): return "\(file): \(message)"
        case let .numerical(message): return message
        case let .unsupported(op, backend): return "[\(op)] not supported by the \(backend) backend"
        case let .outOfMemory(op, detail): return "[\(op)] out of device memory: \(detail)"
        }
    }

    public var errorDescription: String? { description }
}
