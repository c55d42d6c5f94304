// Bridge layer: sockCall, the one loop every blocking socket operation runs
// through (CPython's sock_call_ex).
import CPythonShim
import SocketPOSIX

/// What an operation waits for before it can make progress.
enum Readiness {
    case readable
    case writable
    /// A connect in progress: writable, or an error, even on a blocking socket.
    case connected
}

/// Why sockCall gave up.
enum SockCallFailure: Error {
    /// A signal handler raised: its exception is set.
    case raised
    case timedOut
    case failed(Errno)

    /// Sets the matching Python exception, if not set already.
    var pythonError: PythonError {
        switch self {
        case .raised: return PythonError()
        case .timedOut: return raiseTimeout()
        case .failed(let errno): return raiseOSError(errno)
        }
    }

    /// The errno that connect_ex reports: EWOULDBLOCK for a timeout, as CPython does.
    var errnoValue: Int32? {
        switch self {
        case .raised: return nil
        case .timedOut: return Errno.wouldBlock.rawValue
        case .failed(let errno): return errno.rawValue
        }
    }
}

extension Result where Failure == SockCallFailure {
    /// The value, or the failure raised as its Python exception.
    @inline(__always)
    func orRaise() throws(PythonError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let failure): throw failure.pythonError
        }
    }
}

/// Runs `attempt` (one syscall on the socket's current fd), with the GIL
/// released unless `keepGIL`, with CPython's semantics:
/// - with a timeout (or for `.connected`), poll() for readiness against a
///   monotonic deadline; `.timedOut` once it passes. Writes are attempted
///   before the first poll: a socket is nearly always writable, and every
///   write goes through the flags variant below, whose MSG_DONTWAIT turns a
///   full buffer into EAGAIN and a wait. (CPython polls first every time; the
///   outcome is the same, one syscall less.)
/// - on EINTR, run the signal handlers (PyErr_CheckSignals, GIL held): stop
///   with `.raised` if one raised, else retry (PEP 475);
/// - with a timeout, EAGAIN after a positive poll is a false positive: wait again;
/// - any other failure, EAGAIN on a non-blocking socket included, is returned
///   (that of a write tried before the first poll once poll() says the
///   socket is ready; a timeout if it never does).
/// `keepGIL`: the attempt cannot block, so it runs with the GIL held (see the
/// flags variant below); waits in poll() always release it.
/// The whole call runs inside usingFD: a close() meanwhile cannot free the
/// fd number under it.
@inline(__always)
func sockCall<T>(_ socket: SocketPointer, _ readiness: Readiness, timeout: Nanoseconds, keepGIL: Bool = false,
                 _ attempt: (Int32) -> SyscallResult<T>) -> Result<T, SockCallFailure> {
    socket.usingFD { sockCallLoop(socket, readiness, timeout: timeout, keepGIL: keepGIL, attempt) }
}

@inline(__always)
private func sockCallLoop<T>(_ socket: SocketPointer, _ readiness: Readiness, timeout: Nanoseconds, keepGIL: Bool,
                             _ attempt: (Int32) -> SyscallResult<T>) -> Result<T, SockCallFailure> {
    let deadline = timeout > 0 ? Deadline(after: timeout) : nil
    var waitFirst = readiness != .writable
    // The error of a write tried before the first poll, reported once poll()
    // says the socket is ready, as CPython, which polls first, would see it.
    var errorBeforePoll: Errno? = nil
    // The first poll waits the whole timeout, as in CPython, where the
    // deadline is only consulted from the second: a 1 ns timeout still
    // polls once (for 1 ms, rounded up) and finds a ready socket ready.
    var firstPoll = true
    while true {
        if waitFirst && (timeout > 0 || readiness == .connected) {
            let remaining = firstPoll ? timeout : deadline?.remaining ?? timeout
            firstPoll = false
            if timeout > 0 && remaining < 0 { return .failure(.timedOut) }
            switch waitUntilReady(socket, readiness, remaining) {
            case .success(.ready):
                if let error = errorBeforePoll { return .failure(.failed(error)) }
            case .success(.timedOut):
                // poll() caps its wait at Int32.max ms: only the deadline decides.
                if let deadline, deadline.remaining > 0 { continue }
                return .failure(.timedOut)
            case .failure(.interrupted):
                if PyErr_CheckSignals() != 0 { return .failure(.raised) }
                continue
            case .failure(let errno):
                return .failure(.failed(errno))
            }
        }
        let polled = waitFirst
        waitFirst = true
        while true {
            let fd = socket.fd
            let result = keepGIL ? attempt(fd) : withoutGIL { attempt(fd) }
            switch result {
            case .success(let value):
                return .success(value)
            case .failure(.interrupted):
                if PyErr_CheckSignals() != 0 { return .failure(.raised) }
                continue
            case .failure(let errno) where errno.isWouldBlock && socket.timeout > 0:
                break
            case .failure(let errno) where !polled && timeout > 0:
                // A write tried before the first poll failed: poll as CPython
                // would have done first (a socket that never becomes
                // writable, a listening one say, times out instead).
                errorBeforePoll = errno
            case .failure(let errno):
                return .failure(.failed(errno))
            }
            break  // false positive (or an error before the first poll): poll
        }
    }
}

/// sockCall for the send and receive calls, which take MSG_* flags.
/// On a socket that is not in blocking mode (timeout >= 0), each attempt gets
/// MSG_DONTWAIT, so it cannot block whatever the fd's flags, and it keeps the
/// GIL: releasing the GIL for a syscall that returns at once only invites a
/// GIL handoff, which costs up to a switch interval (5 ms) when another thread
/// is busy. Waiting for readiness still happens in poll() without the GIL.
@inline(__always)
func sockCall<T>(_ socket: SocketPointer, _ readiness: Readiness, timeout: Nanoseconds, flags: Int32,
                 _ attempt: (_ fd: Int32, _ flags: Int32) -> SyscallResult<T>) -> Result<T, SockCallFailure> {
    let cannotBlock = socket.timeout >= 0
    let attemptFlags = cannotBlock ? flags | Int32(MSG_DONTWAIT) : flags
    return sockCall(socket, readiness, timeout: timeout, keepGIL: cannotBlock) { attempt($0, attemptFlags) }
}

/// CPython's internal_select: poll the socket, without the GIL.
/// `interval < 0` waits forever.
private func waitUntilReady(_ socket: SocketPointer, _ readiness: Readiness,
                            _ interval: Nanoseconds) -> SyscallResult<POSIX.PollResult> {
    // Nothing to wait for on a non-blocking socket, or a closed one (the
    // syscall will then report EBADF).
    if (socket.timeout <= 0 && readiness != .connected) || socket.fd < 0 {
        return .success(.ready)
    }
    let events: Int16
    switch readiness {
    case .readable: events = Int16(POLLIN)
    case .writable: events = Int16(POLLOUT)
    case .connected: events = Int16(POLLOUT | POLLERR)
    }
    let milliseconds = interval < 0 ? -1 : Int32(clamping: interval.millisecondsRoundedUp)
    let fd = socket.fd
    return withoutGIL { POSIX.poll(fd, events: events, milliseconds: milliseconds) }
}
