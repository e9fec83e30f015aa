import CZlib

/// gzip (and zlib) streams through zlib, in memory, with the output capped by the caller so a
/// small hostile file cannot make us allocate more than we asked for.
enum Gzip {
    /// True when `bytes` starts with the gzip magic number 1F 8B.
    static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// Decompresses up to `limit` bytes from the start of a gzip or zlib stream (concatenated
    /// gzip members are read as one stream, as gunzip does). Returns fewer bytes when the
    /// stream ends first; throws `RefineSegError.io` for corrupt data.
    static func inflate(_ bytes: [UInt8], limit: Int, file: String) throws -> [UInt8] {
        guard bytes.count <= Int(UInt32.max) else {
            throw RefineSegError.io(file: file, message: "gzip data of \(bytes.count) bytes is above zlib's 4 GiB single-call limit")
        }
        var stream = z_stream()
        // 15 + 32: largest window, detect gzip or zlib headers automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw RefineSegError.io(file: file, message: "cannot start zlib")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        var input = bytes
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while out.count < limit {
                // Grow in bounded steps so memory follows the data actually decompressed.
                let step = min(limit - out.count, 1 << 20)
                let start = out.count
                out.append(contentsOf: repeatElement(0, count: step))
                let status = out.withUnsafeMutableBufferPointer { target -> Int32 in
                    stream.next_out = target.baseAddress.map { $0 + start }
                    stream.avail_out = UInt32(step)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = step - Int(stream.avail_out)
                out.removeLast(step - produced)
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    // Another gzip member may follow; anything else after the stream is ignored.
                    let rest = Int(stream.avail_in)
                    guard rest >= 2, let next = stream.next_in, next[0] == 0x1F, next[1] == 0x8B,
                          inflateReset(&stream) == Z_OK else { return }
                case Z_BUF_ERROR:
                    return // no input left: the stream is truncated; the caller reports the shortfall
                default:
                    let detail = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw RefineSegError.io(file: file, message: "corrupt gzip data (zlib: \(detail))")
                }
            }
        }
        return out
    }

    /// A gzip stream (one member, default compression) holding `bytes`.
    static func deflate(_ bytes: [UInt8], file: String) throws -> [UInt8] {
        guard bytes.count <= Int(UInt32.max) else {
            throw RefineSegError.io(file: file, message: "cannot gzip \(bytes.count) bytes in one call (4 GiB limit)")
        }
        var stream = z_stream()
        // 15 + 16: largest window, gzip header and trailer.
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw RefineSegError.io(file: file, message: "cannot start zlib")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(bytes.count)))
        var out = [UInt8](repeating: 0, count: bound)
        var input = bytes
        let status = input.withUnsafeMutableBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target -> Int32 in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else {
            throw RefineSegError.io(file: file, message: "gzip compression failed (zlib status \(status))")
        }
        out.removeLast(Int(stream.avail_out))
        return out
    }
}
