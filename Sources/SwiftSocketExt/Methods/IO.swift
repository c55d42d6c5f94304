// Methods: addresses, connections and data transfer. Every operation that
// can block goes through sockCall.
import CPythonShim
import SocketPOSIX
import Glibc

// MARK: - Addresses and connections

@_cdecl("swsock_bind")
func socketBind(_ object: PyObjectPointer?, _ addressObject: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var address = SocketAddress()
        try AddressConversion.parse(addressObject!, for: socket, caller: "bind", into: &address)
        if shim_audit_addr("socket.bind", object, addressObject) < 0 { throw PythonError() }
        try check(socket.withFD { fd in withoutGIL { POSIX.bind(fd, address) } })
        return newNone()
    } catch {
        return nil
    }
}

@_cdecl("swsock_listen")
func socketListen(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("listen", nargs, min: 0, max: 1)
        // CPython's default: high enough for common loads, never above 128.
        let backlog = nargs > 0 ? try Arguments.int32(args![0]!) : min(SOMAXCONN, 128)
        try check(asSocket(object).withFD { fd in withoutGIL { POSIX.listen(fd, backlog: max(backlog, 0)) } })
        return newNone()
    } catch {
        return nil
    }
}

@_cdecl("swsock_connect")
func socketConnect(_ object: PyObjectPointer?, _ addressObject: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var address = SocketAddress()
        try AddressConversion.parse(addressObject!, for: socket, caller: "connect", into: &address)
        if shim_audit_addr("socket.connect", object, addressObject) < 0 { throw PythonError() }
        try connect(socket, to: address).orRaise()
        return newNone()
    } catch {
        return nil
    }
}

/// Like connect, but returns the errno (0 on success) instead of raising it.
@_cdecl("swsock_connect_ex")
func socketConnectEx(_ object: PyObjectPointer?, _ addressObject: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var address = SocketAddress()
        try AddressConversion.parse(addressObject!, for: socket, caller: "connect_ex", into: &address)
        if shim_audit_addr("socket.connect", object, addressObject) < 0 { throw PythonError() }
        switch connect(socket, to: address) {
        case .success:
            return newInt(0)
        case .failure(let failure):
            guard let errno = failure.errnoValue else { throw PythonError() }
            return newInt(Int(errno))
        }
    } catch {
        return nil
    }
}

/// CPython's internal_connect. A connect interrupted by a signal, or one in
/// progress on a socket with a timeout, goes on asynchronously: wait for it in
/// sockCall and read its outcome from SO_ERROR.
@inline(__always)
private func connect(_ socket: SocketPointer, to address: SocketAddress) -> Result<Void, SockCallFailure> {
    let attempt = socket.withFD { fd in withoutGIL { POSIX.connect(fd, address) } }
    guard case .failure(let errno) = attempt else { return .success(()) }
    let waitForConnection: Bool
    if errno == .interrupted {
        if PyErr_CheckSignals() != 0 { return .failure(.raised) }
        // A non-blocking socket reports the EINTR; the caller retries or polls.
        waitForConnection = socket.timeout != 0
    } else {
        waitForConnection = socket.timeout > 0 && errno == .inProgress
    }
    guard waitForConnection else { return .failure(.failed(errno)) }
    return sockCall(socket, .connected, timeout: socket.timeout) { fd in
        POSIX.getsockoptInt(fd, level: SOL_SOCKET, option: SO_ERROR).flatMap { pending in
            // EISCONN: an interrupted connect that completed meanwhile.
            pending == 0 || Errno(pending) == .alreadyConnected ? .success(()) : .failure(Errno(pending))
        }
    }
}

/// `_accept() -> (fd, address)`; the new fd is close-on-exec.
@_cdecl("swsock_accept")
func socketAccept(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var peer = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
        // AF_ALG cannot tell the peer's address: its accept() must not ask.
        let withAddress = socket.family != AF_ALG
        let fd = try sockCall(socket, .readable, timeout: socket.timeout) { fd in
            withAddress ? POSIX.accept(fd, into: &peer) : POSIX.acceptWithoutAddress(fd)
        }.orRaise()
        guard let result = makeTuple(newInt(Int(fd)), AddressConversion.object(peer, for: socket)) else {
            _ = POSIX.close(fd)
            throw PythonError()
        }
        return result
    } catch {
        return nil
    }
}

@_cdecl("swsock_getsockname")
func socketGetsockname(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var address = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
        try check(socket.withFD { POSIX.getsockname($0, into: &address) })
        return AddressConversion.object(address, for: socket)
    } catch {
        return nil
    }
}

@_cdecl("swsock_getpeername")
func socketGetpeername(_ object: PyObjectPointer?, _: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let socket = asSocket(object)
        var address = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
        try check(socket.withFD { POSIX.getpeername($0, into: &address) })
        return AddressConversion.object(address, for: socket)
    } catch {
        return nil
    }
}

@_cdecl("swsock_shutdown")
func socketShutdown(_ object: PyObjectPointer?, _ how: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let how = try Arguments.exactInt32(how!)
        try check(asSocket(object).withFD { fd in withoutGIL { POSIX.shutdown(fd, how: how) } })
        return newNone()
    } catch {
        return nil
    }
}

// MARK: - Receiving

/// Receives into `buffer`; 0 bytes asked is 0 bytes read, without a syscall.
private func receive(_ socket: SocketPointer, into buffer: UnsafeMutableRawPointer?, count: Int,
                     flags: Int32) throws(PythonError) -> Int {
    if count == 0 { return 0 }
    return try sockCall(socket, .readable, timeout: socket.timeout, flags: flags) {
        POSIX.recv($0, buffer, count, flags: $1)
    }.orRaise()
}

private func receive(_ socket: SocketPointer, into buffer: UnsafeMutableRawPointer?, count: Int,
                     flags: Int32, from peer: inout SocketAddress) throws(PythonError) -> Int {
    try sockCall(socket, .readable, timeout: socket.timeout, flags: flags) {
        POSIX.recvfrom($0, buffer, count, flags: $1, from: &peer)
    }.orRaise()
}

/// A bytes object of `size` filled by `fill`, shrunk to what it wrote.
private func bytesObject(size: Int, _ fill: (UnsafeMutableRawPointer) throws(PythonError) -> Int) throws(PythonError) -> PyObjectPointer {
    guard var bytes = PyBytes_FromStringAndSize(nil, size) else { throw PythonError() }
    let written: Int
    do {
        written = try fill(UnsafeMutableRawPointer(PyBytes_AS_STRING(bytes)))
    } catch {
        Py_DECREF(bytes)
        throw error
    }
    if written != size {
        var resized: PyObjectPointer? = bytes
        if _PyBytes_Resize(&resized, written) < 0 { throw PythonError() }
        bytes = resized!
    }
    return bytes
}

/// `recv(bufsize[, flags]) -> bytes`
@_cdecl("swsock_recv")
func socketRecv(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int) -> PyObjectPointer? {
    do throws(PythonError) {
        try Arguments.checkCount("recv", nargs, min: 1, max: 2)
        let size = try Arguments.ssize(args![0]!)
        let flags = nargs > 1 ? try Arguments.int32(args![1]!) : 0
        if size < 0 { throw raise(PyExc_ValueError, "negative buffersize in recv") }
        let socket = asSocket(object)
        return try bytesObject(size: size) { buffer throws(PythonError) in
            try receive(socket, into: buffer, count: size, flags: flags)
        }
    } catch {
        return nil
    }
}

/// `recv_into(buffer[, nbytes[, flags]]) -> nbytes received`
@_cdecl("swsock_recv_into")
func socketRecvInto(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int,
                    _ kwnames: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let values = try Arguments.unpack("recv_into", names: ["buffer", "nbytes", "flags"], count: 3, required: 1,
                                          args, nargs, kwnames)
        return try withBuffer(values[0]!, writable: true, function: "recv_into", argument: 1) { buffer throws(PythonError) in
            let requested = try values[1].map(Arguments.ssize) ?? 0
            let flags = try values[2].map(Arguments.int32) ?? 0
            if requested < 0 { throw raise(PyExc_ValueError, "negative buffersize in recv_into") }
            let count = requested == 0 ? buffer.count : requested
            if count > buffer.count { throw raise(PyExc_ValueError, "buffer too small for requested bytes") }
            return newInt(try receive(asSocket(object), into: buffer.baseAddress, count: count, flags: flags))
        }
    } catch {
        return nil
    }
}

/// `recvfrom(bufsize[, flags]) -> (bytes, address)`
@_cdecl("swsock_recvfrom")
func socketRecvfrom(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int) -> PyObjectPointer? {
    do throws(PythonError) {
        try Arguments.checkCount("recvfrom", nargs, min: 1, max: 2)
        let size = try Arguments.ssize(args![0]!)
        let flags = nargs > 1 ? try Arguments.int32(args![1]!) : 0
        if size < 0 { throw raise(PyExc_ValueError, "negative buffersize in recvfrom") }
        let socket = asSocket(object)
        var peer = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
        let data = try bytesObject(size: size) { buffer throws(PythonError) in
            try receive(socket, into: buffer, count: size, flags: flags, from: &peer)
        }
        return makeTuple(data, AddressConversion.object(peer, for: socket))
    } catch {
        return nil
    }
}

/// `recvfrom_into(buffer[, nbytes[, flags]]) -> (nbytes, address)`
@_cdecl("swsock_recvfrom_into")
func socketRecvfromInto(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int,
                        _ kwnames: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let values = try Arguments.unpack("recvfrom_into", names: ["buffer", "nbytes", "flags"], count: 3, required: 1,
                                          args, nargs, kwnames)
        return try withBuffer(values[0]!, writable: true, function: "recvfrom_into", argument: 1) { buffer throws(PythonError) in
            let requested = try values[1].map(Arguments.ssize) ?? 0
            let flags = try values[2].map(Arguments.int32) ?? 0
            if requested < 0 { throw raise(PyExc_ValueError, "negative buffersize in recvfrom_into") }
            let count = requested == 0 ? buffer.count : requested
            if count > buffer.count {
                throw raise(PyExc_ValueError, "nbytes is greater than the length of the buffer")
            }
            let socket = asSocket(object)
            var peer = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
            let received = try receive(socket, into: buffer.baseAddress, count: count, flags: flags, from: &peer)
            return makeTuple(newInt(received), AddressConversion.object(peer, for: socket))
        }
    } catch {
        return nil
    }
}

// MARK: - Sending

/// One send() through sockCall, with the given timeout budget.
private func sendOnce(_ socket: SocketPointer, _ data: UnsafeRawBufferPointer, flags: Int32,
                      timeout: Nanoseconds) -> Result<Int, SockCallFailure> {
    sockCall(socket, .writable, timeout: timeout, flags: flags) { POSIX.send($0, data.baseAddress, data.count, flags: $1) }
}

/// `send(data[, flags]) -> count sent`
@_cdecl("swsock_send")
func socketSend(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int) -> PyObjectPointer? {
    do throws(PythonError) {
        try Arguments.checkCount("send", nargs, min: 1, max: 2)
        return try withBuffer(args![0]!, writable: false, function: "send", argument: 1) { data throws(PythonError) in
            let flags = nargs > 1 ? try Arguments.int32(args![1]!) : 0
            let socket = asSocket(object)
            return newInt(try sendOnce(socket, UnsafeRawBufferPointer(data), flags: flags, timeout: socket.timeout).orRaise())
        }
    } catch {
        return nil
    }
}

/// `sendall(data[, flags])`: sends until all of data is gone. The timeout
/// bounds the whole call, not each send (CPython >= 3.5).
@_cdecl("swsock_sendall")
func socketSendall(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int) -> PyObjectPointer? {
    do throws(PythonError) {
        try Arguments.checkCount("sendall", nargs, min: 1, max: 2)
        return try withBuffer(args![0]!, writable: false, function: "sendall", argument: 1) { data throws(PythonError) in
            let flags = nargs > 1 ? try Arguments.int32(args![1]!) : 0
            let socket = asSocket(object)
            let timeout = socket.timeout
            let deadline = timeout > 0 ? Deadline(after: timeout) : nil
            var remaining = UnsafeRawBufferPointer(data)
            repeat {
                let budget = deadline?.remaining ?? timeout
                if timeout > 0 && budget <= 0 { throw raiseTimeout() }
                let sent = try sendOnce(socket, remaining, flags: flags, timeout: budget).orRaise()
                remaining = UnsafeRawBufferPointer(rebasing: remaining[sent...])
                // send() can be cut short by a signal without EINTR: run the
                // handlers before sending more.
                if PyErr_CheckSignals() != 0 { throw PythonError() }
            } while !remaining.isEmpty
            return newNone()
        }
    } catch {
        return nil
    }
}

/// `sendto(data[, flags], address) -> count sent`
@_cdecl("swsock_sendto")
func socketSendto(_ object: PyObjectPointer?, _ args: FastArgs, _ nargs: Int) -> PyObjectPointer? {
    do throws(PythonError) {
        guard nargs == 2 || nargs == 3 else {
            throw raise(PyExc_TypeError, "sendto() takes 2 or 3 arguments (\(nargs) given)")
        }
        return try withBuffer(args![0]!, writable: false, function: "sendto", argument: 1) { data throws(PythonError) in
            let flags = nargs == 3 ? try Arguments.int32(args![1]!) : 0
            let addressObject = args![nargs - 1]!
            let socket = asSocket(object)
            var address = SocketAddress()
            try AddressConversion.parse(addressObject, for: socket, caller: "sendto", into: &address)
            if shim_audit_addr("socket.sendto", object, addressObject) < 0 { throw PythonError() }
            return newInt(try sockCall(socket, .writable, timeout: socket.timeout, flags: flags) {
                POSIX.sendto($0, data.baseAddress, data.count, flags: $1, to: address)
            }.orRaise())
        }
    } catch {
        return nil
    }
}
