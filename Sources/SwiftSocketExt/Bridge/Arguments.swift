// Bridge layer: argument parsing with CPython's getargs.c semantics and
// messages, for METH_FASTCALL entry points.
import CPythonShim
import SocketPOSIX

/// A METH_VARARGS call's argument tuple, as METH_FASTCALL arguments: CPython
/// registers some functions METH_VARARGS, and its "takes no keyword
/// arguments" message then names them without the module.
/// Read in Swift, not through PyTuple_GET_SIZE and a shim: an entry point
/// would call those C inline functions out of line (its thunk's calls are
/// noinline).
@inline(__always)
func tupleArguments(_ tuple: PyObjectPointer?) -> (FastArgs, Int) {
    let raw = UnsafeMutableRawPointer(tuple.unsafelyUnwrapped)
    let count = raw.assumingMemoryBound(to: PyVarObject.self).pointee.ob_size
    let items = raw + MemoryLayout<PyTupleObject>.offset(of: \PyTupleObject.ob_item)!
    return (UnsafePointer(items.assumingMemoryBound(to: PyObjectPointer?.self)), count)
}

enum Arguments {
    /// PyArg_ParseTuple's arity check and message. Function names here and
    /// in the other argument helpers are StaticStrings: a String argument
    /// costs each call a retain and a release (swift_bridgeObjectRetain).
    static func checkCount(_ function: StaticString, _ given: Int, min: Int, max: Int) throws(PythonError) {
        guard given < min || given > max else { return }
        let bound = given < min ? min : max
        let quantifier = min == max ? "exactly" : given < min ? "at least" : "at most"
        throw raise(PyExc_TypeError,
                    "\(function)() takes \(quantifier) \(bound) argument\(bound == 1 ? "" : "s") (\(given) given)")
    }

    /// The one argument of a METH_VARARGS function that takes exactly one.
    static func single(_ function: StaticString, _ tuple: PyObjectPointer?) throws(PythonError) -> PyObjectPointer {
        let (args, nargs) = tupleArguments(tuple)
        try checkCount(function, nargs, min: 1, max: 1)
        return args![0]!
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

    /// PyLong_AsInt (3.11's _PyLong_AsInt): a C int through __index__, for
    /// METH_O integer arguments.
    @inline(__always)   // three per socket(): a call each cost more than the conversion
    static func exactInt32(_ object: PyObjectPointer) throws(PythonError) -> Int32 {
        var overflow: Int32 = 0
        let value = PyLong_AsLongAndOverflow(object, &overflow)
        if value == -1, overflow == 0, PyErr_Occurred() != nil { throw PythonError() }
        guard overflow == 0, let exact = Int32(exactly: value) else {
            throw raise(PyExc_OverflowError, "Python int too large to convert to C int")
        }
        return exact
    }

    /// Unpacks METH_FASTCALL|METH_KEYWORDS arguments the way
    /// PyArg_ParseTupleAndKeywords does for `names` (all positional-or-keyword,
    /// the first `required` of them required). Missing optional ones are nil.
    /// `names` is only made when keywords are given or the call is wrong:
    /// the common, positional call needs only their `count`.
    @inline(__always)
    static func unpack(_ function: StaticString, names: @autoclosure () -> [StaticString], count: Int, required: Int,
                       _ args: FastArgs, _ nargs: Int, _ kwnames: PyObjectPointer?) throws(PythonError)
        -> ArgumentValues
    {
        assert(names().count == count)
        if kwnames == nil, nargs >= required, nargs <= count {
            var values = ArgumentValues()
            for index in 0..<nargs { values[index] = args![index] }
            return values
        }
        return try matchKeywords(function, names: names(), required: required, args, nargs, kwnames)
    }

    @inline(never)
    private static func matchKeywords(_ function: StaticString, names: [StaticString], required: Int,
                                      _ args: FastArgs, _ nargs: Int, _ kwnames: PyObjectPointer?) throws(PythonError)
        -> ArgumentValues
    {
        let keywordCount = kwnames.map { PyTuple_GET_SIZE($0) } ?? 0
        let keyword = { (k: Int) in (shim_tuple_get_item(kwnames, k)!, args![nargs + k]!) }
        guard let values = assign(names, required, positionalCount: nargs, { args![$0]! },
                                  keywordCount: keywordCount, keyword) else {
            // The error path only: the call as a tuple and a dict.
            guard let tuple = PyTuple_New(nargs) else { throw PythonError() }
            defer { Py_DECREF(tuple) }
            for index in 0..<nargs {
                Py_INCREF(args![index]!)
                PyTuple_SET_ITEM(tuple, index, args![index]!)
            }
            guard let dict = PyDict_New() else { throw PythonError() }
            defer { Py_DECREF(dict) }
            for k in 0..<keywordCount where PyDict_SetItem(dict, keyword(k).0, keyword(k).1) < 0 {
                throw PythonError()
            }
            throw argumentError(function, names, required, tuple: tuple, dict: dict)
        }
        return values
    }

    /// The same for tp_init's (args tuple, kwargs dict).
    @inline(__always)
    static func unpack(_ function: StaticString, names: @autoclosure () -> [StaticString], count: Int, required: Int,
                       tuple: PyObjectPointer?, dict: PyObjectPointer?) throws(PythonError) -> ArgumentValues {
        assert(names().count == count)
        let positionalCount = tuple.map { PyTuple_GET_SIZE($0) } ?? 0
        if dict == nil, positionalCount >= required, positionalCount <= count {
            // The common call, all positional (socket.py's): nothing to match.
            var values = ArgumentValues()
            for index in 0..<positionalCount { values[index] = shim_tuple_get_item(tuple, index) }
            return values
        }
        return try matchKeywords(function, names: names(), required: required, tuple: tuple, dict: dict)
    }

    @inline(never)
    private static func matchKeywords(_ function: StaticString, names: [StaticString], required: Int,
                                      tuple: PyObjectPointer?, dict: PyObjectPointer?) throws(PythonError) -> ArgumentValues {
        var position = 0
        let values = assign(names, required, positionalCount: tuple.map { PyTuple_GET_SIZE($0) } ?? 0,
                            { shim_tuple_get_item(tuple, $0)! },
                            keywordCount: dict.map { PyDict_Size($0) } ?? 0) { _ in
            var key: PyObjectPointer?, value: PyObjectPointer?
            _ = PyDict_Next(dict, &position, &key, &value)
            return (key!, value!)
        }
        guard let values else { throw argumentError(function, names, required, tuple: tuple, dict: dict) }
        return values
    }

    /// The arguments by name, or nil if they do not fit `names`: too many,
    /// a keyword that is not a str or not a name, a name given twice, or a
    /// required one missing.
    @inline(__always)
    private static func assign(_ names: [StaticString], _ required: Int,
                               positionalCount: Int, _ positional: (Int) -> PyObjectPointer,
                               keywordCount: Int, _ keyword: (Int) -> (PyObjectPointer, PyObjectPointer))
        -> ArgumentValues?
    {
        if positionalCount + keywordCount > names.count { return nil }
        var values = ArgumentValues()
        for index in 0..<positionalCount { values[index] = positional(index) }
        for k in 0..<keywordCount {
            let (key, value) = keyword(k)
            guard shim_unicode_check(key) != 0, let position = names.firstIndex(where: {
                PyUnicode_CompareWithASCIIString(key, UnsafeRawPointer($0.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
            }), values[position] == nil else { return nil }
            values[position] = value
        }
        for index in 0..<required where values[index] == nil { return nil }
        return values
    }

    /// Raises the TypeError that the interpreter's own argument parser
    /// (getargs.c) gives for this call, whose wording changes from version
    /// to version ("'x' is an invalid keyword argument for f()" in 3.11,
    /// "f() got an unexpected keyword argument 'x'. Did you mean 'y'?" in
    /// 3.13): it is asked to parse the call with every argument an object.
    private static func argumentError(_ function: StaticString, _ names: [StaticString], _ required: Int,
                                      tuple: PyObjectPointer?, dict: PyObjectPointer?) -> PythonError {
        let format = String(repeating: "O", count: required) + "|"
            + String(repeating: "O", count: names.count - required) + ":\(function)"
        var keywords: [UnsafeMutablePointer<CChar>?] = names.map {
            UnsafeMutableRawPointer(mutating: $0.utf8Start).assumingMemoryBound(to: CChar.self)
        }
        keywords.append(nil)
        let empty = tuple == nil ? PyTuple_New(0) : nil
        defer { Py_XDECREF(empty) }
        _ = shim_argument_error(tuple ?? empty, dict, format, &keywords)
        return PythonError()
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
    static let blocking: Nanoseconds = -1

    /// CPython's socket_parse_timeout: None, or a non-negative number of
    /// seconds, as nanoseconds rounded away from zero
    /// (_PyTime_FromSecondsObject with _PyTime_ROUND_TIMEOUT).
    static func parse(_ object: PyObjectPointer) throws(PythonError) -> Nanoseconds {
        if isNone(object) { return blocking }
        let timeout = shim_float_check(object) != 0
            ? try nanoseconds(seconds: PyFloat_AsDouble(object))
            : try nanoseconds(seconds: integerSeconds(object))
        if timeout < 0 { throw raise(PyExc_ValueError, "Timeout value out of range") }
        // No upper bound with poll(): waits longer than poll's int of
        // milliseconds are split up by sockCall.
        return timeout
    }

    /// None or a float of seconds.
    static func object(_ timeout: Nanoseconds) -> PyObjectPointer? {
        timeout < 0 ? newNone() : PyFloat_FromDouble(timeout.seconds)
    }

    /// pytime.c's message for an int of seconds beyond PyTime_t.
    private static let integerOverflowMessage = Py_Version >= 0x030D_0000
        ? "timestamp too large to convert to C PyTime_t"
        : "timestamp too large to convert to C _PyTime_t"

    private static func nanoseconds(seconds: Double) throws(PythonError) -> Nanoseconds {
        if seconds.isNaN { throw raise(PyExc_ValueError, "Invalid value NaN (not a number)") }
        let scaled = seconds * 1e9
        let rounded = scaled >= 0 ? scaled.rounded(.up) : scaled.rounded(.down)
        // [-2**63, 2**63): what converts to Int64 without overflow.
        guard rounded >= -0x1p63 && rounded < 0x1p63 else {
            throw raise(PyExc_OverflowError, "timestamp out of range for platform time_t")
        }
        return Nanoseconds(rounded)
    }

    private static func integerSeconds(_ object: PyObjectPointer) throws(PythonError) -> Int64 {
        let seconds = PyLong_AsLongLong(object)   // through __index__
        if seconds == -1, PyErr_Occurred() != nil {
            if PyErr_ExceptionMatches(PyExc_OverflowError) != 0 {
                raise(PyExc_OverflowError, integerOverflowMessage)
            }
            throw PythonError()
        }
        return seconds
    }

    private static func nanoseconds(seconds: Int64) throws(PythonError) -> Nanoseconds {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { throw raise(PyExc_OverflowError, integerOverflowMessage) }
        return product
    }
}
