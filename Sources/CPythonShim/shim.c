// Tables and the module's entry point. Every function named here is Swift
// (an @_cdecl in Sources/SwiftSocketExt/Methods/); this file only
// registers them with CPython.
#include "CPythonShim.h"
#include <structmember.h>

#define SWIFT_NOARGS(name) extern PyObject *name(PyObject *, PyObject *)
#define SWIFT_O(name) extern PyObject *name(PyObject *, PyObject *)
#define SWIFT_FAST(name) extern PyObject *name(PyObject *, PyObject *const *, Py_ssize_t)
#define SWIFT_FASTKW(name) \
    extern PyObject *name(PyObject *, PyObject *const *, Py_ssize_t, PyObject *)
// METH_VARARGS: (self, argument tuple), for functions CPython parses with
// PyArg_ParseTuple, whose "takes no keyword arguments" message differs
// (and, called through a bound method object, names the function alone).
// The data path (recv, recvfrom, send, sendall, sendto) stays METH_FASTCALL:
// no argument tuple per call, at the price of that message in that one form.
#define SWIFT_VARARGS(name) extern PyObject *name(PyObject *, PyObject *)

// Type slots.
extern PyObject *swsock_new(PyTypeObject *, PyObject *, PyObject *);
extern int swsock_init(PyObject *, PyObject *, PyObject *);
extern void swsock_finalize(PyObject *);
extern void swsock_dealloc(PyObject *);
extern PyObject *swsock_repr(PyObject *);
extern int swsock_module_init(PyObject *);

// Socket methods.
SWIFT_NOARGS(swsock_accept);
SWIFT_O(swsock_bind);
SWIFT_NOARGS(swsock_close);
SWIFT_O(swsock_connect);
SWIFT_O(swsock_connect_ex);
SWIFT_NOARGS(swsock_detach);
SWIFT_NOARGS(swsock_fileno);
SWIFT_NOARGS(swsock_getpeername);
SWIFT_NOARGS(swsock_getsockname);
SWIFT_VARARGS(swsock_getsockopt);
SWIFT_NOARGS(swsock_gettimeout);
SWIFT_NOARGS(swsock_getblocking);
SWIFT_VARARGS(swsock_listen);
SWIFT_FAST(swsock_recv);
SWIFT_FASTKW(swsock_recv_into);
SWIFT_FAST(swsock_recvfrom);
SWIFT_FASTKW(swsock_recvfrom_into);
SWIFT_VARARGS(swsock_recvmsg);
SWIFT_VARARGS(swsock_recvmsg_into);
SWIFT_FAST(swsock_send);
SWIFT_FAST(swsock_sendall);
SWIFT_VARARGS(swsock_sendmsg);
SWIFT_FAST(swsock_sendto);
SWIFT_O(swsock_setblocking);
SWIFT_O(swsock_settimeout);
SWIFT_VARARGS(swsock_setsockopt);
SWIFT_O(swsock_shutdown);

// Module functions.
SWIFT_VARARGS(swsock_CMSG_LEN);
SWIFT_VARARGS(swsock_CMSG_SPACE);
SWIFT_NOARGS(swsock_getdefaulttimeout);
SWIFT_O(swsock_setdefaulttimeout);
SWIFT_VARARGS(swsock_socketpair);
SWIFT_FASTKW(swsock_getaddrinfo);
// Module functions: names, numeric addresses, byte order (Methods/Names.swift).
// Argument Clinic's one-argument functions in 3.13, METH_VARARGS before
// (Methods/Names.swift).
#if PY_VERSION_HEX >= 0x030D0000
#define SWIFT_ONE_ARG(name) SWIFT_O(name)
#define ONE_ARG(name) name, METH_O
#else
#define SWIFT_ONE_ARG(name) SWIFT_VARARGS(name##_varargs)
#define ONE_ARG(name) name##_varargs, METH_VARARGS
#endif
SWIFT_ONE_ARG(swsock_htons);
SWIFT_ONE_ARG(swsock_ntohs);
SWIFT_O(swsock_htonl);
SWIFT_O(swsock_ntohl);
SWIFT_ONE_ARG(swsock_inet_aton);
SWIFT_ONE_ARG(swsock_inet_ntoa);
SWIFT_VARARGS(swsock_inet_pton);
SWIFT_VARARGS(swsock_inet_ntop);
SWIFT_NOARGS(swsock_gethostname);
SWIFT_VARARGS(swsock_sethostname);
SWIFT_VARARGS(swsock_gethostbyname);
SWIFT_VARARGS(swsock_gethostbyname_ex);
SWIFT_VARARGS(swsock_gethostbyaddr);
SWIFT_VARARGS(swsock_getnameinfo);
SWIFT_VARARGS(swsock_getservbyname);
SWIFT_VARARGS(swsock_getservbyport);
SWIFT_VARARGS(swsock_getprotobyname);
SWIFT_NOARGS(swsock_if_nameindex);
SWIFT_ONE_ARG(swsock_if_nametoindex);
SWIFT_O(swsock_if_indextoname);
SWIFT_O(swsock_module_close);
SWIFT_O(swsock_module_dup);

#define FAST METH_FASTCALL
#define FASTKW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef sock_methods[] = {
    {"_accept", swsock_accept, METH_NOARGS,
     "_accept() -> (integer, address info)\n\n"
     "Wait for an incoming connection. Return a new socket file descriptor\n"
     "representing the connection, and the address of the client."},
    {"bind", swsock_bind, METH_O, "bind(address)\n\nBind the socket to a local address."},
    {"close", swsock_close, METH_NOARGS, "close()\n\nClose the socket."},
    {"connect", swsock_connect, METH_O, "connect(address)\n\nConnect the socket to a remote address."},
    {"connect_ex", swsock_connect_ex, METH_O,
     "connect_ex(address) -> errno\n\nLike connect(address), but return an error code instead of raising."},
    {"detach", swsock_detach, METH_NOARGS,
     "detach()\n\nClose the socket object without closing the file descriptor; return the fd."},
    {"fileno", swsock_fileno, METH_NOARGS, "fileno() -> integer\n\nReturn the socket's file descriptor."},
    {"getpeername", swsock_getpeername, METH_NOARGS,
     "getpeername() -> address info\n\nReturn the address of the remote endpoint."},
    {"getsockname", swsock_getsockname, METH_NOARGS,
     "getsockname() -> address info\n\nReturn the address of the local endpoint."},
    {"getsockopt", swsock_getsockopt, METH_VARARGS,
     "getsockopt(level, option[, buffersize]) -> value\n\nGet a socket option."},
    {"gettimeout", swsock_gettimeout, METH_NOARGS,
     "gettimeout() -> timeout\n\nReturn the timeout in seconds (float), or None when blocking."},
    {"getblocking", swsock_getblocking, METH_NOARGS,
     "getblocking()\n\nReturn True if the socket is in blocking mode (including timeout mode)."},
    {"listen", swsock_listen, METH_VARARGS,
     "listen([backlog])\n\nEnable a server to accept connections."},
    {"recv", (PyCFunction)(void (*)(void))swsock_recv, FAST,
     "recv(buffersize[, flags]) -> data\n\nReceive up to buffersize bytes; b'' means the peer closed."},
    {"recv_into", (PyCFunction)(void (*)(void))swsock_recv_into, FASTKW,
     "recv_into(buffer, [nbytes[, flags]]) -> nbytes_read\n\nReceive up to nbytes bytes into buffer."},
    {"recvfrom", (PyCFunction)(void (*)(void))swsock_recvfrom, FAST,
     "recvfrom(buffersize[, flags]) -> (data, address info)"},
    {"recvfrom_into", (PyCFunction)(void (*)(void))swsock_recvfrom_into, FASTKW,
     "recvfrom_into(buffer[, nbytes[, flags]]) -> (nbytes, address info)"},
    {"recvmsg", swsock_recvmsg, METH_VARARGS,
     "recvmsg(bufsize[, ancbufsize[, flags]]) -> (data, ancdata, msg_flags, address)\n\n"
     "Receive normal data and ancillary data, a list of (cmsg_level, cmsg_type, cmsg_data)."},
    {"recvmsg_into", swsock_recvmsg_into, METH_VARARGS,
     "recvmsg_into(buffers[, ancbufsize[, flags]]) -> (nbytes, ancdata, msg_flags, address)\n\n"
     "Like recvmsg(), scattering the normal data into a series of writable buffers."},
    {"send", (PyCFunction)(void (*)(void))swsock_send, FAST,
     "send(data[, flags]) -> count\n\nSend data; return the number of bytes sent."},
    {"sendall", (PyCFunction)(void (*)(void))swsock_sendall, FAST,
     "sendall(data[, flags])\n\nSend all of data. The timeout applies to the whole call."},
    {"sendmsg", swsock_sendmsg, METH_VARARGS,
     "sendmsg(buffers[, ancdata[, flags[, address]]]) -> count\n\n"
     "Send the data of the buffers, with ancillary data given as (cmsg_level, cmsg_type, cmsg_data) items."},
    {"sendto", (PyCFunction)(void (*)(void))swsock_sendto, FAST,
     "sendto(data[, flags], address) -> count"},
    {"setblocking", swsock_setblocking, METH_O,
     "setblocking(flag)\n\nSet the socket to blocking (flag true) or non-blocking (false)."},
    {"settimeout", swsock_settimeout, METH_O,
     "settimeout(timeout)\n\nSet a timeout in seconds (float); None blocks, 0.0 is non-blocking."},
    {"setsockopt", swsock_setsockopt, METH_VARARGS,
     "setsockopt(level, option, value: int)\nsetsockopt(level, option, value: buffer)\n"
     "setsockopt(level, option, None, optlen: int)\n\nSet a socket option."},
    {"shutdown", swsock_shutdown, METH_O,
     "shutdown(flag)\n\nShut down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR)."},
    {NULL, NULL}
};

static PyMemberDef sock_members[] = {
    {"family", T_INT, offsetof(SwiftSocketObject, sock_family), READONLY, "the socket family"},
    {"type", T_INT, offsetof(SwiftSocketObject, sock_type), READONLY, "the socket type"},
    {"proto", T_INT, offsetof(SwiftSocketObject, sock_proto), READONLY, "the socket protocol"},
    {NULL}
};

static PyGetSetDef sock_getset[] = {
    // One function for the attribute and gettimeout(), as in CPython.
    {"timeout", (getter)(void (*)(void))swsock_gettimeout, NULL, "the socket timeout", NULL},
    {NULL}
};

#define SOCKET_DOC \
    "socket(family=AF_INET, type=SOCK_STREAM, proto=0) -> socket object\n" \
    "socket(family=-1, type=-1, proto=-1, fileno=None) -> socket object\n\n" \
    "Open a socket of the given type. With fileno, family, type and proto\n" \
    "are detected from the descriptor unless given. The socket is created\n" \
    "non-inheritable."

#if PY_VERSION_HEX >= 0x030C0000
// 3.12 made _socket.socket a heap type that the garbage collector tracks
// (immutable, subclassable); swsock_dealloc untracks and releases the type.
static int
sock_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyType_Slot sock_slots[] = {
    {Py_tp_dealloc, swsock_dealloc},
    {Py_tp_traverse, sock_traverse},
    {Py_tp_repr, swsock_repr},
    {Py_tp_doc, (void *)SOCKET_DOC},
    {Py_tp_methods, sock_methods},
    {Py_tp_members, sock_members},
    {Py_tp_getset, sock_getset},
    {Py_tp_init, swsock_init},
    {Py_tp_new, swsock_new},
    {Py_tp_finalize, swsock_finalize},
    {0, NULL},
};

static PyType_Spec sock_spec = {
    .name = "_socket.socket",
    .basicsize = sizeof(SwiftSocketObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sock_slots,
};

PyTypeObject *SwiftSocketType;

static int
ready_socket_type(void)
{
    SwiftSocketType = (PyTypeObject *)PyType_FromSpec(&sock_spec);
    return SwiftSocketType == NULL ? -1 : 0;
}
#else
// 3.11's is a static type, not tracked by the garbage collector.
static PyTypeObject socket_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_socket.socket",
    .tp_basicsize = sizeof(SwiftSocketObject),
    .tp_dealloc = swsock_dealloc,
    .tp_repr = swsock_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = SOCKET_DOC,
    .tp_methods = sock_methods,
    .tp_members = sock_members,
    .tp_getset = sock_getset,
    .tp_init = swsock_init,
    .tp_alloc = PyType_GenericAlloc,
    .tp_new = swsock_new,
    .tp_free = PyObject_Del,
    .tp_finalize = swsock_finalize,
};

PyTypeObject *SwiftSocketType = &socket_type;

static int
ready_socket_type(void)
{
    return PyType_Ready(&socket_type);
}
#endif

static PyMethodDef module_methods[] = {
    {"CMSG_LEN", swsock_CMSG_LEN, METH_VARARGS,
     "CMSG_LEN(length) -> control message length\n\n"
     "The total length of a control message carrying length bytes of data, without trailing padding."},
    {"CMSG_SPACE", swsock_CMSG_SPACE, METH_VARARGS,
     "CMSG_SPACE(length) -> buffer size\n\n"
     "The buffer size recvmsg() needs for a control message carrying length bytes of data."},
    {"getdefaulttimeout", swsock_getdefaulttimeout, METH_NOARGS,
     "getdefaulttimeout() -> timeout\n\nThe timeout given to new sockets (None: blocking)."},
    {"setdefaulttimeout", swsock_setdefaulttimeout, METH_O,
     "setdefaulttimeout(timeout)\n\nSet the timeout given to new sockets."},
    {"socketpair", swsock_socketpair, METH_VARARGS,
     "socketpair([family[, type [, proto]]]) -> (socket object, socket object)"},
    {"getaddrinfo", (PyCFunction)(void (*)(void))swsock_getaddrinfo, FASTKW,
     "getaddrinfo(host, port [, family, type, proto, flags])\n"
     "    -> list of (family, type, proto, canonname, sockaddr)"},
    {"gethostbyname", swsock_gethostbyname, METH_VARARGS,
     "gethostbyname(host) -> address\n\nThe IPv4 address of a host, as a string like '192.0.2.1'."},
    {"gethostbyname_ex", swsock_gethostbyname_ex, METH_VARARGS,
     "gethostbyname_ex(host) -> (name, aliaslist, addresslist)\n\n"
     "The host's canonical name, its aliases and its IPv4 addresses."},
    {"gethostbyaddr", swsock_gethostbyaddr, METH_VARARGS,
     "gethostbyaddr(host) -> (name, aliaslist, addresslist)\n\n"
     "The canonical name, aliases and addresses of a host given by name or IP address."},
    {"gethostname", swsock_gethostname, METH_NOARGS, "gethostname() -> string\n\nThe current host name."},
    {"sethostname", swsock_sethostname, METH_VARARGS, "sethostname(name)\n\nSet the host name."},
    {"getnameinfo", swsock_getnameinfo, METH_VARARGS,
     "getnameinfo(sockaddr, flags) --> (host, port)\n\nThe host and port of a socket address."},
    {"getservbyname", swsock_getservbyname, METH_VARARGS,
     "getservbyname(servicename[, protocolname]) -> integer\n\n"
     "The port of a service; protocolname ('tcp', 'udp') narrows the search."},
    {"getservbyport", swsock_getservbyport, METH_VARARGS,
     "getservbyport(port[, protocolname]) -> string\n\n"
     "The service name of a port; protocolname ('tcp', 'udp') narrows the search."},
    {"getprotobyname", swsock_getprotobyname, METH_VARARGS,
     "getprotobyname(name) -> integer\n\nThe number of a protocol given by name."},
    {"close", swsock_module_close, METH_O,
     "close(integer) -> None\n\nClose a socket file descriptor."},
    {"dup", swsock_module_dup, METH_O,
     "dup(integer) -> integer\n\nDuplicate a socket file descriptor (non-inheritable)."},
    {"ntohs", ONE_ARG(swsock_ntohs),
     "ntohs(integer) -> integer\n\nConvert a 16-bit unsigned integer from network to host byte order."},
    {"ntohl", swsock_ntohl, METH_O,
     "ntohl(integer) -> integer\n\nConvert a 32-bit integer from network to host byte order."},
    {"htons", ONE_ARG(swsock_htons),
     "htons(integer) -> integer\n\nConvert a 16-bit unsigned integer from host to network byte order."},
    {"htonl", swsock_htonl, METH_O,
     "htonl(integer) -> integer\n\nConvert a 32-bit integer from host to network byte order."},
    {"inet_aton", ONE_ARG(swsock_inet_aton),
     "inet_aton(string) -> bytes giving packed 32-bit IP representation\n\n"
     "Convert a dotted IPv4 address string to 4 packed bytes."},
    {"inet_ntoa", ONE_ARG(swsock_inet_ntoa),
     "inet_ntoa(packed_ip) -> ip_address_string\n\nConvert 4 packed bytes to a dotted IPv4 address string."},
    {"inet_pton", swsock_inet_pton, METH_VARARGS,
     "inet_pton(af, ip) -> packed IP address string\n\n"
     "Convert an IP address string of family af to its packed form."},
    {"inet_ntop", swsock_inet_ntop, METH_VARARGS,
     "inet_ntop(af, packed_ip) -> string formatted IP address\n\n"
     "Convert a packed IP address of family af to its string form."},
    {"if_nameindex", swsock_if_nameindex, METH_NOARGS,
     "if_nameindex()\n\nThe network interfaces, as a list of (index, name) tuples."},
    {"if_nametoindex", ONE_ARG(swsock_if_nametoindex),
     "if_nametoindex(if_name)\n\nThe index of the network interface named if_name."},
    {"if_indextoname", swsock_if_indextoname, METH_O,
     "if_indextoname(if_index)\n\nThe name of the network interface with index if_index."},
    {NULL, NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_socket",
    .m_doc = "Implementation module for socket operations, written in Swift.\n\n"
             "See the socket module for documentation.",
    .m_size = -1,
    .m_methods = module_methods,
};

int
shim_warn_unclosed(PyObject *sock)
{
    return PyErr_ResourceWarning(sock, 1, "unclosed %R", sock);
}

int
shim_argument_error(PyObject *args, PyObject *kwargs, const char *format, char **keywords)
{
    PyObject *ignored[8];
    if (PyArg_ParseTupleAndKeywords(args, kwargs, format, keywords, &ignored[0], &ignored[1], &ignored[2],
                                    &ignored[3], &ignored[4], &ignored[5], &ignored[6], &ignored[7])) {
        PyErr_Format(PyExc_SystemError, "%s: arguments refused by swiftsocket but not by getargs", format);
    }
    return -1;
}

int
shim_audit_new(PyObject *sock, int family, int type, int proto)
{
    return PySys_Audit("socket.__new__", "Oiii", sock, family, type, proto);
}

int
shim_audit_addr(const char *event, PyObject *sock, PyObject *addr)
{
    return PySys_Audit(event, "OO", sock, addr);
}

int
shim_audit_args(const char *event, PyObject *args)
{
    return PySys_Audit(event, "O", args);
}

// The forms below build their argument tuple inside PySys_Audit, which does
// so only when a hook is installed, as socketmodule.c's calls do.
int
shim_audit_none(const char *event)
{
    return PySys_Audit(event, NULL);
}

int
shim_audit_object(const char *event, PyObject *object)
{
    return PySys_Audit(event, "(O)", object);
}

int
shim_audit_ss(const char *event, const char *first, const char *second)
{
    return PySys_Audit(event, "ss", first, second);
}

int
shim_audit_is(const char *event, int first, const char *second)
{
    return PySys_Audit(event, "is", first, second);
}

int
shim_audit_getaddrinfo(PyObject *host, PyObject *port, int family, int type, int proto)
{
    return PySys_Audit("socket.getaddrinfo", "OOiii", host, port, family, type, proto);
}

PyMODINIT_FUNC
PyInit__swiftsocket(void)
{
    if (ready_socket_type() < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    // Safe without the GIL (see Bridge/SocketObject.swift); without this, importing
    // the module would turn the GIL back on.
    if (PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    if (swsock_module_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
