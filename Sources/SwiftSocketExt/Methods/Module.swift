// Methods: module-level functions and the module's initialisation.
import CPythonShim
import SocketPOSIX
import Glibc

@_cdecl("swsock_getdefaulttimeout")
func moduleGetdefaulttimeout(_: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    Timeout.object(ModuleState.defaultTimeout.load(ordering: .relaxed))
}

@_cdecl("swsock_setdefaulttimeout")
func moduleSetdefaulttimeout(_: PyObjectPointer?, _ value: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        ModuleState.defaultTimeout.store(try Timeout.parse(value!), ordering: .relaxed)
        return newNone()
    } catch {
        return nil
    }
}

/// `socketpair([family[, type[, proto]]]) -> (socket, socket)`, AF_UNIX by default.
@_cdecl("swsock_socketpair")
func moduleSocketpair(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("socketpair", nargs, min: 0, max: 3)
        let family = nargs > 0 ? try Arguments.int32(args![0]!) : AF_UNIX
        let type = nargs > 1 ? try Arguments.int32(args![1]!) : Int32(SOCK_STREAM.rawValue)
        let proto = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        let (fd0, fd1) = try check(withoutGIL { POSIX.socketpair(family: family, type: type, proto: proto) })
        var first: PyObjectPointer? = nil
        do throws(PythonError) {
            first = try newSocketObject(fd: fd0, family: family, type: type, proto: proto)
            let second = try newSocketObject(fd: fd1, family: family, type: type, proto: proto)
            return makeTuple(first, second)
        } catch {
            // Whatever no socket object owns yet is closed here.
            if let first { Py_DECREF(first) } else { _ = POSIX.close(fd0) }
            _ = POSIX.close(fd1)
            throw error
        }
    } catch {
        return nil
    }
}

/// `getaddrinfo(host, port, family=0, type=0, proto=0, flags=0)
///     -> [(family, type, proto, canonname, sockaddr)]`
@_cdecl("swsock_getaddrinfo")
func moduleGetaddrinfo(_: PyObjectPointer?, _ args: FastArgs, _ nargs: Int,
                       _ kwnames: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let values = try Arguments.unpack("getaddrinfo", names: ["host", "port", "family", "type", "proto", "flags"],
                                          count: 6, required: 2, args, nargs, kwnames)
        let hostObject = values[0]!, portObject = values[1]!
        let family = try values[2].map(Arguments.int32) ?? AF_UNSPEC
        let type = try values[3].map(Arguments.int32) ?? 0
        let proto = try values[4].map(Arguments.int32) ?? 0
        let flags = try values[5].map(Arguments.int32) ?? 0

        // The host as C text: IDNA-encoded str, bytes, or NULL for None.
        var hostBytes: PyObjectPointer? = nil
        defer { Py_XDECREF(hostBytes) }
        if shim_unicode_check(hostObject) != 0 {
            hostBytes = PyUnicode_AsEncodedString(hostObject, "idna", nil)
            if hostBytes == nil { throw PythonError() }
        } else if shim_bytes_check(hostObject) != 0 {
            Py_INCREF(hostObject)
            hostBytes = hostObject
        } else if !isNone(hostObject) {
            throw raise(PyExc_TypeError, "getaddrinfo() argument 1 must be string or None")
        }
        // The port as C text: an int in decimal, str, bytes, or NULL for None.
        // Since 3.12 any int's digits go to getaddrinfo(3), which judges them;
        // before, it had to fit a C long.
        var portDigits: PyObjectPointer? = nil   // keeps the 3.12+ text alive
        defer { Py_XDECREF(portDigits) }
        var service: UnsafePointer<CChar>? = nil
        var portNumber: Int? = nil
        if shim_long_check_exact(portObject) != 0, Py_Version >= 0x030C_0000 {
            portDigits = PyObject_Str(portObject)
            guard let digits = portDigits, let utf8 = PyUnicode_AsUTF8(digits) else { throw PythonError() }
            service = utf8
        } else if shim_long_check_exact(portObject) != 0 {
            let port = PyLong_AsLong(portObject)
            if port == -1, PyErr_Occurred() != nil { throw PythonError() }
            portNumber = port
        } else if shim_unicode_check(portObject) != 0 {
            guard let utf8 = PyUnicode_AsUTF8(portObject) else { throw PythonError() }
            service = utf8
        } else if shim_bytes_check(portObject) != 0 {
            service = UnsafePointer(PyBytes_AS_STRING(portObject))
        } else if !isNone(portObject) {
            throw raise(PyExc_OSError, "Int or String expected")
        }
        if shim_audit_getaddrinfo(hostObject, portObject, family, type, proto) < 0 { throw PythonError() }

        let host = hostBytes.map { UnsafePointer(PyBytes_AS_STRING($0)!) }
        let entries: AddressInfoList
        if let portNumber {
            entries = try withDecimalCString(portNumber) { (text) throws(PythonError) in
                try resolve(host: host, service: text, family: family, socketType: type, proto: proto, flags: flags)
            }
        } else {
            entries = try resolve(host: host, service: service, family: family, socketType: type, proto: proto,
                                  flags: flags)
        }
        guard let list = PyList_New(0) else { throw PythonError() }
        do throws(PythonError) {
            try entries.forEach { (entry) throws(PythonError) in
                guard let item = makeTuple(PyLong_FromLong(Int(entry.family)), PyLong_FromLong(Int(entry.socketType)),
                                           PyLong_FromLong(Int(entry.proto)),
                                           entry.canonicalName.map { PyUnicode_FromString($0) } ?? PyUnicode_FromString(""),
                                           AddressConversion.object(entry.address)) else { throw PythonError() }
                let appended = PyList_Append(list, item)
                Py_DECREF(item)
                if appended < 0 { throw PythonError() }
            }
        } catch {
            Py_DECREF(list)
            throw error
        }
        return list
    } catch {
        return nil
    }
}

// MARK: - Initialisation

/// Fills the module created by PyInit__swiftsocket (shim.c). Returns -1 with an
/// exception set on failure.
@_cdecl("swsock_module_init")
func moduleInit(_ module: PyObjectPointer?) -> Int32 {
    func add(_ name: String, _ value: PyObjectPointer?) -> Bool {
        guard let value else { return false }
        return PyModule_AddObject(module, name, value) == 0 || { Py_DECREF(value); return false }()
    }
    func addRef(_ name: String, _ value: PyObjectPointer?) -> Bool {
        Py_XINCREF(value)
        return add(name, value)
    }
    let type = UnsafeMutableRawPointer(SwiftSocketType).assumingMemoryBound(to: PyObject.self)
    guard let gaierror = PyErr_NewException("socket.gaierror", PyExc_OSError, nil),
          let herror = PyErr_NewException("socket.herror", PyExc_OSError, nil) else { return -1 }
    ModuleState.gaierror = gaierror
    ModuleState.herror = herror
    guard addRef("socket", type), addRef("SocketType", type),
          addRef("error", PyExc_OSError), addRef("timeout", PyExc_TimeoutError),
          addRef("gaierror", gaierror), addRef("herror", herror),
          addRef("has_ipv6", shim_true()),
          add("CAPI", makeCAPICapsule(type: type))
    else { return -1 }
    // Each interpreter's own set: what its _socket has, no more.
    var constants = socketConstants
    if Py_Version >= 0x030C_0000 { constants += socketConstantsSince312 }
    if Py_Version >= 0x030D_0000 { constants += socketConstantsSince313 }
    if Py_Version >= 0x030D_0400 { constants += socketConstantsSince3134 }
    for (name, value) in constants {
        guard add(name, PyLong_FromLong(value)) else { return -1 }
    }
    return 0
}

/// `_socket.CAPI`: what `_ssl` needs to accept our sockets (socketmodule.h).
private func makeCAPICapsule(type: PyObjectPointer) -> PyObjectPointer? {
    let api = UnsafeMutablePointer<SwiftSocketCAPI>.allocate(capacity: 1)
    Py_INCREF(type)
    api.initialize(to: SwiftSocketCAPI(
        Sock_Type: UnsafeMutableRawPointer(type).assumingMemoryBound(to: PyTypeObject.self),
        error: PyExc_OSError, timeout_error: PyExc_TimeoutError))
    // Freed with the capsule, as CPython 3.12's capi_destructor does: `_ssl`
    // copies what it reads, so nothing points into the struct afterwards.
    guard let capsule = PyCapsule_New(api, "_socket.CAPI", { capsule in
        guard let api = PyCapsule_GetPointer(capsule, "_socket.CAPI") else { return }
        let typed = api.assumingMemoryBound(to: SwiftSocketCAPI.self)
        Py_XDECREF(UnsafeMutableRawPointer(typed.pointee.Sock_Type).assumingMemoryBound(to: PyObject.self))
        typed.deallocate()
    }) else {
        Py_DECREF(type)
        api.deallocate()
        return nil
    }
    return capsule
}
