import COpenCL
import Foundation

/// Platform and device discovery.
public enum OpenCLDevices {
    struct Entry { let info: DeviceInfo; let platform: cl_platform_id; let device: cl_device_id }

    /// Message for a machine with no usable OpenCL platform.
    static let installHint = "no OpenCL platform found: install one, e.g. `apt-get install pocl-opencl-icd` for the CPU or your GPU vendor's OpenCL driver, then check with `clinfo -l`"

    static func entries() throws -> [Entry] {
        _ = try PoCLTarget.applyOnce()                  // PoCL reads its target when the platform loads
        var platformCount: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &platformCount)
        if status == -1001 || platformCount == 0 { throw RefineSegError.noDevice(installHint) }
        try clCheck(status, "clGetPlatformIDs", op: "devices")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        try clCheck(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs", op: "devices")
        var result = [Entry]()
        for case let platform? in platforms {
            var deviceCount: cl_uint = 0
            let s = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount)
            if s == CL_DEVICE_NOT_FOUND || deviceCount == 0 { continue }
            try clCheck(s, "clGetDeviceIDs", op: "devices")
            var devices = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            try clCheck(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &devices, nil),
                        "clGetDeviceIDs", op: "devices")
            for case let device? in devices {
                let info = try describe(platform: platform, device: device, index: result.count)
                result.append(Entry(info: info, platform: platform, device: device))
            }
        }
        if result.isEmpty { throw RefineSegError.noDevice(installHint) }
        PoCLTarget.reportOnce(devices: result.map(\.info))
        return result
    }

    /// Every OpenCL device on the machine, numbered across platforms.
    public static func list() throws -> [DeviceInfo] { try entries().map(\.info) }

    /// The device used when none is named: `REFINESEG_DEVICE` if set, else the first GPU, else device 0.
    public static func defaultIndex(in devices: [DeviceInfo]) throws -> Int {
        if let text = ProcessInfo.processInfo.environment["REFINESEG_DEVICE"], !text.isEmpty {
            guard let index = Int(text), devices.indices.contains(index) else {
                throw RefineSegError.invalidArgument("REFINESEG_DEVICE=\(text) names no device: \(deviceRange(devices))")
            }
            return index
        }
        return devices.first(where: { $0.type == "GPU" })?.index ?? 0
    }

    static func deviceRange(_ devices: [DeviceInfo]) -> String {
        "there are \(devices.count) device(s), numbered 0 to \(devices.count - 1) (see `refineseg devices`)"
    }

    /// Resolves a requested index (nil: the default) to a device entry.
    static func select(_ requested: Int?) throws -> Entry {
        let all = try entries()
        let index = try requested ?? defaultIndex(in: all.map(\.info))
        guard all.indices.contains(index) else {
            throw RefineSegError.invalidArgument("--device \(index) names no device: \(deviceRange(all.map(\.info)))")
        }
        return all[index]
    }

    private static func describe(platform: cl_platform_id, device: cl_device_id, index: Int) throws -> DeviceInfo {
        func pstr(_ p: cl_platform_info) -> String {
            var size = 0
            guard clGetPlatformInfo(platform, p, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
            var buf = [CChar](repeating: 0, count: size + 1)
            _ = clGetPlatformInfo(platform, p, size, &buf, nil)
            return String(cString: buf).trimmingCharacters(in: .whitespaces)
        }
        func dstr(_ p: cl_device_info) -> String {
            var size = 0
            guard clGetDeviceInfo(device, p, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
            var buf = [CChar](repeating: 0, count: size + 1)
            _ = clGetDeviceInfo(device, p, size, &buf, nil)
            return String(cString: buf).trimmingCharacters(in: .whitespaces)
        }
        func dval<T: FixedWidthInteger>(_ p: cl_device_info, _: T.Type) -> Int {
            var v: T = 0
            _ = clGetDeviceInfo(device, p, MemoryLayout<T>.size, &v, nil)
            return Int(v)
        }
        let typeBits = cl_device_type(dval(cl_device_info(CL_DEVICE_TYPE), cl_device_type.self))
        let type: String
        if typeBits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 { type = "GPU" }
        else if typeBits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 { type = "CPU" }
        else if typeBits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 { type = "ACCELERATOR" }
        else { type = "OTHER" }
        return DeviceInfo(
            index: index,
            platform: pstr(cl_platform_info(CL_PLATFORM_NAME)),
            platformVersion: pstr(cl_platform_info(CL_PLATFORM_VERSION)),
            name: dstr(cl_device_info(CL_DEVICE_NAME)),
            vendor: dstr(cl_device_info(CL_DEVICE_VENDOR)),
            version: dstr(cl_device_info(CL_DEVICE_VERSION)),
            driverVersion: dstr(cl_device_info(CL_DRIVER_VERSION)),
            openCLCVersion: dstr(cl_device_info(CL_DEVICE_OPENCL_C_VERSION)),
            type: type,
            computeUnits: dval(cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS), cl_uint.self),
            globalMemoryBytes: dval(cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), cl_ulong.self),
            localMemoryBytes: dval(cl_device_info(CL_DEVICE_LOCAL_MEM_SIZE), cl_ulong.self),
            localMemoryIsGlobal: dval(cl_device_info(CL_DEVICE_LOCAL_MEM_TYPE), cl_uint.self) == Int(CL_GLOBAL),
            maxWorkGroupSize: dval(cl_device_info(CL_DEVICE_MAX_WORK_GROUP_SIZE), Int.self),
            maxAllocationBytes: dval(cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), cl_ulong.self)
        )
    }
}
