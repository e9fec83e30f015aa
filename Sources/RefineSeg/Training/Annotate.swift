import Foundation

/// One row of OUT/review.csv.
public struct ReviewRow {
    public var name: String
    /// Mean binary entropy of the probabilities, in bits (0 = certain, 1 = coin toss).
    public var meanEntropy: Double
    /// Share of pixels predicted as lesion.
    public var lesionFraction: Double
    public var width: Int
    public var height: Int
}

/// How `annotate` reads its inputs and treats earlier outputs.
public struct AnnotateOptions: Sendable {
    /// The axis NIfTI volumes are cut along (default axial, as BraTS is trained).
    public var axis: SliceAxis = .axial
    /// Modalities of volumes stored one file per modality (BraTS naming, CASE_<modality>.nii.gz),
    /// in channel order. nil: BraTS's four (flair, t1, t1ce, t2) for a model with 4 channels,
    /// no grouping otherwise.
    public var modalities: [String]?
    /// `--continue`: skip inputs whose outputs are complete (in OUT, or left in the staging
    /// folder by a run that was killed), and merge the new outputs into OUT.
    public var resume = false

    public init() {}
}

/// One input of `annotate`: a 2-D image, or a volume (one 3-D/4-D NIfTI file, or one 3-D file
/// per modality); `name` names its outputs.
public struct AnnotationInput: Sendable, Equatable {
    public var name: String
    public var files: [String]
    public var isVolume: Bool

    /// Output files of this input, relative to OUT.
    var outputs: [String] {
        isVolume ? ["masks/\(name).nii.gz", "probabilities/\(name).nii.gz"]
                 : ["masks/\(name).png", "probabilities/\(name).png", "overlays/\(name).png"]
    }

    /// The inputs at `path` (an image or volume file, or a folder of them), sorted by name.
    /// Files named CASE_<modality>.nii(.gz) for every modality of `modalities` become one volume
    /// CASE (CASE_seg files are then left out); every other NIfTI file is a volume of its own.
    public static func list(_ path: String, modalities: [String]?) throws -> [AnnotationInput] {
        var isDir: ObjCBool = false
        let fm = FileManager.default
        let dir: String, names: [String]
        if fm.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
            let url = URL(fileURLWithPath: path)
            dir = url.deletingLastPathComponent().path
            names = [url.lastPathComponent]
        } else {
            dir = path
            names = try DatasetFolder.imageNames(in: path)
        }
        var inputs = [AnnotationInput]()
        var cases = [String: [String: String]]()   // case → modality → file
        for n in names {
            let file = dir + "/" + n
            guard isNIfTIName(n) else { inputs.append(AnnotationInput(name: stem(n), files: [file], isVolume: false)); continue }
            if let mods = modalities, let cut = stem(n).range(of: "_", options: .backwards) {
                let id = String(stem(n)[..<cut.lowerBound]), m = String(stem(n)[cut.upperBound...]).lowercased()
                if mods.contains(m) { cases[id, default: [:]][m] = file; continue }
                if m == "seg" { continue }
            }
            inputs.append(AnnotationInput(name: stem(n), files: [file], isVolume: true))
        }
        for (id, byModality) in cases {
            let mods = modalities ?? []
            if let missing = mods.first(where: { byModality[$0] == nil }) {
                throw RefineSegError.io(file: dir, message: "volume \(id) has no \(missing) file (\(id)_\(missing).nii.gz); the model takes \(mods.joined(separator: ", "))")
            }
            inputs.append(AnnotationInput(name: id, files: mods.map { byModality[$0]! }, isVolume: true))
        }
        inputs.sort { $0.name < $1.name }
        for (a, b) in zip(inputs, inputs.dropFirst()) where a.name == b.name {
            throw RefineSegError.io(file: b.files[0], message: "has the same output name \(b.name) as \(a.files[0])")
        }
        return inputs
    }
}

/// Predicts masks for a folder of images (or one image, or NIfTI volumes) and writes, for a
/// person to review: OUT/masks/NAME.png (0/255), OUT/probabilities/NAME.png (16-bit, p·65535),
/// OUT/overlays/NAME.png (the image with the mask outline), OUT/review.csv (images ranked by
/// mean predictive uncertainty, highest first) and OUT/review.html with OUT/thumbnails/ (the
/// review page, see `writeReviewPage`). A volume gives OUT/masks/NAME.nii.gz (uint8 0/1) and
/// OUT/probabilities/NAME.nii.gz (float32) with the input's header (see `annotateVolume`).
///
/// Everything is written to a staging folder first and moved into OUT at the end, so a
/// failure leaves OUT as it was (with `options.resume`, the finished outputs stay in the
/// staging folder for the next `--continue`).
@discardableResult
public func annotate(model: DFRUNet, backend: Backend, imagesDir: String, out: String,
                     progress: ProgressPrinter? = nil, tta: Bool = false, postProcessing: PostProcessing = .none,
                     options: AnnotateOptions = AnnotateOptions()) throws -> [ReviewRow] {
    try annotate(model: model, backend: backend, imagesDir: imagesDir, out: out, progress: progress, shard: .whole, comm: nil,
                 tta: tta, postProcessing: postProcessing, options: options)
}

/// `annotate` of one part of the images: with `comm` (an MPI job) each rank predicts its block
/// of the images into one shared staging folder and rank 0 writes review.csv for all of them
/// (the same files as one process; rank 0 returns all rows, the others their own); with `shard` alone (a job
/// array) the part's outputs go to OUT/part-K-of-N/ for `mergeAnnotationParts`. With `tta`,
/// mirror test-time augmentation; `postProcessing` (the checkpoint's, see
/// `PostProcessing.of(checkpoint:)`) is applied to each mask.
@discardableResult
public func annotate(model: DFRUNet, backend: Backend, imagesDir: String, out: String,
                     progress: ProgressPrinter?, shard: Shard, comm: Communicator?,
                     tta: Bool = false, postProcessing: PostProcessing = .none,
                     options: AnnotateOptions = AnnotateOptions()) throws -> [ReviewRow] {
    try shard.validate()
    let modalities = options.modalities ?? (model.config.inChannels == BraTS2018Source.allModalities.count ? BraTS2018Source.allModalities : nil)
    let inputs = try AnnotationInput.list(imagesDir, modalities: modalities)
    let part = comm.map { Shard(count: $0.size, index: $0.rank) } ?? shard
    let target = comm == nil && part.count > 1 ? out + "/" + part.folderName : out
    let isRoot = comm?.isRoot ?? true
    let staging = try prepareStaging(out: target, subfolders: ["masks", "probabilities", "overlays"], comm: comm, harvest: options.resume)
    var finished = false
    defer { if isRoot && (finished || !options.resume) { try? FileManager.default.removeItem(atPath: staging) } }
    var predictor = Predictor(model: model, backend: backend)
    predictor.mirrorTTA = tta
    let mine = part.slice(inputs)
    var rows = [ReviewRow]()
    let start = Date()
    var predicted = 0, skipped = 0
    for (i, input) in mine.enumerated() {
        if options.resume, let row = try completedRow(input, staging: staging, out: target) {
            rows.append(row)
            skipped += 1
        } else {
            rows.append(input.isVolume
                ? try annotateVolume(input, predictor: predictor, model: model, axis: options.axis, staging: staging, postProcessing: postProcessing)
                : try annotateImage(input.files[0], predictor: predictor, model: model, staging: staging, postProcessing: postProcessing))
            predicted += 1
        }
        let rate = Double(predicted) / max(Date().timeIntervalSince(start), 1e-9)
        progress?.update("annotating \(i + 1)/\(mine.count)" + (part.count > 1 ? " (part \(part.index + 1) of \(part.count))" : "")
                         + (skipped > 0 ? " (\(skipped) already complete)" : "")
                         + String(format: " · %.2f images/s", rate) + " · left " + formatDuration(Double(mine.count - i - 1) / rate))
    }
    if let comm {
        guard let all = try comm.gatherRows(rows, ReviewRowCodec.self) else {
            try comm.barrier()   // rank 0 publishes; wait until OUT is complete
            return rows
        }
        rows = all
    } else if part.count > 1 {
        try writeAtomically(try ReviewRowCodec.encode(rows), to: staging + "/rows.json")
    }
    rows.sort { $0.meanEntropy != $1.meanEntropy ? $0.meanEntropy > $1.meanEntropy : $0.name < $1.name }
    let review = try writeReview(rows, in: staging)
    try publish(["masks", "probabilities", "overlays"] + review + (comm == nil && part.count > 1 ? ["rows.json"] : []),
                from: staging, to: target, merge: options.resume)
    finished = true
    try comm?.barrier()
    return rows
}

/// With `--continue`: the review row of an input whose outputs are all present (in the staging
/// folder or in OUT; each was written atomically, so present means complete), computed from its
/// probability file; nil when any output is missing.
func completedRow(_ input: AnnotationInput, staging: String, out: String) throws -> ReviewRow? {
    let fm = FileManager.default
    var found = [String]()
    for o in input.outputs {
        if fm.fileExists(atPath: staging + "/" + o) { found.append(staging + "/" + o) }
        else if fm.fileExists(atPath: out + "/" + o) { found.append(out + "/" + o) }
        else { return nil }
    }
    let maskFile = found[0], probabilityFile = found[1]
    if input.isVolume {
        let v = try NIfTIFile.read(probabilityFile), m = try NIfTIFile.read(maskFile)
        return reviewRow(name: input.name, probabilities: v.values, mask: m.values.map { $0 != 0 }, width: v.dims[0], height: v.dims[1])
    }
    let image = try PNGFile.read(probabilityFile), mask = try PNGFile.read(maskFile)
    let scale = image.bitDepth == 16 ? Float(65535) : Float(255)
    return reviewRow(name: input.name, probabilities: image.samples.map { Float($0) / scale }, mask: mask.samples.map { $0 != 0 },
                     width: image.width, height: image.height)
}

/// The review row of one prediction: mean binary entropy of the probabilities and the share
/// of lesion pixels in the (post-processed) mask.
func reviewRow(name: String, probabilities p: [Float], mask: [Bool], width: Int, height: Int) -> ReviewRow {
    var entropy = 0.0
    for v in p {
        let q = min(max(Double(v), 1e-7), 1 - 1e-7)
        entropy += -(q * log2(q) + (1 - q) * log2(1 - q))
    }
    return ReviewRow(name: name, meanEntropy: entropy / Double(max(p.count, 1)),
                     lesionFraction: Double(mask.filter { $0 }.count) / Double(max(p.count, 1)), width: width, height: height)
}

/// Predicts every slice of a volume along `axis` and writes OUT/probabilities/NAME.nii.gz
/// (float32) and OUT/masks/NAME.nii.gz (uint8, 1 where p > 0.5) into `staging`, with the
/// header of the input (its first modality's for one file per modality): the same dims,
/// byte order, qform/sform and their codes, pixdim, units and description, so the mask overlays
/// the scan without a shift. The channels are normalised with volume statistics
/// (`normalizeVolume`, as `--format brats2018` trains); `postProcessing` is applied to each
/// slice's mask.
func annotateVolume(_ input: AnnotationInput, predictor: Predictor, model: DFRUNet, axis: SliceAxis, staging: String,
                    postProcessing: PostProcessing = .none) throws -> ReviewRow {
    var channels = [[Float]]()
    let first: NIfTIVolume
    if input.files.count == 1 {
        first = try NIfTIFile.read(input.files[0], channels: true)
        channels = (0..<first.channels).map { Array(first.channel($0)) }
    } else {
        first = try NIfTIFile.read(input.files[0])
        channels.append(first.values)
        for f in input.files.dropFirst() {
            let v = try NIfTIFile.read(f)
            guard v.dims == first.dims else {
                throw RefineSegError.io(file: f, message: "volume is \(v.dims.map(String.init).joined(separator: "×")) but \(URL(fileURLWithPath: input.files[0]).lastPathComponent) is \(first.dims.map(String.init).joined(separator: "×")): the modalities of a case must share one grid")
            }
            channels.append(v.values)
        }
    }
    guard channels.count == model.config.inChannels else {
        throw RefineSegError.io(file: input.files[0], message: "has \(channels.count) channel(s) but the model takes \(model.config.inChannels)"
                                + (model.config.inChannels > 1 && input.files.count == 1 ? " (give a 4-D file or one file per modality, CASE_flair.nii.gz …, with --modalities)" : ""))
    }
    guard let header = first.header else { throw RefineSegError.io(file: input.files[0], message: "no NIfTI header") }
    normalizeVolume(&channels)
    let dims = first.dims, g = axis.geometry(dims)
    var probabilities = [Float](repeating: 0, count: first.voxelCount)
    var mask = [Bool](repeating: false, count: first.voxelCount)
    for k in 0..<g.slices {
        let image = channels.flatMap { volumePlane($0[...], dims: dims, axis: axis, slice: k) }
        let sample = Sample(name: input.name, path: input.files[0], channels: channels.count, height: g.height, width: g.width, image: image, mask: nil)
        let p = try predictor.probabilities(sample)
        let m = postProcessing.apply(p.map { $0 > 0.5 }, width: g.width, height: g.height)
        for r in 0..<g.height { for c in 0..<g.width {
            let v = axis.voxel(dims, slice: k, row: r, column: c)
            probabilities[v] = p[r * g.width + c]
            mask[v] = m[r * g.width + c]
        } }
    }
    try NIfTIFile.write(values: probabilities, dims: dims, datatype: 16, like: header, calibration: (0, 1),
                        to: "\(staging)/probabilities/\(input.name).nii.gz")
    try NIfTIFile.write(values: mask.map { $0 ? 1 : 0 }, dims: dims, datatype: 2, like: header, calibration: (0, 1),
                        to: "\(staging)/masks/\(input.name).nii.gz")
    return reviewRow(name: input.name, probabilities: probabilities, mask: mask, width: dims[0], height: dims[1])
}

/// Writes review.csv and the review page (review.html, thumbnails/) for the ranked `rows` whose
/// masks, probabilities and overlays are in `staging`; returns the entries to publish.
func writeReview(_ rows: [ReviewRow], in staging: String) throws -> [String] {
    try writeAtomically(Data(reviewCSV(rows).utf8), to: staging + "/review.csv")
    try writeReviewPage(rows: rows, in: staging)
    return ["review.csv", "review.html", "thumbnails"]
}

/// review.csv: rank, name, mean entropy, lesion share, size; `rows` already ranked.
func reviewCSV(_ rows: [ReviewRow]) -> String {
    var csv = "rank,name,mean_entropy_bits,lesion_fraction,width,height\n"
    for (rank, r) in rows.enumerated() {
        csv += "\(rank + 1),\(csvEscape(r.name)),\(String(format: "%.6f,%.6f", r.meanEntropy, r.lesionFraction)),\(r.width),\(r.height)\n"
    }
    return csv
}

/// Predicts one image and writes its mask, probabilities and overlay into `staging`.
func annotateImage(_ path: String, predictor: Predictor, model: DFRUNet, staging: String,
                   postProcessing: PostProcessing = .none) throws -> ReviewRow {
    let file = (path as NSString).lastPathComponent
    let raw = try readImageFile(path)
    guard raw.channels == model.config.inChannels else {
        throw RefineSegError.io(file: path, message: "has \(raw.channels) channel(s) but the model takes \(model.config.inChannels)")
    }
    let normalised = normalizePercentiles(raw.planarFloats(), channels: raw.channels)
    let sample = Sample(name: stem(file), path: path, channels: raw.channels, height: raw.height, width: raw.width,
                        image: normalised, mask: nil)
    let p = try predictor.probabilities(sample)
    let name = stem(file)
    let mask = postProcessing.apply(p.map { $0 > 0.5 }, width: raw.width, height: raw.height)
    try PNGFile.write(RawImage(width: raw.width, height: raw.height, channels: 1, bitDepth: 8,
                               samples: mask.map { $0 ? 255 : 0 }), to: "\(staging)/masks/\(name).png")
    try PNGFile.write(RawImage(width: raw.width, height: raw.height, channels: 1, bitDepth: 16,
                               samples: p.map { UInt16((min(max($0, 0), 1) * 65535).rounded()) }),
                      to: "\(staging)/probabilities/\(name).png")
    try PNGFile.write(overlay(normalised, channels: raw.channels, width: raw.width, height: raw.height, mask: mask),
                      to: "\(staging)/overlays/\(name).png")
    return reviewRow(name: name, probabilities: p, mask: mask, width: raw.width, height: raw.height)
}

/// Creates OUT/.staging-PID with `subfolders` (PID of rank 0 in an MPI job, whose ranks all
/// write there) after removing the staging folders of killed runs.
/// With `harvest` (`annotate --continue`), the finished files in those folders' `subfolders`
/// are first moved into the new staging folder.
func prepareStaging(out: String, subfolders: [String], comm: Communicator?, harvest: Bool = false) throws -> String {
    let fm = FileManager.default
    var staging = ""
    if comm?.isRoot ?? true {
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        staging = out + "/.staging-\(getpid())"
        try? fm.removeItem(atPath: staging)
        for sub in subfolders { try fm.createDirectory(atPath: staging + "/" + sub, withIntermediateDirectories: true) }
        // Staging folders of runs that were killed (their process is gone) are removed.
        for entry in (try? fm.contentsOfDirectory(atPath: out)) ?? [] where entry.hasPrefix(".staging-") {
            if let pid = Int32(entry.dropFirst(".staging-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                if harvest {
                    for sub in subfolders {
                        // Files only: atomic writes' temporaries (".NAME.tmp-PID") are left behind.
                        for name in (try? fm.contentsOfDirectory(atPath: "\(out)/\(entry)/\(sub)")) ?? [] where !name.hasPrefix(".") {
                            let target = "\(staging)/\(sub)/\(name)"
                            if !fm.fileExists(atPath: target) { try? fm.moveItem(atPath: "\(out)/\(entry)/\(sub)/\(name)", toPath: target) }
                        }
                    }
                }
                try? fm.removeItem(atPath: out + "/" + entry)
            }
        }
    }
    if let comm { staging = String(decoding: try comm.broadcast(Data(staging.utf8)), as: UTF8.self) }
    return staging
}

/// Moves the finished `entries` of `staging` into `out`, replacing earlier ones.
/// With `merge` (`annotate --continue`), folders are merged file by file instead: earlier
/// outputs of other inputs stay.
func publish(_ entries: [String], from staging: String, to out: String, merge: Bool = false) throws {
    let fm = FileManager.default
    for entry in entries {
        let target = out + "/" + entry
        var isDir: ObjCBool = false
        if merge, fm.fileExists(atPath: target, isDirectory: &isDir), isDir.boolValue {
            for name in try fm.contentsOfDirectory(atPath: staging + "/" + entry) where !name.hasPrefix(".") {
                if fm.fileExists(atPath: target + "/" + name) { try fm.removeItem(atPath: target + "/" + name) }
                try fm.moveItem(atPath: "\(staging)/\(entry)/\(name)", toPath: target + "/" + name)
            }
            continue
        }
        if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
        try fm.moveItem(atPath: staging + "/" + entry, toPath: target)
    }
}

func csvEscape(_ s: String) -> String {
    s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// The normalised image as 8-bit RGB with the mask outline (lesion pixels touching background) in red.
func overlay(_ planar: [Float], channels: Int, width: Int, height: Int, mask: [Bool]) -> RawImage {
    var samples = [UInt16](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = y * width + x
            let edge = mask[i] && (x == 0 || y == 0 || x == width - 1 || y == height - 1
                                   || !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width])
            for c in 0..<3 {
                let src = planar[(min(c, channels - 1)) * width * height + i]
                let v = UInt16((min(max(src, 0), 1) * 255).rounded())
                samples[i * 3 + c] = edge ? (c == 0 ? 255 : 0) : v
            }
        }
    }
    return RawImage(width: width, height: height, channels: 3, bitDepth: 8, samples: samples)
}
