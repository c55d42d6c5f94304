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
    /// The fd, -1 once closed or detached. Read it afresh for every syscall:
    /// another thread may close the socket while this one waits.
    @inline(__always) var fd: Int32 {
        get { shim_atomic_load_int(&pointee.sock_fd) }
        nonmutating set { shim_atomic_store_int(&pointee.sock_fd, newValue) }
    }

    /// <0 blocking, 0 non-blocking, >0 timeout.
    @inline(__always) var timeout: Nanoseconds {
        get { shim_atomic_load_int64(&pointee.sock_timeout) }
        nonmutating set { shim_atomic_store_int64(&pointee.sock_timeout, newValue) }
    }

    @inline(__always) var family: Int32 { pointee.sock_family }
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
        _ = shim_atomic_fetch_add_uint32(&pointee.sock_users, oneUser)
        defer {
            if shim_atomic_fetch_sub_uint32(&pointee.sock_users, oneUser) == oneUser | closedFlag {
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
    func takeFDForClose() -> Int32? {
        let fd = shim_atomic_exchange_int(&pointee.sock_fd, -1)
        guard fd != -1 else { return nil }
        _ = shim_atomic_exchange_int(&pointee.sock_close_fd, fd)
        let users = shim_atomic_fetch_or_uint32(&pointee.sock_users, closedFlag) & ~closedFlag
        guard users == 0 else { return nil }
        let toClose = shim_atomic_exchange_int(&pointee.sock_close_fd, -1)
        return toClose == -1 ? nil : toClose
    }

    /// Gives up the fd without closing it (detach()); -1 if there was none.
    /// Threads inside usingFD go on with it: the caller now owns it.
    func detachFD() -> Int32 {
        shim_atomic_exchange_int(&pointee.sock_fd, -1)
    }

    /// The last user's close(2) of an fd that close() left to it; its error
    /// has no caller to go to.
    @inline(never)
    private func closeDeferred() {
        let fd = shim_atomic_exchange_int(&pointee.sock_close_fd, -1)
        if fd != -1 { _ = POSIX.close(fd) }
    }
}

// MARK: - Life cycle

extension SocketPointer {
    /// A fresh object: no fd, blocking.
    func initializeState() {
        fd = -1
        shim_atomic_store_int(&pointee.sock_close_fd, -1)
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
