// POSIX layer: host, service, protocol and interface names, and numeric
// address conversion. No Python here.
//
// As in Syscalls.swift, each wrapper makes one library call and reads errno (or
// h_errno) right after it. Names come back as raw bytes: the bridge decodes
// them the way CPython does (strict UTF-8 or the filesystem encoding), which
// Swift's String(cString:) would not.
import CSystem
import Glibc

/// The bytes of a NUL-terminated C string, without the NUL.
@inline(__always)
private func bytes(_ text: UnsafePointer<CChar>) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
}

// MARK: - Host name

public enum HostName {
    /// What CPython reads the name into.
    @inlinable public static var bufferSize: Int { 1024 }

    /// gethostname(2) into the caller's buffer (bufferSize bytes, on its
    /// stack), NUL-terminated.
    @inline(never)
    public static func get(into buffer: UnsafeMutableBufferPointer<CChar>) -> SyscallResult<Void> {
        let result = Glibc.gethostname(buffer.baseAddress!, buffer.count - 1)
        if result < 0 { return .failure(Errno(errno)) }
        buffer[buffer.count - 1] = 0
        return .success(())
    }

    /// sethostname(2) with exactly these bytes.
    @inline(never)
    public static func set(_ name: UnsafeRawBufferPointer) -> SyscallResult<Void> {
        guard let base = name.baseAddress else {
            return "".withCString { set(UnsafeRawBufferPointer(start: $0, count: 0)) }
        }
        let result = Glibc.sethostname(base.assumingMemoryBound(to: CChar.self), name.count)
        return result < 0 ? .failure(Errno(errno)) : .success(())
    }
}

// MARK: - Host database

/// A gethostbyname_r/gethostbyaddr_r failure: h_errno, as CPython's set_herror reads it.
public struct HostError: Error {
    public var code: Int32
    public var message: String { String(cString: hstrerror(code)) }
}

/// A struct hostent, copied out of the resolver's buffer.
public struct HostEntry {
    public var name: [UInt8]
    public var aliases: [[UInt8]]
    public var addressType: Int32
    /// Each entry holds h_length bytes.
    public var addresses: [[UInt8]]

    /// Copies `entry`. The lists' pointers may be misaligned, hence loadUnaligned.
    public init(_ entry: hostent) {
        name = entry.h_name.map { bytes($0) } ?? []
        addressType = entry.h_addrtype
        aliases = HostEntry.list(entry.h_aliases).map { bytes($0) }
        let length = Int(entry.h_length)
        addresses = HostEntry.list(entry.h_addr_list).map { Array(UnsafeRawBufferPointer(start: $0, count: length)) }
    }

    private static func list(_ start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [UnsafePointer<CChar>] {
        guard let start else { return [] }
        var items: [UnsafePointer<CChar>] = []
        var slot = UnsafeRawPointer(start)
        while let item = slot.loadUnaligned(as: UnsafePointer<CChar>?.self) {
            items.append(item)
            slot += MemoryLayout<UnsafePointer<CChar>?>.stride
        }
        return items
    }
}

public enum HostDatabase {
    /// CPython's buffer for the reentrant lookups; it passes one byte less
    /// than it has. The same size gives the same ERANGE cases.
    private static var bufferSize: Int { 16384 }

    /// gethostbyname_r(3). Blocks: call it without the GIL.
    @inline(never)
    public static func byName(_ name: UnsafePointer<CChar>) -> Result<HostEntry, HostError> {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var storage = hostent()
        var found: UnsafeMutablePointer<hostent>? = nil
        var errorCode: Int32 = 0
        _ = gethostbyname_r(name, &storage, buffer.assumingMemoryBound(to: CChar.self), bufferSize - 1,
                            &found, &errorCode)
        // CPython reports h_errno, not the h_errnop out-parameter.
        let hostErrno = shim_h_errno()
        guard let found else { return .failure(HostError(code: hostErrno)) }
        return .success(HostEntry(found.pointee))
    }

    /// gethostbyaddr_r(3) for an in_addr or in6_addr. Blocks: call it without the GIL.
    @inline(never)
    public static func byAddress(_ address: UnsafeRawBufferPointer, family: Int32) -> Result<HostEntry, HostError> {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 8)
        defer { buffer.deallocate() }
        var storage = hostent()
        var found: UnsafeMutablePointer<hostent>? = nil
        var errorCode: Int32 = 0
        _ = gethostbyaddr_r(address.baseAddress, socklen_t(address.count), family, &storage,
                            buffer.assumingMemoryBound(to: CChar.self), bufferSize - 1, &found, &errorCode)
        let hostErrno = shim_h_errno()
        guard let found else { return .failure(HostError(code: hostErrno)) }
        return .success(HostEntry(found.pointee))
    }
}

// MARK: - Services and protocols

/// The reentrant netdb lookups (CPython calls the static-buffer ones with the
/// GIL released; these give the same answers without the race). Each returns
/// nil when the entry does not exist.
public enum ServiceDatabase {
    /// Runs a `*_r` lookup, growing the buffer while it reports ERANGE.
    @inline(__always)
    private static func withGrowingBuffer<R>(_ lookup: (UnsafeMutablePointer<CChar>, Int) -> (Int32, R?)) -> R? {
        var size = 1024
        while true {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            let (status, value) = lookup(buffer, size)
            if status == ERANGE && size < 1 << 20 {
                size *= 2
                continue
            }
            return value
        }
    }

    /// getservbyname_r(3): the port, in host byte order.
    @inline(never)
    public static func port(service: UnsafePointer<CChar>, proto: UnsafePointer<CChar>?) -> Int32? {
        withGrowingBuffer { buffer, size in
            var entry = servent()
            var found: UnsafeMutablePointer<servent>? = nil
            let status = getservbyname_r(service, proto, &entry, buffer, size, &found)
            return (status, found.map { Int32(UInt16(bigEndian: UInt16(truncatingIfNeeded: $0.pointee.s_port))) })
        }
    }

    /// getservbyport_r(3) for a port in host byte order: the service name.
    @inline(never)
    public static func name(port: UInt16, proto: UnsafePointer<CChar>?) -> [UInt8]? {
        withGrowingBuffer { buffer, size in
            var entry = servent()
            var found: UnsafeMutablePointer<servent>? = nil
            let status = getservbyport_r(Int32(port.bigEndian), proto, &entry, buffer, size, &found)
            return (status, found.map { bytes($0.pointee.s_name) })
        }
    }

    /// getprotobyname_r(3): the protocol number.
    @inline(never)
    public static func protocolNumber(name: UnsafePointer<CChar>) -> Int32? {
        withGrowingBuffer { buffer, size in
            var entry = protoent()
            var found: UnsafeMutablePointer<protoent>? = nil
            let status = getprotobyname_r(name, &entry, buffer, size, &found)
            return (status, found.map { $0.pointee.p_proto })
        }
    }
}

// MARK: - Interfaces

public enum Interfaces {
    /// if_nametoindex(3); 0 when there is no such interface (errno is not meaningful).
    @inline(never)
    public static func index(name: UnsafePointer<CChar>) -> UInt32 {
        Glibc.if_nametoindex(name)
    }

    /// if_indextoname(3).
    @inline(never)
    public static func name(index: UInt32) -> SyscallResult<[UInt8]> {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard Glibc.if_indextoname(index, &buffer) != nil else { return .failure(Errno(errno)) }
        return .success(buffer.withUnsafeBufferPointer { bytes($0.baseAddress!) })
    }

    /// if_nameindex(3), up to its zero-index terminator.
    @inline(never)
    public static func all() -> SyscallResult<[(index: UInt32, name: [UInt8])]> {
        guard let list = shim_if_nameindex() else { return .failure(Errno(errno)) }
        defer { if_freenameindex(list) }
        var result: [(index: UInt32, name: [UInt8])] = []
        var entry = list
        while entry.pointee.if_index != 0 && result.count < Int(Int32.max) {
            result.append((entry.pointee.if_index, entry.pointee.if_name.map { bytes($0) } ?? []))
            entry += 1
        }
        return .success(result)
    }
}

// MARK: - Numeric addresses

extension NumericAddress {
    /// inet_aton(3): the lenient IPv4 syntax ("127.1", "0x7f.1", trailing text after a space).
    public static func aton(_ text: UnsafePointer<CChar>) -> in_addr? {
        var address = in_addr()
        return inet_aton(text, &address) != 0 ? address : nil
    }

    /// inet_ntoa(3), as CPython's inet_ntoa calls it: the dotted quad of
    /// `address` in glibc's buffer for this thread, good until the thread's
    /// next call. (inet_ntop's formatting costs twice as much.)
    public static func dottedQuad(_ address: in_addr) -> UnsafePointer<CChar> {
        UnsafePointer(inet_ntoa(address))
    }

    public enum Parsed {
        /// The family's first 4 or 16 bytes are the address.
        case address(in6_addr)
        case invalid
    }

    /// inet_pton(3) into a 16-byte value (no array: only the family's first
    /// 4 or 16 bytes are meaningful); errno (EAFNOSUPPORT) for an unknown family.
    @inline(never)
    public static func pton(family: Int32, _ text: UnsafePointer<CChar>) -> SyscallResult<Parsed> {
        var packed = in6_addr()
        let result = inet_pton(family, text, &packed)
        if result < 0 { return .failure(Errno(errno)) }
        return .success(result == 0 ? .invalid : .address(packed))
    }

}

// MARK: - getnameinfo

extension Resolver {
    /// The buffer sizes getnameinfo takes (the caller's, on its stack).
    @inlinable public static var maximumHostLength: Int { Int(NI_MAXHOST) }
    @inlinable public static var maximumServiceLength: Int { Int(NI_MAXSERV) }

    /// getnameinfo(3) into the caller's host and service buffers, as NUL-
    /// terminated text. Blocks: call it without the GIL.
    @inline(never)
    public static func getnameinfo(_ address: SocketAddress, flags: Int32,
                                   host: UnsafeMutableBufferPointer<CChar>,
                                   service: UnsafeMutableBufferPointer<CChar>) -> Result<Void, ResolveError> {
        let code = address.withSockaddr { sockaddr, length in
            Glibc.getnameinfo(sockaddr, length, host.baseAddress, socklen_t(host.count),
                              service.baseAddress, socklen_t(service.count), flags)
        }
        if code != 0 {
            if code == EAI_SYSTEM { return .failure(.system(Errno(errno))) }
            return .failure(.gai(code: code, message: String(cString: gai_strerror(code))))
        }
        return .success(())
    }
}
