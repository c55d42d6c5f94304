// swiftsocket-limit: the bench's syscall patterns with no Python at all, on
// the project's own POSIX layer. `python -m swiftsocket bench` runs it in the
// same rounds as the Python workloads, so its table can show how close each
// implementation comes to what the system calls alone allow.
//
// Usage: swiftsocket-limit WORKLOAD [--duration S] [--cpu N]
// Prints one JSON line, like python/swiftsocket/_benchworker.py.
//
// Each workload makes the syscalls a Python program on swiftsocket makes for
// the same work (send/recv, poll only after EAGAIN under a timeout, accept4,
// socket + close), and nothing else: no object, no argument parsing, no GIL.
import Glibc
import SocketPOSIX

struct Failure: Error, CustomStringConvertible {
    let description: String
}

let setupTimeout: Int32 = 10_000      // ms, for listen/accept/connect
let ioTimeout: Int32 = 5_000          // ms, the "-timeout" workloads' settimeout(5)
let warmUp: Nanoseconds = 50_000_000
let chunkSize = 64 * 1024
let transferSize = 256 * 1024 * 1024
let maxRoundTrips = 20_000_000
let stream = Int32(SOCK_STREAM.rawValue)
let datagram = Int32(SOCK_DGRAM.rawValue)

func check<T>(_ result: SyscallResult<T>, _ what: String) throws(Failure) -> T {
    switch result {
    case .success(let value): return value
    case .failure(let errno): throw Failure(description: "\(what): \(errno.message)")
    }
}

// MARK: a connected socket, blocking or with a timeout

/// One socket as swiftsocket drives it: blocking, or non-blocking with a
/// timeout, where poll() runs only after EAGAIN (sockCall's order).
struct Connection {
    let fd: Int32
    let timeout: Int32?   // ms; nil: blocking

    init(_ fd: Int32, timeout: Int32?) throws(Failure) {
        self.fd = fd
        self.timeout = timeout
        try check(POSIX.setNonBlocking(fd, timeout != nil), "ioctl(FIONBIO)")
    }

    private func wait(_ events: Int16) throws(Failure) {
        while true {
            switch POSIX.poll(fd, events: events, milliseconds: timeout ?? -1) {
            case .success(.ready): return
            case .success(.timedOut): throw Failure(description: "timed out")
            case .failure(let errno) where errno == .interrupted: continue
            case .failure(let errno): throw Failure(description: "poll: \(errno.message)")
            }
        }
    }

    func send(_ buffer: UnsafeRawPointer, _ count: Int) throws(Failure) -> Int {
        while true {
            switch POSIX.send(fd, buffer, count, flags: 0) {
            case .success(let sent): return sent
            case .failure(let errno) where errno == .interrupted: continue
            case .failure(let errno) where errno.isWouldBlock && timeout != nil: try wait(Int16(POLLOUT))
            case .failure(let errno): throw Failure(description: "send: \(errno.message)")
            }
        }
    }

    func sendAll(_ buffer: UnsafeRawBufferPointer) throws(Failure) {
        var offset = 0
        while offset < buffer.count {
            offset += try send(buffer.baseAddress! + offset, buffer.count - offset)
        }
    }

    func recv(_ buffer: UnsafeMutableRawPointer, _ count: Int) throws(Failure) -> Int {
        while true {
            switch POSIX.recv(fd, buffer, count, flags: 0) {
            case .success(let received): return received
            case .failure(let errno) where errno == .interrupted: continue
            case .failure(let errno) where errno.isWouldBlock && timeout != nil: try wait(Int16(POLLIN))
            case .failure(let errno): throw Failure(description: "recv: \(errno.message)")
            }
        }
    }

    func recvExactly(_ buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
        var offset = 0
        while offset < buffer.count {
            let received = try recv(buffer.baseAddress! + offset, buffer.count - offset)
            if received == 0 { throw Failure(description: "peer closed after \(offset) of \(buffer.count) bytes") }
            offset += received
        }
    }

    func close() { _ = POSIX.close(fd) }
}

// MARK: set-up

func loopback(port: UInt16 = 0) -> SocketAddress {
    SocketAddress.ipv4(in_addr(s_addr: UInt32(INADDR_LOOPBACK).bigEndian), port: port)
}

func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32) throws(Failure) {
    var value = value
    try check(POSIX.setsockopt(fd, level: level, option: option, &value, UInt32(MemoryLayout<Int32>.size)),
              "setsockopt")
}

/// A listening socket and the address to connect to.
func listener(family: Int32, path: String? = nil) throws(Failure) -> (Int32, SocketAddress) {
    let fd = try check(POSIX.socket(family: family, type: stream, proto: 0), "socket")
    var address: SocketAddress
    if let path {
        address = Array(path.utf8).withUnsafeBytes { SocketAddress.unix(path: $0)! }
    } else {
        try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        address = loopback()
    }
    try check(POSIX.bind(fd, address), "bind")
    try check(POSIX.listen(fd, backlog: 128), "listen")
    if path == nil {
        var bound = SocketAddress()
        try check(POSIX.getsockname(fd, into: &bound), "getsockname")
        address = bound
    }
    return (fd, address)
}

func connectTo(_ address: SocketAddress) throws(Failure) -> Int32 {
    let fd = try check(POSIX.socket(family: address.family, type: stream, proto: 0), "socket")
    while true {
        switch POSIX.connect(fd, address) {
        case .success: break
        case .failure(let errno) where errno == .interrupted: continue
        case .failure(let errno): throw Failure(description: "connect: \(errno.message)")
        }
        break
    }
    if address.family == AF_INET { try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
    return fd
}

func acceptOne(_ listener: Int32, nodelay: Bool) throws(Failure) -> Int32 {
    guard case .success(.ready) = POSIX.poll(listener, events: Int16(POLLIN), milliseconds: setupTimeout) else {
        throw Failure(description: "accept: no connection")
    }
    var peer = SocketAddress()
    let fd = try check(POSIX.accept(listener, into: &peer), "accept")
    if nodelay { try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
    return fd
}

/// Runs `body` in a forked child (pinned like its parent), which always ends
/// with _exit; the kernel kills it after `limit` seconds.
func forkPeer(limit: UInt32, _ body: () throws(Failure) -> Void) throws(Failure) -> pid_t {
    let pid = fork()
    if pid < 0 { throw Failure(description: "fork failed") }
    if pid == 0 {
        alarm(limit)
        do {
            try body()
            _exit(0)
        } catch {
            fputs("peer: \(error)\n", stderr)
            _exit(1)
        }
    }
    return pid
}

func reap(_ pid: pid_t, _ name: String) throws(Failure) {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    if status != 0 { throw Failure(description: "\(name) peer failed (wait status \(status))") }
}

/// Runs `batch` (which does `size` operations) until `duration` has passed,
/// after a warm-up; returns (operations, seconds).
func measure(duration: Nanoseconds, size: Int, maxOperations: Int = maxRoundTrips,
             _ batch: () throws(Failure) -> Void) throws(Failure) -> (Int, Double) {
    let warmEnd = MonotonicClock.now() + warmUp
    while MonotonicClock.now() < warmEnd { try batch() }
    var operations = 0
    let start = MonotonicClock.now()
    while operations < maxOperations {
        try batch()
        operations += size
        if MonotonicClock.now() - start >= duration { break }
    }
    return (operations, Double(MonotonicClock.now() - start) / 1e9)
}

// MARK: workloads

typealias Result3 = (ops: Double, seconds: Double, unit: String)

enum Family { case tcp, unix }

/// 1-byte ping-pong against a forked echo peer; `clientTimeout`/`peerTimeout`
/// as the Python workload's settimeout() calls.
func pingPong(_ family: Family, clientTimeout: Int32?, peerTimeout: Int32?,
              duration: Nanoseconds) throws(Failure) -> Result3 {
    let path = family == .unix ? "/tmp/swiftsocket-limit-\(getpid()).sock" : nil
    if let path { unlink(path) }
    defer { if let path { unlink(path) } }
    let (listenFD, address) = try listener(family: family == .tcp ? AF_INET : AF_UNIX, path: path)
    let peer = try forkPeer(limit: UInt32(duration / 1_000_000_000) + 30) { () throws(Failure) in
        let echo = try Connection(try acceptOne(listenFD, nodelay: family == .tcp), timeout: peerTimeout)
        var byte: UInt8 = 0
        for _ in 0..<(maxRoundTrips + 100_000) {
            if try echo.recv(&byte, 1) == 0 { break }
            _ = try echo.send(&byte, 1)
        }
        echo.close()
    }
    _ = POSIX.close(listenFD)
    let client = try Connection(try connectTo(address), timeout: clientTimeout)
    var byte: UInt8 = 0x78
    let (n, seconds) = try measure(duration: duration, size: 64) { () throws(Failure) in
        for _ in 0..<64 {
            _ = try client.send(&byte, 1)
            if try client.recv(&byte, 1) == 0 { throw Failure(description: "echo peer closed") }
        }
    }
    client.close()
    try reap(peer, "echo")
    return (Double(n), seconds, "round trips/s")
}

/// One-way bulk: 64 KiB send-alls, the peer receives into a 256 KiB buffer
/// and acknowledges each 256 MiB transfer with one byte.
func bulk(duration: Nanoseconds) throws(Failure) -> Result3 {
    let (listenFD, address) = try listener(family: AF_INET)
    let peer = try forkPeer(limit: UInt32(duration / 1_000_000_000) + 60) { () throws(Failure) in
        let conn = try Connection(try acceptOne(listenFD, nodelay: true), timeout: nil)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize * 4, alignment: 16)
        defer { buffer.deallocate() }
        var header = UInt64(0)
        for _ in 0..<66 {
            try withUnsafeMutableBytes(of: &header) { (raw) throws(Failure) in try conn.recvExactly(raw) }
            var remaining = Int(UInt64(bigEndian: header))
            if remaining == 0 { break }
            while remaining > 0 {
                let k = try conn.recv(buffer.baseAddress!, min(remaining, buffer.count))
                if k == 0 { throw Failure(description: "sender closed mid-transfer") }
                remaining -= k
            }
            var ack: UInt8 = 0x41
            _ = try conn.send(&ack, 1)
        }
        conn.close()
    }
    _ = POSIX.close(listenFD)
    let conn = try Connection(try connectTo(address), timeout: nil)
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
    chunk.initializeMemory(as: UInt8.self, repeating: 0xa5)
    defer { chunk.deallocate() }
    func transfer(_ bytes: Int) throws(Failure) {
        var header = UInt64(bytes).bigEndian
        try withUnsafeBytes(of: &header) { (raw) throws(Failure) in try conn.sendAll(raw) }
        for _ in 0..<(bytes / chunkSize) { try conn.sendAll(UnsafeRawBufferPointer(chunk)) }
        var ack: UInt8 = 0
        try withUnsafeMutableBytes(of: &ack) { (raw) throws(Failure) in try conn.recvExactly(raw) }
    }
    try transfer(16 * chunkSize)
    var total = 0
    let start = MonotonicClock.now()
    for _ in 0..<64 {
        try transfer(transferSize)
        total += transferSize
        if MonotonicClock.now() - start >= duration { break }
    }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    var end = UInt64(0)
    try withUnsafeBytes(of: &end) { (raw) throws(Failure) in try conn.sendAll(raw) }
    conn.close()
    try reap(peer, "receiver")
    return (Double(total) / 1e6, seconds, "MB/s")
}

func createClose(duration: Nanoseconds) throws(Failure) -> Result3 {
    let (n, seconds) = try measure(duration: duration, size: 64) { () throws(Failure) in
        for _ in 0..<64 {
            _ = POSIX.close(try check(POSIX.socket(family: AF_INET, type: stream, proto: 0), "socket"))
        }
    }
    return (Double(n), seconds, "sockets/s")
}

/// connect() to a loopback listener, accept(), close both.
func connectAccept(duration: Nanoseconds) throws(Failure) -> Result3 {
    let (listenFD, address) = try listener(family: AF_INET)
    defer { _ = POSIX.close(listenFD) }
    let (n, seconds) = try measure(duration: duration, size: 16) { () throws(Failure) in
        for _ in 0..<16 {
            let client = try check(POSIX.socket(family: AF_INET, type: stream, proto: 0), "socket")
            try check(POSIX.connect(client, address), "connect")
            var peer = SocketAddress()
            let server = try check(POSIX.accept(listenFD, into: &peer), "accept")
            _ = POSIX.close(server)
            _ = POSIX.close(client)
        }
    }
    return (Double(n), seconds, "connections/s")
}

/// 500 AF_UNIX socketpairs opened, then all closed.
func socketpairs(duration: Nanoseconds) throws(Failure) -> Result3 {
    var fds = [Int32](repeating: -1, count: 1000)
    let (n, seconds) = try measure(duration: duration, size: 500) { () throws(Failure) in
        for i in 0..<500 {
            let (a, b) = try check(POSIX.socketpair(family: AF_UNIX, type: stream, proto: 0), "socketpair")
            fds[2 * i] = a
            fds[2 * i + 1] = b
        }
        for fd in fds { _ = POSIX.close(fd) }
    }
    return (Double(n), seconds, "socketpairs/s")
}

/// 1-byte UDP datagrams: sendto() the peer, recvfrom() its echo.
func udpPingPong(duration: Nanoseconds) throws(Failure) -> Result3 {
    func bound() throws(Failure) -> (Int32, SocketAddress) {
        let fd = try check(POSIX.socket(family: AF_INET, type: datagram, proto: 0), "socket")
        try check(POSIX.bind(fd, loopback()), "bind")
        var address = SocketAddress()
        try check(POSIX.getsockname(fd, into: &address), "getsockname")
        return (fd, address)
    }
    let (echoFD, echoAddress) = try bound()
    let (clientFD, _) = try bound()
    let peer = try forkPeer(limit: UInt32(duration / 1_000_000_000) + 30) { () throws(Failure) in
        var byte: UInt8 = 0
        for _ in 0..<(maxRoundTrips + 100_000) {
            var from = SocketAddress()
            let k = try check(POSIX.recvfrom(echoFD, &byte, 1, flags: 0, from: &from), "recvfrom")
            if k == 1 && byte == 0 { break }   // the stop datagram
            _ = try check(POSIX.sendto(echoFD, &byte, 1, flags: 0, to: from), "sendto")
        }
    }
    _ = POSIX.close(echoFD)
    var byte: UInt8 = 0x78
    let (n, seconds) = try measure(duration: duration, size: 64) { () throws(Failure) in
        for _ in 0..<64 {
            _ = try check(POSIX.sendto(clientFD, &byte, 1, flags: 0, to: echoAddress), "sendto")
            var from = SocketAddress()
            _ = try check(POSIX.recvfrom(clientFD, &byte, 1, flags: 0, from: &from), "recvfrom")
        }
    }
    var stop: UInt8 = 0
    _ = POSIX.sendto(clientFD, &stop, 1, flags: 0, to: echoAddress)
    _ = POSIX.close(clientFD)
    try reap(peer, "echo")
    return (Double(n), seconds, "round trips/s")
}

/// `threads` threads, each ping-ponging over its own AF_UNIX socketpair.
func threadsPingPong(_ threads: Int, duration: Nanoseconds) throws(Failure) -> Result3 {
    final class Worker {
        let a: Int32, b: Int32
        var count = 0
        var end: Nanoseconds = 0
        init(_ pair: (Int32, Int32)) { (a, b) = pair }
        func run() {
            var x: UInt8 = 0x78
            while count < maxRoundTrips {
                for _ in 0..<64 {
                    _ = POSIX.send(a, &x, 1, flags: 0); _ = POSIX.recv(b, &x, 1, flags: 0)
                    _ = POSIX.send(b, &x, 1, flags: 0); _ = POSIX.recv(a, &x, 1, flags: 0)
                }
                count += 64
                if MonotonicClock.now() >= end { break }
            }
        }
    }
    var workers: [Worker] = []
    for _ in 0..<threads {
        workers.append(Worker(try check(POSIX.socketpair(family: AF_UNIX, type: stream, proto: 0), "socketpair")))
    }
    let start = MonotonicClock.now()
    var ids: [pthread_t] = []
    for worker in workers {
        worker.end = start + duration
        var id = pthread_t()
        let context = Unmanaged.passRetained(worker).toOpaque()
        guard pthread_create(&id, nil, { context in
            let worker = Unmanaged<Worker>.fromOpaque(context!).takeRetainedValue()
            worker.run()
            return nil
        }, context) == 0 else { throw Failure(description: "pthread_create failed") }
        ids.append(id)
    }
    for id in ids { pthread_join(id, nil) }
    let seconds = Double(MonotonicClock.now() - start) / 1e9
    for worker in workers { _ = POSIX.close(worker.a); _ = POSIX.close(worker.b) }
    return (Double(workers.reduce(0) { $0 + $1.count }), seconds, "round trips/s")
}

// MARK: main

let workloads: [String: (Nanoseconds) throws(Failure) -> Result3] = [
    "tcp-pingpong": { d throws(Failure) in try pingPong(.tcp, clientTimeout: nil, peerTimeout: nil, duration: d) },
    "tcp-pingpong-timeout": { d throws(Failure) in
        try pingPong(.tcp, clientTimeout: ioTimeout, peerTimeout: ioTimeout, duration: d) },
    "tcp-pingpong-poll": { d throws(Failure) in
        try pingPong(.tcp, clientTimeout: ioTimeout, peerTimeout: nil, duration: d) },
    "unix-pingpong": { d throws(Failure) in try pingPong(.unix, clientTimeout: nil, peerTimeout: nil, duration: d) },
    "tcp-bulk": { d throws(Failure) in try bulk(duration: d) },
    "create-close": { d throws(Failure) in try createClose(duration: d) },
    "connect-accept": { d throws(Failure) in try connectAccept(duration: d) },
    "socketpairs-500": { d throws(Failure) in try socketpairs(duration: d) },
    "udp-pingpong": { d throws(Failure) in try udpPingPong(duration: d) },
    "threads-1": { d throws(Failure) in try threadsPingPong(1, duration: d) },
    "threads-2": { d throws(Failure) in try threadsPingPong(2, duration: d) },
    "threads-4": { d throws(Failure) in try threadsPingPong(4, duration: d) },
]

func pin(toCPU cpu: Int) {
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { raw in
        raw.storeBytes(of: UInt64(1) << UInt64(cpu % 64), toByteOffset: (cpu / 64) * 8, as: UInt64.self)
    }
    _ = sched_setaffinity(0, MemoryLayout<cpu_set_t>.size, &set)
}

var arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(index...(index + 1)) }
    return arguments[index + 1]
}
let durationSeconds = min(max(Double(option("--duration") ?? "0.5") ?? 0.5, 0.01), 30)
let cpu = option("--cpu").flatMap { Int($0) }
guard arguments.count == 1, let workload = workloads[arguments[0]] else {
    fputs("usage: swiftsocket-limit WORKLOAD [--duration S] [--cpu N]\nworkloads: "
          + workloads.keys.sorted().joined(separator: ", ") + "\n", stderr)
    exit(2)
}
if let cpu, !arguments[0].hasPrefix("threads-") { pin(toCPU: cpu) }
signal(SIGPIPE, SIG_IGN)
alarm(UInt32(durationSeconds * 4) + 60)
do {
    let (ops, seconds, unit) = try workload(Nanoseconds(durationSeconds * 1e9))
    let rate = seconds > 0 ? ops / seconds : 0
    print("{\"impl\": \"limit\", \"backend\": \"Swift, no Python (SocketPOSIX)\", \"workload\": \"\(arguments[0])\", "
          + "\"ops\": \(ops), \"seconds\": \(seconds), \"rate\": \(rate), \"unit\": \"\(unit)\"}")
} catch {
    fputs("swiftsocket-limit: \(error)\n", stderr)
    exit(1)
}
