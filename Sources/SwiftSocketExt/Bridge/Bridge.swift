// Bridge layer: PyObject references, conversions, the GIL and exceptions.
import CPythonShim
import SocketPOSIX
import Glibc

typealias PyObjectPointer = UnsafeMutablePointer<PyObject>
typealias SocketPointer = UnsafeMutablePointer<SwiftSocketObject>
/// The arguments of a METH_FASTCALL call.
typealias FastArgs = UnsafePointer<PyObjectPointer?>?

/// A new reference to None, for `return` from a method.
@inline(__always)
func newNone() -> PyObjectPointer { newReference(toSingleton: shim_none()!) }

@inline(__always)
func newBool(_ value: Bool) -> PyObjectPointer {
    newReference(toSingleton: (value ? shim_true() : shim_false())!)
}

/// The headers' way (CPythonShim.h), a constant the optimizer folds.
private let singletonReference = SHIM_SINGLETON_REFERENCE

/// A new reference to None, True or False, done in Swift: an entry point
/// never inlines C's Py_INCREF (IRGen marks a @_cdecl thunk's calls
/// noinline), and a method returning None would pay a call for it.
@inline(__always)
private func newReference(toSingleton object: PyObjectPointer) -> PyObjectPointer {
    if singletonReference == SHIM_SINGLETON_PLAIN_COUNT {
        // A release build with the GIL (3.11): Py_INCREF is ob_refcnt += 1.
        UnsafeMutableRawPointer(object).assumingMemoryBound(to: Py_ssize_t.self).pointee &+= 1
    } else if singletonReference == SHIM_SINGLETON_PY_INCREF {
        Py_INCREF(object)
    }
    return object
}

@inline(__always)
func isNone(_ object: PyObjectPointer) -> Bool { object == shim_none() }

/// The socket behind a method's `self`, which CPython never passes as NULL
/// (unchecked, as in C: a check would cost every entry point a branch).
@inline(__always)
func asSocket(_ object: PyObjectPointer?) -> SocketPointer {
    UnsafeMutableRawPointer(object.unsafelyUnwrapped).assumingMemoryBound(to: SwiftSocketObject.self)
}

@inline(__always)
func asObject(_ socket: SocketPointer) -> PyObjectPointer {
    UnsafeMutableRawPointer(socket).assumingMemoryBound(to: PyObject.self)
}

/// Builds a tuple, stealing the references; nil (with the references
/// released) if any item is nil or the tuple cannot be made.
func makeTuple(_ items: PyObjectPointer?...) -> PyObjectPointer? {
    items.withUnsafeBufferPointer { packTuple($0) }
}

private func packTuple(_ items: UnsafeBufferPointer<PyObjectPointer?>) -> PyObjectPointer? {
    guard items.allSatisfy({ $0 != nil }), let tuple = PyTuple_New(items.count) else {
        items.forEach { Py_XDECREF($0) }
        return nil
    }
    for (index, item) in items.enumerated() {
        PyTuple_SET_ITEM(tuple, index, item)
    }
    return tuple
}

// Fixed-arity forms: no array for the common small tuples (addresses); the
// pair, which every IPv4 address and recvfrom() result is, written out.
@inline(__always)
func makeTuple(_ a: PyObjectPointer?, _ b: PyObjectPointer?) -> PyObjectPointer? {
    guard let first = a, let second = b, let tuple = PyTuple_New(2) else {
        Py_XDECREF(a)
        Py_XDECREF(b)
        return nil
    }
    PyTuple_SET_ITEM(tuple, 0, first)
    PyTuple_SET_ITEM(tuple, 1, second)
    return tuple
}

@inline(__always)
func makeTuple(_ a: PyObjectPointer?, _ b: PyObjectPointer?, _ c: PyObjectPointer?, _ d: PyObjectPointer?) -> PyObjectPointer? {
    var items = (a, b, c, d)
    return withUnsafeBytes(of: &items) { packTuple($0.bindMemory(to: PyObjectPointer?.self)) }
}

func makeString(_ text: String) -> PyObjectPointer? {
    PyUnicode_FromString(text)
}

// MARK: - The GIL

/// Runs `body` with the GIL released: only for code that touches no Python object.
@inline(__always)
func withoutGIL<T: ~Copyable>(_ body: () -> T) -> T {
    let thread = PyEval_SaveThread()
    let result = body()
    PyEval_RestoreThread(thread)
    return result
}

// MARK: - Exceptions

/// Marks that a Python exception has been set and the entry point must return NULL / -1.
struct PythonError: Error {}

@discardableResult
func raise(_ type: PyObjectPointer?, _ message: String) -> PythonError {
    PyErr_SetString(type, message)
    return PythonError()
}

/// OSError (or its errno subclass, e.g. BlockingIOError) from an errno, as
/// PyErr_SetFromErrno builds it: OSError(errno, strerror(errno)), the message
/// decoded from the locale straight from C (no Swift String: an error path
/// such as BlockingIOError allocates no more than CPython's). Out of line:
/// it is on no fast path, and dozens of callers share it.
@discardableResult @inline(never)
func raiseOSError(_ error: Errno) -> PythonError {
    if let args = makeTuple(PyLong_FromLong(Int(error.rawValue)),
                            PyUnicode_DecodeLocale(strerror(error.rawValue), "surrogateescape")) {
        PyErr_SetObject(PyExc_OSError, args)
        Py_DECREF(args)
    }
    return PythonError()
}

@discardableResult
func raiseTimeout() -> PythonError {
    raise(PyExc_TimeoutError, "timed out")
}

/// socket.gaierror(code, message), or OSError for EAI_SYSTEM, like CPython's set_gaierror.
@discardableResult
func raiseResolveError(_ error: ResolveError) -> PythonError {
    switch error {
    case .system(let errno):
        return raiseOSError(errno)
    case .gai(let code, let message):
        if let args = makeTuple(PyLong_FromLong(Int(code)), makeString(message)) {
            PyErr_SetObject(ModuleState.gaierror, args)
            Py_DECREF(args)
        }
        return PythonError()
    }
}

/// getaddrinfo without the GIL; a failure raises gaierror (or OSError).
func resolve(host: UnsafePointer<CChar>?, service: UnsafePointer<CChar>?, family: Int32,
             socketType: Int32 = 0, proto: Int32 = 0, flags: Int32 = 0) throws(PythonError) -> AddressInfoList {
    let found = withoutGIL {
        Resolver.getaddrinfo(host: host, service: service, family: family,
                             socketType: socketType, proto: proto, flags: flags)
    }
    switch consume found {
    case .success(let results): return results
    case .failure(let error): throw raiseResolveError(error)
    }
}

/// Runs `body` with `value` in decimal as C text, from a buffer on the stack
/// (CPython's PyOS_snprintf into a local array).
func withDecimalCString<R: ~Copyable, E: Error>(_ value: Int, _ body: (UnsafePointer<CChar>) throws(E) -> R) throws(E) -> R {
    var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: "-9223372036854775808" and NUL
    return try withUnsafeMutableBytes(of: &buffer) { (raw) throws(E) -> R in
        var end = raw.count - 1
        raw[end] = 0
        var magnitude = value.magnitude
        repeat {
            end -= 1
            raw[end] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        if value < 0 {
            end -= 1
            raw[end] = UInt8(ascii: "-")
        }
        return try body((raw.baseAddress! + end).assumingMemoryBound(to: CChar.self))
    }
}

/// A new list of `convert(item)` for each item. `convert` returns a new
/// reference, or nil with an exception set.
func makeList<S: Sequence>(_ items: S,
                           _ convert: (S.Element) throws(PythonError) -> PyObjectPointer?) throws(PythonError)
    -> PyObjectPointer
{
    guard let list = PyList_New(0) else { throw PythonError() }
    do throws(PythonError) {
        for item in items {
            guard let object = try convert(item) else { throw PythonError() }
            let appended = PyList_Append(list, object)
            Py_DECREF(object)
            if appended < 0 { throw PythonError() }
        }
    } catch {
        Py_DECREF(list)
        throw error
    }
    return list
}

/// Unwraps a syscall result, raising OSError on failure.
@inline(__always)
func check<T>(_ result: SyscallResult<T>) throws(PythonError) -> T {
    switch result {
    case .success(let value): return value
    case .failure(let error): throw raiseOSError(error)
    }
}

// MARK: - Entry points
//
// A method's body runs in `do throws(PythonError) { ... } catch { return nil }`:
// a thrown PythonError (its exception already set) becomes NULL. Written out
// in each @_cdecl function rather than passed as a closure to a helper: the
// closure stays a call of its own, which the entry point's thunk cannot
// inline (IRGen marks a thunk's calls noinline), and the pair costs 15 to 20
// instructions a call over a body in the function itself.

/// A new Python int.
@inline(__always)
func newInt(_ value: Int) -> PyObjectPointer? { PyLong_FromSsize_t(value) }

/// Runs `body` over an object's buffer (CPython's 'w*' when `writable`,
/// else 'y*'), releasing the buffer afterwards.
func withBuffer<R>(_ object: PyObjectPointer, writable: Bool, function: StaticString, argument: Int?,
                   _ body: (UnsafeMutableRawBufferPointer) throws(PythonError) -> R) throws(PythonError) -> R {
    var view = Py_buffer()
    try acquireBuffer(object, &view, writable: writable) { expected in
        "\(function)() \(argumentLabel(argument)) must be \(expected), not \(argumentTypeName(object))"
    }
    defer { PyBuffer_Release(&view) }
    return try body(UnsafeMutableRawBufferPointer(start: view.buf, count: view.len))
}

/// getargs' 'y*' ('w*' when `writable`) into `view`, which holds the buffer
/// on success. `message` makes the TypeError's text from what was expected
/// ("read-write bytes-like object", "contiguous buffer").
private func acquireBuffer(_ object: PyObjectPointer, _ view: UnsafeMutablePointer<Py_buffer>, writable: Bool,
                           message: (String) -> String) throws(PythonError) {
    if writable {
        if PyObject_GetBuffer(object, view, PyBUF_WRITABLE) < 0 {
            PyErr_Clear()
            throw raise(PyExc_TypeError, message("read-write bytes-like object"))
        }
    } else if PyObject_GetBuffer(object, view, PyBUF_SIMPLE) < 0 {
        throw PythonError()   // "a bytes-like object is required, not 'str'"
    }
    if PyBuffer_IsContiguous(view, CChar(UInt8(ascii: "C"))) == 0 {
        PyBuffer_Release(view)
        throw raise(PyExc_TypeError, message("contiguous buffer"))
    }
}

/// The buffers of several objects held at once (sendmsg's and recvmsg_into's
/// iovecs), acquired one by one; see withBuffers.
struct BufferList {
    fileprivate let views: UnsafeMutablePointer<Py_buffer>
    let capacity: Int
    fileprivate(set) var count = 0

    /// Acquires `object`'s buffer like withBuffer, held until withBuffers returns.
    mutating func append(_ object: PyObjectPointer, writable: Bool,
                         message: (String) -> String) throws(PythonError) -> UnsafeMutableRawBufferPointer {
        precondition(count < capacity)
        let view = views + count
        view.initialize(to: Py_buffer())
        try acquireBuffer(object, view, writable: writable, message: message)
        count += 1
        return UnsafeMutableRawBufferPointer(start: view.pointee.buf, count: view.pointee.len)
    }
}

/// Runs `body` with room for `capacity` buffers; every buffer it acquires is
/// released afterwards, however `body` ends.
/// The views are on the stack for up to a dozen buffers (1 KiB).
func withBuffers<R>(capacity: Int, _ body: (inout BufferList) throws(PythonError) -> R) throws(PythonError) -> R {
    try withUnsafeTemporaryAllocation(of: Py_buffer.self, capacity: max(capacity, 1)) { (views) throws(PythonError) in
        var list = BufferList(views: views.baseAddress!, capacity: capacity)
        defer {
            for index in 0..<list.count { PyBuffer_Release(list.views + index) }
        }
        return try body(&list)
    }
}

/// "argument 2" in getargs' messages; "argument" alone (nil) for the only
/// argument of an Argument Clinic function.
func argumentLabel(_ argument: Int?) -> String {
    argument.map { "argument \($0)" } ?? "argument"
}

/// The object's type name, as CPython's messages print Py_TYPE(o)->tp_name.
func typeName(_ object: PyObjectPointer) -> String {
    String(cString: shim_type_name(object))
}

/// The name getargs.c's "must be X, not Y" messages use: "None" for None.
func argumentTypeName(_ object: PyObjectPointer) -> String {
    isNone(object) ? "None" : typeName(object)
}
