// The system headers behind the POSIX layer (Sources/SocketPOSIX):
// socket, address and protocol definitions, including Linux's own for the
// families `_socket` exports constants of. No Python here.
#ifndef SWIFTSOCKET_CSYSTEM_H
#define SWIFTSOCKET_CSYSTEM_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <net/ethernet.h>
#include <netpacket/packet.h>
#include <linux/can.h>
#include <linux/can/bcm.h>
#include <linux/can/isotp.h>
#include <linux/can/j1939.h>
#include <linux/can/raw.h>
#include <linux/if_alg.h>
#include <linux/netlink.h>
#include <linux/qrtr.h>
#include <linux/tipc.h>
#include <linux/vm_sockets.h>

// Values CPython defines itself when the headers lack them (socketmodule.h:
// Linux 4.8's AF_ALG asymmetric-cipher options; socketmodule.c: the UDP-Lite
// options, which glibc has no header for).
#ifndef ALG_SET_PUBKEY
#define ALG_SET_PUBKEY 6
#endif
#ifndef ALG_OP_SIGN
#define ALG_OP_SIGN 2
#endif
#ifndef ALG_OP_VERIFY
#define ALG_OP_VERIFY 3
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif
#ifndef UDPLITE_RECV_CSCOV
#define UDPLITE_RECV_CSCOV 11
#endif

// Macros Swift cannot import: an ioctl number built by _IO(), and the
// thread's h_errno (a macro over __h_errno_location()).
static const unsigned long SHIM_IOCTL_VM_SOCKETS_GET_LOCAL_CID = IOCTL_VM_SOCKETS_GET_LOCAL_CID;
static inline int shim_h_errno(void) { return h_errno; }
// if_nameindex(): Swift takes the name for struct if_nameindex's initializer.
static inline struct if_nameindex *shim_if_nameindex(void) { return if_nameindex(); }

// ioctl(FIONBIO), CPython's internal_setblocking on Linux. ioctl is variadic,
// which Swift reaches through an out-of-line overlay function of its own.
static inline int system_set_nonblocking(int fd, int nonBlocking) { return ioctl(fd, FIONBIO, &nonBlocking); }

// Flags Swift's Glibc module does not show (enum members behind macros).
static const int SHIM_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int SHIM_SOCK_NONBLOCK = SOCK_NONBLOCK;

#endif
