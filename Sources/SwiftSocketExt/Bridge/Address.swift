// Bridge layer: Python address objects <-> SocketAddress, with CPython's
// rules (getsockaddrarg, setipaddr, makesockaddr) and messages.
import CPythonShim
import SocketPOSIX
import Glibc

enum AddressConversion {
    /// CPython's getsockaddrarg: parse `object` as an address for `socket`,
    /// by its family (and, for AF_CAN, its protocol; AF_PACKET and AF_CAN
    /// look interface names up through its fd). `caller` names the method in
    /// messages ("connect", "bind", ...: a StaticString, which no call
    /// retains and releases as it would a String). The common families are built in
    /// place, in the caller's `address`.
    static func parse(_ object: PyObjectPointer, for socket: SocketPointer, caller: StaticString,
                      into address: inout SocketAddress) throws(PythonError) {
        switch socket.family {
        case AF_UNIX: try unixAddress(object, into: &address)
        // RDS sockets use sockaddr_in.
        case AF_INET, AF_RDS: try inetAddress(object, family: AF_INET, caller: caller, into: &address)
        case AF_INET6: try inetAddress(object, family: AF_INET6, caller: caller, into: &address)
        case AF_NETLINK: address = try netlinkAddress(object, caller: caller)
        case AF_QIPCRTR, AF_VSOCK: address = try pairAddress(object, family: socket.family)
        case AF_PACKET:
            address = try socket.withFD { fd throws(PythonError) in try packetAddress(object, fd: fd, caller: caller) }
        case AF_TIPC: address = try tipcAddress(object, caller: caller)
        case AF_CAN:
            address = try socket.withFD { fd throws(PythonError) in
                try canAddress(object, fd: fd, proto: socket.pointee.sock_proto, caller: caller)
            }
        case AF_ALG: address = try algAddress(object, caller: caller)
        default: throw raise(PyExc_OSError, "\(caller)(): bad family")
        }
    }

    /// CPython's getsockaddrlen: how much of an address a syscall may fill
    /// for the socket's family (`SocketAddress(limit:)`, on the caller's
    /// stack); OSError for a family CPython does not know.
    static func receiveLimit(for socket: SocketPointer) throws(PythonError) -> socklen_t {
        guard let limit = SocketAddress.length(ofFamily: socket.family) else {
            throw raise(PyExc_OSError, "getsockaddrlen: bad family")
        }
        return limit
    }

    /// CPython's makesockaddr for an address that `socket` received: AF_CAN
    /// addresses depend on its protocol, and AF_PACKET and AF_CAN name their
    /// interface through its fd.
    static func object(_ address: SocketAddress, for socket: SocketPointer) -> PyObjectPointer? {
        socket.withFD { object(address, fd: $0, proto: socket.pointee.sock_proto) }
    }

    /// A packed IPv4/IPv6 address as str; nil with OSError set if inet_ntop
    /// refuses it.
    static func hostText(family: Int32, packed: UnsafeRawPointer) -> PyObjectPointer? {
        let text = NumericAddress.withPresentation(family: family, of: packed) {
            PyUnicode_FromStringAndSize($0.baseAddress, $0.count)
        }
        switch text {
        case .success(let object): return object
        case .failure(let errno):
            raiseOSError(errno)
            return nil
        }
    }

    /// CPython's makesockaddr: the Python form of an address (`fd` -1: no
    /// interface names).
    static func object(_ address: SocketAddress, fd: Int32 = -1, proto: Int32 = 0) -> PyObjectPointer? {
        // Every received or looked-up IP address comes here: read in place.
        if var inet = address.inet4 {
            return makeTuple(hostText(family: AF_INET, packed: &inet.sin_addr),
                             PyLong_FromLong(Int(UInt16(bigEndian: inet.sin_port))))
        }
        if var inet = address.inet6 {
            return makeTuple(hostText(family: AF_INET6, packed: &inet.sin6_addr),
                             PyLong_FromLong(Int(UInt16(bigEndian: inet.sin6_port))),
                             PyLong_FromUnsignedLong(UInt(UInt32(bigEndian: inet.sin6_flowinfo))),
                             PyLong_FromUnsignedLong(UInt(inet.sin6_scope_id)))
        }
        if let name = address.withUnixName({ (name, abstract) -> PyObjectPointer? in
            let text = name.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 1)!
            return abstract
                ? PyBytes_FromStringAndSize(text.assumingMemoryBound(to: CChar.self), name.count)
                : PyUnicode_DecodeFSDefaultAndSize(text.assumingMemoryBound(to: CChar.self), name.count)
        }) {
            return name
        }
        switch address.decoded() {
        case .none:
            return newNone()
        case .ipv4(let host, let port):
            return makeTuple(withUnsafeBytes(of: host) { hostText(family: AF_INET, packed: $0.baseAddress!) },
                             PyLong_FromLong(Int(port)))
        case .ipv6(let host, let port, let flowInfo, let scopeID):
            return makeTuple(withUnsafeBytes(of: host) { hostText(family: AF_INET6, packed: $0.baseAddress!) },
                             PyLong_FromLong(Int(port)),
                             PyLong_FromUnsignedLong(UInt(flowInfo)), PyLong_FromUnsignedLong(UInt(scopeID)))
        case .unixAbstract(let name):
            return makeBytes(name)
        case .unixPath(let path):
            return path.withUnsafeBufferPointer {
                PyUnicode_DecodeFSDefaultAndSize(UnsafeRawPointer($0.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                    .assumingMemoryBound(to: CChar.self), $0.count)
            }
        case .netlink(let pid, let groups):
            return makeTuple(PyLong_FromUnsignedLong(UInt(pid)), PyLong_FromUnsignedLong(UInt(groups)))
        case .qipcrtr(let node, let port):
            return makeTuple(PyLong_FromUnsignedLong(UInt(node)), PyLong_FromUnsignedLong(UInt(port)))
        case .vsock(let cid, let port):
            return makeTuple(PyLong_FromUnsignedLong(UInt(cid)), PyLong_FromUnsignedLong(UInt(port)))
        case .packet(let index, let proto, let packetType, let hardwareType, let hardwareAddress):
            // Py_BuildValue("shbhy#"): the name decoded as strict UTF-8.
            let name = interfaceName(fd: fd, index: index)
            return makeTuple(name.withUnsafeBufferPointer { PyUnicode_FromStringAndSize(charPointer($0), $0.count) },
                             PyLong_FromLong(Int(proto)), PyLong_FromLong(Int(packetType)),
                             PyLong_FromLong(Int(hardwareType)), makeBytes(hardwareAddress))
        case .tipc(let addressType, let values, let scope):
            guard let (v1, v2, v3) = values else {
                PyErr_SetString(PyExc_ValueError, "Invalid address type")
                return nil
            }
            // "IIIII": the signed char scope goes through an unsigned int.
            return makeTuple(PyLong_FromUnsignedLong(UInt(addressType)), PyLong_FromUnsignedLong(UInt(v1)),
                             PyLong_FromUnsignedLong(UInt(v2)), PyLong_FromUnsignedLong(UInt(v3)),
                             PyLong_FromUnsignedLong(UInt(UInt32(bitPattern: Int32(scope)))))
        case .can(let index, let isotp, let j1939):
            let name = interfaceName(fd: fd, index: index).withUnsafeBufferPointer {
                PyUnicode_DecodeFSDefaultAndSize(charPointer($0), $0.count)
            }
            switch proto {
            case CAN_ISOTP:
                return makeTuple(name, PyLong_FromUnsignedLong(UInt(isotp.rx)), PyLong_FromUnsignedLong(UInt(isotp.tx)))
            case CAN_J1939:
                return makeTuple(name, PyLong_FromUnsignedLongLong(j1939.name),
                                 PyLong_FromUnsignedLong(UInt(j1939.pgn)), PyLong_FromLong(Int(j1939.address)))
            default:
                return makeTuple(name)
            }
        case .alg(let type, let name, let feat, let mask):
            return makeTuple(type.withUnsafeBufferPointer { PyUnicode_FromStringAndSize(charPointer($0), $0.count) },
                             name.withUnsafeBufferPointer { PyUnicode_FromStringAndSize(charPointer($0), $0.count) },
                             PyLong_FromUnsignedLong(UInt(feat)), PyLong_FromUnsignedLong(UInt(mask)))
        case .other(let family, let data):
            return makeTuple(PyLong_FromLong(Int(family)), makeBytes(data))
        }
    }

    /// The name of interface `index` (SIOCGIFNAME on `fd`); "" for index 0
    /// or when the lookup fails, as in CPython.
    private static func interfaceName(fd: Int32, index: Int32) -> [UInt8] {
        guard index != 0, fd >= 0 else { return [] }
        return InterfaceIoctl.name(fd, index: index) ?? []
    }

    private static func makeBytes(_ bytes: [UInt8]) -> PyObjectPointer? {
        bytes.withUnsafeBufferPointer { PyBytes_FromStringAndSize(charPointer($0), $0.count) }
    }

    /// A C string pointer for the C API's (pointer, length) calls, never nil.
    private static func charPointer(_ buffer: UnsafeBufferPointer<UInt8>) -> UnsafePointer<CChar> {
        UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self)
    }

    // MARK: AF_NETLINK, AF_QIPCRTR, AF_VSOCK

    private static func netlinkAddress(_ object: PyObjectPointer, caller: StaticString) throws(PythonError) -> SocketAddress {
        try requireTuple(object, "\(caller)(): AF_NETLINK address")
        let items = try TupleFormat(object, min: 2, max: 2, message: "AF_NETLINK address must be a pair (pid, groups)")
        return .netlink(pid: try items.uint32Mask(0), groups: try items.uint32Mask(1))
    }

    /// (node, port) for AF_QIPCRTR, (cid, port) for AF_VSOCK: "II:getsockaddrarg".
    private static func pairAddress(_ object: PyObjectPointer, family: Int32) throws(PythonError) -> SocketAddress {
        try requireTuple(object, "getsockaddrarg: \(family == AF_VSOCK ? "AF_VSOCK" : "AF_QIPCRTR") address")
        let items = try TupleFormat(object, min: 2, max: 2, function: "getsockaddrarg")
        let first = try items.uint32Mask(0)
        let port = try items.uint32Mask(1)
        return family == AF_VSOCK ? .vsock(cid: first, port: port) : .qipcrtr(node: first, port: port)
    }

    /// CPython's "<what> must be tuple, not <type>" TypeError.
    private static func requireTuple(_ object: PyObjectPointer, _ what: String) throws(PythonError) {
        guard shim_tuple_check(object) != 0 else {
            throw raise(PyExc_TypeError, "\(what) must be tuple, not \(typeName(object))")
        }
    }

    // MARK: AF_PACKET

    /// (ifname, proto[, pkttype[, hatype[, addr]]]): "si|iiy*". An
    /// OverflowError converting the tuple becomes "address argument out of range".
    private static func packetAddress(_ object: PyObjectPointer, fd: Int32, caller: StaticString) throws(PythonError)
        -> SocketAddress
    {
        try requireTuple(object, "\(caller)(): AF_PACKET address")
        let items = try TupleFormat(object, min: 2, max: 5,
                                    message: "AF_PACKET address must be a tuple of two to five elements")
        return try items.withString(0) { name throws(PythonError) in
            let proto: Int32, packetType: Int32, hardwareType: Int32
            do throws(PythonError) {
                proto = try items.int32(1)
                packetType = items.count > 2 ? try items.int32(2) : Int32(PACKET_HOST)
                hardwareType = items.count > 3 ? try items.int32(3) : 0
            } catch {
                if PyErr_ExceptionMatches(PyExc_OverflowError) != 0 {
                    PyErr_Clear()
                    throw raise(PyExc_OverflowError, "\(caller)(): address argument out of range")
                }
                throw error
            }
            let build = { (hardwareAddress: UnsafeRawBufferPointer?) throws(PythonError) -> SocketAddress in
                let index = try check(InterfaceIoctl.index(fd, name: name))
                if let hardwareAddress, hardwareAddress.count > 8 {
                    throw raise(PyExc_ValueError, "Hardware address must be 8 bytes or less")
                }
                guard (0...0xffff).contains(proto) else {
                    throw raise(PyExc_OverflowError, "\(caller)(): proto must be 0-65535.")
                }
                return .packet(interfaceIndex: index, protocol: UInt16(proto),
                               packetType: UInt8(truncatingIfNeeded: packetType),
                               hardwareType: UInt16(truncatingIfNeeded: hardwareType),
                               hardwareAddress: hardwareAddress)
            }
            if items.count > 4 {
                return try items.withBuffer(4) { bytes throws(PythonError) in try build(bytes) }
            }
            return try build(nil)
        }
    }

    // MARK: AF_TIPC

    /// (addr_type, v1, v2, v3[, scope]): "IIII|I".
    private static func tipcAddress(_ object: PyObjectPointer, caller: StaticString) throws(PythonError) -> SocketAddress {
        try requireTuple(object, "\(caller)(): AF_TIPC address")
        let items = try TupleFormat(object, min: 4, max: 5,
                                    message: "AF_TIPC address must be a tuple (addr_type, v1, v2, v3[, scope])")
        let addressType = try items.uint32Mask(0)
        let v1 = try items.uint32Mask(1)
        let v2 = try items.uint32Mask(2)
        let v3 = try items.uint32Mask(3)
        let scope = items.count > 4 ? try items.uint32Mask(4) : UInt32(TIPC_CLUSTER_SCOPE.rawValue)
        guard let address = SocketAddress.tipc(addressType: addressType, v1, v2, v3, scope: scope) else {
            throw raise(PyExc_TypeError, "Invalid address type")
        }
        return address
    }

    // MARK: AF_CAN

    /// By the socket's protocol: (interface,) for CAN_RAW and CAN_BCM,
    /// (interface, rx_id, tx_id) for CAN_ISOTP, (interface, name, pgn, addr)
    /// for CAN_J1939; the interface is a path-like name, "" for any.
    private static func canAddress(_ object: PyObjectPointer, fd: Int32, proto: Int32, caller: StaticString) throws(PythonError)
        -> SocketAddress
    {
        switch proto {
        case CAN_RAW, CAN_BCM:
            try requireTuple(object, "\(caller)(): AF_CAN address")
            let items = try TupleFormat(object, min: 1, max: 1, message: "AF_CAN address must be a tuple (interface, )")
            return try items.withPath(0) { name throws(PythonError) in
                .can(interfaceIndex: try canInterfaceIndex(fd: fd, name: name))
            }
        case CAN_ISOTP:
            let items = try TupleFormat(object, min: 3, max: 3)
            return try items.withPath(0) { name throws(PythonError) in
                let rx = try items.unsignedLongMask(1)
                let tx = try items.unsignedLongMask(2)
                let index = try canInterfaceIndex(fd: fd, name: name)
                return .can(interfaceIndex: index, isotp: (UInt32(truncatingIfNeeded: rx), UInt32(truncatingIfNeeded: tx)))
            }
        case CAN_J1939:
            let items = try TupleFormat(object, min: 4, max: 4)
            return try items.withPath(0) { name throws(PythonError) in
                let j1939Name = try items.unsignedLongLongMask(1)
                let pgn = try items.uint32Mask(2)
                let address = UInt8(truncatingIfNeeded: try items.uint32Mask(3))
                let index = try canInterfaceIndex(fd: fd, name: name)
                return .can(interfaceIndex: index, j1939: (j1939Name, pgn, address))
            }
        default:
            throw raise(PyExc_OSError, "\(caller)(): unsupported CAN protocol")
        }
    }

    /// 0 for "", else SIOCGIFINDEX of a name shorter than IFNAMSIZ.
    private static func canInterfaceIndex(fd: Int32, name: UnsafeRawBufferPointer) throws(PythonError) -> Int32 {
        if name.isEmpty { return 0 }
        guard name.count < Int(IFNAMSIZ) else { throw raise(PyExc_OSError, "AF_CAN interface name too long") }
        return try check(InterfaceIoctl.index(fd, name: name))
    }

    // MARK: AF_ALG

    /// (type, name[, feat[, mask]]): "ss|HH".
    private static func algAddress(_ object: PyObjectPointer, caller: StaticString) throws(PythonError) -> SocketAddress {
        try requireTuple(object, "\(caller)(): AF_ALG address")
        let items = try TupleFormat(object, min: 2, max: 4,
                                    message: "AF_ALG address must be a tuple (type, name[, feat[, mask]])")
        return try items.withString(0) { type throws(PythonError) in
            try items.withString(1) { name throws(PythonError) in
                let feat = items.count > 2 ? UInt32(try items.uint16Mask(2)) : 0
                let mask = items.count > 3 ? UInt32(try items.uint16Mask(3)) : 0
                switch SocketAddress.alg(type: type, name: name, feat: feat, mask: mask) {
                case .success(let address): return address
                case .failure(.type): throw raise(PyExc_ValueError, "AF_ALG type too long.")
                case .failure(.name): throw raise(PyExc_ValueError, "AF_ALG name too long.")
                }
            }
        }
    }

    // MARK: AF_UNIX

    /// str (filesystem-encoded, embedded NULs allowed) or any bytes-like object.
    private static func unixAddress(_ object: PyObjectPointer, into address: inout SocketAddress) throws(PythonError) {
        let path: PyObjectPointer
        if shim_unicode_check(object) != 0 {
            guard let encoded = PyUnicode_EncodeFSDefault(object) else { throw PythonError() }
            path = encoded
        } else {
            Py_INCREF(object)
            path = object
        }
        defer { Py_DECREF(path) }
        let fits = try withBuffer(path, writable: false, function: "", argument: 1) { bytes in
            address.setUnix(path: UnsafeRawBufferPointer(bytes))
        }
        guard fits else { throw raise(PyExc_OSError, "AF_UNIX path too long") }
    }

    // MARK: AF_INET, AF_INET6

    private static func inetAddress(_ object: PyObjectPointer, family: Int32, caller: StaticString,
                                    into address: inout SocketAddress) throws(PythonError) {
        guard shim_tuple_check(object) != 0 else {
            let familyName = family == AF_INET ? "AF_INET" : "AF_INET6"
            throw raise(PyExc_TypeError, "\(caller)(): \(familyName) address must be tuple, not \(typeName(object))")
        }
        let count = PyTuple_GET_SIZE(object)
        let validCount = family == AF_INET ? count == 2 : (2...4).contains(count)
        guard validCount else {
            throw raise(PyExc_TypeError, family == AF_INET
                        ? "AF_INET address must be a pair (host, port)"
                        : "AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        }
        // Items by plain calls, not a helper closure: a closure captured by
        // the one below would be boxed on the heap, once per address.
        try withHostName(shim_tuple_get_item(object, 0)!) { host throws(PythonError) in
            let port: Int32
            do {
                port = try Arguments.int32(shim_tuple_get_item(object, 1)!)
            } catch {
                throw portError(caller)
            }
            let flowInfo = count > 2 ? try Arguments.uint32Mask(shim_tuple_get_item(object, 2)!) : 0
            let scopeID = count > 3 ? try Arguments.uint32Mask(shim_tuple_get_item(object, 3)!) : 0
            try resolveHost(host, family: family, into: &address)
            guard (0...0xffff).contains(port) else {
                throw raise(PyExc_OverflowError, "\(caller)(): port must be 0-65535.")
            }
            guard family == AF_INET || flowInfo <= 0xfffff else {
                throw raise(PyExc_OverflowError, "\(caller)(): flowinfo must be 0-1048575.")
            }
            address.setPort(UInt16(port), flowInfo: flowInfo, scopeID: scopeID)
        }
    }

    /// An OverflowError converting the port becomes CPython's port message.
    private static func portError(_ caller: StaticString) -> PythonError {
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
    /// The result goes into `address`, port 0, of the family asked for
    /// (either, for AF_UNSPEC).
    static func resolveHost(_ name: UnsafePointer<CChar>, family: Int32,
                            into address: inout SocketAddress) throws(PythonError) {
        if name.pointee == 0 {
            address = try resolveWildcard(family: family)
            return
        }
        if strcmp(name, "255.255.255.255") == 0 || strcmp(name, "<broadcast>") == 0 {
            guard family == AF_INET || family == AF_UNSPEC else {
                throw raise(PyExc_OSError, "address family mismatched")
            }
            address.setIPv4(in_addr(s_addr: INADDR_BROADCAST), port: 0)
            return
        }
        if family == AF_INET || family == AF_UNSPEC, let numeric = NumericAddress.ipv4(name) {
            address.setIPv4(numeric, port: 0)
            return
        }
        // A scope ("fe80::1%eth0") needs getaddrinfo to map the interface name.
        if family == AF_INET6 || family == AF_UNSPEC, strchr(name, Int32(UInt8(ascii: "%"))) == nil,
           let numeric = NumericAddress.ipv6(name) {
            address.setIPv6(numeric, port: 0, flowInfo: 0, scopeID: 0)
            return
        }
        let results = try resolve(host: name, service: nil, family: family)
        guard let first = results.first, first.family == AF_INET || first.family == AF_INET6 else {
            throw raise(PyExc_OSError, "unknown address family")
        }
        address = first.address
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

/// PyArg_ParseTuple over an address tuple, with getargs.c's checks and
/// messages: `function` is a format's ":name", `message` its ";message",
/// which replaces the arity message and every "must be X, not Y" one (but
/// not an error a conversion raised itself).
private struct TupleFormat {
    let tuple: PyObjectPointer
    let count: Int
    let function: String?
    let message: String?

    init(_ object: PyObjectPointer, min: Int, max: Int, function: String? = nil, message: String? = nil)
        throws(PythonError)
    {
        guard shim_tuple_check(object) != 0 else {
            throw raise(PyExc_SystemError, "new style getargs format but argument is not a tuple")
        }
        tuple = object
        count = PyTuple_GET_SIZE(object)
        self.function = function
        self.message = message
        guard (min...max).contains(count) else {
            if let message { throw raise(PyExc_TypeError, message) }
            let bound = count < min ? min : max
            let quantifier = min == max ? "exactly" : count < min ? "at least" : "at most"
            throw raise(PyExc_TypeError, "\(function.map { "\($0)()" } ?? "function") takes \(quantifier) \(bound) "
                        + "argument\(bound == 1 ? "" : "s") (\(count) given)")
        }
    }

    func item(_ index: Int) -> PyObjectPointer { shim_tuple_get_item(tuple, index)! }

    /// getargs' converterr + seterror: item `index` is not `expected`.
    private func mismatch(_ index: Int, expected: String) -> PythonError {
        if let message { return raise(PyExc_TypeError, message) }
        let prefix = function.map { "\($0)() " } ?? ""
        return raise(PyExc_TypeError,
                     "\(prefix)argument \(index + 1) must be \(expected), not \(argumentTypeName(item(index)))")
    }

    /// `i`
    func int32(_ index: Int) throws(PythonError) -> Int32 { try Arguments.int32(item(index)) }

    /// `I`
    func uint32Mask(_ index: Int) throws(PythonError) -> UInt32 { try Arguments.uint32Mask(item(index)) }

    /// `H`: an unsigned long, masked to 16 bits.
    func uint16Mask(_ index: Int) throws(PythonError) -> UInt16 {
        UInt16(truncatingIfNeeded: try Arguments.uint32Mask(item(index)))
    }

    /// `k`: an int (no __index__), masked to an unsigned long.
    func unsignedLongMask(_ index: Int) throws(PythonError) -> UInt {
        guard shim_long_check(item(index)) != 0 else { throw mismatch(index, expected: "int") }
        let value = PyLong_AsUnsignedLongMask(item(index))
        if value == UInt.max, PyErr_Occurred() != nil { throw PythonError() }
        return value
    }

    /// `K`: an int (no __index__), masked to an unsigned long long.
    func unsignedLongLongMask(_ index: Int) throws(PythonError) -> UInt64 {
        guard shim_long_check(item(index)) != 0 else { throw mismatch(index, expected: "int") }
        return try Arguments.uint64Mask(item(index))
    }

    /// `s`: a str without NUL, as UTF-8.
    func withString<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws(PythonError) -> R) throws(PythonError) -> R {
        let object = item(index)
        guard shim_unicode_check(object) != 0 else { throw mismatch(index, expected: "str") }
        var size = 0
        guard let text = PyUnicode_AsUTF8AndSize(object, &size) else { throw PythonError() }
        guard strlen(text) == size else { throw raise(PyExc_ValueError, "embedded null character") }
        return try body(UnsafeRawBufferPointer(start: text, count: size))
    }

    /// `O&` with PyUnicode_FSConverter: str, bytes or path-like, without NUL.
    func withPath<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws(PythonError) -> R) throws(PythonError) -> R {
        var converted: PyObjectPointer? = nil
        guard PyUnicode_FSConverter(item(index), &converted) != 0, let bytes = converted else { throw PythonError() }
        defer { Py_DECREF(bytes) }
        return try body(UnsafeRawBufferPointer(start: PyBytes_AsString(bytes), count: PyBytes_Size(bytes)))
    }

    /// `y*`: a contiguous bytes-like object.
    func withBuffer<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws(PythonError) -> R) throws(PythonError) -> R {
        var view = Py_buffer()
        if PyObject_GetBuffer(item(index), &view, PyBUF_SIMPLE) < 0 { throw PythonError() }
        defer { PyBuffer_Release(&view) }
        if PyBuffer_IsContiguous(&view, CChar(UInt8(ascii: "C"))) == 0 {
            throw mismatch(index, expected: "contiguous buffer")
        }
        return try body(UnsafeRawBufferPointer(start: view.buf, count: view.len))
    }
}
