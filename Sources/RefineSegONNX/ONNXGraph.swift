import Foundation
import SwiftProtobuf

/// A small builder for an ONNX graph of float32 tensors: nodes in topological order,
/// initializers stored as little-endian raw data, unique value names.
struct ONNXGraph {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var counter = 0

    /// An attribute of a node.
    enum Attribute {
        case int(Int)
        case ints([Int])
        case float(Float)

        func proto(_ name: String) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            switch self {
            case .int(let v): a.type = .int; a.i = Int64(v)
            case .ints(let v): a.type = .ints; a.ints = v.map(Int64.init)
            case .float(let v): a.type = .float; a.f = v
            }
            return a
        }
    }

    /// Adds a node and returns the name of its (single) output, `hint` plus a counter.
    @discardableResult
    mutating func add(_ op: String, _ inputs: [String], _ attributes: [String: Attribute] = [:],
                      name hint: String, output: String? = nil) -> String {
        counter += 1
        let out = output ?? "\(hint)/\(op.lowercased())_\(counter)"
        var n = Onnx_NodeProto()
        n.opType = op
        n.name = "\(hint)/\(op)_\(counter)"
        n.input = inputs
        n.output = [out]
        n.attribute = attributes.keys.sorted().map { attributes[$0]!.proto($0) }
        nodes.append(n)
        return out
    }

    /// Adds a float32 initializer (row-major `values` of shape `dims`) and returns its name.
    @discardableResult
    mutating func constant(_ name: String, dims: [Int], _ values: [Float]) -> String {
        precondition(dims.reduce(1, *) == values.count, "initializer \(name): \(values.count) values for \(dims)")
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var raw = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        t.rawData = raw
        initializers.append(t)
        return name
    }

    /// A float32 tensor's value info; a nil dimension is symbolic (named by `symbols`).
    static func valueInfo(_ name: String, dims: [Int?], symbols: [String]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = zip(dims, symbols).map { d, s in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = s }
            return dim
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        return info
    }
}
