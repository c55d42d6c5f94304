// Methods: the socket object's life cycle, descriptor and blocking mode.
import CPythonShim
import SocketPOSIX
import Glibc

// MARK: - Type slots

@_cdecl("swsock_new")
func socketNew(_ type: UnsafeMutablePointer<PyTypeObject>?, _ args: PyObjectPointer?,
               _ kwargs: PyObjectPointer?) -> PyObjectPointer? {
    guard let type, let object = type.pointee.tp_alloc(type, 0) else { return nil }
    asSocket(object).initializeState()
    return object
}

/// socket.__init__(family=-1, type=-1, proto=-1, fileno=None)
@_cdecl("swsock_init")
func socketInit(_ object: PyObjectPointer?, _ args: PyObjectPointer?, _ kwargs: PyObjectPointer?) -> Int32 {
    do {
        let values = try Arguments.unpack("socket", names: ["family", "type", "proto", "fileno"], count: 4,
                                          required: 0, tuple: args, dict: kwargs)
        var family = try values[0].map(Arguments.exactInt32) ?? -1
        var type = try values[1].map(Arguments.exactInt32) ?? -1
        var proto = try values[2].map(Arguments.exactInt32) ?? -1
        let socket = asSocket(object)
        if shim_audit_new(object, family, type, proto) < 0 { return -1 }
        let fd: Int32
        if let fileno = values[3], !isNone(fileno) {
            fd = try descriptor(fileno)
            // The fd must be a socket; detect what was not given.
            var local = SocketAddress()
            switch POSIX.getsockname(fd, into: &local) {
            case .success where family == -1: family = local.family
            case .failure(let errno) where errno == .badFileDescriptor || errno == .notSocket:
                throw raiseOSError(errno)
            default: break
            }
            if type == -1 { type = try check(POSIX.getsockoptInt(fd, level: SOL_SOCKET, option: SO_TYPE)) }
            if proto == -1 { proto = try check(POSIX.getsockoptInt(fd, level: SOL_SOCKET, option: SO_PROTOCOL)) }
        } else {
            if family == -1 { family = AF_INET }
            if type == -1 { type = Int32(SOCK_STREAM.rawValue) }
            if proto == -1 { proto = 0 }
            fd = try check(withoutGIL { POSIX.socket(family: family, type: type, proto: proto) })
        }
        do {
            try socket.adopt(fd: fd, family: family, type: type, proto: proto)
        } catch {
            socket.fd = -1
            _ = POSIX.close(fd)
            throw error
        }
        return 0
    } catch {
        return -1
    }
}

/// A file descriptor argument: CPython's PyLong_AsSocket_t plus its sign check.
private func descriptor(_ object: PyObjectPointer) throws(PythonError) -> Int32 {
    let value = PyLong_AsLong(object)
    if value == -1, PyErr_Occurred() != nil { throw PythonError() }
    let fd = Int32(truncatingIfNeeded: value)
    if fd < 0 { throw raise(PyExc_ValueError, "negative file descriptor") }
    return fd
}

/// An unclosed socket warns (ResourceWarning) and is closed, as in CPython.
/// A closed one (the usual case) has nothing to do: no exception to save.
@_cdecl("swsock_finalize")
func socketFinalize(_ object: PyObjectPointer?) {
    let socket = asSocket(object)
    guard socket.fd != -1 else { return }
    var type: PyObjectPointer?, value: PyObjectPointer?, traceback: PyObjectPointer?
    PyErr_Fetch(&type, &value, &traceback)
    if shim_warn_unclosed(object) != 0, PyErr_ExceptionMatches(PyExc_Warning) != 0 {
        // Spurious errors can appear at interpreter shutdown.
        PyErr_WriteUnraisable(object)
    }
    // close() can block (SO_LINGER): let other threads run meanwhile.
    if let fd = socket.takeFDForClose() { _ = withoutGIL { POSIX.close(fd) } }
    PyErr_Restore(type, value, traceback)
}

/// Which kind of type the headers built against make (CPythonShim.h).
private let heapSocketType = SHIM_HEAP_SOCKET_TYPE != 0

@_cdecl("swsock_dealloc")
func socketDealloc(_ object: PyObjectPointer?) {
    if PyObject_CallFinalizerFromDealloc(object) < 0 { return }  // resurrected
    let type = object.unsafelyUnwrapped.pointee.ob_type.unsafelyUnwrapped  // Py_TYPE, a C inline function
    // 3.12+'s socket type is a GC-tracked heap type, which its instances
    // (and those of subclasses: subtype_dealloc leaves it to the base) own a
    // reference to. 3.11's is static: subtype_dealloc does both itself.
    let heapType = heapSocketType
    if heapType { PyObject_GC_UnTrack(object) }
    type.pointee.tp_free(object)
    if heapType { Py_DECREF(UnsafeMutableRawPointer(type).assumingMemoryBound(to: PyObject.self)) }
}

@_cdecl("swsock_repr")
func socketRepr(_ object: PyObjectPointer?) -> PyObjectPointer? {
    let socket = asSocket(object)
    return makeString("<socket object, fd=\(socket.fd), family=\(socket.family), type=\(socket.pointee.sock_type), proto=\(socket.pointee.sock_proto)>")
}

// MARK: - The descriptor

@_cdecl("swsock_fileno")
func socketFileno(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    newInt(Int(asSocket(object).fd))
}

@_cdecl("swsock_close")
func socketClose(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    // Nothing to do if closed already, or if a thread still in a syscall on
    // the fd will close it (its error, if any, is then lost).
    guard let fd = asSocket(object).takeFDForClose() else { return newNone() }
    // Never retried on EINTR: the fd is gone either way. ECONNRESET only
    // means the peer closed first (bpo-30319).
    if case .failure(let errno) = withoutGIL({ POSIX.close(fd) }), errno != .connectionReset {
        raiseOSError(errno)
        return nil
    }
    return newNone()
}

@_cdecl("swsock_detach")
func socketDetach(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    newInt(Int(asSocket(object).detachFD()))
}

// MARK: - Blocking mode and timeout

/// gettimeout(), and the `timeout` attribute's getter (shim.c).
@_cdecl("swsock_gettimeout")
func socketGettimeout(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    Timeout.object(asSocket(object).timeout)
}

@_cdecl("swsock_settimeout")
func socketSettimeout(_ object: PyObjectPointer?, _ value: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        try asSocket(object).setTimeout(Timeout.parse(value!))
        return newNone()
    } catch {
        return nil
    }
}

@_cdecl("swsock_setblocking")
func socketSetblocking(_ object: PyObjectPointer?, _ flag: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        // Any object's truth value since 3.12; an int before.
        let block = Py_Version >= 0x030C_0000 ? Int(PyObject_IsTrue(flag)) : PyLong_AsLong(flag)
        if block == -1, PyErr_Occurred() != nil { throw PythonError() }
        try asSocket(object).setTimeout(block != 0 ? Timeout.blocking : 0)
        return newNone()
    } catch {
        return nil
    }
}

/// True unless non-blocking: a socket with a timeout counts as blocking.
@_cdecl("swsock_getblocking")
func socketGetblocking(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    newBool(asSocket(object).timeout != 0)
}
