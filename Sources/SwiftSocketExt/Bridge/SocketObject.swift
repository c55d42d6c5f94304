// Bridge layer: the socket object's state and the module's shared state.
//
// Without a GIL (free-threaded CPython) several threads use one socket at
// once, and even with it a thread blocked in a syscall has released the GIL:
// every field another thread may write is read and written atomically.
import CPythonShim
import SocketPOSIX
import Glibc
import Synchronization

/// Module-wide state (CPython's _socket keeps the same in its module state).
enum ModuleState {
    /// The timeout new sockets get: socket.setdefaulttimeout().
    static let defaultTimeout = Atomic<Nanoseconds>(Timeout.blocking)
    /// Set once, while the module initialises (under the import lock), and
    /// only read afterwards.
    nonisolated(unsafe) static var gaierror: PyObjectPointer? = nil
    nonisolated(unsafe) static var herror: PyObjectPointer? = nil
}

/// socket.errorhandler for C consumers of the object layout (`_ssl`):
/// PyErr_SetFromErrno(OSError), like CPython's set_error.
let setErrorFromErrno: @convention(c) () -> PyObjectPointer? = {
    PyErr_SetFromErrno(PyExc_OSError)
}

extension SocketPointer {
    /// A field of the C object as the Atomic it is used as. Swift's own
    /// atomics, not C helpers: LLVM never inlines a C function into a
    /// @_cdecl entry point (IRGen marks a thunk's calls noinline), and a
    /// getter such as fileno() would pay a call for one load.
    @inline(__always)
    private func atomic<T: AtomicRepresentable>(_ field: KeyPath<SwiftSocketObject, T>) -> UnsafePointer<Atomic<T>> {
        (UnsafeRawPointer(self) + MemoryLayout<SwiftSocketObject>.offset(of: field)!)
            .assumingMemoryBound(to: Atomic<T>.self)
    }

    /// The fd, -1 once closed or detached. Read it afresh for every syscall:
    /// another thread may close the socket while this one waits.
    @inline(__always) var fd: Int32 {
        get { atomic(\.sock_fd).pointee.load(ordering: .relaxed) }
        nonmutating set { atomic(\.sock_fd).pointee.store(newValue, ordering: .relaxed) }
    }

    /// <0 blocking, 0 non-blocking, >0 timeout.
    @inline(__always) var timeout: Nanoseconds {
        get { atomic(\.sock_timeout).pointee.load(ordering: .relaxed) }
        nonmutating set { atomic(\.sock_timeout).pointee.store(newValue, ordering: .relaxed) }
    }

    @inline(__always) var family: Int32 { pointee.sock_family }

    /// The fd a deferred close() leaves to the last user of the fd.
    @inline(__always) fileprivate var closeFD: UnsafePointer<Atomic<Int32>> { atomic(\.sock_close_fd) }
    @inline(__always) fileprivate var users: UnsafePointer<Atomic<UInt32>> { atomic(\.sock_users) }
}

// MARK: - Closing while other threads use the fd

/// sock_users counts each thread inside usingFD twice (the low bit is the
/// closed flag).
private let oneUser: UInt32 = 2
private let closedFlag: UInt32 = 1

extension SocketPointer {
    /// Runs `body`, which makes syscalls on `fd`, with the fd number kept
    /// from reuse: a close() from another thread meanwhile sets the fd to -1
    /// at once (later syscalls here fail with EBADF, as in CPython) but leaves
    /// the close(2) itself to the last thread out. CPython closes at once, and
    /// a thread that read the fd just before can then make its syscall on a
    /// number that a new socket or file has been given.
    @inline(__always)
    func usingFD<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        users.pointee.wrappingAdd(oneUser, ordering: .sequentiallyConsistent)
        defer {
            if users.pointee.wrappingSubtract(oneUser, ordering: .sequentiallyConsistent).oldValue == oneUser | closedFlag {
                closeDeferred()
            }
        }
        return try body()
    }

    /// `body(fd)` inside usingFD: one syscall on the socket's fd.
    @inline(__always)
    func withFD<T, E: Error>(_ body: (Int32) throws(E) -> T) throws(E) -> T {
        try usingFD { () throws(E) in try body(fd) }
    }

    /// Detaches the fd from the object for close(): returns it if the caller
    /// must close it now, nil if it was closed already or if a thread inside
    /// usingFD will close it on its way out.
    @inline(__always)
    func takeFDForClose() -> Int32? {
        let fd = atomic(\.sock_fd).pointee.exchange(-1, ordering: .sequentiallyConsistent)
        guard fd != -1 else { return nil }
        // No thread inside usingFD (the usual case): mark the socket closed
        // and close now. A thread that enters later reads the fd as -1.
        if users.pointee.compareExchange(expected: 0, desired: closedFlag,
                                         ordering: .sequentiallyConsistent).exchanged {
            return fd
        }
        closeFD.pointee.store(fd, ordering: .sequentiallyConsistent)
        let inside = users.pointee.bitwiseOr(closedFlag, ordering: .sequentiallyConsistent).oldValue & ~closedFlag
        guard inside == 0 else { return nil }
        let toClose = closeFD.pointee.exchange(-1, ordering: .sequentiallyConsistent)
        return toClose == -1 ? nil : toClose
    }

    /// Gives up the fd without closing it (detach()); -1 if there was none.
    /// Threads inside usingFD go on with it: the caller now owns it.
    func detachFD() -> Int32 {
        atomic(\.sock_fd).pointee.exchange(-1, ordering: .sequentiallyConsistent)
    }

    /// The last user's close(2) of an fd that close() left to it; its error
    /// has no caller to go to.
    @inline(never)
    private func closeDeferred() {
        let fd = closeFD.pointee.exchange(-1, ordering: .sequentiallyConsistent)
        if fd != -1 { _ = POSIX.close(fd) }
    }
}

// MARK: - Life cycle

extension SocketPointer {
    /// A fresh object: no fd, blocking.
    func initializeState() {
        fd = -1
        closeFD.pointee.store(-1, ordering: .relaxed)
        timeout = Timeout.blocking
        pointee.errorhandler = setErrorFromErrno
    }

    /// CPython's init_sockobject: adopt `fd`; SOCK_NONBLOCK/SOCK_CLOEXEC are
    /// flags, not part of the type; the default timeout applies unless the
    /// type asked for a non-blocking socket.
    func adopt(fd: Int32, family: Int32, type: Int32, proto: Int32) throws(PythonError) {
        let nonBlockFlag = SHIM_SOCK_NONBLOCK
        let flags = nonBlockFlag | SHIM_SOCK_CLOEXEC
        pointee.sock_family = family
        pointee.sock_type = type & ~flags
        pointee.sock_proto = proto
        pointee.errorhandler = setErrorFromErrno
        self.fd = fd
        if type & nonBlockFlag != 0 {
            timeout = 0
        } else {
            timeout = ModuleState.defaultTimeout.load(ordering: .relaxed)
            if timeout >= 0 {
                try check(POSIX.setNonBlocking(fd, true))
            }
        }
    }

    /// Sets the timeout and the fd's O_NONBLOCK to match (CPython's
    /// internal_setblocking): only a blocking socket has a blocking fd.
    @inline(__always)
    func setTimeout(_ newTimeout: Nanoseconds) throws(PythonError) {
        timeout = newTimeout
        try check(withFD { fd in withoutGIL { POSIX.setNonBlocking(fd, newTimeout >= 0) } })
    }
}

/// A new socket object of our type around `fd` (CPython's new_sockobject).
/// On failure the fd is not closed: the caller still owns it.
func newSocketObject(fd: Int32, family: Int32, type: Int32, proto: Int32) throws(PythonError) -> PyObjectPointer {
    guard let object = PyType_GenericNew(SwiftSocketType, nil, nil) else { throw PythonError() }
    let socket = asSocket(object)
    socket.initializeState()
    do {
        try socket.adopt(fd: fd, family: family, type: type, proto: proto)
    } catch {
        socket.fd = -1  // leave closing to the caller
        Py_DECREF(object)
        throw error
    }
    return object
}
