// Bridge layer: the socket object's state and the module's shared state.
import CPythonShim
import Glibc

/// Module-wide state (CPython 3.11's _socket keeps the same in C globals).
/// Only touched with the GIL held.
enum ModuleState {
    /// The timeout new sockets get: socket.setdefaulttimeout().
    nonisolated(unsafe) static var defaultTimeout: _PyTime_t = Timeout.blocking
    nonisolated(unsafe) static var gaierror: PyObjectPointer? = nil
    nonisolated(unsafe) static var herror: PyObjectPointer? = nil
}

/// socket.errorhandler for C consumers of the object layout (`_ssl`):
/// PyErr_SetFromErrno(OSError), like CPython's set_error.
let setErrorFromErrno: @convention(c) () -> PyObjectPointer? = {
    PyErr_SetFromErrno(PyExc_OSError)
}

extension SocketPointer {
    /// CPython's init_sockobject: adopt `fd`; SOCK_NONBLOCK/SOCK_CLOEXEC are
    /// flags, not part of the type; the default timeout applies unless the
    /// type asked for a non-blocking socket.
    func adopt(fd: Int32, family: Int32, type: Int32, proto: Int32) throws(PythonError) {
        let nonBlockFlag = SHIM_SOCK_NONBLOCK
        let flags = nonBlockFlag | SHIM_SOCK_CLOEXEC
        pointee.sock_fd = fd
        pointee.sock_family = family
        pointee.sock_type = type & ~flags
        pointee.sock_proto = proto
        pointee.errorhandler = setErrorFromErrno
        if type & nonBlockFlag != 0 {
            timeout = 0
        } else {
            timeout = ModuleState.defaultTimeout
            if timeout >= 0 {
                try check(POSIX.setNonBlocking(fd, true))
            }
        }
    }

    /// Sets the timeout and the fd's O_NONBLOCK to match (CPython's
    /// internal_setblocking): only a blocking socket has a blocking fd.
    func setTimeout(_ newTimeout: _PyTime_t) throws(PythonError) {
        timeout = newTimeout
        let fd = self.fd
        try check(withoutGIL { POSIX.setNonBlocking(fd, newTimeout >= 0) })
    }
}

/// A new socket object of our type around `fd` (CPython's new_sockobject).
/// On failure the fd is not closed: the caller still owns it.
func newSocketObject(fd: Int32, family: Int32, type: Int32, proto: Int32) throws(PythonError) -> PyObjectPointer {
    guard let object = PyType_GenericNew(&SwiftSocketType, nil, nil) else { throw PythonError() }
    let socket = asSocket(object)
    do {
        try socket.adopt(fd: fd, family: family, type: type, proto: proto)
    } catch {
        socket.fd = -1  // leave closing to the caller
        Py_DECREF(object)
        throw error
    }
    return object
}
