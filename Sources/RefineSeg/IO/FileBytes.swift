import Foundation

/// File reading shared by the format readers: one `read` loop with the size checked first,
/// so a huge file is refused before its bytes are allocated.
enum FileBytes {
    /// The whole file at `path`, or `RefineSegError.io` naming the path: missing, unreadable,
    /// a directory, empty (when `allowEmpty` is false) or larger than `maxBytes`.
    static func read(_ path: String, maxBytes: Int, allowEmpty: Bool = false) throws -> Data {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RefineSegError.io(file: path, message: "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw RefineSegError.io(file: path, message: "cannot stat (\(String(cString: strerror(errno))))") }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw RefineSegError.io(file: path, message: "is a directory, not a file") }
        let size = Int(info.st_size)
        if size == 0 && !allowEmpty { throw RefineSegError.io(file: path, message: "empty file") }
        if size > maxBytes {
            throw RefineSegError.io(file: path, message: "file is \(size) bytes, above the limit of \(maxBytes) bytes")
        }
        var data = Data(count: size)
        var failure: Int32 = 0
        let got = data.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) -> Int in
            guard let base = raw.baseAddress else { return 0 }
            var offset = 0
            while offset < size {
                let n = Foundation.read(fd, base + offset, size - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n < 0 ? errno : 0; break }
                offset += n
            }
            return offset
        }
        if failure != 0 { throw RefineSegError.io(file: path, message: "read failed (\(String(cString: strerror(failure))))") }
        // The file shrank between fstat and read: report what we actually have.
        if got < size { data.removeSubrange(got..<size) }
        return data
    }
}
