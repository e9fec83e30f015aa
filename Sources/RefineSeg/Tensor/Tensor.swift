/// Backend-owned memory behind a tensor (host array for the CPU reference, a pooled
/// device buffer for OpenCL). Only the owning backend looks inside.
public protocol TensorStorage: AnyObject {}

/// A dense float32 tensor, row-major, NCHW for feature maps.
///
/// Tensors are immutable values from the model's point of view: ops return new tensors.
/// The few in-place ops (optimiser steps, running statistics) say so in their names.
public final class Tensor: CustomStringConvertible {
    public let shape: Shape
    public let storage: TensorStorage
    public let backend: Backend

    public init(shape: Shape, storage: TensorStorage, backend: Backend) {
        self.shape = shape
        self.storage = storage
        self.backend = backend
    }

    public var count: Int { shape.count }
    public var description: String { "Tensor\(shape) on \(backend.name)" }

    /// Copies the values to the host (blocking).
    public func toArray() throws -> [Float] { try backend.read(self) }

    /// The single value of a one-element tensor (blocking).
    public func scalar() throws -> Float {
        guard count == 1 else {
            throw RefineSegError.shapeMismatch(op: "scalar", detail: "\(shape) has \(count) elements, expected 1")
        }
        return try toArray()[0]
    }

    /// The same storage seen under another shape with the same element count.
    public func reshaped(_ newShape: Shape) throws -> Tensor {
        guard newShape.count == count else {
            throw RefineSegError.shapeMismatch(op: "reshape", detail: "\(shape) cannot become \(newShape)")
        }
        return Tensor(shape: newShape, storage: storage, backend: backend)
    }
}
