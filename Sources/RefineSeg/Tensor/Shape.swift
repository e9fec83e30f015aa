/// A tensor shape, outermost dimension first (NCHW for feature maps, (N, D) for vectors).
public struct Shape: Equatable, Hashable, Sendable, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public var rank: Int { dims.count }
    public var count: Int { dims.reduce(1, *) }
    public subscript(_ i: Int) -> Int { dims[i] }
    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }

    /// The four NCHW extents; rank-3 (C, H, W) shapes read as (1, C, H, W), rank-2 (N, C) as
    /// (N, C, 1, 1) and rank-1 (C) as (1, C, 1, 1). Other ranks are a programmer error: check the
    /// rank first (`expect(rank:op:)`) or use `nchw(op:)`, which throws.
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        switch rank {
        case 4: return (dims[0], dims[1], dims[2], dims[3])
        case 3: return (1, dims[0], dims[1], dims[2])
        case 2: return (dims[0], dims[1], 1, 1)
        case 1: return (1, dims[0], 1, 1)
        default: preconditionFailure("Shape.nchw of rank-\(rank) shape \(self); check the rank first")
        }
    }
}

extension Shape {
    /// Throws `shapeMismatch` naming both shapes unless `self == other`.
    public func expect(equal other: Shape, op: String) throws {
        guard self == other else {
            throw RefineSegError.shapeMismatch(op: op, detail: "\(self) vs \(other)")
        }
    }

    /// `nchw`, or a `shapeMismatch` naming `op` unless the rank is 1…4.
    public func nchw(op: String, name: String = "input") throws -> (n: Int, c: Int, h: Int, w: Int) {
        guard (1...4).contains(rank) else {
            throw RefineSegError.shapeMismatch(op: op, detail: "\(name) \(self) must have rank 1 to 4 (read as NCHW)")
        }
        return nchw
    }

    /// Throws unless the rank is `rank`.
    public func expect(rank r: Int, op: String, name: String = "input") throws {
        guard rank == r else {
            throw RefineSegError.shapeMismatch(op: op, detail: "\(name) \(self) must have rank \(r)")
        }
    }
}
