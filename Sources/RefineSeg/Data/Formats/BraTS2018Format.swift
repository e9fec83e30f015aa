import Foundation

/// BraTS 2018 (training data, with segmentations), as downloaded:
///
///     MICCAI_BraTS_2018_Data_Training/{HGG,LGG}/CASE/CASE_{flair,t1,t1ce,t2,seg}.nii.gz
///
/// or case folders directly under `path` (found up to three levels down; `.nii` works too).
/// Each case is read as NIfTI-1 volumes (either byte order, gzip'd or not) and trained on as
/// axial slices: the chosen modalities (default flair, t1, t1ce, t2) are the channels, whole
/// tumour (seg > 0) the target.
///
/// - Brain: voxels where any chosen modality is non-zero. Slices without brain are skipped.
/// - Normalisation per volume and modality, not per slice: x' = (x − p1) / (p99.8 − p1 + 1e-6)
///   with the percentiles over the brain voxels of the whole volume, applied to every voxel
///   (docs/MODEL.md's formula with volume statistics, so slices of a case share one scale).
/// - Memory: every kept slice is cropped to the case's in-plane brain bounding box (the union
///   over all slices), about 140×170 of BraTS's 240×240, so a case costs about
///   (slices with brain) × C × 140×170 floats ≈ 50 MB with four modalities instead of 140 MB.
///   The crop drops only background, where the target is 0; metrics are per slice, inside it.
/// - Splits are by case: the made test split, the validation hold-out and the label fraction
///   never separate the slices of one case.
struct BraTS2018Source: DatasetSource {
    static let allModalities = ["flair", "t1", "t1ce", "t2"]
    let root: String
    let modalities: [String]

    init(path: String, modalities: [String]?) throws {
        try requireDirectory(path, "BraTS 2018 folder")
        root = path
        let chosen = (modalities ?? Self.allModalities).map { $0.lowercased() }
        for m in chosen where !Self.allModalities.contains(m) {
            throw RefineSegError.invalidArgument("--modalities: \(m) is not a BraTS modality (\(Self.allModalities.joined(separator: ", ")))")
        }
        guard !chosen.isEmpty, Set(chosen).count == chosen.count else {
            throw RefineSegError.invalidArgument("--modalities must name each of \(Self.allModalities.joined(separator: ", ")) at most once, at least one (got \(chosen.joined(separator: ",")))")
        }
        self.modalities = chosen
    }

    /// Folders holding a CASE_<modality or seg>.nii(.gz) named after themselves, up to 3 levels down.
    func caseFolders() throws -> [String] {
        var found = [String](), frontier = [root]
        for _ in 0...3 {
            var next = [String]()
            for dir in frontier {
                let name = URL(fileURLWithPath: dir).lastPathComponent
                let files = try listDirectory(dir)
                if files.contains(where: { f in (Self.allModalities + ["seg"]).contains { f == "\(name)_\($0).nii.gz" || f == "\(name)_\($0).nii" } }) {
                    found.append(dir)
                } else {
                    next += files.map { "\(dir)/\($0)" }.filter(isDirectory)
                }
            }
            frontier = next
        }
        return found
    }

    func entries() throws -> [DatasetEntry] {
        var out = [DatasetEntry](), seen = [String: String]()
        for dir in try caseFolders() {
            let id = URL(fileURLWithPath: dir).lastPathComponent
            if let other = seen[id] { throw RefineSegError.io(file: dir, message: "BraTS case \(id) is also at \(other)") }
            seen[id] = dir
            var files = [String: String]()
            for m in modalities + ["seg"] {
                let candidates = ["\(dir)/\(id)_\(m).nii.gz", "\(dir)/\(id)_\(m).nii"]
                guard let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                    let what = m == "seg" ? "segmentation" : "modality \(m)"
                    throw RefineSegError.io(file: dir, message: "BraTS case is missing its \(what) (\(id)_\(m).nii.gz)")
                }
                files[m] = file
            }
            out.append(DatasetEntry(id: id, part: nil, tags: ["grade": URL(fileURLWithPath: dir).deletingLastPathComponent().lastPathComponent],
                                    files: files))
        }
        guard !out.isEmpty else {
            throw RefineSegError.io(file: root, message: "no BraTS cases (CASE/CASE_flair.nii.gz …) in this folder or three levels below")
        }
        return out.sorted { $0.id < $1.id }
    }

    func load(_ entry: DatasetEntry, spec: DatasetSpec) throws -> [Sample] {
        let segPath = entry.files["seg", default: ""]
        let seg = try NIfTIFile.read(segPath)
        var volumes = [[Float]]()
        for m in modalities {
            let path = entry.files[m, default: ""]
            let v = try NIfTIFile.read(path)
            guard v.dims == seg.dims else {
                throw RefineSegError.io(file: path, message: "volume is \(v.dims.map(String.init).joined(separator: "×")) but \(URL(fileURLWithPath: segPath).lastPathComponent) is \(seg.dims.map(String.init).joined(separator: "×")): the modalities of a case must share one grid")
            }
            volumes.append(v.values)
        }
        let (nx, ny, nz) = (seg.dims[0], seg.dims[1], seg.dims[2])
        var brain = [Bool](repeating: false, count: nx * ny * nz) // [Z, Y, X]
        for v in volumes { for i in brain.indices where v[i] != 0 { brain[i] = true } }
        // Bounding box of the brain in-plane (over all slices) and the slices with brain.
        var x0 = nx, x1 = -1, y0 = ny, y1 = -1
        var slices = [Int]()
        for z in 0..<nz {
            var any = false
            for y in 0..<ny { for x in 0..<nx where brain[(z * ny + y) * nx + x] {
                any = true
                x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
            } }
            if any { slices.append(z) }
        }
        guard !slices.isEmpty else { return [] }
        normalizeVolume(&volumes)
        let spacing = SliceAxis.axial.spacing(seg.pixdim)
        let h = y1 - y0 + 1, w = x1 - x0 + 1, c = volumes.count
        return slices.map { z in
            var image = [Float](repeating: 0, count: c * h * w) // [C, H, W]
            var mask = [Float](repeating: 0, count: h * w)      // [H, W]
            for y in 0..<h {
                for x in 0..<w {
                    let i = (z * ny + y0 + y) * nx + x0 + x
                    for k in 0..<c { image[(k * h + y) * w + x] = volumes[k][i] }
                    mask[y * w + x] = seg.values[i] > 0 ? 1 : 0
                }
            }
            var s = Sample(name: "\(entry.id)_z\(String(format: "%03d", z))", path: entry.files[modalities[0], default: ""],
                           channels: c, height: h, width: w, image: image, mask: mask)
            s.group = entry.id
            s.tags = entry.tags
            s.volume = VolumeSlice(volume: entry.id, slice: z, row: y0, column: x0, spacing: spacing)
            return s
        }
    }
}
