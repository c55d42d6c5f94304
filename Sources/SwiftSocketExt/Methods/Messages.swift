// Methods: sendmsg, recvmsg, recvmsg_into (scatter/gather I/O with ancillary
// data) and the module's CMSG_LEN/CMSG_SPACE. The syscalls go through sockCall.
//
// CPython parses all five with PyArg_ParseTuple: they are METH_VARARGS here
// too, so that even "takes no keyword arguments" reads the same.
import CPythonShim
import SocketPOSIX
import Glibc


// MARK: - Sequences

/// Runs `body` with PySequence_Fast(object, message): the object itself if a
/// list or tuple, else a new list of its items.
private func withFastSequence<R>(_ object: PyObjectPointer, _ message: StaticString,
                                 _ body: (PyObjectPointer) throws(PythonError) -> R) throws(PythonError) -> R {
    let text = UnsafeRawPointer(message.utf8Start).assumingMemoryBound(to: CChar.self)
    guard let fast = PySequence_Fast(object, text) else { throw PythonError() }
    defer { Py_DECREF(fast) }
    return try body(fast)
}

/// Calls `body` with the first `limit` items of a PySequence_Fast result in
/// turn, each held by a new reference for the call, the size read afresh
/// each time: a buffer export the body runs may change a list under it.
private func forEachItem(_ fast: PyObjectPointer, upTo limit: Int,
                         _ body: (PyObjectPointer) throws(PythonError) -> Void) throws(PythonError) {
    var index = 0
    while index < min(limit, shim_sequence_fast_size(fast)), let item = shim_sequence_fast_item(fast, index) {
        Py_INCREF(item)
        defer { Py_DECREF(item) }
        try body(item)
        index += 1
    }
}

/// Acquires the buffer of each item of `fast` (up to the buffer list's
/// capacity) and runs `body` with iovecs over them, on the stack for up to
/// 64 buffers.
private func withIOVectors<R>(over fast: PyObjectPointer, _ buffers: inout BufferList, writable: Bool,
                              message: StaticString,
                              _ body: (UnsafeMutableBufferPointer<iovec>) throws(PythonError) -> R) throws(PythonError) -> R {
    try withUnsafeTemporaryAllocation(of: iovec.self, capacity: max(buffers.capacity, 1)) { (vectors) throws(PythonError) in
        var count = 0
        try forEachItem(fast, upTo: buffers.capacity) { (item) throws(PythonError) in
            let buffer = try buffers.append(item, writable: writable) { _ in "\(message)" }
            (vectors.baseAddress! + count).initialize(to: iovec(iov_base: buffer.baseAddress, iov_len: buffer.count))
            count += 1
        }
        return try body(UnsafeMutableBufferPointer(rebasing: vectors[0..<count]))
    }
}

// MARK: - Sending

/// One ancillary data item, "(iiy*):[sendmsg() ancillary data items]".
private func ancillaryItem(_ item: PyObjectPointer, into buffers: inout BufferList) throws(PythonError)
    -> ControlMessages.Outgoing
{
    let function = "[sendmsg() ancillary data items]"
    if PySequence_Check(item) == 0 || shim_bytes_check(item) != 0 {
        throw raise(PyExc_TypeError, "\(function)() argument must be 3-item sequence, not \(argumentTypeName(item))")
    }
    let count = PySequence_Size(item)
    if count < 0 { throw PythonError() }
    if count != 3 {
        throw raise(PyExc_TypeError, "\(function)() argument must be sequence of length 3, not \(count)")
    }
    func element(_ index: Int) throws(PythonError) -> PyObjectPointer {
        guard let element = PySequence_GetItem(item, index) else {
            PyErr_Clear()
            throw raise(PyExc_TypeError, "\(function)() argument \(index + 1) is not retrievable")
        }
        return element
    }
    func int32Element(_ index: Int) throws(PythonError) -> Int32 {
        let object = try element(index)
        defer { Py_DECREF(object) }
        return try Arguments.int32(object)
    }
    let level = try int32Element(0)
    let type = try int32Element(1)
    let dataObject = try element(2)
    defer { Py_DECREF(dataObject) }
    let data = try buffers.append(dataObject, writable: false) { expected in
        "\(function)() argument 3 must be \(expected), not \(argumentTypeName(dataObject))"
    }
    return ControlMessages.Outgoing(level: level, type: type, data: UnsafeRawBufferPointer(data))
}

/// Runs `body` with sendmsg's ancillary data items (an iterable of (level,
/// type, bytes-like)) laid out as control messages, in a buffer on the stack
/// up to 1 KiB; an empty buffer when there are none.
private func withControlMessages<R>(_ object: PyObjectPointer?,
                                    _ body: (UnsafeMutableRawBufferPointer) throws(PythonError) -> R) throws(PythonError) -> R {
    guard let object else { return try body(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
    return try withFastSequence(object, "sendmsg() argument 2 must be an iterable") { (sequence) throws(PythonError) in
        let capacity = shim_sequence_fast_size(sequence)
        return try withBuffers(capacity: capacity) { (buffers) throws(PythonError) in
            try withUnsafeTemporaryAllocation(of: ControlMessages.Outgoing.self, capacity: max(capacity, 1)) {
                (messages) throws(PythonError) in
                var count = 0
                var controlLength = 0
                try forEachItem(sequence, upTo: capacity) { (item) throws(PythonError) in
                    let message = try ancillaryItem(item, into: &buffers)
                    (messages.baseAddress! + count).initialize(to: message)
                    count += 1
                    guard let space = ControlMessages.space(message.data.count) else {
                        throw raise(PyExc_OSError, "ancillary data item too large")
                    }
                    controlLength += space
                    if controlLength > ControlMessages.sizeLimit {
                        throw raise(PyExc_OSError, "too much ancillary data")
                    }
                }
                if controlLength == 0 { return try body(UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
                return try withUnsafeTemporaryAllocation(byteCount: controlLength, alignment: MemoryLayout<Int>.alignment) {
                    (control) throws(PythonError) in
                    control.initializeMemory(as: UInt8.self, repeating: 0)
                    ControlMessages.encode(UnsafeBufferPointer(rebasing: messages[0..<count]), into: control)
                    return try body(control)
                }
            }
        }
    }
}

/// `sendmsg(buffers[, ancdata[, flags[, address]]]) -> count sent`
@_cdecl("swsock_sendmsg")
func socketSendmsg(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("sendmsg", nargs, min: 1, max: 4)
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        let socket = asSocket(object)
        let addressObject = nargs > 3 ? args![3]! : shim_none()!
        var address = SocketAddress()   // empty: none given
        if !isNone(addressObject) {
            try AddressConversion.parse(addressObject, for: socket, caller: "sendmsg", into: &address)
        }
        if shim_audit_addr("socket.sendmsg", object, addressObject) < 0 { throw PythonError() }

        return try withFastSequence(args![0]!, "sendmsg() argument 1 must be an iterable") { (data) throws(PythonError) in
            let count = shim_sequence_fast_size(data)
            if count > Int(Int32.max) { throw raise(PyExc_OSError, "sendmsg() argument 1 is too long") }
            return try withBuffers(capacity: count) { (buffers) throws(PythonError) in
                try withIOVectors(over: data, &buffers, writable: false,
                                  message: "sendmsg() argument 1 must be an iterable of bytes-like objects") {
                    (vectors) throws(PythonError) in
                    try withControlMessages(nargs > 1 ? args![1]! : nil) { (control) throws(PythonError) in
                        newInt(try sockCall(socket, .writable, timeout: socket.timeout, flags: flags) { fd, flags in
                            POSIX.sendmsg(fd, vectors, control: control, to: address, flags: flags)
                        }.orRaise())
                    }
                }
            }
        }
    } catch {
        return nil
    }
}

// MARK: - Receiving

/// CPython's sock_recvmsg_guts: one recvmsg() into `vectors` with room for
/// `controlSize` bytes of ancillary data, returning
/// (makeValue(bytes received), ancdata, msg_flags, address). If the result
/// cannot be built, the descriptors received by SCM_RIGHTS are closed.
private func receiveMessage(_ socket: SocketPointer, _ vectors: UnsafeMutableBufferPointer<iovec>, flags: Int32,
                            controlSize: Int, _ makeValue: (Int) -> PyObjectPointer?) throws(PythonError)
    -> PyObjectPointer
{
    var peer = SocketAddress(limit: try AddressConversion.receiveLimit(for: socket))
    if controlSize < 0 || controlSize > ControlMessages.sizeLimit {
        throw raise(PyExc_ValueError, "invalid ancillary data buffer length")
    }
    // On the stack up to 1 KiB (CPython mallocs it).
    return try withUnsafeTemporaryAllocation(byteCount: controlSize, alignment: MemoryLayout<Int>.alignment) {
        (control) throws(PythonError) in
        try receiveMessage(socket, vectors, flags: flags, control: control, peer: &peer, makeValue)
    }
}

private func receiveMessage(_ socket: SocketPointer, _ vectors: UnsafeMutableBufferPointer<iovec>, flags: Int32,
                            control: UnsafeMutableRawBufferPointer, peer: inout SocketAddress,
                            _ makeValue: (Int) -> PyObjectPointer?) throws(PythonError) -> PyObjectPointer {
    let received = try sockCall(socket, .readable, timeout: socket.timeout, flags: flags) { fd, flags in
        POSIX.recvmsg(fd, vectors, control: control, flags: flags, from: &peer)
    }.orRaise()
    let ancillary = ControlMessages.decode(UnsafeRawBufferPointer(rebasing: control[0..<received.controlLength]))
    do throws(PythonError) {
        let list = try ancillaryList(ancillary)
        guard let tuple = makeTuple(makeValue(received.count), list, PyLong_FromLong(Int(received.flags)),
                                    AddressConversion.object(peer, for: socket)) else { throw PythonError() }
        return tuple
    } catch {
        ControlMessages.closeDescriptors(in: ancillary.messages)
        throw error
    }
}

/// The received control messages as a list of (level, type, data), with
/// CPython's RuntimeWarning for a truncated or malformed one.
private func ancillaryList(_ ancillary: ControlMessages.Received) throws(PythonError) -> PyObjectPointer {
    func warnTruncated() throws(PythonError) {
        if PyErr_WarnEx(PyExc_RuntimeWarning, "received malformed or improperly-truncated ancillary data", 1) < 0 {
            throw PythonError()
        }
    }
    let list = try makeList(ancillary.messages) { message throws(PythonError) in
        if message.truncated { try warnTruncated() }
        let data = PyBytes_FromStringAndSize(message.data.baseAddress?.assumingMemoryBound(to: CChar.self),
                                             message.data.count)
        return makeTuple(PyLong_FromLong(Int(message.level)), PyLong_FromLong(Int(message.type)), data)
    }
    if ancillary.malformed {
        do throws(PythonError) { try warnTruncated() } catch {
            Py_DECREF(list)
            throw error
        }
    }
    return list
}

/// `recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata, msg_flags, address)`
@_cdecl("swsock_recvmsg")
func socketRecvmsg(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("recvmsg", nargs, min: 1, max: 3)
        let size = try Arguments.ssize(args![0]!)
        let controlSize = nargs > 1 ? try Arguments.ssize(args![1]!) : 0
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        if size < 0 { throw raise(PyExc_ValueError, "negative buffer size in recvmsg()") }
        var data = PyBytes_FromStringAndSize(nil, size)
        guard let bytes = data else { throw PythonError() }
        defer { Py_XDECREF(data) }
        var vector = iovec(iov_base: PyBytes_AS_STRING(bytes), iov_len: size)
        return try withUnsafeMutablePointer(to: &vector) { (vector) throws(PythonError) in
            try receiveMessage(asSocket(object), UnsafeMutableBufferPointer(start: vector, count: 1), flags: flags,
                               controlSize: controlSize) { received in
                // On failure _PyBytes_Resize releases the bytes and sets data to nil.
                if received < size { _ = _PyBytes_Resize(&data, received) }
                Py_XINCREF(data)
                return data
            }
        }
    } catch {
        return nil
    }
}

/// `recvmsg_into(buffers[, ancbufsize[, flags]]) -> (nbytes, ancdata, msg_flags, address)`
@_cdecl("swsock_recvmsg_into")
func socketRecvmsgInto(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("recvmsg_into", nargs, min: 1, max: 3)
        let controlSize = nargs > 1 ? try Arguments.ssize(args![1]!) : 0
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        return try withFastSequence(args![0]!, "recvmsg_into() argument 1 must be an iterable") { (targets) throws(PythonError) in
            let count = shim_sequence_fast_size(targets)
            if count > Int(Int32.max) { throw raise(PyExc_OSError, "recvmsg_into() argument 1 is too long") }
            return try withBuffers(capacity: count) { (buffers) throws(PythonError) in
                try withIOVectors(over: targets, &buffers, writable: true,
                                  message: "recvmsg_into() argument 1 must be an iterable of single-segment read-write buffers") {
                    (vectors) throws(PythonError) in
                    try receiveMessage(asSocket(object), vectors, flags: flags, controlSize: controlSize) { received in
                        newInt(received)
                    }
                }
            }
        }
    } catch {
        return nil
    }
}

// MARK: - Module functions

/// `CMSG_LEN(length) -> control message length`
@_cdecl("swsock_CMSG_LEN")
func moduleCMSGLen(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("CMSG_LEN", nargs, min: 1, max: 1)
        guard let length = ControlMessages.length(try Arguments.ssize(args![0]!)) else {
            throw raise(PyExc_OverflowError, "CMSG_LEN() argument out of range")
        }
        return newInt(length)
    } catch {
        return nil
    }
}

/// `CMSG_SPACE(length) -> buffer size`
@_cdecl("swsock_CMSG_SPACE")
func moduleCMSGSpace(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("CMSG_SPACE", nargs, min: 1, max: 1)
        guard let space = ControlMessages.space(try Arguments.ssize(args![0]!)) else {
            throw raise(PyExc_OverflowError, "CMSG_SPACE() argument out of range")
        }
        return newInt(space)
    } catch {
        return nil
    }
}
