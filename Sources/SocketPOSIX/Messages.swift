// POSIX layer: sendmsg/recvmsg and the layout of ancillary data (control
// messages, <sys/socket.h>'s CMSG_* macros). No Python here.
import CSystem
import Glibc

extension POSIX {
    /// What one recvmsg() returned.
    public struct ReceivedMessage {
        /// Bytes of normal data.
        public var count: Int
        /// Bytes of ancillary data the kernel wrote (msg_controllen).
        public var controlLength: Int
        /// msg_flags: MSG_TRUNC, MSG_CTRUNC, ...
        public var flags: Int32
    }

    /// sendmsg(2) of the data in `iov`, the ancillary data in `control`
    /// (laid out by ControlMessages.encode), to `address` unless it is empty
    /// (length 0: the connected peer). Not an Optional, which would copy the
    /// caller's address into it.
    @inline(never)
    public static func sendmsg(_ fd: Int32, _ iov: UnsafeMutableBufferPointer<iovec>,
                        control: UnsafeMutableRawBufferPointer, to address: borrowing SocketAddress,
                        flags: Int32) -> SyscallResult<Int> {
        var message = msghdr()
        message.msg_iov = iov.baseAddress
        message.msg_iovlen = iov.count
        message.msg_control = control.count > 0 ? control.baseAddress : nil
        message.msg_controllen = control.count
        var error: Int32 = 0
        let sent: Int
        if address.length != 0 {
            sent = address.withSockaddr { name, length in
                message.msg_name = UnsafeMutableRawPointer(mutating: name)
                message.msg_namelen = length
                let sent = Glibc.sendmsg(fd, &message, flags)
                if sent < 0 { error = errno }
                return sent
            }
        } else {
            sent = Glibc.sendmsg(fd, &message, flags)
            if sent < 0 { error = errno }
        }
        return sent < 0 ? .failure(Errno(error)) : .success(sent)
    }

    /// recvmsg(2) into the buffers of `iov` and `control`; the sender's
    /// address, if the kernel gives one, goes to `peer` (length 0 if not).
    @inline(never)
    public static func recvmsg(_ fd: Int32, _ iov: UnsafeMutableBufferPointer<iovec>,
                        control: UnsafeMutableRawBufferPointer, flags: Int32,
                        from peer: inout SocketAddress) -> SyscallResult<ReceivedMessage> {
        var message = msghdr()
        message.msg_iov = iov.baseAddress
        message.msg_iovlen = iov.count
        message.msg_control = control.count > 0 ? control.baseAddress : nil
        message.msg_controllen = control.count
        var received = -1
        var error: Int32 = 0
        peer.fill { name, length in
            message.msg_name = UnsafeMutableRawPointer(name)
            message.msg_namelen = length.pointee
            received = Glibc.recvmsg(fd, &message, flags)
            if received < 0 { error = errno }
            // The kernel reports the address's full length, which may exceed
            // the buffer's.
            length.pointee = received < 0 ? 0 : min(message.msg_namelen, length.pointee)
        }
        if received < 0 { return .failure(Errno(error)) }
        return .success(ReceivedMessage(count: received, controlLength: min(message.msg_controllen, control.count),
                                        flags: message.msg_flags))
    }
}

/// Ancillary data as <sys/socket.h> lays it out: each control message is a
/// cmsghdr followed by its data, the next one CMSG_SPACE(data length) further.
/// Offsets here are from the start of the control buffer.
public enum ControlMessages {
    /// CPython's SOCKLEN_T_LIMIT: the largest size it stores in a socklen_t.
    @inlinable public static var sizeLimit: Int { Int(Int32.max) }

    // Computed, not stored: a static let is a lazily initialised global.
    private static var alignment: Int { MemoryLayout<Int>.size }
    private static var headerSize: Int { MemoryLayout<cmsghdr>.size }
    private static var lengthOffset: Int { MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_len)! }
    private static var levelOffset: Int { MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_level)! }
    private static var typeOffset: Int { MemoryLayout<cmsghdr>.offset(of: \cmsghdr.cmsg_type)! }

    /// CMSG_ALIGN
    private static func aligned(_ length: UInt) -> UInt {
        (length + UInt(alignment - 1)) & ~UInt(alignment - 1)
    }

    /// Where a message's data starts: CMSG_DATA - cmsg == CMSG_LEN(0).
    private static var dataOffset: Int { Int(aligned(UInt(headerSize))) }

    /// CMSG_LEN(dataLength), or nil if it is out of range (CPython's get_CMSG_LEN).
    public static func length(_ dataLength: Int) -> Int? {
        guard dataLength >= 0, dataLength <= sizeLimit - dataOffset else { return nil }
        return dataOffset + dataLength
    }

    /// CMSG_SPACE(dataLength), or nil if it is out of range (CPython's
    /// get_CMSG_SPACE, which leaves room for the padding of CMSG_SPACE(1)).
    public static func space(_ dataLength: Int) -> Int? {
        guard dataLength >= 0, dataLength <= sizeLimit - (dataOffset + alignment) else { return nil }
        let space = Int(aligned(UInt(dataLength))) + dataOffset
        return space <= sizeLimit ? space : nil
    }

    // MARK: sending

    public struct Outgoing {
        public var level: Int32
        public var type: Int32
        public var data: UnsafeRawBufferPointer

        public init(level: Int32, type: Int32, data: UnsafeRawBufferPointer) {
            self.level = level
            self.type = type
            self.data = data
        }
    }

    /// Lays `messages` out in `buffer`, which must be zero-filled and exactly
    /// the sum of their CMSG_SPACE sizes.
    public static func encode(_ messages: UnsafeBufferPointer<Outgoing>, into buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        for message in messages {
            buffer.storeBytes(of: UInt(length(message.data.count)!), toByteOffset: offset + lengthOffset, as: UInt.self)
            buffer.storeBytes(of: message.level, toByteOffset: offset + levelOffset, as: Int32.self)
            buffer.storeBytes(of: message.type, toByteOffset: offset + typeOffset, as: Int32.self)
            if let source = message.data.baseAddress, message.data.count > 0 {
                (buffer.baseAddress! + offset + dataOffset).copyMemory(from: source, byteCount: message.data.count)
            }
            offset += space(message.data.count)!
        }
    }

    // MARK: receiving

    public struct Incoming {
        public var level: Int32
        public var type: Int32
        /// The data, inside the control buffer.
        public var data: UnsafeRawBufferPointer
        /// Only part of the data is in the buffer.
        public var truncated: Bool
    }

    public struct Received {
        /// In order; a truncated message can only be the last.
        public var messages: [Incoming] = []
        /// The walk stopped at a header that is invalid or not inside the buffer.
        public var malformed = false
    }

    /// The control messages in the first `control.count` bytes that
    /// recvmsg() wrote, walked as CPython does with CMSG_FIRSTHDR/CMSG_NXTHDR
    /// and get_cmsg_data_len: stops after a truncated message, or at an invalid one.
    public static func decode(_ control: UnsafeRawBufferPointer) -> Received {
        var result = Received()
        let end = control.count
        // CMSG_FIRSTHDR: only if a whole header fits.
        var next: Int? = end >= headerSize ? 0 : nil
        while let offset = next {
            // The header, up to the data, must be inside the buffer.
            guard offset + dataOffset <= end else {
                result.malformed = true
                break
            }
            let messageLength = control.loadUnaligned(fromByteOffset: offset + lengthOffset, as: UInt.self)
            guard messageLength >= UInt(dataOffset) else {
                result.malformed = true
                break
            }
            let declared = messageLength - UInt(dataOffset)
            let available = UInt(end - (offset + dataOffset))
            let truncated = declared > available
            let dataStart = offset + dataOffset
            result.messages.append(Incoming(
                level: control.loadUnaligned(fromByteOffset: offset + levelOffset, as: Int32.self),
                type: control.loadUnaligned(fromByteOffset: offset + typeOffset, as: Int32.self),
                data: UnsafeRawBufferPointer(rebasing: control[dataStart..<(dataStart + Int(min(declared, available)))]),
                truncated: truncated))
            if truncated { break }
            next = nextHeader(after: offset, length: messageLength, end: end)
        }
        return result
    }

    /// glibc's CMSG_NXTHDR: the next header, if the current message and a
    /// whole next header both fit before `end`.
    private static func nextHeader(after offset: Int, length: UInt, end: Int) -> Int? {
        if length < UInt(headerSize) { return nil }
        let padding = aligned(length) - length
        let needed = UInt(headerSize) + padding
        let remaining = UInt(end - offset)
        if remaining < needed || remaining - needed < length { return nil }
        return offset + Int(aligned(length))
    }

    /// Closes the descriptors that SCM_RIGHTS messages carry, as CPython does
    /// when it cannot hand them to the caller.
    public static func closeDescriptors(in messages: [Incoming]) {
        let size = MemoryLayout<Int32>.size
        for message in messages where message.level == SOL_SOCKET && message.type == Int32(SCM_RIGHTS) {
            for index in 0..<(message.data.count / size) {
                _ = POSIX.close(message.data.loadUnaligned(fromByteOffset: index * size, as: Int32.self))
            }
        }
    }
}
