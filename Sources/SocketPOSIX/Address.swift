// POSIX layer: socket addresses and name resolution. No Python here.
import CSystem
import Glibc

/// A sockaddr of any family, with its length.
public struct SocketAddress {
    public var storage = sockaddr_storage()
    public var length = socklen_t(0)
    /// How many bytes a syscall may write here (fill): CPython's
    /// getsockaddrlen for the socket's family, or the whole storage.
    public var limit = SocketAddress.capacity

    // Constants, not stored statics: a static let is a lazily initialised
    // global, reached through swift_once wherever it is read.
    @inlinable public static var capacity: socklen_t { socklen_t(MemoryLayout<sockaddr_storage>.size) }
    /// sun_path's size, and where it starts: it is sockaddr_un's last field.
    @inlinable public static var unixPathCapacity: Int { MemoryLayout.size(ofValue: sockaddr_un().sun_path) }
    @inlinable public static var unixPathOffset: Int { MemoryLayout<sockaddr_un>.size - unixPathCapacity }

    public var family: Int32 { Int32(storage.ss_family) }

    @inlinable
    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Lets a syscall write an address here (accept, getsockname, recvfrom).
    @inlinable
    public mutating func fill<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        length = limit
        return withUnsafeMutableBytes(of: &storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
    }

    private mutating func withMemory<T, R>(as type: T.Type, _ body: (inout T) -> R) -> R {
        withUnsafeMutableBytes(of: &storage) { raw in
            body(&raw.baseAddress!.assumingMemoryBound(to: T.self).pointee)
        }
    }

    @usableFromInline
    func read<T>(as type: T.Type) -> T {
        withUnsafeBytes(of: storage) { $0.load(as: T.self) }
    }

    // MARK: building

    // The common families are built in place (the caller's address on its
    // stack, as CPython's sock_addr_t): a SocketAddress is 136 bytes, and
    // each return through an Optional, a Result or a closure copies it.

    public static func ipv4(_ address: in_addr, port: UInt16) -> SocketAddress {
        var result = SocketAddress()
        result.setIPv4(address, port: port)
        return result
    }

    /// Makes this the AF_INET address `address`:`port`.
    public mutating func setIPv4(_ address: in_addr, port: UInt16) {
        withMemory(as: sockaddr_in.self) {
            $0 = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: port.bigEndian, sin_addr: address,
                             sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    /// Makes this an AF_INET6 address.
    public mutating func setIPv6(_ address: in6_addr, port: UInt16, flowInfo: UInt32, scopeID: UInt32) {
        withMemory(as: sockaddr_in6.self) {
            $0 = sockaddr_in6(sin6_family: sa_family_t(AF_INET6), sin6_port: port.bigEndian,
                              sin6_flowinfo: flowInfo.bigEndian, sin6_addr: address, sin6_scope_id: scopeID)
        }
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Sets the port (and for AF_INET6 the flow label and scope) of an IP
    /// address already here.
    public mutating func setPort(_ port: UInt16, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) {
        switch family {
        case AF_INET:
            withMemory(as: sockaddr_in.self) { $0.sin_port = port.bigEndian }
        case AF_INET6:
            withMemory(as: sockaddr_in6.self) {
                $0.sin6_port = port.bigEndian
                $0.sin6_flowinfo = flowInfo.bigEndian
                $0.sin6_scope_id = scopeID
            }
        default:
            break
        }
    }

    /// An AF_UNIX address from raw path bytes, or nil if the path is too long.
    public static func unix(path: UnsafeRawBufferPointer) -> SocketAddress? {
        var result = SocketAddress()
        return result.setUnix(path: path) ? result : nil
    }

    /// Makes this an AF_UNIX address from raw path bytes; false (and nothing
    /// changed) if the path is too long. A path that is empty or starts with
    /// NUL is a Linux abstract name: its length is exact and it has no
    /// terminating NUL.
    public mutating func setUnix(path: UnsafeRawBufferPointer) -> Bool {
        let abstract = path.isEmpty || path[0] == 0
        let limit = abstract ? SocketAddress.unixPathCapacity : SocketAddress.unixPathCapacity - 1
        guard path.count <= limit else { return false }
        storage.ss_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage) { raw in
            let sunPath = UnsafeMutableRawBufferPointer(rebasing: raw[SocketAddress.unixPathOffset...])
            sunPath.copyMemory(from: path)
            if !abstract { sunPath[path.count] = 0 }
        }
        length = socklen_t(SocketAddress.unixPathOffset + path.count + (abstract ? 0 : 1))
        return true
    }

    /// A zeroed address of `family` laid out as `T`, with `body` filling the
    /// rest; its length is sizeof(T).
    private static func make<T>(_ type: T.Type, _ body: (inout T) -> Void) -> SocketAddress {
        var result = SocketAddress()
        result.withMemory(as: type, body)
        result.length = socklen_t(MemoryLayout<T>.size)
        return result
    }

    public static func netlink(pid: UInt32, groups: UInt32) -> SocketAddress {
        make(sockaddr_nl.self) {
            $0.nl_family = sa_family_t(AF_NETLINK)
            $0.nl_pid = pid
            $0.nl_groups = groups
        }
    }

    public static func qipcrtr(node: UInt32, port: UInt32) -> SocketAddress {
        make(sockaddr_qrtr.self) {
            $0.sq_family = sa_family_t(AF_QIPCRTR)
            $0.sq_node = node
            $0.sq_port = port
        }
    }

    public static func vsock(cid: UInt32, port: UInt32) -> SocketAddress {
        make(sockaddr_vm.self) {
            $0.svm_family = sa_family_t(AF_VSOCK)
            $0.svm_cid = cid
            $0.svm_port = port
        }
    }

    /// An AF_PACKET address; `hardwareAddress` holds at most 8 bytes.
    public static func packet(interfaceIndex: Int32, protocol: UInt16, packetType: UInt8, hardwareType: UInt16,
                       hardwareAddress: UnsafeRawBufferPointer?) -> SocketAddress {
        make(sockaddr_ll.self) {
            $0.sll_family = UInt16(AF_PACKET)
            $0.sll_protocol = `protocol`.bigEndian
            $0.sll_ifindex = interfaceIndex
            $0.sll_pkttype = packetType
            $0.sll_hatype = hardwareType
            if let hardwareAddress {
                let count = min(hardwareAddress.count, 8)
                withUnsafeMutableBytes(of: &$0.sll_addr) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: hardwareAddress[0..<count]))
                }
                $0.sll_halen = UInt8(count)
            }
        }
    }

    /// An AF_TIPC address: (type, lower, upper) for TIPC_ADDR_NAMESEQ, (type,
    /// instance) for TIPC_ADDR_NAME, (node, ref) for TIPC_ADDR_ID; nil for
    /// another address type.
    public static func tipc(addressType: UInt32, _ v1: UInt32, _ v2: UInt32, _ v3: UInt32, scope: UInt32) -> SocketAddress? {
        guard [TIPC_ADDR_NAMESEQ, TIPC_ADDR_NAME, TIPC_ADDR_ID].contains(Int32(bitPattern: addressType)) else { return nil }
        return make(sockaddr_tipc.self) {
            $0.family = UInt16(AF_TIPC)
            $0.scope = Int8(truncatingIfNeeded: scope)
            $0.addrtype = UInt8(truncatingIfNeeded: addressType)
            switch Int32(bitPattern: addressType) {
            case TIPC_ADDR_NAMESEQ:
                $0.addr.nameseq.type = v1
                $0.addr.nameseq.lower = v2
                $0.addr.nameseq.upper = v3
            case TIPC_ADDR_NAME:
                $0.addr.name.name.type = v1
                $0.addr.name.name.instance = v2
            default:
                $0.addr.id.node = v1
                $0.addr.id.ref = v2
            }
        }
    }

    /// An AF_CAN address; the ISO-TP and J1939 parts share a union, set one.
    public static func can(interfaceIndex: Int32, isotp: (rx: UInt32, tx: UInt32)? = nil,
                    j1939: (name: UInt64, pgn: UInt32, address: UInt8)? = nil) -> SocketAddress {
        make(sockaddr_can.self) {
            $0.can_family = sa_family_t(AF_CAN)
            $0.can_ifindex = interfaceIndex
            if let isotp {
                $0.can_addr.tp.rx_id = isotp.rx
                $0.can_addr.tp.tx_id = isotp.tx
            }
            if let j1939 {
                $0.can_addr.j1939.name = j1939.name
                $0.can_addr.j1939.pgn = j1939.pgn
                $0.can_addr.j1939.addr = j1939.address
            }
        }
    }

    /// An AF_ALG address, or which of type (14 bytes) and name (64 bytes) has
    /// no room left for its terminating NUL.
    public static func alg(type: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer, feat: UInt32, mask: UInt32)
        -> Result<SocketAddress, AlgorithmFieldTooLong>
    {
        let probe = sockaddr_alg()
        guard type.count < MemoryLayout.size(ofValue: probe.salg_type) else { return .failure(.type) }
        guard name.count < MemoryLayout.size(ofValue: probe.salg_name) else { return .failure(.name) }
        return .success(make(sockaddr_alg.self) {
            $0.salg_family = UInt16(AF_ALG)
            withUnsafeMutableBytes(of: &$0.salg_type) { $0.copyMemory(from: type) }
            withUnsafeMutableBytes(of: &$0.salg_name) { $0.copyMemory(from: name) }
            $0.salg_feat = feat
            $0.salg_mask = mask
        })
    }

    public enum AlgorithmFieldTooLong: Error { case type, name }

    /// CPython's getsockaddrlen: the size of the sockaddr of `family`
    /// (AF_RDS uses sockaddr_in), nil for a family CPython does not know.
    public static func length(ofFamily family: Int32) -> socklen_t? {
        let size: Int
        switch family {
        case AF_UNIX: size = MemoryLayout<sockaddr_un>.size
        case AF_NETLINK: size = MemoryLayout<sockaddr_nl>.size
        case AF_QIPCRTR: size = MemoryLayout<sockaddr_qrtr>.size
        case AF_VSOCK: size = MemoryLayout<sockaddr_vm>.size
        case AF_RDS, AF_INET: size = MemoryLayout<sockaddr_in>.size
        case AF_INET6: size = MemoryLayout<sockaddr_in6>.size
        case AF_PACKET: size = MemoryLayout<sockaddr_ll>.size
        case AF_TIPC: size = MemoryLayout<sockaddr_tipc>.size
        case AF_CAN: size = MemoryLayout<sockaddr_can>.size
        case AF_ALG: size = MemoryLayout<sockaddr_alg>.size
        default: return nil
        }
        return socklen_t(size)
    }

    @inlinable
    public init() {}

    /// An empty address that a syscall may fill with at most `limit` bytes.
    @inlinable
    public init(limit: socklen_t) {
        self.limit = min(limit, SocketAddress.capacity)
    }

    // MARK: reading

    public enum Decoded {
        case none
        case ipv4(address: in_addr, port: UInt16)
        case ipv6(address: in6_addr, port: UInt16, flowInfo: UInt32, scopeID: UInt32)
        /// A filesystem path, bytes up to the first NUL.
        case unixPath([UInt8])
        /// A Linux abstract name, leading NUL included.
        case unixAbstract([UInt8])
        case netlink(pid: UInt32, groups: UInt32)
        case qipcrtr(node: UInt32, port: UInt32)
        case vsock(cid: UInt32, port: UInt32)
        /// AF_PACKET: the interface by index, sll_halen bytes of hardware address.
        case packet(interfaceIndex: Int32, protocol: UInt16, packetType: UInt8, hardwareType: UInt16,
                    hardwareAddress: [UInt8])
        /// AF_TIPC by address type: NAMESEQ (type, lower, upper), NAME (type,
        /// instance, instance), ID (node, ref, 0); `values` is nil for another type.
        case tipc(addressType: UInt8, values: (UInt32, UInt32, UInt32)?, scope: Int8)
        /// AF_CAN: which part of the union counts depends on the socket's protocol.
        case can(interfaceIndex: Int32, isotp: (rx: UInt32, tx: UInt32), j1939: (name: UInt64, pgn: UInt32, address: UInt8))
        /// AF_ALG: type and name up to their first NUL.
        case alg(type: [UInt8], name: [UInt8], feat: UInt32, mask: UInt32)
        /// A family we do not decode: its sa_data bytes.
        case other(family: Int32, data: [UInt8])
    }

    /// The address of an AF_INET socket, read in place (nil for another
    /// family): the hot families skip building a Decoded.
    @inlinable
    public var inet4: sockaddr_in? { length != 0 && family == AF_INET ? read(as: sockaddr_in.self) : nil }

    /// The address of an AF_INET6 socket, read in place (nil otherwise).
    @inlinable
    public var inet6: sockaddr_in6? { length != 0 && family == AF_INET6 ? read(as: sockaddr_in6.self) : nil }

    /// An AF_UNIX address's name read in place (nil for another family):
    /// `body` gets a path's bytes up to its NUL, or an abstract name with its
    /// leading NUL (`abstract` true), with no array in between.
    @inlinable
    public func withUnixName<R>(_ body: (UnsafeRawBufferPointer, _ abstract: Bool) -> R) -> R? {
        guard length != 0, family == AF_UNIX else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            let pathLength = max(0, min(Int(length), MemoryLayout<sockaddr_un>.size) - SocketAddress.unixPathOffset)
            let sunPath = UnsafeRawBufferPointer(rebasing:
                raw[SocketAddress.unixPathOffset..<(SocketAddress.unixPathOffset + SocketAddress.unixPathCapacity)])
            if pathLength > 0 && sunPath[0] == 0 {
                return body(UnsafeRawBufferPointer(rebasing: sunPath[..<pathLength]), true)
            }
            let end = sunPath.firstIndex(of: 0) ?? sunPath.count
            return body(UnsafeRawBufferPointer(rebasing: sunPath[..<end]), false)
        }
    }

    public func decoded() -> Decoded {
        if length == 0 { return .none }
        switch family {
        case AF_INET:
            let a = read(as: sockaddr_in.self)
            return .ipv4(address: a.sin_addr, port: UInt16(bigEndian: a.sin_port))
        case AF_INET6:
            let a = read(as: sockaddr_in6.self)
            return .ipv6(address: a.sin6_addr, port: UInt16(bigEndian: a.sin6_port),
                         flowInfo: UInt32(bigEndian: a.sin6_flowinfo), scopeID: a.sin6_scope_id)
        case AF_UNIX:
            return withUnsafeBytes(of: storage) { raw in
                let pathLength = max(0, min(Int(length), MemoryLayout<sockaddr_un>.size) - SocketAddress.unixPathOffset)
                let sunPath = raw[SocketAddress.unixPathOffset..<(SocketAddress.unixPathOffset + SocketAddress.unixPathCapacity)]
                if pathLength > 0 && sunPath.first == 0 {
                    return .unixAbstract(Array(sunPath.prefix(pathLength)))
                }
                return .unixPath(Array(sunPath.prefix { $0 != 0 }))
            }
        case AF_NETLINK:
            let a = read(as: sockaddr_nl.self)
            return .netlink(pid: a.nl_pid, groups: a.nl_groups)
        case AF_QIPCRTR:
            let a = read(as: sockaddr_qrtr.self)
            return .qipcrtr(node: a.sq_node, port: a.sq_port)
        case AF_VSOCK:
            let a = read(as: sockaddr_vm.self)
            return .vsock(cid: a.svm_cid, port: a.svm_port)
        case AF_PACKET:
            let a = read(as: sockaddr_ll.self)
            // sll_halen may exceed sll_addr's 8 bytes (the kernel then
            // writes past the struct): read what the storage holds.
            let start = MemoryLayout<sockaddr_ll>.offset(of: \sockaddr_ll.sll_addr)!
            let count = min(Int(a.sll_halen), MemoryLayout<sockaddr_storage>.size - start)
            let hardware = withUnsafeBytes(of: storage) { Array($0[start..<(start + count)]) }
            return .packet(interfaceIndex: a.sll_ifindex, protocol: UInt16(bigEndian: a.sll_protocol),
                           packetType: a.sll_pkttype, hardwareType: a.sll_hatype, hardwareAddress: hardware)
        case AF_TIPC:
            let a = read(as: sockaddr_tipc.self)
            let values: (UInt32, UInt32, UInt32)?
            switch Int32(a.addrtype) {
            case TIPC_ADDR_NAMESEQ: values = (a.addr.nameseq.type, a.addr.nameseq.lower, a.addr.nameseq.upper)
            case TIPC_ADDR_NAME: values = (a.addr.name.name.type, a.addr.name.name.instance, a.addr.name.name.instance)
            case TIPC_ADDR_ID: values = (a.addr.id.node, a.addr.id.ref, 0)
            default: values = nil
            }
            return .tipc(addressType: a.addrtype, values: values, scope: a.scope)
        case AF_CAN:
            let a = read(as: sockaddr_can.self)
            return .can(interfaceIndex: a.can_ifindex, isotp: (a.can_addr.tp.rx_id, a.can_addr.tp.tx_id),
                        j1939: (a.can_addr.j1939.name, a.can_addr.j1939.pgn, a.can_addr.j1939.addr))
        case AF_ALG:
            let a = read(as: sockaddr_alg.self)
            return .alg(type: withUnsafeBytes(of: a.salg_type) { Array($0.prefix { $0 != 0 }) },
                        name: withUnsafeBytes(of: a.salg_name) { Array($0.prefix { $0 != 0 }) },
                        feat: a.salg_feat, mask: a.salg_mask)
        default:
            let a = read(as: sockaddr.self)
            return .other(family: family, data: withUnsafeBytes(of: a.sa_data) { Array($0) })
        }
    }
}

/// Network interfaces by name and index, through a socket's ioctls (as
/// CPython does for AF_PACKET and AF_CAN addresses).
public enum InterfaceIoctl {
    /// SIOCGIFINDEX. Like CPython's strncpy into ifr_name, at most
    /// IFNAMSIZ - 1 bytes of `name` are used.
    @inline(never)
    public static func index(_ fd: Int32, name: UnsafeRawBufferPointer) -> SyscallResult<Int32> {
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { field in
            let count = min(name.count, field.count - 1)
            field.copyMemory(from: UnsafeRawBufferPointer(rebasing: name[0..<count]))
        }
        if ioctl(fd, UInt(SIOCGIFINDEX), &request) < 0 { return .failure(Errno(errno)) }
        return .success(request.ifr_ifru.ifru_ivalue)
    }

    /// SIOCGIFNAME: the name of interface `index`, nil if the ioctl fails.
    @inline(never)
    public static func name(_ fd: Int32, index: Int32) -> [UInt8]? {
        var request = ifreq()
        request.ifr_ifru.ifru_ivalue = index
        if ioctl(fd, UInt(SIOCGIFNAME), &request) < 0 { return nil }
        return withUnsafeBytes(of: request.ifr_ifrn.ifrn_name) { Array($0.prefix { $0 != 0 }) }
    }
}

extension POSIX {
    /// accept4 (close-on-exec) without asking for the peer's address, which
    /// AF_ALG sockets cannot give (accept then fails with ECONNABORTED).
    @inline(never)
    public static func acceptWithoutAddress(_ fd: Int32) -> SyscallResult<Int32> {
        let result = accept4(fd, __SOCKADDR_ARG(__sockaddr__: nil), nil, SHIM_SOCK_CLOEXEC)
        return result < 0 ? .failure(Errno(errno)) : .success(result)
    }
}

public enum NumericAddress {
    /// inet_ntop(3) of the packed address at `packed`, into a stack buffer:
    /// `body` gets the text without its NUL (no allocation on this hot path:
    /// every received address goes through it).
    @inlinable @inline(never)
    public static func withPresentation<R>(family: Int32, of packed: UnsafeRawPointer,
                                    _ body: (UnsafeBufferPointer<CChar>) -> R) -> SyscallResult<R> {
        // Word-aligned: CPython's ASCII decoder reads aligned text a word at a time.
        withUnsafeTemporaryAllocation(byteCount: Int(INET6_ADDRSTRLEN), alignment: 16) { raw in
            let text = raw.bindMemory(to: CChar.self)
            guard inet_ntop(family, packed, text.baseAddress, socklen_t(text.count)) != nil else {
                return .failure(Errno(errno))
            }
            return .success(body(UnsafeBufferPointer(start: text.baseAddress, count: strlen(text.baseAddress!))))
        }
    }

    public static func ipv4(_ text: UnsafePointer<CChar>) -> in_addr? {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) > 0 ? address : nil
    }

    public static func ipv6(_ text: UnsafePointer<CChar>) -> in6_addr? {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) > 0 ? address : nil
    }
}

/// A getaddrinfo failure: EAI_SYSTEM carries errno.
public enum ResolveError: Error {
    case gai(code: Int32, message: String)
    case system(Errno)
}

/// One entry of getaddrinfo's list.
public struct ResolvedAddress {
    public var family: Int32
    public var socketType: Int32
    public var proto: Int32
    /// ai_canonname: valid only while its AddressInfoList lives.
    public var canonicalName: UnsafePointer<CChar>?
    public var address: SocketAddress

    init(_ info: addrinfo) {
        family = info.ai_family
        socketType = info.ai_socktype
        proto = info.ai_protocol
        canonicalName = UnsafePointer(info.ai_canonname)
        address = SocketAddress()
        let size = min(Int(info.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutableBytes(of: &address.storage) { raw in
            raw.baseAddress!.copyMemory(from: info.ai_addr, byteCount: size)
        }
        address.length = socklen_t(size)
    }
}

/// getaddrinfo(3)'s result list, read in place and freed with this value:
/// resolving allocates nothing of its own.
public struct AddressInfoList: ~Copyable {
    private let head: UnsafeMutablePointer<addrinfo>?

    init(_ head: UnsafeMutablePointer<addrinfo>?) { self.head = head }

    deinit { if let head { freeaddrinfo(head) } }

    public var count: Int {
        var count = 0
        var entry = head
        while let info = entry { count += 1; entry = info.pointee.ai_next }
        return count
    }

    public var first: ResolvedAddress? { head.map { ResolvedAddress($0.pointee) } }

    public func forEach<E: Error>(_ body: (ResolvedAddress) throws(E) -> Void) throws(E) {
        var entry = head
        while let info = entry {
            try body(ResolvedAddress(info.pointee))
            entry = info.pointee.ai_next
        }
    }
}

public enum Resolver {
    /// getaddrinfo(3). Blocks: call it without the GIL.
    @inline(never)
    public static func getaddrinfo(host: UnsafePointer<CChar>?, service: UnsafePointer<CChar>?,
                            family: Int32, socketType: Int32, proto: Int32, flags: Int32)
        -> Result<AddressInfoList, ResolveError>
    {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = socketType
        hints.ai_protocol = proto
        hints.ai_flags = flags
        var list: UnsafeMutablePointer<addrinfo>?
        let code = Glibc.getaddrinfo(host, service, &hints, &list)
        if code != 0 {
            if code == EAI_SYSTEM { return .failure(.system(Errno(errno))) }
            return .failure(.gai(code: code, message: String(cString: gai_strerror(code))))
        }
        return .success(AddressInfoList(list))
    }
}
