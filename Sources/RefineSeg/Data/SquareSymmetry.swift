/// One of the eight symmetries of an S×S square, as the augmentations draw it: a rotation by
/// a multiple of 90°, then horizontal and vertical flips. Shared by the supervised crop
/// (`augmentedCrop`) and the pre-training views (`ViewAugmentation`).
struct SquareSymmetry {
    let quarterTurns: Int
    let flipH: Bool, flipV: Bool

    /// Draws the flips, then the rotation, from `rng` (three draws, in this order).
    init(_ rng: inout SeededRandom) {
        flipH = rng.next() & 1 == 1
        flipV = rng.next() & 1 == 1
        quarterTurns = Int(rng.next() % 4)
    }

    /// The position (y, x) of the untransformed S×S grid whose value output (y, x) takes.
    func source(_ y: Int, _ x: Int, size: Int) -> (y: Int, x: Int) {
        var (yy, xx) = (y, x)
        switch quarterTurns {
        case 1: (yy, xx) = (x, size - 1 - y)
        case 2: (yy, xx) = (size - 1 - y, size - 1 - x)
        case 3: (yy, xx) = (size - 1 - x, y)
        default: break
        }
        if flipH { xx = size - 1 - xx }
        if flipV { yy = size - 1 - yy }
        return (yy, xx)
    }
}
