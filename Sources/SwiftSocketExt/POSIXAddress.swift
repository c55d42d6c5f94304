// POSIX layer: socket addresses and name resolution. No Python here.
import CSystem
import Glibc

/// A sockaddr of any family, with its length.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(0)

    static let capacity = socklen_t(MemoryLayout<sockaddr_storage>.size)
    /// Where sun_path starts inside sockaddr_un.
    static let unixPathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
    static let unixPathCapacity = MemoryLayout<sockaddr_un>.size - unixPathOffset

    var family: Int32 { Int32(storage.ss_family) }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Lets a syscall write an address here (accept, getsockname, recvfrom).
    mutating func fill<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        length = SocketAddress.capacity
        return withUnsafeMutableBytes(of: &storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
    }

    private mutating func withMemory<T, R>(as type: T.Type, _ body: (inout T) -> R) -> R {
        withUnsafeMutableBytes(of: &storage) { raw in
            body(&raw.baseAddress!.assumingMemoryBound(to: T.self).pointee)
        }
    }

    private func read<T>(as type: T.Type) -> T {
        withUnsafeBytes(of: storage) { $0.load(as: T.self) }
    }

    // MARK: building

    static func ipv4(_ address: in_addr, port: UInt16) -> SocketAddress {
        var result = SocketAddress()
        result.withMemory(as: sockaddr_in.self) {
            $0.sin_family = sa_family_t(AF_INET)
            $0.sin_port = port.bigEndian
            $0.sin_addr = address
        }
        result.length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return result
    }

    static func ipv6(_ address: in6_addr, port: UInt16, flowInfo: UInt32, scopeID: UInt32) -> SocketAddress {
        var result = SocketAddress()
        result.withMemory(as: sockaddr_in6.self) {
            $0.sin6_family = sa_family_t(AF_INET6)
            $0.sin6_port = port.bigEndian
            $0.sin6_flowinfo = flowInfo.bigEndian
            $0.sin6_addr = address
            $0.sin6_scope_id = scopeID
        }
        result.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        return result
    }

    /// An AF_UNIX address from raw path bytes, or nil if the path is too long.
    /// A path that is empty or starts with NUL is a Linux abstract name: its
    /// length is exact and it has no terminating NUL.
    static func unix(path: UnsafeRawBufferPointer) -> SocketAddress? {
        let abstract = path.isEmpty || path[0] == 0
        let limit = abstract ? unixPathCapacity : unixPathCapacity - 1
        guard path.count <= limit else { return nil }
        var result = SocketAddress()
        result.storage.ss_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &result.storage) { raw in
            let sunPath = UnsafeMutableRawBufferPointer(rebasing: raw[unixPathOffset...])
            sunPath.copyMemory(from: path)   // the rest stays zero: the NUL terminator
        }
        result.length = socklen_t(unixPathOffset + path.count + (abstract ? 0 : 1))
        return result
    }

    // MARK: reading

    enum Decoded {
        case none
        case ipv4(host: String, port: UInt16)
        case ipv6(host: String, port: UInt16, flowInfo: UInt32, scopeID: UInt32)
        /// A filesystem path, bytes up to the first NUL.
        case unixPath([UInt8])
        /// A Linux abstract name, leading NUL included.
        case unixAbstract([UInt8])
        /// A family we do not decode: its sa_data bytes.
        case other(family: Int32, data: [UInt8])
    }

    func decoded() -> Decoded {
        if length == 0 { return .none }
        switch family {
        case AF_INET:
            let a = read(as: sockaddr_in.self)
            return .ipv4(host: presentation(AF_INET, a.sin_addr), port: UInt16(bigEndian: a.sin_port))
        case AF_INET6:
            let a = read(as: sockaddr_in6.self)
            return .ipv6(host: presentation(AF_INET6, a.sin6_addr), port: UInt16(bigEndian: a.sin6_port),
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
        default:
            let a = read(as: sockaddr.self)
            return .other(family: family, data: withUnsafeBytes(of: a.sa_data) { Array($0) })
        }
    }
}

/// inet_ntop of the address at `address`.
private func presentation(_ family: Int32, _ address: UnsafeRawPointer) -> String {
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    _ = inet_ntop(family, address, &text, socklen_t(text.count))
    return String(cString: text)
}

private func presentation(_ family: Int32, _ address: in_addr) -> String {
    withUnsafeBytes(of: address) { presentation(family, $0.baseAddress!) }
}

private func presentation(_ family: Int32, _ address: in6_addr) -> String {
    withUnsafeBytes(of: address) { presentation(family, $0.baseAddress!) }
}

enum NumericAddress {
    static func ipv4(_ text: UnsafePointer<CChar>) -> in_addr? {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) > 0 ? address : nil
    }

    static func ipv6(_ text: UnsafePointer<CChar>) -> in6_addr? {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) > 0 ? address : nil
    }
}

/// A getaddrinfo failure: EAI_SYSTEM carries errno.
enum ResolveError: Error {
    case gai(code: Int32, message: String)
    case system(Errno)
}

struct ResolvedAddress {
    var family: Int32
    var socketType: Int32
    var proto: Int32
    var canonicalName: String?
    var address: SocketAddress
}

enum Resolver {
    /// getaddrinfo(3). Blocks: call it without the GIL.
    @inline(never)
    static func getaddrinfo(host: UnsafePointer<CChar>?, service: UnsafePointer<CChar>?,
                            family: Int32, socketType: Int32, proto: Int32, flags: Int32)
        -> Result<[ResolvedAddress], ResolveError>
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
        defer { freeaddrinfo(list) }
        var results: [ResolvedAddress] = []
        var entry = list
        while let info = entry?.pointee {
            var address = SocketAddress()
            let size = min(Int(info.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
            withUnsafeMutableBytes(of: &address.storage) { raw in
                raw.baseAddress!.copyMemory(from: info.ai_addr, byteCount: size)
            }
            address.length = socklen_t(size)
            results.append(ResolvedAddress(
                family: info.ai_family, socketType: info.ai_socktype, proto: info.ai_protocol,
                canonicalName: info.ai_canonname.map { String(cString: $0) }, address: address))
            entry = info.ai_next
        }
        return .success(results)
    }
}
