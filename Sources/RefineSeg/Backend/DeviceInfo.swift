// The device description that the Backend protocol's diagnostics return (`deviceInfo`): filled
// by OpenCL discovery (OpenCL/CLDevices.swift); the CPU reference has none.

/// What `refineseg devices` shows about one OpenCL device. Plain Swift values only.
public struct DeviceInfo: Sendable, Codable {
    /// Index across all platforms, as `--device N` and `REFINESEG_DEVICE` take it.
    public var index: Int
    public var platform: String
    public var platformVersion: String
    public var name: String
    public var vendor: String
    public var version: String
    public var driverVersion: String
    public var openCLCVersion: String
    public var type: String
    public var computeUnits: Int
    public var globalMemoryBytes: Int
    public var localMemoryBytes: Int
    public var localMemoryIsGlobal: Bool
    public var maxWorkGroupSize: Int
    public var maxAllocationBytes: Int

    /// GPU-style devices get the local-memory kernel variants; CPUs the register-tile ones.
    public var prefersLocalMemory: Bool { type == "GPU" || type == "ACCELERATOR" ? !localMemoryIsGlobal : false }
}
