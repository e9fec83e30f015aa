import Foundation

/// Progress on stderr: a live line on a terminal, plain periodic lines otherwise (logs, CI).
public final class ProgressPrinter {
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastPlain = Date.distantPast
    private let plainEvery: TimeInterval
    public var quiet = false

    public init(plainEvery: TimeInterval = 15) { self.plainEvery = plainEvery }

    /// Shows a status line (throttled when not on a terminal).
    public func update(_ text: String) {
        guard !quiet else { return }
        if interactive {
            FileHandle.standardError.write(("\r\u{1B}[2K" + text).data(using: .utf8)!)
        } else if Date().timeIntervalSince(lastPlain) >= plainEvery {
            lastPlain = Date()
            FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
        }
    }

    /// Ends the live line and prints `text` on its own line.
    public func line(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(((interactive ? "\r\u{1B}[2K" : "") + text + "\n").data(using: .utf8)!)
    }
}

/// "1h02m", "3m05s", "12s".
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// Set by SIGINT (Ctrl-C); training loops poll it and stop after writing a checkpoint.
/// `nonisolated(unsafe)`: a `sig_atomic_t` flag written by the signal handler, C's one safe pattern.
nonisolated(unsafe) public var interruptRequested: sig_atomic_t = 0

/// Routes Ctrl-C to `interruptRequested` (a second Ctrl-C kills the process as usual).
public func installInterruptHandler() {
    signal(SIGINT) { _ in
        if interruptRequested != 0 { signal(SIGINT, SIG_DFL); raise(SIGINT) }
        interruptRequested = 1
    }
}
