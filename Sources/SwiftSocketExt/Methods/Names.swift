// Methods: the module's name-service, address-conversion and byte-order
// functions, and module-level close()/dup(), following CPython 3.11's
// socketmodule.c argument formats, checks and messages.
//
// Functions CPython parses with PyArg_ParseTuple are METH_VARARGS here too, so
// that even "takes no keyword arguments" reads the same.
import CPythonShim
import SocketPOSIX
import Glibc

// MARK: - Bridge helpers for these functions


/// Raises if an audit hook refused the event (a shim_audit_* result).
@inline(__always)
private func audited(_ status: Int32) throws(PythonError) {
    if status < 0 { throw PythonError() }
}

/// An audit event's name as C text, with no conversion.
@inline(__always)
private func eventName(_ event: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(event.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// str from bytes with strict UTF-8, as PyUnicode_FromString decodes C strings.
private func decodeUTF8(_ text: [UInt8]) -> PyObjectPointer? {
    text.withUnsafeBufferPointer {
        PyUnicode_DecodeUTF8(UnsafeRawPointer($0.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            .assumingMemoryBound(to: CChar.self), $0.count, nil)
    }
}

/// str from bytes in the filesystem encoding (PyUnicode_DecodeFSDefault).
private func decodeFilesystem(_ text: [UInt8]) -> PyObjectPointer? {
    text.withUnsafeBufferPointer {
        PyUnicode_DecodeFSDefaultAndSize(UnsafeRawPointer($0.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            .assumingMemoryBound(to: CChar.self), $0.count)
    }
}

private func makeBytes(_ bytes: UnsafeRawBufferPointer) -> PyObjectPointer? {
    PyBytes_FromStringAndSize(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
}

/// socket.herror(h_errno, hstrerror(h_errno)), like CPython's set_herror.
@discardableResult
private func raiseHostError(_ error: HostError) -> PythonError {
    if let args = makeTuple(PyLong_FromLong(Int(error.code)), makeString(error.message)) {
        PyErr_SetObject(ModuleState.herror, args)
        Py_DECREF(args)
    }
    return PythonError()
}

extension Arguments {
    /// The `s` format: a str without NUL characters, as UTF-8. The text lives
    /// as long as `object`. `typeError` replaces the "must be str" message
    /// (PyArg_ParseTuple's ";message" suffix).
    /// `argument` nil: a function's only argument, which Argument Clinic's
    /// messages leave unnumbered.
    @inline(__always)
    static func string(_ object: PyObjectPointer, function: StaticString, argument: Int?,
                       typeError: String? = nil) throws(PythonError) -> UnsafePointer<CChar> {
        guard shim_unicode_check(object) != 0 else {
            throw raise(PyExc_TypeError,
                        typeError ?? "\(function)() \(argumentLabel(argument)) must be str, not \(argumentTypeName(object))")
        }
        var size = 0
        guard let text = PyUnicode_AsUTF8AndSize(object, &size) else { throw PythonError() }
        guard strlen(text) == size else { throw raise(PyExc_ValueError, "embedded null character") }
        return text
    }

    /// The `et` format with the "idna" encoding, as CPython's gethostby*()
    /// parse their argument: str is always IDNA-encoded (codec errors
    /// propagate), bytes and bytearray are taken as they are; no NUL bytes.
    /// Unlike AddressConversion.withHostName (idna_converter), this one
    /// encodes ASCII too and has getargs' messages.
    static func withIDNAString<R>(_ object: PyObjectPointer, function: StaticString, argument: Int,
                                  _ body: (UnsafePointer<CChar>) throws(PythonError) -> R) throws(PythonError) -> R {
        var encoded: PyObjectPointer? = nil
        defer { Py_XDECREF(encoded) }
        let text: UnsafeMutablePointer<CChar>?
        let length: Int
        if shim_unicode_check(object) != 0 {
            guard let idna = PyUnicode_AsEncodedString(object, "idna", nil) else { throw PythonError() }
            encoded = idna
            text = PyBytes_AsString(idna)
            length = PyBytes_Size(idna)
        } else if shim_bytes_check(object) != 0 {
            text = PyBytes_AsString(object)
            length = PyBytes_Size(object)
        } else if shim_bytearray_check(object) != 0 {
            text = PyByteArray_AsString(object)
            length = PyByteArray_Size(object)
        } else {
            throw raise(PyExc_TypeError,
                        "\(function)() argument \(argument) must be str, bytes or bytearray, not \(argumentTypeName(object))")
        }
        guard let text else { throw PythonError() }
        guard strlen(text) == length else {
            throw raise(PyExc_TypeError,
                        "\(function)() argument \(argument) must be encoded string without null bytes, not \(argumentTypeName(object))")
        }
        return try body(text)
    }

    /// PyUnicode_FSConverter: str (filesystem-encoded), bytes or os.PathLike,
    /// as a new bytes object without NUL bytes.
    static func filesystemBytes(_ object: PyObjectPointer) throws(PythonError) -> PyObjectPointer {
        var converted: PyObjectPointer? = nil
        guard PyUnicode_FSConverter(object, &converted) != 0, let converted else { throw PythonError() }
        return converted
    }

    /// PyLong_AsLong truncated to a C int, as CPython's PyLong_AsSocket_t
    /// feeds its `int` SOCKET_T (no range check: 2**32 + 5 is fd 5).
    static func socketFD(_ object: PyObjectPointer) throws(PythonError) -> Int32 {
        let value = PyLong_AsLong(object)
        if value == -1, PyErr_Occurred() != nil { throw PythonError() }
        return Int32(truncatingIfNeeded: value)
    }
}

// MARK: - Byte order

/// ntohs/htons: a C int (`convert`), then CPython's own 16-bit range messages.
private func convertShort(_ name: StaticString, _ object: PyObjectPointer, toInt32: (PyObjectPointer) throws(PythonError) -> Int32,
                          _ swap: (UInt16) -> UInt16) throws(PythonError) -> PyObjectPointer? {
    let value = try toInt32(object)
    if value < 0 {
        throw raise(PyExc_OverflowError, "\(name): can't convert negative Python int to C 16-bit unsigned integer")
    }
    if value > 0xffff {
        throw raise(PyExc_OverflowError, "\(name): Python int too large to convert to C 16-bit unsigned integer")
    }
    return PyLong_FromUnsignedLong(UInt(swap(UInt16(value))))
}

/// ntohl/htonl: an int (no __index__) that fits in 32 bits.
private func convertLong(_ object: PyObjectPointer?, _ convert: (UInt32) -> UInt32) -> PyObjectPointer? {
    do throws(PythonError) {
        let object = object!
        guard shim_long_check(object) != 0 else {
            throw raise(PyExc_TypeError, "expected int, \(typeName(object)) found")
        }
        let value = PyLong_AsUnsignedLong(object)
        if value == UInt.max, PyErr_Occurred() != nil { throw PythonError() }
        guard value <= UInt(UInt32.max) else { throw raise(PyExc_OverflowError, "int larger than 32 bits") }
        return PyLong_FromUnsignedLong(UInt(convert(UInt32(value))))
    } catch {
        return nil
    }
}

// CPython 3.13 converted ntohs, htons, inet_aton, inet_ntoa and
// if_nametoindex to Argument Clinic: one positional argument (METH_O), ints
// through PyLong_AsInt, unnumbered "argument" in messages. Before, they were
// METH_VARARGS with getargs' formats; shim.c registers the form of the
// interpreter it is built for, and the `_varargs` entry points unpack the
// tuple and go on as the METH_O ones.

@_cdecl("swsock_htons")
func moduleHtons(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try convertShort("htons", object!, toInt32: Arguments.exactInt32) { $0.bigEndian }
    } catch {
        return nil
    }
}

@_cdecl("swsock_ntohs")
func moduleNtohs(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try convertShort("ntohs", object!, toInt32: Arguments.exactInt32) { UInt16(bigEndian: $0) }
    } catch {
        return nil
    }
}

@_cdecl("swsock_htons_varargs")
func moduleHtonsVarargs(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try convertShort("htons", Arguments.single("htons", tuple), toInt32: Arguments.int32) { $0.bigEndian }
    } catch {
        return nil
    }
}

@_cdecl("swsock_ntohs_varargs")
func moduleNtohsVarargs(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try convertShort("ntohs", Arguments.single("ntohs", tuple), toInt32: Arguments.int32) { UInt16(bigEndian: $0) }
    } catch {
        return nil
    }
}

@_cdecl("swsock_htonl")
func moduleHtonl(_: PyObjectPointer?, _ value: PyObjectPointer?) -> PyObjectPointer? {
    convertLong(value) { $0.bigEndian }
}

@_cdecl("swsock_ntohl")
func moduleNtohl(_: PyObjectPointer?, _ value: PyObjectPointer?) -> PyObjectPointer? {
    convertLong(value) { UInt32(bigEndian: $0) }
}

// MARK: - Numeric addresses

/// `inet_aton(string) -> 4 packed bytes`, with inet_aton(3)'s lenient syntax.
@_cdecl("swsock_inet_aton")
func moduleInetAton(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try inetAton(Arguments.string(object!, function: "inet_aton", argument: nil))
    } catch {
        return nil
    }
}

@_cdecl("swsock_inet_aton_varargs")
func moduleInetAtonVarargs(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try inetAton(Arguments.string(Arguments.single("inet_aton", tuple), function: "inet_aton", argument: 1))
    } catch {
        return nil
    }
}

private func inetAton(_ text: UnsafePointer<CChar>) throws(PythonError) -> PyObjectPointer? {
    guard let address = NumericAddress.aton(text) else {
        throw raise(PyExc_OSError, "illegal IP address string passed to inet_aton")
    }
    return withUnsafeBytes(of: address) { makeBytes($0) }
}

/// Text of a packed address; OSError from errno if inet_ntop(3) refuses it.
private func presentation(family: Int32, _ packed: UnsafeRawPointer) throws(PythonError) -> PyObjectPointer? {
    guard let text = AddressConversion.hostText(family: family, packed: packed) else { throw PythonError() }
    return text
}

/// `inet_ntoa(packed_ip) -> dotted string`: exactly 4 bytes of any buffer.
@_cdecl("swsock_inet_ntoa")
func moduleInetNtoa(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try inetNtoa(object!, argument: nil)
    } catch {
        return nil
    }
}

@_cdecl("swsock_inet_ntoa_varargs")
func moduleInetNtoaVarargs(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return try inetNtoa(Arguments.single("inet_ntoa", tuple), argument: 1)
    } catch {
        return nil
    }
}

private func inetNtoa(_ object: PyObjectPointer, argument: Int?) throws(PythonError) -> PyObjectPointer? {
    try withBuffer(object, writable: false, function: "inet_ntoa", argument: argument) { packed throws(PythonError) in
        guard packed.count == MemoryLayout<in_addr>.size else {
            throw raise(PyExc_OSError, "packed IP wrong length for inet_ntoa")
        }
        return PyUnicode_FromString(NumericAddress.dottedQuad(packed.loadUnaligned(as: in_addr.self)))
    }
}

/// `inet_pton(af, ip) -> packed bytes` (4 for AF_INET, 16 for AF_INET6).
@_cdecl("swsock_inet_pton")
func moduleInetPton(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("inet_pton", nargs, min: 2, max: 2)
        let family = try Arguments.int32(args![0]!)
        let text = try Arguments.string(args![1]!, function: "inet_pton", argument: 2)
        switch NumericAddress.pton(family: family, text) {
        case .failure(let error):
            throw raiseOSError(error)
        case .success(.invalid):
            throw raise(PyExc_OSError, "illegal IP address string passed to inet_pton")
        case .success(.address(let packed)):
            let size: Int
            switch family {
            case AF_INET: size = MemoryLayout<in_addr>.size
            case AF_INET6: size = MemoryLayout<in6_addr>.size
            default: throw raise(PyExc_OSError, "unknown address family")
            }
            return withUnsafeBytes(of: packed) { makeBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(size))) }
        }
    } catch {
        return nil
    }
}

/// `inet_ntop(af, packed_ip) -> string`.
@_cdecl("swsock_inet_ntop")
func moduleInetNtop(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("inet_ntop", nargs, min: 2, max: 2)
        let family = try Arguments.int32(args![0]!)
        return try withBuffer(args![1]!, writable: false, function: "inet_ntop", argument: 2) { packed throws(PythonError) in
            let size: Int
            switch family {
            case AF_INET: size = MemoryLayout<in_addr>.size
            case AF_INET6: size = MemoryLayout<in6_addr>.size
            default: throw raise(PyExc_ValueError, "unknown address family \(family)")
            }
            guard packed.count == size else {
                throw raise(PyExc_ValueError, "invalid length of packed IP address string")
            }
            return try presentation(family: family, packed.baseAddress!)
        }
    } catch {
        return nil
    }
}

// MARK: - Host names

@_cdecl("swsock_gethostname")
func moduleGethostname(_: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        try audited(shim_audit_none(eventName("socket.gethostname")))
        // On the stack and not zero-filled, as CPython's char buf[1024].
        return try withUnsafeTemporaryAllocation(of: CChar.self, capacity: HostName.bufferSize) {
            (buffer) throws(PythonError) in
            try check(withoutGIL { HostName.get(into: buffer) })
            return PyUnicode_DecodeFSDefault(buffer.baseAddress)
        }
    } catch {
        return nil
    }
}

/// `sethostname(name)`: bytes as they are, else PyUnicode_FSConverter.
@_cdecl("swsock_sethostname")
func moduleSethostname(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("sethostname", nargs, min: 1, max: 1)
        let argument = args![0]!
        let name: PyObjectPointer
        if shim_bytes_check(argument) != 0 {
            Py_INCREF(argument)
            name = argument
        } else {
            name = try Arguments.filesystemBytes(argument)
        }
        defer { Py_DECREF(name) }
        try audited(shim_audit_object(eventName("socket.sethostname"), name))
        try withBuffer(name, writable: false, function: "sethostname", argument: 1) { bytes throws(PythonError) in
            try check(HostName.set(UnsafeRawBufferPointer(bytes)))
        }
        return newNone()
    } catch {
        return nil
    }
}

/// `gethostbyname(host) -> 'a.b.c.d'`: CPython's setipaddr for AF_INET.
@_cdecl("swsock_gethostbyname")
func moduleGethostbyname(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("gethostbyname", nargs, min: 1, max: 1)
        return try Arguments.withIDNAString(args![0]!, function: "gethostbyname", argument: 1) { name throws(PythonError) in
            try audited(shim_audit_args(eventName("socket.gethostbyname"), tuple))
            var address = SocketAddress()
            try AddressConversion.resolveHost(name, family: AF_INET, into: &address)
            return try presentation(family: AF_INET, address.ipv4Address)
        }
    } catch {
        return nil
    }
}

private func presentation(family: Int32, _ address: in_addr) throws(PythonError) -> PyObjectPointer? {
    var address = address
    return try presentation(family: family, &address)
}

/// CPython's gethost_common: (name, aliases, addresses) of a host entry
/// whose addresses must be of `family`.
private func hostEntryObject(_ result: Result<HostEntry, HostError>, family: Int32) throws(PythonError) -> PyObjectPointer? {
    let entry: HostEntry
    switch result {
    case .failure(let error): throw raiseHostError(error)
    case .success(let found): entry = found
    }
    guard entry.addressType == family else { throw raiseOSError(Errno(EAFNOSUPPORT)) }
    let size: Int
    switch family {
    case AF_INET: size = MemoryLayout<in_addr>.size
    case AF_INET6: size = MemoryLayout<in6_addr>.size
    default: throw raise(PyExc_OSError, "unsupported address family")
    }
    let aliases = try makeList(entry.aliases) { decodeUTF8($0) }
    let addresses: PyObjectPointer
    do throws(PythonError) {
        addresses = try makeList(entry.addresses) { address throws(PythonError) in
            guard address.count >= size else { throw raise(PyExc_OSError, "unsupported address family") }
            return address.withUnsafeBytes { AddressConversion.hostText(family: family, packed: $0.baseAddress!) }
        }
    } catch {
        Py_DECREF(aliases)
        throw error
    }
    return makeTuple(decodeUTF8(entry.name), aliases, addresses)
}

/// `gethostbyname_ex(host) -> (name, aliaslist, addresslist)`: IPv4 only.
@_cdecl("swsock_gethostbyname_ex")
func moduleGethostbynameEx(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("gethostbyname_ex", nargs, min: 1, max: 1)
        return try Arguments.withIDNAString(args![0]!, function: "gethostbyname_ex", argument: 1) { name throws(PythonError) in
            try audited(shim_audit_args(eventName("socket.gethostbyname"), tuple))
            var address = SocketAddress()
            try AddressConversion.resolveHost(name, family: AF_INET, into: &address)
            let found = withoutGIL { HostDatabase.byName(name) }
            return try hostEntryObject(found, family: address.family)
        }
    } catch {
        return nil
    }
}

/// `gethostbyaddr(ip) -> (name, aliaslist, addresslist)`: the name is
/// resolved first (setipaddr, any family), then looked up backwards.
@_cdecl("swsock_gethostbyaddr")
func moduleGethostbyaddr(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("gethostbyaddr", nargs, min: 1, max: 1)
        return try Arguments.withIDNAString(args![0]!, function: "gethostbyaddr", argument: 1) { name throws(PythonError) in
            try audited(shim_audit_args(eventName("socket.gethostbyaddr"), tuple))
            var address = SocketAddress()
            try AddressConversion.resolveHost(name, family: AF_UNSPEC, into: &address)
            let family = address.family
            let found: Result<HostEntry, HostError>
            switch family {
            case AF_INET:
                let packed = address.ipv4Address
                found = withUnsafeBytes(of: packed) { bytes in withoutGIL { HostDatabase.byAddress(bytes, family: family) } }
            case AF_INET6:
                let packed = address.ipv6Address
                found = withUnsafeBytes(of: packed) { bytes in withoutGIL { HostDatabase.byAddress(bytes, family: family) } }
            default:
                throw raise(PyExc_OSError, "unsupported address family")
            }
            return try hostEntryObject(found, family: family)
        }
    } catch {
        return nil
    }
}

// MARK: - getnameinfo

/// `getnameinfo((host, port[, flowinfo[, scope_id]]), flags) -> (host, port)`.
/// The host must be numeric: it is parsed by getaddrinfo(AI_NUMERICHOST).
@_cdecl("swsock_getnameinfo")
func moduleGetnameinfo(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("getnameinfo", nargs, min: 2, max: 2)
        let sockaddr = args![0]!
        let flags = try Arguments.int32(args![1]!)
        guard shim_tuple_check(sockaddr) != 0 else {
            throw raise(PyExc_TypeError, "getnameinfo() argument 1 must be a tuple")
        }
        // PyArg_ParseTuple(sa, "si|II;getnameinfo(): illegal sockaddr argument")
        let illegal = "getnameinfo(): illegal sockaddr argument"
        let count = PyTuple_GET_SIZE(sockaddr)
        guard (2...4).contains(count) else { throw raise(PyExc_TypeError, illegal) }
        let item = { (index: Int) in shim_tuple_get_item(sockaddr, index)! }
        let host = try Arguments.string(item(0), function: "getnameinfo", argument: 1, typeError: illegal)
        let port = try Arguments.int32(item(1))
        let flowInfo = count > 2 ? try Arguments.uint32Mask(item(2)) : 0
        let scopeID = count > 3 ? try Arguments.uint32Mask(item(3)) : 0
        guard flowInfo <= 0xfffff else {
            throw raise(PyExc_OverflowError, "getnameinfo(): flowinfo must be 0-1048575.")
        }
        try audited(shim_audit_object(eventName("socket.getnameinfo"), sockaddr))

        let results = try withDecimalCString(Int(port)) { (text) throws(PythonError) in
            try resolve(host: host, service: text, family: AF_UNSPEC,
                        socketType: Int32(SOCK_DGRAM.rawValue), flags: AI_NUMERICHOST)
        }
        guard results.count == 1, let only = results.first else {
            throw raise(PyExc_OSError, "sockaddr resolved to multiple addresses")
        }
        var address = only.address
        switch only.family {
        case AF_INET:
            guard count == 2 else { throw raise(PyExc_OSError, "IPv4 sockaddr must be 2 tuple") }
        case AF_INET6:
            // The tuple's flowinfo and scope id replace what getaddrinfo set.
            let resolvedPort = address.withSockaddr { raw, _ in
                UInt16(bigEndian: UnsafeRawPointer(raw).load(as: sockaddr_in6.self).sin6_port)
            }
            address.setPort(resolvedPort, flowInfo: flowInfo, scopeID: scopeID)
        default:
            break
        }
        // Py_BuildValue("ss"): both strict UTF-8, from buffers on the stack.
        // NI_MAXHOST and NI_MAXSERV bytes on the stack (withUnsafeTemporaryAllocation
        // would go to the heap for more than 1 KiB).
        var hostStorage = InlineArray<1025, CChar>(repeating: 0)
        var serviceStorage = InlineArray<32, CChar>(repeating: 0)
        precondition(hostStorage.count == Resolver.maximumHostLength && serviceStorage.count == Resolver.maximumServiceLength)
        return try withUnsafeMutableBytes(of: &hostStorage) { (hostRaw) throws(PythonError) in
            try withUnsafeMutableBytes(of: &serviceStorage) { (serviceRaw) throws(PythonError) in
                let hostName = hostRaw.bindMemory(to: CChar.self), serviceName = serviceRaw.bindMemory(to: CChar.self)
                let found = withoutGIL {
                    Resolver.getnameinfo(address, flags: flags, host: hostName, service: serviceName)
                }
                if case .failure(let error) = found { throw raiseResolveError(error) }
                return makeTuple(PyUnicode_FromString(hostName.baseAddress!), PyUnicode_FromString(serviceName.baseAddress!))
            }
        }
    } catch {
        return nil
    }
}

// MARK: - Services and protocols

/// `getservbyname(servicename[, protocolname]) -> port`.
@_cdecl("swsock_getservbyname")
func moduleGetservbyname(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("getservbyname", nargs, min: 1, max: 2)
        let name = try Arguments.string(args![0]!, function: "getservbyname", argument: 1)
        let proto = nargs > 1 ? try Arguments.string(args![1]!, function: "getservbyname", argument: 2) : nil
        try audited(shim_audit_ss(eventName("socket.getservbyname"), name, proto))
        guard let port = withoutGIL({ ServiceDatabase.port(service: name, proto: proto) }) else {
            throw raise(PyExc_OSError, "service/proto not found")
        }
        return PyLong_FromLong(Int(port))
    } catch {
        return nil
    }
}

/// `getservbyport(port[, protocolname]) -> servicename`.
@_cdecl("swsock_getservbyport")
func moduleGetservbyport(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("getservbyport", nargs, min: 1, max: 2)
        let port = try Arguments.int32(args![0]!)
        let proto = nargs > 1 ? try Arguments.string(args![1]!, function: "getservbyport", argument: 2) : nil
        guard (0...0xffff).contains(port) else {
            throw raise(PyExc_OverflowError, "getservbyport: port must be 0-65535.")
        }
        try audited(shim_audit_is(eventName("socket.getservbyport"), port, proto))
        guard let name = withoutGIL({ ServiceDatabase.name(port: UInt16(port), proto: proto) }) else {
            throw raise(PyExc_OSError, "port/proto not found")
        }
        return decodeUTF8(name)
    } catch {
        return nil
    }
}

/// `getprotobyname(name) -> number`.
@_cdecl("swsock_getprotobyname")
func moduleGetprotobyname(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("getprotobyname", nargs, min: 1, max: 1)
        let name = try Arguments.string(args![0]!, function: "getprotobyname", argument: 1)
        guard let number = withoutGIL({ ServiceDatabase.protocolNumber(name: name) }) else {
            throw raise(PyExc_OSError, "protocol not found")
        }
        return PyLong_FromLong(Int(number))
    } catch {
        return nil
    }
}

// MARK: - Interfaces

/// `if_nameindex() -> [(index, name)]`.
@_cdecl("swsock_if_nameindex")
func moduleIfNameindex(_: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let interfaces = try check(Interfaces.all())
        return try makeList(interfaces) { interface in
            makeTuple(PyLong_FromUnsignedLong(UInt(interface.index)), decodeFilesystem(interface.name))
        }
    } catch {
        return nil
    }
}

/// `if_nametoindex(name) -> index`: name through PyUnicode_FSConverter.
@_cdecl("swsock_if_nametoindex_varargs")
func moduleIfNametoindexVarargs(_ module: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        return moduleIfNametoindex(module, try Arguments.single("if_nametoindex", tuple))
    } catch {
        return nil
    }
}

@_cdecl("swsock_if_nametoindex")
func moduleIfNametoindex(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let name = try Arguments.filesystemBytes(object!)
        defer { Py_DECREF(name) }
        let index = Interfaces.index(name: PyBytes_AsString(name)!)
        // if_nametoindex() does not set errno.
        guard index != 0 else { throw raise(PyExc_OSError, "no interface with this name") }
        return PyLong_FromUnsignedLong(UInt(index))
    } catch {
        return nil
    }
}

/// `if_indextoname(index) -> name`: an int (no __index__), taken as an
/// unsigned long; 3.13 refuses what does not fit a C unsigned int, earlier
/// versions truncate it.
@_cdecl("swsock_if_indextoname")
func moduleIfIndextoname(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let object = object!
        guard shim_long_check(object) != 0 else { throw raise(PyExc_TypeError, "an integer is required") }
        let value = PyLong_AsUnsignedLong(object)
        if value == UInt.max, PyErr_Occurred() != nil { throw PythonError() }
        if value > UInt32.max, Py_Version >= 0x030D_0000 { throw raise(PyExc_OverflowError, "index is too large") }
        if value == UInt.max {
            // CPython 3.11 tests `index == (unsigned long)-1` without
            // PyErr_Occurred() and returns NULL with no exception set: so do
            // we, and the interpreter raises the same SystemError (whose
            // message depends on how the function was called).
            throw PythonError()
        }
        let name = try check(Interfaces.name(index: UInt32(truncatingIfNeeded: value)))
        return decodeFilesystem(name)
    } catch {
        return nil
    }
}

// MARK: - File descriptors

/// Module-level `close(fd)`: ECONNRESET (the peer closed first) is ignored.
@_cdecl("swsock_module_close")
func moduleClose(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let fd = try Arguments.socketFD(object!)
        if case .failure(let error) = withoutGIL({ POSIX.close(fd) }), error != Errno.connectionReset {
            throw raiseOSError(error)
        }
        return newNone()
    } catch {
        return nil
    }
}

/// Module-level `dup(fd) -> fd`: a non-inheritable duplicate, like _Py_dup.
@_cdecl("swsock_module_dup")
func moduleDup(_: PyObjectPointer?, _ object: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let fd = try Arguments.socketFD(object!)
        let newFD = try check(withoutGIL { POSIX.dupCloexec(fd) })
        guard let result = newInt(Int(newFD)) else {
            _ = POSIX.close(newFD)
            throw PythonError()
        }
        return result
    } catch {
        return nil
    }
}
