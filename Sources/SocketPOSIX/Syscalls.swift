// POSIX layer: thin, typed wrappers over the socket syscalls. No Python here.
//
// Each wrapper makes one syscall and reads errno immediately after it, before
// any other code can run and overwrite it (hence @inline(never): the read stays
// next to the call). Failures come back as values, never thrown and never
// retried: EINTR in particular goes up to sockCall, which must run Python's
// signal handlers (with the GIL held) before it retries.
//
// This module is its own SwiftPM target so that the compiler keeps Python out
// of it. Its API is `public` rather than `package`: Swift 6.3 inlines a
// `public @inlinable` body across modules but not a `package` one, and the
// hot small ones (Errno, Deadline, SocketAddress's initialisers) must inline.
// No symbol leaves the extension: exports.map exports PyInit only.
import CSystem
import Glibc

/// An errno value.
public struct Errno: Error, Equatable {
    public var rawValue: Int32
    @inlinable @inline(__always)
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    @inlinable public static var interrupted: Errno { Errno(EINTR) }
    @inlinable public static var wouldBlock: Errno { Errno(EAGAIN) }
    @inlinable public static var inProgress: Errno { Errno(EINPROGRESS) }
    @inlinable public static var alreadyConnected: Errno { Errno(EISCONN) }
    @inlinable public static var badFileDescriptor: Errno { Errno(EBADF) }
    @inlinable public static var notSocket: Errno { Errno(ENOTSOCK) }
    @inlinable public static var connectionReset: Errno { Errno(ECONNRESET) }

    /// EAGAIN and EWOULDBLOCK (the same value on Linux).
    @inlinable @inline(__always)
    public var isWouldBlock: Bool { rawValue == EAGAIN || rawValue == EWOULDBLOCK }

    public var message: String { String(cString: strerror(rawValue)) }
}

public typealias SyscallResult<T> = Result<T, Errno>

/// Turns a `-1 and errno` return into a Result. Must be called right after
/// the syscall, inside its @inline(never) wrapper.
@inlinable @inline(__always)
func checked<T: BinaryInteger>(_ value: T) -> SyscallResult<T> {
    value < 0 ? .failure(Errno(errno)) : .success(value)
}

@inlinable @inline(__always)
func checkedVoid(_ value: Int32) -> SyscallResult<Void> {
    value < 0 ? .failure(Errno(errno)) : .success(())
}

public enum POSIX {
    @inline(never)
    public static func socket(family: Int32, type: Int32, proto: Int32) -> SyscallResult<Int32> {
        checked(Glibc.socket(family, type | SHIM_SOCK_CLOEXEC, proto))
    }

    @inline(never)
    public static func socketpair(family: Int32, type: Int32, proto: Int32) -> SyscallResult<(Int32, Int32)> {
        var fds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutableBytes(of: &fds) { raw in
            Glibc.socketpair(family, type | SHIM_SOCK_CLOEXEC, proto,
                             raw.baseAddress!.assumingMemoryBound(to: Int32.self))
        }
        return checkedVoid(result).map { fds }
    }

    @inline(never)
    public static func close(_ fd: Int32) -> SyscallResult<Void> {
        checkedVoid(Glibc.close(fd))
    }

    /// A close-on-exec duplicate, like CPython's _Py_dup.
    @inline(never)
    public static func dupCloexec(_ fd: Int32) -> SyscallResult<Int32> {
        checked(fcntl(fd, F_DUPFD_CLOEXEC, 0))
    }

    @inline(never)
    public static func bind(_ fd: Int32, _ address: borrowing SocketAddress) -> SyscallResult<Void> {
        checkedVoid(address.withSockaddr { Glibc.bind(fd, __CONST_SOCKADDR_ARG(__sockaddr__: $0), $1) })
    }

    @inline(never)
    public static func connect(_ fd: Int32, _ address: borrowing SocketAddress) -> SyscallResult<Void> {
        checkedVoid(address.withSockaddr { Glibc.connect(fd, __CONST_SOCKADDR_ARG(__sockaddr__: $0), $1) })
    }

    @inline(never)
    public static func listen(_ fd: Int32, backlog: Int32) -> SyscallResult<Void> {
        checkedVoid(Glibc.listen(fd, backlog))
    }

    /// accept4 with SOCK_CLOEXEC: the new fd is never inherited by children.
    @inline(never)
    public static func accept(_ fd: Int32, into peer: inout SocketAddress) -> SyscallResult<Int32> {
        checked(peer.fill { accept4(fd, __SOCKADDR_ARG(__sockaddr__: $0), $1, SHIM_SOCK_CLOEXEC) })
    }

    @inline(never)
    public static func getsockname(_ fd: Int32, into address: inout SocketAddress) -> SyscallResult<Void> {
        checkedVoid(address.fill { Glibc.getsockname(fd, __SOCKADDR_ARG(__sockaddr__: $0), $1) })
    }

    @inline(never)
    public static func getpeername(_ fd: Int32, into address: inout SocketAddress) -> SyscallResult<Void> {
        checkedVoid(address.fill { Glibc.getpeername(fd, __SOCKADDR_ARG(__sockaddr__: $0), $1) })
    }

    @inline(never)
    public static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, flags: Int32) -> SyscallResult<Int> {
        checked(Glibc.recv(fd, buffer, count, flags))
    }

    @inline(never)
    public static func recvfrom(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, flags: Int32,
                         from peer: inout SocketAddress) -> SyscallResult<Int> {
        var received = -1
        let status = peer.fill { address, length -> Int32 in
            received = Glibc.recvfrom(fd, buffer, count, flags, __SOCKADDR_ARG(__sockaddr__: address), length)
            return received < 0 ? -1 : 0
        }
        return status < 0 ? .failure(Errno(errno)) : .success(received)
    }

    @inline(never)
    public static func send(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, flags: Int32) -> SyscallResult<Int> {
        checked(Glibc.send(fd, buffer, count, flags))
    }

    @inline(never)
    public static func sendto(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, flags: Int32,
                       to address: borrowing SocketAddress) -> SyscallResult<Int> {
        checked(address.withSockaddr { Glibc.sendto(fd, buffer, count, flags, __CONST_SOCKADDR_ARG(__sockaddr__: $0), $1) })
    }

    @inline(never)
    public static func shutdown(_ fd: Int32, how: Int32) -> SyscallResult<Void> {
        checkedVoid(Glibc.shutdown(fd, how))
    }

    @inline(never)
    public static func setsockopt(_ fd: Int32, level: Int32, option: Int32,
                           _ value: UnsafeRawPointer?, _ length: UInt32) -> SyscallResult<Void> {
        checkedVoid(Glibc.setsockopt(fd, level, option, value, length))
    }

    /// Returns the length the kernel wrote.
    @inline(never)
    public static func getsockopt(_ fd: Int32, level: Int32, option: Int32,
                           _ value: UnsafeMutableRawPointer?, _ length: UInt32) -> SyscallResult<UInt32> {
        var length = length
        let result = Glibc.getsockopt(fd, level, option, value, &length)
        return checkedVoid(result).map { length }
    }

    /// An integer option: C int for most, 64 bits for AF_VSOCK's.
    @inlinable @inline(never)
    public static func getsockopt<Value: FixedWidthInteger>(_ fd: Int32, level: Int32, option: Int32,
                                                     as type: Value.Type) -> SyscallResult<Value> {
        var value = Value.zero
        var length = UInt32(MemoryLayout<Value>.size)
        let result = Glibc.getsockopt(fd, level, option, &value, &length)
        return checkedVoid(result).map { value }
    }

    public static func getsockoptInt(_ fd: Int32, level: Int32, option: Int32) -> SyscallResult<Int32> {
        getsockopt(fd, level: level, option: option, as: Int32.self)
    }

    /// One ioctl(FIONBIO): CPython's internal_setblocking on Linux.
    @inline(never)
    public static func setNonBlocking(_ fd: Int32, _ nonBlocking: Bool) -> SyscallResult<Void> {
        checkedVoid(system_set_nonblocking(fd, nonBlocking ? 1 : 0))
    }

    public enum PollResult {
        case ready
        case timedOut
    }

    /// Waits for one fd. `milliseconds < 0` waits forever.
    @inline(never)
    public static func poll(_ fd: Int32, events: Int16, milliseconds: Int32) -> SyscallResult<PollResult> {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let n = Glibc.poll(&entry, 1, milliseconds)
        if n < 0 { return .failure(Errno(errno)) }
        return .success(n == 0 ? .timedOut : .ready)
    }
}
