// The system headers behind the POSIX layer (Sources/SwiftSocketExt/POSIX*.swift):
// socket, address and protocol definitions, including Linux's own for the
// families `_socket` exports constants of. No Python here.
#ifndef SWIFTSOCKET_CSYSTEM_H
#define SWIFTSOCKET_CSYSTEM_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <net/if.h>
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

// Flags Swift's Glibc module does not show (enum members behind macros).
static const int SHIM_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int SHIM_SOCK_NONBLOCK = SOCK_NONBLOCK;

#endif
