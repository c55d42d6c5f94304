// Bridge layer: Python address objects <-> SocketAddress, with CPython's
// rules (getsockaddrarg, setipaddr, makesockaddr) and messages.
import CPythonShim
import Glibc

enum AddressConversion {
    /// CPython's getsockaddrarg: parse `object` as an address of `family`.
    /// `caller` names the method in messages ("connect", "bind", ...).
    static func parse(_ object: PyObjectPointer, family: Int32, caller: String) throws(PythonError) -> SocketAddress {
        switch family {
        case AF_UNIX: return try unixAddress(object)
        case AF_INET: return try inetAddress(object, family: AF_INET, caller: caller)
        case AF_INET6: return try inetAddress(object, family: AF_INET6, caller: caller)
        default: throw raise(PyExc_OSError, "\(caller)(): bad family")
        }
    }

    /// CPython's makesockaddr: the Python form of an address.
    static func object(_ address: SocketAddress) -> PyObjectPointer? {
        switch address.decoded() {
        case .none:
            return newNone()
        case .ipv4(let host, let port):
            return makeTuple(makeString(host), PyLong_FromLong(Int(port)))
        case .ipv6(let host, let port, let flowInfo, let scopeID):
            return makeTuple(makeString(host), PyLong_FromLong(Int(port)),
                             PyLong_FromUnsignedLong(UInt(flowInfo)), PyLong_FromUnsignedLong(UInt(scopeID)))
        case .unixAbstract(let name):
            return name.withUnsafeBufferPointer {
                PyBytes_FromStringAndSize(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count)
            }
        case .unixPath(let path):
            return path.withUnsafeBufferPointer {
                PyUnicode_DecodeFSDefaultAndSize(UnsafeRawPointer($0.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                    .assumingMemoryBound(to: CChar.self), $0.count)
            }
        case .other(let family, let data):
            return makeTuple(PyLong_FromLong(Int(family)), data.withUnsafeBufferPointer {
                PyBytes_FromStringAndSize(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count)
            })
        }
    }

    // MARK: AF_UNIX

    /// str (filesystem-encoded, embedded NULs allowed) or any bytes-like object.
    private static func unixAddress(_ object: PyObjectPointer) throws(PythonError) -> SocketAddress {
        let path: PyObjectPointer
        if shim_unicode_check(object) != 0 {
            guard let encoded = PyUnicode_EncodeFSDefault(object) else { throw PythonError() }
            path = encoded
        } else {
            Py_INCREF(object)
            path = object
        }
        defer { Py_DECREF(path) }
        let address = try withBuffer(path, writable: false, function: "", argument: 1) { bytes in
            SocketAddress.unix(path: UnsafeRawBufferPointer(bytes))
        }
        guard let address else { throw raise(PyExc_OSError, "AF_UNIX path too long") }
        return address
    }

    // MARK: AF_INET, AF_INET6

    private static func inetAddress(_ object: PyObjectPointer, family: Int32, caller: String) throws(PythonError) -> SocketAddress {
        let familyName = family == AF_INET ? "AF_INET" : "AF_INET6"
        guard shim_tuple_check(object) != 0 else {
            throw raise(PyExc_TypeError, "\(caller)(): \(familyName) address must be tuple, not \(typeName(object))")
        }
        let count = PyTuple_GET_SIZE(object)
        let validCount = family == AF_INET ? count == 2 : (2...4).contains(count)
        guard validCount else {
            throw raise(PyExc_TypeError, family == AF_INET
                        ? "AF_INET address must be a pair (host, port)"
                        : "AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        }
        let item = { (index: Int) in shim_tuple_get_item(object, index)! }
        return try withHostName(item(0)) { host throws(PythonError) in
            let port: Int32
            do {
                port = try Arguments.int32(item(1))
            } catch {
                throw portError(caller)
            }
            let flowInfo = count > 2 ? try Arguments.uint32Mask(item(2)) : 0
            let scopeID = count > 3 ? try Arguments.uint32Mask(item(3)) : 0
            let resolved = try resolveHost(host, family: family)
            guard (0...0xffff).contains(port) else {
                throw raise(PyExc_OverflowError, "\(caller)(): port must be 0-65535.")
            }
            if family == AF_INET {
                return .ipv4(resolved.ipv4Address, port: UInt16(port))
            }
            guard flowInfo <= 0xfffff else {
                throw raise(PyExc_OverflowError, "\(caller)(): flowinfo must be 0-1048575.")
            }
            return .ipv6(resolved.ipv6Address, port: UInt16(port), flowInfo: flowInfo, scopeID: scopeID)
        }
    }

    /// An OverflowError converting the port becomes CPython's port message.
    private static func portError(_ caller: String) -> PythonError {
        if PyErr_ExceptionMatches(PyExc_OverflowError) != 0 {
            PyErr_Clear()
            return raise(PyExc_OverflowError, "\(caller)(): port must be 0-65535.")
        }
        return PythonError()
    }

    /// CPython's idna_converter: str (ASCII as is, else IDNA-encoded), bytes
    /// or bytearray, without embedded NULs.
    static func withHostName<R>(_ object: PyObjectPointer,
                                _ body: (UnsafePointer<CChar>) throws(PythonError) -> R) throws(PythonError) -> R {
        var encoded: PyObjectPointer? = nil
        defer { Py_XDECREF(encoded) }
        let text: UnsafePointer<CChar>?
        let length: Int
        if shim_bytes_check(object) != 0 {
            text = UnsafePointer(PyBytes_AsString(object))
            length = PyBytes_Size(object)
        } else if shim_bytearray_check(object) != 0 {
            text = UnsafePointer(PyByteArray_AsString(object))
            length = PyByteArray_Size(object)
        } else if shim_unicode_check(object) != 0 {
            if PyUnicode_IS_ASCII(object) != 0 {
                var size = 0
                text = PyUnicode_AsUTF8AndSize(object, &size)
                length = size
            } else {
                guard let idna = PyUnicode_AsEncodedString(object, "idna", nil) else {
                    PyErr_Clear()
                    throw raise(PyExc_TypeError, "encoding of hostname failed")
                }
                encoded = idna
                text = UnsafePointer(PyBytes_AsString(idna))
                length = PyBytes_Size(idna)
            }
        } else {
            throw raise(PyExc_TypeError, "str, bytes or bytearray expected, not \(typeName(object))")
        }
        guard let text else { throw PythonError() }
        guard strlen(text) == length else {
            throw raise(PyExc_TypeError, "host name must not contain null character")
        }
        return try body(text)
    }

    /// CPython's setipaddr: '' is the wildcard, '<broadcast>' and
    /// '255.255.255.255' the IPv4 broadcast address, numeric addresses are
    /// parsed without a lookup, anything else goes to getaddrinfo.
    static func resolveHost(_ name: UnsafePointer<CChar>, family: Int32) throws(PythonError) -> SocketAddress {
        if name.pointee == 0 {
            return try resolveWildcard(family: family)
        }
        if strcmp(name, "255.255.255.255") == 0 || strcmp(name, "<broadcast>") == 0 {
            guard family == AF_INET || family == AF_UNSPEC else {
                throw raise(PyExc_OSError, "address family mismatched")
            }
            return .ipv4(in_addr(s_addr: INADDR_BROADCAST), port: 0)
        }
        if family == AF_INET || family == AF_UNSPEC, let address = NumericAddress.ipv4(name) {
            return .ipv4(address, port: 0)
        }
        // A scope ("fe80::1%eth0") needs getaddrinfo to map the interface name.
        if family == AF_INET6 || family == AF_UNSPEC, strchr(name, Int32(UInt8(ascii: "%"))) == nil,
           let address = NumericAddress.ipv6(name) {
            return .ipv6(address, port: 0, flowInfo: 0, scopeID: 0)
        }
        let results = try resolve(host: name, service: nil, family: family)
        guard let first = results.first, first.family == AF_INET || first.family == AF_INET6 else {
            throw raise(PyExc_OSError, "unknown address family")
        }
        return first.address
    }

    private static func resolveWildcard(family: Int32) throws(PythonError) -> SocketAddress {
        let results = try resolve(host: nil, service: "0", family: family,
                                  socketType: Int32(SOCK_DGRAM.rawValue), flags: AI_PASSIVE)
        guard let first = results.first, first.family == AF_INET || first.family == AF_INET6 else {
            throw raise(PyExc_OSError, "unsupported address family")
        }
        guard results.count == 1 else {
            throw raise(PyExc_OSError, "wildcard resolved to multiple address")
        }
        return first.address
    }
}

extension SocketAddress {
    /// The IPv4 address of an AF_INET address (zero otherwise).
    var ipv4Address: in_addr {
        family == AF_INET ? withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self).sin_addr } : in_addr()
    }

    /// The IPv6 address of an AF_INET6 address (zero otherwise).
    var ipv6Address: in6_addr {
        family == AF_INET6 ? withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self).sin6_addr } : in6_addr()
    }
}
