import Foundation

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
/// A crash at any moment leaves either the old file or the new one, never a partial file.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path
    let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw RefineSegError.io(file: path, message: "cannot create (\(String(cString: strerror(errno))))") }
    var ok = true
    data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { ok = false; break }
            offset += n
        }
    }
    if ok { ok = fsync(fd) == 0 }
    let err = errno
    close(fd)
    guard ok, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw RefineSegError.io(file: path, message: "write failed (\(String(cString: strerror(ok ? errno : err))))")
    }
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
    if dfd >= 0 { fsync(dfd); close(dfd) }
}
