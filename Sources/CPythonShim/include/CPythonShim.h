// The C side of swiftsocket: only what Swift cannot express.
//
// Swift sees Python.h through this header. It imports CPython's static inline
// functions (Py_INCREF, PyTuple_SET_ITEM, ...) but not function-like macros
// (Py_None, PyLong_Check, ...), which get one-line wrappers here.
#ifndef SWIFTSOCKET_CPYTHONSHIM_H
#define SWIFTSOCKET_CPYTHONSHIM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "CSystem.h"

// Laid out like the interpreter's own PySocketSockObject (socketmodule.h) up
// to sock_timeout, which is as far as `_ssl` reads (sock_fd, sock_timeout);
// swiftsocket's own fields follow. Threads share sock_fd, sock_timeout,
// sock_users and sock_close_fd: Swift reads and writes them as Atomics, in
// place (Bridge/SocketObject.swift).
typedef struct {
    PyObject_HEAD
    int sock_fd;            // -1 once closed or detached
    int sock_family;
    int sock_type;
    int sock_proto;
    PyObject *(*errorhandler)(void);
    int64_t sock_timeout;   // ns (PyTime_t); <0: blocking, 0: non-blocking, >0: timeout
#if PY_VERSION_HEX >= 0x030C0000
    void *state;            // 3.12+: the module state; NULL here, _ssl never reads it
#endif
    // Threads inside a syscall on sock_fd, times 2, plus 1 once close() has
    // run: the last of them closes sock_close_fd (see Bridge/SocketObject.swift).
    uint32_t sock_users;
    int sock_close_fd;      // the fd a deferred close() leaves to the last user
} SwiftSocketObject;

// CPython's PySocketModule_APIObject, published as the `_socket.CAPI` capsule.
typedef struct {
    PyTypeObject *Sock_Type;
    PyObject *error;
    PyObject *timeout_error;
} SwiftSocketCAPI;

// The socket type object, made ready by PyInit__swiftsocket (shim.c).
extern PyTypeObject *SwiftSocketType;

// How a new reference to None, True or False is taken (Bridge.swift's
// newReference(toSingleton:)): nothing where they are immortal (3.12+, where
// Py_RETURN_NONE is a plain return); else ob_refcnt, PyObject's first field,
// counted up as Py_INCREF does in a release build; Py_INCREF itself in a
// debug build, which also counts a total.
enum {
    SHIM_SINGLETON_IMMORTAL = 0,
    SHIM_SINGLETON_PLAIN_COUNT = 1,
    SHIM_SINGLETON_PY_INCREF = 2,
#if PY_VERSION_HEX >= 0x030C0000
    SHIM_SINGLETON_REFERENCE = SHIM_SINGLETON_IMMORTAL,
#elif defined(Py_REF_DEBUG) || defined(Py_TRACE_REFS)
    SHIM_SINGLETON_REFERENCE = SHIM_SINGLETON_PY_INCREF,
#else
    SHIM_SINGLETON_REFERENCE = SHIM_SINGLETON_PLAIN_COUNT,
#endif
};

// Whether the socket type is a GC-tracked heap type (3.12+) or a static one
// (3.11); see shim.c.
enum { SHIM_HEAP_SOCKET_TYPE = PY_VERSION_HEX >= 0x030C0000 };

// Singletons and type checks are macros in CPython.
static inline PyObject *shim_none(void) { return Py_None; }
static inline PyObject *shim_true(void) { return Py_True; }
static inline PyObject *shim_false(void) { return Py_False; }
static inline int shim_long_check(PyObject *o) { return PyLong_Check(o); }
static inline int shim_long_check_exact(PyObject *o) { return PyLong_CheckExact(o); }
static inline int shim_float_check(PyObject *o) { return PyFloat_Check(o); }
static inline int shim_unicode_check(PyObject *o) { return PyUnicode_Check(o); }
static inline int shim_bytes_check(PyObject *o) { return PyBytes_Check(o); }
static inline int shim_bytearray_check(PyObject *o) { return PyByteArray_Check(o); }
static inline int shim_tuple_check(PyObject *o) { return PyTuple_Check(o); }
static inline PyObject *shim_tuple_get_item(PyObject *t, Py_ssize_t i) { return PyTuple_GET_ITEM(t, i); }
// A METH_VARARGS call's tuple as METH_FASTCALL arguments (borrowed).
static inline PyObject *const *shim_tuple_items(PyObject *t) { return ((PyTupleObject *)t)->ob_item; }
// PySequence_Fast_GET_SIZE and PySequence_Fast_GET_ITEM (a borrowed reference).
static inline Py_ssize_t shim_sequence_fast_size(PyObject *o) { return PySequence_Fast_GET_SIZE(o); }
static inline PyObject *shim_sequence_fast_item(PyObject *o, Py_ssize_t i) { return PySequence_Fast_GET_ITEM(o, i); }
static inline const char *shim_type_name(PyObject *o) { return Py_TYPE(o)->tp_name; }

// PyErr_ResourceWarning is variadic: warn "unclosed <socket ...>" with the
// socket as the warning's source, as CPython's sock_finalize does.
int shim_warn_unclosed(PyObject *sock);

// PyArg_ParseTupleAndKeywords is variadic: parses a call that Swift found
// wrong with `format` (up to 8 "O" units) and `keywords`, so that the
// interpreter's own message is raised. Returns -1 with that exception set.
int shim_argument_error(PyObject *args, PyObject *kwargs, const char *format, char **keywords);

// PySys_Audit is variadic. Each returns -1 with an exception set when a hook
// refuses the event.
int shim_audit_new(PyObject *sock, int family, int type, int proto);
int shim_audit_addr(const char *event, PyObject *sock, PyObject *addr);
int shim_audit_getaddrinfo(PyObject *host, PyObject *port, int family, int type, int proto);
// PySys_Audit(event, "O", args): `args` is the hooks' argument tuple.
int shim_audit_args(const char *event, PyObject *args);
// PySys_Audit(event, NULL), (event, "(O)", object), (event, "ss", ...) and
// (event, "is", ...): the tuple is built only if a hook wants it.
int shim_audit_none(const char *event);
int shim_audit_object(const char *event, PyObject *object);
int shim_audit_ss(const char *event, const char *first, const char *second);
int shim_audit_is(const char *event, int first, const char *second);

#endif
