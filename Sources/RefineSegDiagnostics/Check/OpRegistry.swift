import RefineSeg

/// Namespace of op-case families; each family lives in `OpCases+<Family>.swift`.
public enum OpCases {}

/// The op registry: every op of every backend, at the shapes that matter.
public enum OpRegistry {
    /// Every case, in family order.
    public static func all() -> [OpCase] {
        OpCases.elementwise() + OpCases.reduce() + OpCases.conv() + OpCases.norm()
            + OpCases.attention() + OpCases.loss() + OpCases.optim()
    }

    /// The cases whose op name equals `op` or starts with `op` followed by "_" (every case when
    /// `op` is nil or empty); with `small`, only those of the small-shape subset (`OpCase.isSmall`).
    public static func cases(op: String?, small: Bool = false) -> [OpCase] {
        let chosen = small ? all().filter(\.isSmall) : all()
        guard let op, !op.isEmpty else { return chosen }
        return chosen.filter { $0.op == op || $0.op.hasPrefix(op + "_") }
    }

    /// The distinct op names.
    public static var opNames: [String] {
        var seen = Set<String>()
        return all().map(\.op).filter { seen.insert($0).inserted }
    }
}
