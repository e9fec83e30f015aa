import COpenCL
import Foundation

/// One kernel argument.
enum CLArg {
    case buffer(CLBuffer)
    case int(Int)
    case float(Float)
    /// Local memory of this many bytes.
    case local(Int)
}

/// A device buffer from the pool; returns itself to the pool when released. The queue is
/// in order, so a buffer recycled while earlier kernels still use it is only reused by later ones.
final class CLBuffer {
    let mem: cl_mem
    let bytes: Int
    private let pool: CLBufferPool
    /// Set for a sub-buffer (a view into `parent`, kept alive by it): released, not pooled.
    let parent: CLBuffer?

    init(mem: cl_mem, bytes: Int, pool: CLBufferPool, parent: CLBuffer? = nil) {
        self.mem = mem; self.bytes = bytes; self.pool = pool; self.parent = parent
    }
    deinit { if parent == nil { pool.recycle(mem, bytes: bytes) } else { clReleaseMemObject(mem) } }
}

/// Reuses device buffers by exact size, so steady-state training allocates nothing.
final class CLBufferPool {
    private let context: cl_context
    private var free: [Int: [cl_mem]] = [:]
    private(set) var bytesInUse = 0
    private(set) var bytesCached = 0
    private(set) var peakBytes = 0
    private(set) var allocations = 0
    /// CL_DEVICE_MAX_MEM_ALLOC_SIZE: larger buffers are refused here, with the op named,
    /// since drivers differ in how (and whether) they report the failure themselves.
    let maxAllocationBytes: Int

    init(context: cl_context, maxAllocationBytes: Int) {
        self.context = context
        self.maxAllocationBytes = maxAllocationBytes
    }

    func take(bytes requested: Int, op: String) throws -> CLBuffer {
        let bytes = max(requested, 4)
        if maxAllocationBytes > 0 && bytes > maxAllocationBytes {
            throw RefineSegError.outOfMemory(op: op, detail: "\(bytes) bytes requested, above the device's largest allocation of \(maxAllocationBytes) bytes (\(bytesInUse) bytes in use)")
        }
        if var list = free[bytes], let mem = list.popLast() {
            free[bytes] = list
            bytesCached -= bytes
            bytesInUse += bytes
            return CLBuffer(mem: mem, bytes: bytes, pool: self)
        }
        var status: cl_int = 0
        var mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
        if status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES || status == CL_OUT_OF_HOST_MEMORY {
            trim()                                    // give cached buffers back and try once more
            mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
        }
        if status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES || status == CL_OUT_OF_HOST_MEMORY {
            throw RefineSegError.outOfMemory(op: op, detail: "clCreateBuffer of \(bytes) bytes failed with \(clStatusName(status)) (\(bytesInUse) bytes in use, cached buffers released)")
        }
        if status != CL_SUCCESS || mem == nil {
            throw RefineSegError.openCL(op: op, call: "clCreateBuffer(\(bytes) bytes; \(bytesInUse) in use)",
                                        status: clStatusName(status), log: nil)
        }
        allocations += 1
        bytesInUse += bytes
        peakBytes = max(peakBytes, bytesInUse + bytesCached)
        return CLBuffer(mem: mem!, bytes: bytes, pool: self)
    }

    func recycle(_ mem: cl_mem, bytes: Int) {
        bytesInUse -= bytes
        if closed { clReleaseMemObject(mem); return }
        bytesCached += bytes
        free[bytes, default: []].append(mem)
    }

    /// Set when the context goes away: buffers still alive (a tensor kept past its backend)
    /// are released as they come back instead of being cached.
    private var closed = false

    /// Releases the cache and stops caching (`CLContext.deinit`).
    func close() {
        closed = true
        trim()
    }

    deinit { trim() }

    /// Releases every cached (unused) buffer.
    func trim() {
        for (_, list) in free { for mem in list { clReleaseMemObject(mem) } }
        free.removeAll()
        bytesCached = 0
    }
}

/// The OpenCL context of one device: queue, program and kernel caches, buffer pool, profiling.
/// Nothing outside the OpenCL folder sees its types.
final class CLContext {
    let info: DeviceInfo
    let device: cl_device_id
    let context: cl_context
    let queue: cl_command_queue
    let pool: CLBufferPool
    private var programs: [String: cl_program] = [:]
    private var kernels: [String: cl_kernel] = [:]
    private var profiling = false
    /// Contexts alive in this process (a test checks that creating and dropping backends leaves none behind).
    static var live: Int { liveLock.withLock { liveCount } }
    private static let liveLock = NSLock()
    /// Only touched with `liveLock` held (a context may go away on any thread).
    nonisolated(unsafe) private static var liveCount = 0
    private var pending: [(name: String, event: cl_event, flops: Double?, bytes: Int)] = []

    init(device requested: Int?) throws {
        let entry = try OpenCLDevices.select(requested)
        info = entry.info
        device = entry.device
        var status: cl_int = 0
        var dev: cl_device_id? = entry.device
        guard let ctx = clCreateContext(nil, 1, &dev, nil, nil, &status), status == CL_SUCCESS else {
            throw RefineSegError.openCL(op: "open device \(entry.info.index)", call: "clCreateContext",
                                        status: clStatusName(status), log: nil)
        }
        context = ctx
        let props = cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE)
        guard let q = clCreateCommandQueue(ctx, entry.device, props, &status), status == CL_SUCCESS else {
            throw RefineSegError.openCL(op: "open device \(entry.info.index)", call: "clCreateCommandQueue",
                                        status: clStatusName(status), log: nil)
        }
        queue = q
        pool = CLBufferPool(context: ctx, maxAllocationBytes: entry.info.maxAllocationBytes)
        Self.liveLock.withLock { Self.liveCount += 1 }
    }

    /// Waits for queued work, then releases what this context created: profiling events, upload
    /// staging, kernels, programs, cached buffers, the queue and the context. (Buffers of tensors
    /// still alive hold their own reference to the context and are released when they go.)
    deinit {
        clFinish(queue)
        for p in pending { clReleaseEvent(p.event) }
        releaseCompletedUploads(all: true)
        for k in kernels.values { clReleaseKernel(k) }
        for p in programs.values { clReleaseProgram(p) }
        pool.close()
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
        Self.liveLock.withLock { Self.liveCount -= 1 }
    }

    // MARK: programs

    /// Builds (once per process and option set) the program of `Kernels/<file>.cl`,
    /// prefixed with `Kernels/common.h` when present.
    func program(_ file: String, options: String) throws -> cl_program {
        let key = file + "|" + options
        if let p = programs[key] { return p }
        guard let body = KernelSources.files[file] else {
            throw RefineSegError.invalidArgument("[\(file)] no kernel file Kernels/\(file).cl in this build")
        }
        let source = (KernelSources.files["common.h"] ?? "") + "\n" + body
        var status: cl_int = 0
        let program: cl_program? = source.withCString { ptr in
            var p: UnsafePointer<CChar>? = ptr
            var length = strlen(ptr)
            return clCreateProgramWithSource(context, 1, &p, &length, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw RefineSegError.openCL(op: "build \(file).cl", call: "clCreateProgramWithSource",
                                        status: clStatusName(status), log: nil)
        }
        let flags = "-cl-std=CL1.2 -cl-mad-enable " + KernelConstants.options(for: file) + " " + options
        var dev: cl_device_id? = device
        let build = clBuildProgram(program, 1, &dev, flags, nil, nil)
        if build != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            throw RefineSegError.openCL(op: "build \(file).cl [\(options)]", call: "clBuildProgram",
                                        status: clStatusName(build), log: log)
        }
        programs[key] = program
        return program
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
        guard size > 1 else { return "" }
        var buf = [CChar](repeating: 0, count: size + 1)
        clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &buf, nil)
        return String(cString: buf).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func kernel(_ name: String, file: String, options: String) throws -> cl_kernel {
        let key = file + "|" + options + "|" + name
        if let k = kernels[key] { return k }
        let prog = try program(file, options: options)
        var status: cl_int = 0
        guard let k = clCreateKernel(prog, name, &status), status == CL_SUCCESS else {
            throw RefineSegError.openCL(op: name, call: "clCreateKernel", status: clStatusName(status), log: nil)
        }
        kernels[key] = k
        return k
    }

    // MARK: an owed launch

    /// A small launch queued lazily (`owe`): the next command of this queue that could see its
    /// effect (any launch, copy, download or `finish`; an upload only into one of its buffers)
    /// queues it first, so the queue behaves as if it had been queued at once, unless the launch
    /// that `claimOwed`s it takes its work over first (the fused loss's final reduction, which its
    /// backward does; CLBackend+Loss.swift). At most one is owed; owing another pays the first.
    private var owed: (token: ObjectIdentifier, kernel: String, file: String, options: String, args: [CLArg], global: [Int])?

    /// Owes the launch of `kernel` (one work-group of `global` items), claimable with `token`.
    func owe(_ kernel: String, file: String, options: String, args: [CLArg], global: [Int], token: CLBuffer) throws {
        try payOwed()
        owed = (ObjectIdentifier(token), kernel, file, options, args, global)
    }

    /// True when the owed launch was `token`'s: it is dropped, and the caller's next launch does its work.
    func claimOwed(_ token: CLBuffer) -> Bool {
        guard let o = owed, o.token == ObjectIdentifier(token) else { return false }
        owed = nil
        return true
    }

    /// Queues the owed launch (if any); with `touching`, only when one of those buffers (or a
    /// parent of one) is among its arguments.
    private func payOwed(touching buffers: [CLBuffer]? = nil) throws {
        guard let o = owed else { return }
        if let buffers {
            let mine = Set(o.args.compactMap { arg -> ObjectIdentifier? in
                if case let .buffer(b) = arg { return ObjectIdentifier(b) } else { return nil }
            })
            func touches(_ b: CLBuffer?) -> Bool {
                guard let b else { return false }
                return mine.contains(ObjectIdentifier(b)) || touches(b.parent)
            }
            guard buffers.contains(where: touches) else { return }
        }
        owed = nil
        try launch(o.kernel, file: o.file, options: o.options, args: o.args, global: o.global)
    }

    // MARK: launching

    /// Sets the arguments and enqueues `name` over `global` work items (rounded up to a
    /// multiple of `local` when given). Never waits for the device. `flops` and `bytes` only
    /// annotate the profiling record (see `KernelTiming`); they change nothing else.
    func launch(_ name: String, file: String, options: String = "", args: [CLArg],
                global: [Int], local: [Int]? = nil, flops: Double? = nil, bytes: Int? = nil) throws {
        try payOwed()
        let k = try kernel(name, file: file, options: options)
        for (i, arg) in args.enumerated() {
            let index = cl_uint(i)
            let status: cl_int
            switch arg {
            case let .buffer(b):
                var mem: cl_mem? = b.mem
                status = clSetKernelArg(k, index, MemoryLayout<cl_mem>.size, &mem)
            case let .int(v):
                var x = try Self.clInt(v, op: name, argument: i)
                status = clSetKernelArg(k, index, MemoryLayout<cl_int>.size, &x)
            case let .float(v):
                var x = cl_float(v)
                status = clSetKernelArg(k, index, MemoryLayout<cl_float>.size, &x)
            case let .local(bytes):
                status = clSetKernelArg(k, index, max(bytes, 4), nil)
            }
            try clCheck(status, "clSetKernelArg(\(i))", op: name)
        }
        var g = global.map { max($0, 1) }
        if let local { for i in g.indices { g[i] = (g[i] + local[i] - 1) / local[i] * local[i] } }
        var event: cl_event?
        let status: cl_int = withUnsafeMutablePointer(to: &event) { eventPtr in
            let eventOut: UnsafeMutablePointer<cl_event?>? = profiling ? eventPtr : nil
            return g.withUnsafeBufferPointer { gp in
                guard let local else {
                    return clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), nil, gp.baseAddress, nil, 0, nil, eventOut)
                }
                return local.withUnsafeBufferPointer { lp in
                    clEnqueueNDRangeKernel(queue, k, cl_uint(g.count), nil, gp.baseAddress, lp.baseAddress, 0, nil, eventOut)
                }
            }
        }
        try clCheck(status, "clEnqueueNDRangeKernel(global \(g), local \(local.map { "\($0)" } ?? "auto"))", op: name)
        if let event {
            let moved = bytes ?? args.reduce(0) { sum, arg in if case let .buffer(b) = arg { return sum + b.bytes } else { return sum } }
            pending.append((name, event, flops, moved))
        }
    }

    /// `v` as a kernel's `int` argument; a value outside its 32 bits is refused (Kernels/common.h
    /// relies on sizes and offsets fitting), never wrapped.
    static func clInt(_ v: Int, op: String, argument: Int) throws -> cl_int {
        guard let x = cl_int(exactly: v) else {
            throw RefineSegError.invalidArgument("[\(op)] kernel argument \(argument) = \(v) does not fit in a 32-bit OpenCL int (sizes are limited to 2^31 - 1)")
        }
        return x
    }

    // MARK: memory

    /// CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: sub-buffer origins must be multiples of it.
    lazy var baseAddressAlignBytes: Int = {
        var bits: cl_uint = 0
        let status = clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MEM_BASE_ADDR_ALIGN), MemoryLayout<cl_uint>.size, &bits, nil)
        return status == CL_SUCCESS && bits >= 8 ? Int(bits) / 8 : 4096
    }()

    /// A view of `bytes` bytes of `parent` from `offsetBytes` (a multiple of `baseAddressAlignBytes`).
    func subBuffer(_ parent: CLBuffer, offsetBytes: Int, bytes: Int, op: String) throws -> CLBuffer {
        var region = cl_buffer_region(origin: offsetBytes, size: max(bytes, 4))
        var status: cl_int = 0
        let mem = clCreateSubBuffer(parent.mem, cl_mem_flags(CL_MEM_READ_WRITE), cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION),
                                    &region, &status)
        guard status == CL_SUCCESS, let mem else {
            throw RefineSegError.openCL(op: op, call: "clCreateSubBuffer(offset \(offsetBytes), \(bytes) bytes of \(parent.bytes))",
                                        status: clStatusName(status), log: nil)
        }
        return CLBuffer(mem: mem, bytes: max(bytes, 4), pool: pool, parent: parent)
    }

    /// Host copies of uploads still in flight, released once their write has completed.
    private var staged: [(event: cl_event, memory: UnsafeMutableRawPointer)] = []

    /// Queues the upload without waiting (the values are first copied to a staging block that
    /// lives until the write completes), so the host can go on queuing while the device works.
    func upload(_ values: [Float], to buffer: CLBuffer, op: String) throws {
        let bytes = values.count * 4
        guard bytes > 0 else { return }
        try payOwed(touching: [buffer])
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
        var event: cl_event?
        let status = clEnqueueWriteBuffer(queue, buffer.mem, cl_bool(CL_FALSE), 0, bytes, memory, 0, nil, &event)
        guard status == CL_SUCCESS, let event else {
            memory.deallocate()
            try clCheck(status, "clEnqueueWriteBuffer", op: op)
            return
        }
        staged.append((event, memory))
        releaseCompletedUploads()
    }

    /// Frees the staging blocks of completed uploads (all of them after `finish`).
    private func releaseCompletedUploads(all: Bool = false) {
        staged.removeAll { entry in
            var state: cl_int = 0
            if !all {
                let status = clGetEventInfo(entry.event, cl_event_info(CL_EVENT_COMMAND_EXECUTION_STATUS), MemoryLayout<cl_int>.size, &state, nil)
                guard status == CL_SUCCESS, state == CL_COMPLETE else { return false }
            }
            clReleaseEvent(entry.event)
            entry.memory.deallocate()
            return true
        }
    }

    /// Queues a copy of `count` floats to the host and returns without waiting; the closure waits
    /// for that copy only (and the commands queued before it) and returns the values.
    func startDownload(_ buffer: CLBuffer, count: Int, op: String) throws -> () throws -> [Float] {
        try payOwed()
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count * 4, 4), alignment: 64)
        var event: cl_event?
        let status = clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_FALSE), 0, count * 4, memory, 0, nil, &event)
        guard status == CL_SUCCESS, let event else {
            memory.deallocate()
            try clCheck(status, "clEnqueueReadBuffer", op: op)
            throw RefineSegError.openCL(op: op, call: "clEnqueueReadBuffer", status: "no event", log: nil)
        }
        clFlush(queue)
        // Waits at most once; the staging block and event are released on the first call.
        var done = false
        return {
            guard !done else { throw RefineSegError.invalidArgument("[\(op)] pending read waited for twice") }
            done = true
            defer { clReleaseEvent(event); memory.deallocate() }
            var e: cl_event? = event
            try clCheck(clWaitForEvents(1, &e), "clWaitForEvents", op: op)
            return Array(UnsafeBufferPointer(start: memory.assumingMemoryBound(to: Float.self), count: count))
        }
    }

    func download(_ buffer: CLBuffer, count: Int, op: String) throws -> [Float] {
        try payOwed()
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { raw in
            try clCheck(clEnqueueReadBuffer(queue, buffer.mem, cl_bool(CL_TRUE), 0, raw.count, raw.baseAddress, 0, nil, nil),
                        "clEnqueueReadBuffer", op: op)
        }
        return out
    }

    func copy(from src: CLBuffer, to dst: CLBuffer, bytes: Int, srcOffset: Int = 0, dstOffset: Int = 0, op: String) throws {
        guard bytes > 0 else { return }
        try payOwed()
        try clCheck(clEnqueueCopyBuffer(queue, src.mem, dst.mem, srcOffset, dstOffset, bytes, 0, nil, nil),
                    "clEnqueueCopyBuffer", op: op)
    }

    func finish() throws {
        try payOwed()
        try clCheck(clFinish(queue), "clFinish", op: "synchronize")
        releaseCompletedUploads(all: true)
    }

    // MARK: profiling

    /// Index into `pending` of each open `startProfiling` (innermost last).
    private var profileStarts: [Int] = []

    /// From now on every launch records a profiling event. Nests (see `DiagnosticsOps.startProfiling`).
    func startProfiling() { profiling = true; profileStarts.append(pending.count) }

    /// Waits for the device and returns the device time of every kernel launched since the
    /// matching `startProfiling`. Those launches leave the recording (an outer one does not see
    /// the tuner's trial launches) and their events are released.
    func stopProfiling() throws -> [KernelTiming] {
        let first = min(profileStarts.popLast() ?? 0, pending.count)
        profiling = !profileStarts.isEmpty
        defer {
            for p in pending[first...] { clReleaseEvent(p.event) }
            pending.removeSubrange(first...)
        }
        try finish()
        return try pending[first...].map { name, event, flops, bytes in
            var start: cl_ulong = 0, end: cl_ulong = 0
            try clCheck(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START),
                                                MemoryLayout<cl_ulong>.size, &start, nil), "clGetEventProfilingInfo", op: name)
            try clCheck(clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END),
                                                MemoryLayout<cl_ulong>.size, &end, nil), "clGetEventProfilingInfo", op: name)
            return KernelTiming(name: name, milliseconds: Double(end &- start) / 1e6, flops: flops, bytes: bytes)
        }
    }
}
