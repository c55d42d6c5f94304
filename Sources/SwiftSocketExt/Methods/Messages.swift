// Methods: sendmsg, recvmsg, recvmsg_into (scatter/gather I/O with ancillary
// data) and the module's CMSG_LEN/CMSG_SPACE. The syscalls go through sockCall.
//
// CPython parses all five with PyArg_ParseTuple: they are METH_VARARGS here
// too, so that even "takes no keyword arguments" reads the same.
import CPythonShim
import SocketPOSIX
import Glibc


// MARK: - Sequences

/// PySequence_Fast(object, message) as owned references to its items.
private func sequenceItems(_ object: PyObjectPointer, _ message: String) throws(PythonError) -> [PyObjectPointer] {
    guard let fast = PySequence_Fast(object, message) else { throw PythonError() }
    defer { Py_DECREF(fast) }
    let count = PySequence_Size(fast)
    if count < 0 { throw PythonError() }
    var items: [PyObjectPointer] = []
    items.reserveCapacity(count)
    for index in 0..<count {
        guard let item = PySequence_GetItem(fast, index) else {
            items.forEach { Py_DECREF($0) }
            throw PythonError()
        }
        items.append(item)
    }
    return items
}

/// Runs `body` over the items of `object` (PySequence_Fast), releasing them afterwards.
private func withSequenceItems<R>(_ object: PyObjectPointer, _ message: String,
                                  _ body: ([PyObjectPointer]) throws(PythonError) -> R) throws(PythonError) -> R {
    let items = try sequenceItems(object, message)
    defer { items.forEach { Py_DECREF($0) } }
    return try body(items)
}

/// iovecs over `buffers`, for the duration of `body`.
private func withIOVectors<R>(_ buffers: [UnsafeMutableRawBufferPointer],
                              _ body: (UnsafeMutableBufferPointer<iovec>) throws(PythonError) -> R) throws(PythonError) -> R {
    let vectors = UnsafeMutableBufferPointer<iovec>.allocate(capacity: max(buffers.count, 1))
    defer { vectors.deallocate() }
    for (index, buffer) in buffers.enumerated() {
        vectors[index] = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
    }
    return try body(UnsafeMutableBufferPointer(rebasing: vectors[0..<buffers.count]))
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

/// `sendmsg(buffers[, ancdata[, flags[, address]]]) -> count sent`
@_cdecl("swsock_sendmsg")
func socketSendmsg(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    pyCall { () throws(PythonError) in
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("sendmsg", nargs, min: 1, max: 4)
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        let socket = asSocket(object)
        let addressObject = nargs > 3 ? args![3]! : shim_none()!
        let address = isNone(addressObject)
            ? nil : try AddressConversion.parse(addressObject, for: socket, caller: "sendmsg")
        if shim_audit_addr("socket.sendmsg", object, addressObject) < 0 { throw PythonError() }

        let dataItems = try sequenceItems(args![0]!, "sendmsg() argument 1 must be an iterable")
        defer { dataItems.forEach { Py_DECREF($0) } }
        if dataItems.count > Int(Int32.max) { throw raise(PyExc_OSError, "sendmsg() argument 1 is too long") }
        return try withBuffers(capacity: dataItems.count) { dataBuffers throws(PythonError) in
            var data: [UnsafeMutableRawBufferPointer] = []
            for item in dataItems {
                data.append(try dataBuffers.append(item, writable: false) { _ in
                    "sendmsg() argument 1 must be an iterable of bytes-like objects"
                })
            }
            let ancillaryItems = nargs > 1 ? try sequenceItems(args![1]!, "sendmsg() argument 2 must be an iterable") : []
            defer { ancillaryItems.forEach { Py_DECREF($0) } }
            return try withBuffers(capacity: ancillaryItems.count) { ancillaryBuffers throws(PythonError) in
                var messages: [ControlMessages.Outgoing] = []
                var controlLength = 0
                for item in ancillaryItems {
                    let message = try ancillaryItem(item, into: &ancillaryBuffers)
                    messages.append(message)
                    guard let space = ControlMessages.space(message.data.count) else {
                        throw raise(PyExc_OSError, "ancillary data item too large")
                    }
                    controlLength += space
                    if controlLength > ControlMessages.sizeLimit {
                        throw raise(PyExc_OSError, "too much ancillary data")
                    }
                }
                let control = UnsafeMutableRawBufferPointer.allocate(byteCount: controlLength,
                                                                     alignment: MemoryLayout<Int>.alignment)
                defer { control.deallocate() }
                control.initializeMemory(as: UInt8.self, repeating: 0)
                ControlMessages.encode(messages, into: control)
                return try withIOVectors(data) { vectors throws(PythonError) in
                    newInt(try sockCall(socket, .writable, timeout: socket.timeout, flags: flags) { fd, flags in
                        POSIX.sendmsg(fd, vectors, control: control, to: address, flags: flags)
                    }.orRaise())
                }
            }
        }
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
    var peer = try AddressConversion.receiveBuffer(for: socket)
    if controlSize < 0 || controlSize > ControlMessages.sizeLimit {
        throw raise(PyExc_ValueError, "invalid ancillary data buffer length")
    }
    let control = UnsafeMutableRawBufferPointer.allocate(byteCount: controlSize, alignment: MemoryLayout<Int>.alignment)
    defer { control.deallocate() }
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
    pyCall { () throws(PythonError) in
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("recvmsg", nargs, min: 1, max: 3)
        let size = try Arguments.ssize(args![0]!)
        let controlSize = nargs > 1 ? try Arguments.ssize(args![1]!) : 0
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        if size < 0 { throw raise(PyExc_ValueError, "negative buffer size in recvmsg()") }
        var data = PyBytes_FromStringAndSize(nil, size)
        guard let bytes = data else { throw PythonError() }
        defer { Py_XDECREF(data) }
        let buffer = UnsafeMutableRawBufferPointer(start: PyBytes_AS_STRING(bytes), count: size)
        return try withIOVectors([buffer]) { vectors throws(PythonError) in
            try receiveMessage(asSocket(object), vectors, flags: flags, controlSize: controlSize) { received in
                // On failure _PyBytes_Resize releases the bytes and sets data to nil.
                if received < size { _ = _PyBytes_Resize(&data, received) }
                Py_XINCREF(data)
                return data
            }
        }
    }
}

/// `recvmsg_into(buffers[, ancbufsize[, flags]]) -> (nbytes, ancdata, msg_flags, address)`
@_cdecl("swsock_recvmsg_into")
func socketRecvmsgInto(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    pyCall { () throws(PythonError) in
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("recvmsg_into", nargs, min: 1, max: 3)
        let controlSize = nargs > 1 ? try Arguments.ssize(args![1]!) : 0
        let flags = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        return try withSequenceItems(args![0]!, "recvmsg_into() argument 1 must be an iterable") { items throws(PythonError) in
            if items.count > Int(Int32.max) { throw raise(PyExc_OSError, "recvmsg_into() argument 1 is too long") }
            return try withBuffers(capacity: items.count) { buffers throws(PythonError) in
                var targets: [UnsafeMutableRawBufferPointer] = []
                for item in items {
                    targets.append(try buffers.append(item, writable: true) { _ in
                        "recvmsg_into() argument 1 must be an iterable of single-segment read-write buffers"
                    })
                }
                return try withIOVectors(targets) { vectors throws(PythonError) in
                    try receiveMessage(asSocket(object), vectors, flags: flags, controlSize: controlSize) { received in
                        newInt(received)
                    }
                }
            }
        }
    }
}

// MARK: - Module functions

/// `CMSG_LEN(length) -> control message length`
@_cdecl("swsock_CMSG_LEN")
func moduleCMSGLen(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    pyCall { () throws(PythonError) in
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("CMSG_LEN", nargs, min: 1, max: 1)
        guard let length = ControlMessages.length(try Arguments.ssize(args![0]!)) else {
            throw raise(PyExc_OverflowError, "CMSG_LEN() argument out of range")
        }
        return newInt(length)
    }
}

/// `CMSG_SPACE(length) -> buffer size`
@_cdecl("swsock_CMSG_SPACE")
func moduleCMSGSpace(_: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    pyCall { () throws(PythonError) in
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("CMSG_SPACE", nargs, min: 1, max: 1)
        guard let space = ControlMessages.space(try Arguments.ssize(args![0]!)) else {
            throw raise(PyExc_OverflowError, "CMSG_SPACE() argument out of range")
        }
        return newInt(space)
    }
}
