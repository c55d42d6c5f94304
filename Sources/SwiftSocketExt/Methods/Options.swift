// Methods: socket options.
import CPythonShim
import SocketPOSIX
import Glibc

/// `setsockopt(level, option, value: int | buffer)` or
/// `setsockopt(level, option, None, optlen)`.
@_cdecl("swsock_setsockopt")
func socketSetsockopt(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        let socket = asSocket(object)
        // AF_VSOCK takes only 64-bit integers (CPython's "iiK" form alone).
        let vsock = socket.family == AF_VSOCK
        if !vsock && nargs == 4 && isNone(args![2]!) {
            // CPython tries its three forms in turn; whatever fails the
            // "iiO!I" one (level, option or optlen) fails them all, and the
            // last one ("iiy*") reports the argument count.
            guard let level = try? Arguments.int32(args![0]!), let option = try? Arguments.int32(args![1]!),
                  let length = try? Arguments.uint32Mask(args![3]!) else {
                PyErr_Clear()
                throw raise(PyExc_TypeError, "setsockopt() takes exactly 3 arguments (4 given)")
            }
            try check(socket.withFD { POSIX.setsockopt($0, level: level, option: option, nil, length) })
            return newNone()
        }
        try Arguments.checkCount("setsockopt", nargs, min: 3, max: 3)
        let level = try Arguments.int32(args![0]!)
        let option = try Arguments.int32(args![1]!)
        let value = args![2]!
        if vsock {
            guard shim_long_check(value) != 0 else {
                throw raise(PyExc_TypeError, "setsockopt() argument 3 must be int, not \(argumentTypeName(value))")
            }
            var flag = try Arguments.uint64Mask(value)
            try check(socket.withFD { POSIX.setsockopt($0, level: level, option: option, &flag, UInt32(MemoryLayout<UInt64>.size)) })
        } else if var flag = try? Arguments.int32(value) {
            try check(socket.withFD { POSIX.setsockopt($0, level: level, option: option, &flag, UInt32(MemoryLayout<Int32>.size)) })
        } else {
            PyErr_Clear()  // not an int: a bytes-like value, or the buffer error below
            try withBuffer(value, writable: false, function: "setsockopt", argument: 3) { bytes throws(PythonError) in
                // socklen_t, cut down as C does (CPython passes the length the same way).
                let length = UInt32(truncatingIfNeeded: bytes.count)
                try check(socket.withFD { POSIX.setsockopt($0, level: level, option: option, bytes.baseAddress, length) })
            }
        }
        return newNone()
    } catch {
        return nil
    }
}

/// `getsockopt(level, option) -> int`, `getsockopt(level, option, buflen) -> bytes`
@_cdecl("swsock_getsockopt")
func socketGetsockopt(_ object: PyObjectPointer?, _ tuple: PyObjectPointer?) -> PyObjectPointer? {
    do throws(PythonError) {
        let (args, nargs) = tupleArguments(tuple)
        try Arguments.checkCount("getsockopt", nargs, min: 2, max: 3)
        let level = try Arguments.int32(args![0]!)
        let option = try Arguments.int32(args![1]!)
        let bufferLength = nargs > 2 ? try Arguments.int32(args![2]!) : 0
        let socket = asSocket(object)
        // AF_VSOCK options are 64-bit integers and never buffers.
        let isVSOCK = socket.family == AF_VSOCK
        if bufferLength == 0 {
            if isVSOCK {
                return PyLong_FromUnsignedLongLong(try check(socket.withFD { POSIX.getsockopt($0, level: level, option: option, as: UInt64.self) }))
            }
            return newInt(Int(try check(socket.withFD { POSIX.getsockoptInt($0, level: level, option: option) })))
        }
        if isVSOCK { throw raise(PyExc_OSError, "getsockopt string buffer not allowed") }
        guard (1...1024).contains(bufferLength) else {
            throw raise(PyExc_OSError, "getsockopt buflen out of range")
        }
        guard var bytes = PyBytes_FromStringAndSize(nil, Int(bufferLength)) else { throw PythonError() }
        let result = socket.withFD {
            POSIX.getsockopt($0, level: level, option: option, PyBytes_AS_STRING(bytes), UInt32(bufferLength))
        }
        switch result {
        case .failure(let errno):
            Py_DECREF(bytes)
            throw raiseOSError(errno)
        case .success(let length):
            var resized: PyObjectPointer? = bytes
            if _PyBytes_Resize(&resized, Int(length)) < 0 { throw PythonError() }
            bytes = resized!
            return bytes
        }
    } catch {
        return nil
    }
}
