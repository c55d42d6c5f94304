// Bridge layer: argument parsing with CPython's getargs.c semantics and
// messages, for METH_FASTCALL entry points.
import CPythonShim

/// A METH_VARARGS call's argument tuple, as METH_FASTCALL arguments: CPython
/// registers some functions METH_VARARGS, and its "takes no keyword
/// arguments" message then names them without the module.
@inline(__always)
func tupleArguments(_ tuple: PyObjectPointer?) -> (FastArgs, Int) {
    (shim_tuple_items(tuple), PyTuple_GET_SIZE(tuple))
}

enum Arguments {
    /// PyArg_ParseTuple's arity check and message.
    static func checkCount(_ function: String, _ given: Int, min: Int, max: Int) throws(PythonError) {
        guard given < min || given > max else { return }
        let bound = given < min ? min : max
        let quantifier = min == max ? "exactly" : given < min ? "at least" : "at most"
        throw raise(PyExc_TypeError,
                    "\(function)() takes \(quantifier) \(bound) argument\(bound == 1 ? "" : "s") (\(given) given)")
    }

    /// The `i` format: a C int through __index__ (3.11's getargs has no float
    /// check of its own: a float fails in PyLong_AsLong, "'float' object
    /// cannot be interpreted as an integer").
    static func int32(_ object: PyObjectPointer) throws(PythonError) -> Int32 {
        let value = PyLong_AsLong(object)
        if value == -1, PyErr_Occurred() != nil { throw PythonError() }
        if value > Int(Int32.max) { throw raise(PyExc_OverflowError, "signed integer is greater than maximum") }
        if value < Int(Int32.min) { throw raise(PyExc_OverflowError, "signed integer is less than minimum") }
        return Int32(value)
    }

    /// The `I` format: an unsigned int, wrapped rather than range-checked.
    static func uint32Mask(_ object: PyObjectPointer) throws(PythonError) -> UInt32 {
        let value = PyLong_AsUnsignedLongMask(object)
        if value == UInt.max, PyErr_Occurred() != nil { throw PythonError() }
        return UInt32(truncatingIfNeeded: value)
    }

    /// The `K` format: an unsigned long long, wrapped rather than range-checked.
    static func uint64Mask(_ object: PyObjectPointer) throws(PythonError) -> UInt64 {
        let value = PyLong_AsUnsignedLongLongMask(object)
        if value == UInt64.max, PyErr_Occurred() != nil { throw PythonError() }
        return value
    }

    /// The `n` format: a Py_ssize_t through __index__.
    static func ssize(_ object: PyObjectPointer) throws(PythonError) -> Int {
        guard let index = PyNumber_Index(object) else { throw PythonError() }
        defer { Py_DECREF(index) }
        let value = PyLong_AsSsize_t(index)
        if value == -1, PyErr_Occurred() != nil { throw PythonError() }
        return value
    }

    /// _PyLong_AsInt: a C int through __index__, for METH_O integer arguments.
    static func exactInt32(_ object: PyObjectPointer) throws(PythonError) -> Int32 {
        let value = _PyLong_AsInt(object)
        if value == -1, PyErr_Occurred() != nil { throw PythonError() }
        return value
    }

    /// Unpacks METH_FASTCALL|METH_KEYWORDS arguments the way
    /// PyArg_ParseTupleAndKeywords does for `names` (all positional-or-keyword,
    /// the first `required` of them required). Missing optional ones are nil.
    static func unpack(_ function: StaticString, names: [StaticString], required: Int,
                       _ args: FastArgs, _ nargs: Int, _ kwnames: PyObjectPointer?) throws(PythonError)
        -> ArgumentValues
    {
        let keywordCount = kwnames.map { PyTuple_GET_SIZE($0) } ?? 0
        return try assign(function, names, required, positionalCount: nargs, { args![$0]! },
                          keywordCount: keywordCount) { (shim_tuple_get_item(kwnames, $0)!, args![nargs + $0]!) }
    }

    /// The same for tp_init's (args tuple, kwargs dict).
    static func unpack(_ function: StaticString, names: [StaticString], required: Int,
                       tuple: PyObjectPointer?, dict: PyObjectPointer?) throws(PythonError) -> ArgumentValues {
        var position = 0
        return try assign(function, names, required, positionalCount: tuple.map { PyTuple_GET_SIZE($0) } ?? 0,
                          { shim_tuple_get_item(tuple, $0)! },
                          keywordCount: dict.map { PyDict_Size($0) } ?? 0) { _ in
            var key: PyObjectPointer?, value: PyObjectPointer?
            _ = PyDict_Next(dict, &position, &key, &value)
            return (key!, value!)
        }
    }

    @inline(__always)
    private static func assign(_ function: StaticString, _ names: [StaticString], _ required: Int,
                               positionalCount: Int, _ positional: (Int) -> PyObjectPointer,
                               keywordCount: Int, _ keyword: (Int) -> (PyObjectPointer, PyObjectPointer))
        throws(PythonError) -> ArgumentValues
    {
        let given = positionalCount + keywordCount
        if given > names.count {
            throw raise(PyExc_TypeError,
                        "\(function)() takes at most \(names.count) \(positionalCount == 0 ? "keyword " : "")argument\(names.count == 1 ? "" : "s") (\(given) given)")
        }
        var values = ArgumentValues()
        for index in 0..<positionalCount { values[index] = positional(index) }
        // getargs reports a missing required argument before an extra
        // keyword (invalid, or given by position too): keep the first such
        // error until the required ones are checked.
        var keywordError: (PyObjectPointer?, String)? = nil
        for k in 0..<keywordCount {
            let (key, value) = keyword(k)
            guard shim_unicode_check(key) != 0 else {
                if keywordError == nil { keywordError = (PyExc_TypeError, "keywords must be strings") }
                continue
            }
            guard let position = names.firstIndex(where: {
                PyUnicode_CompareWithASCIIString(key, UnsafeRawPointer($0.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
            }) else {
                if keywordError == nil {
                    keywordError = (PyExc_TypeError, "'\(PyUnicode_AsUTF8(key).map { String(cString: $0) } ?? "")' is an invalid keyword argument for \(function)()")
                }
                continue
            }
            if values[position] != nil {
                if keywordError == nil {
                    keywordError = (PyExc_TypeError,
                                    "argument for \(function)() given by name ('\(names[position])') and position (\(position + 1))")
                }
                continue
            }
            values[position] = value
        }
        for index in 0..<required where values[index] == nil {
            throw raise(PyExc_TypeError,
                        "\(function)() missing required argument '\(names[index])' (pos \(index + 1))")
        }
        if let (type, message) = keywordError { throw raise(type, message) }
        return values
    }
}

/// Up to six borrowed argument references, nil where not given; kept inline
/// so that parsing allocates nothing.
struct ArgumentValues {
    static let capacity = 6
    private var storage: (PyObjectPointer?, PyObjectPointer?, PyObjectPointer?,
                          PyObjectPointer?, PyObjectPointer?, PyObjectPointer?) = (nil, nil, nil, nil, nil, nil)

    subscript(index: Int) -> PyObjectPointer? {
        get {
            precondition(index < ArgumentValues.capacity)
            return withUnsafeBytes(of: storage) { $0.load(fromByteOffset: index * MemoryLayout<PyObjectPointer?>.stride, as: PyObjectPointer?.self) }
        }
        set {
            precondition(index < ArgumentValues.capacity)
            withUnsafeMutableBytes(of: &storage) {
                $0.storeBytes(of: newValue, toByteOffset: index * MemoryLayout<PyObjectPointer?>.stride, as: PyObjectPointer?.self)
            }
        }
    }
}

// MARK: - Timeouts

enum Timeout {
    /// `None` as a timeout: block forever.
    static let blocking: _PyTime_t = -1

    /// CPython's socket_parse_timeout: None, or a non-negative number of seconds.
    static func parse(_ object: PyObjectPointer) throws(PythonError) -> _PyTime_t {
        if isNone(object) { return blocking }
        var timeout: _PyTime_t = 0
        if _PyTime_FromSecondsObject(&timeout, object, _PyTime_ROUND_TIMEOUT) < 0 { throw PythonError() }
        if timeout < 0 { throw raise(PyExc_ValueError, "Timeout value out of range") }
        // No upper bound with poll(): waits longer than poll's int of
        // milliseconds are split up by sockCall.
        return timeout
    }

    /// None or a float of seconds.
    static func object(_ timeout: _PyTime_t) -> PyObjectPointer? {
        timeout < 0 ? newNone() : PyFloat_FromDouble(_PyTime_AsSecondsDouble(timeout))
    }
}
