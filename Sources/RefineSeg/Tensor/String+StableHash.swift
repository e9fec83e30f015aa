// Used by the op-case seeds (Check/OpCase.swift) and OpenCL's kernel-source keys (CLBackend+Conv2D.swift).
extension String {
    /// FNV-1a: a hash that, unlike `hashValue`, is the same in every process.
    package var hashValueStable: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
