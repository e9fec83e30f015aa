/// Architecture hyper-parameters (saved as checkpoint metadata, as strings).
public struct ModelConfig: Codable, Equatable, Sendable {
    public var inChannels: Int
    public var width: Int
    public init(inChannels: Int = 1, width: Int = 16) { self.inChannels = inChannels; self.width = width }

    public var metadata: [String: String] { ["in_channels": "\(inChannels)", "width": "\(width)", "architecture": "dfr-unet", "spec_version": "1"] }
}

/// What one forward pass yields: the logit map and the lesion-aware embedding.
public struct DFRUNetOutput {
    /// (N, 1, H, W) logits.
    public var logits: Var
    /// (N, 32, H, W) raw `lac` embedding (L2-normalised inside the loss).
    public var embedding: Var?
}

/// DFR-UNet exactly as docs/MODEL.md: RefineBlock encoder and decoder, dilated context, 1×1 head,
/// plus the `lac` embedding head used by the lesion-aware contrastive loss.
public final class DFRUNet: Module {
    public let config: ModelConfig
    public let enc1: RefineBlock, enc2: RefineBlock, enc3: RefineBlock, enc4: RefineBlock
    public let bottleneck: RefineBlock
    public let context: DilatedContext
    public let up4: Up, up3: Up, up2: Up, up1: Up
    public let dec4: RefineBlock, dec3: RefineBlock, dec2: RefineBlock, dec1: RefineBlock
    public let head: Conv2d
    public let lac: Conv2d

    /// Names of the encoder tensors (loaded from a Barlow Twins checkpoint by `train --init`).
    public static let encoderPrefixes = ["enc1.", "enc2.", "enc3.", "enc4.", "bottleneck.", "context."]

    public init(_ backend: Backend, config: ModelConfig, seed: UInt64) throws {
        guard config.inChannels >= 1, config.width >= 4, config.width % 4 == 0 else {
            throw RefineSegError.invalidArgument("model: in_channels must be ≥ 1 and width a positive multiple of 4 (got \(config.inChannels), \(config.width))")
        }
        self.config = config
        var rng = SeededRandom(seed: seed)
        let c = config.inChannels, w = config.width
        enc1 = try RefineBlock(backend, c, w, rng: &rng)
        enc2 = try RefineBlock(backend, w, 2 * w, rng: &rng)
        enc3 = try RefineBlock(backend, 2 * w, 4 * w, rng: &rng)
        enc4 = try RefineBlock(backend, 4 * w, 8 * w, rng: &rng)
        bottleneck = try RefineBlock(backend, 8 * w, 16 * w, rng: &rng)
        context = try DilatedContext(backend, 16 * w, rng: &rng)
        up4 = try Up(backend, 16 * w, 8 * w, rng: &rng)
        dec4 = try RefineBlock(backend, 16 * w, 8 * w, rng: &rng)
        up3 = try Up(backend, 8 * w, 4 * w, rng: &rng)
        dec3 = try RefineBlock(backend, 8 * w, 4 * w, rng: &rng)
        up2 = try Up(backend, 4 * w, 2 * w, rng: &rng)
        dec2 = try RefineBlock(backend, 4 * w, 2 * w, rng: &rng)
        up1 = try Up(backend, 2 * w, w, rng: &rng)
        dec1 = try RefineBlock(backend, 2 * w, w, rng: &rng)
        head = try Conv2d(backend, w, 1, kernel: 1, bias: true, rng: &rng)
        lac = try Conv2d(backend, w, 32, kernel: 1, bias: true, rng: &rng)
    }

    /// The encoder path: the four skip tensors and the context output (N, 16w, H/16, W/16).
    public func encode(_ x: Var, _ g: Graph) throws -> (skips: [Var], context: Var) {
        guard x.shape.rank == 4, x.shape[1] == config.inChannels, x.shape[2] % 16 == 0, x.shape[3] % 16 == 0 else {
            throw RefineSegError.shapeMismatch(op: "dfr-unet", detail: "input \(x.shape) must be (N, \(config.inChannels), H, W) with H and W multiples of 16")
        }
        let s1 = try enc1(x, g)
        let s2 = try enc2(try g.maxPool2x2(s1), g)
        let s3 = try enc3(try g.maxPool2x2(s2), g)
        let s4 = try enc4(try g.maxPool2x2(s3), g)
        let b = try bottleneck(try g.maxPool2x2(s4), g)
        return ([s1, s2, s3, s4], try context(b, g))
    }

    /// Logits (N, 1, H, W) and, when `withEmbedding`, the `lac` embedding.
    public func callAsFunction(_ x: Var, _ g: Graph, withEmbedding: Bool = false) throws -> DFRUNetOutput {
        let (skips, ctx) = try encode(x, g)
        var h = try dec4(try g.concatChannels([try up4(ctx, g), skips[3]]), g)
        h = try dec3(try g.concatChannels([try up3(h, g), skips[2]]), g)
        h = try dec2(try g.concatChannels([try up2(h, g), skips[1]]), g)
        h = try dec1(try g.concatChannels([try up1(h, g), skips[0]]), g)
        return DFRUNetOutput(logits: try head(h, g), embedding: withEmbedding ? try lac(h, g) : nil)
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        let parts: [(String, Module)] = [
            ("enc1", enc1), ("enc2", enc2), ("enc3", enc3), ("enc4", enc4), ("bottleneck", bottleneck),
            ("context", context), ("up4", up4), ("dec4", dec4), ("up3", up3), ("dec3", dec3),
            ("up2", up2), ("dec2", dec2), ("up1", up1), ("dec1", dec1), ("head", head), ("lac", lac),
        ]
        for (name, module) in parts { module.collect(prefix: join(prefix, name), into: &list) }
    }
}

/// The Barlow Twins projector: Linear(16w, d) → BN1d → ReLU → Linear(d, d) → BN1d → ReLU → Linear(d, d),
/// named like PyTorch's nn.Sequential: `projector.0`, `.1`, `.3`, `.4`, `.6`.
public final class Projector: Module {
    public let l0: Linear, bn1: BatchNorm, l3: Linear, bn4: BatchNorm, l6: Linear

    public init(_ backend: Backend, inFeatures: Int, dimension d: Int, rng: inout SeededRandom) throws {
        l0 = try Linear(backend, inFeatures, d, rng: &rng)
        bn1 = try BatchNorm(backend, d)
        l3 = try Linear(backend, d, d, rng: &rng)
        bn4 = try BatchNorm(backend, d)
        l6 = try Linear(backend, d, d, rng: &rng)
    }

    /// (N, 16w) embeddings → (N, d).
    public func callAsFunction(_ x: Var, _ g: Graph) throws -> Var {
        let h = try bn1(try l0(x, g), g, activation: .relu)
        return try l6(try bn4(try l3(h, g), g, activation: .relu), g)
    }

    public func collect(prefix: String, into list: inout [(String, Parameter)]) {
        l0.collect(prefix: join(prefix, "0"), into: &list)
        bn1.collect(prefix: join(prefix, "1"), into: &list)
        l3.collect(prefix: join(prefix, "3"), into: &list)
        bn4.collect(prefix: join(prefix, "4"), into: &list)
        l6.collect(prefix: join(prefix, "6"), into: &list)
    }
}
