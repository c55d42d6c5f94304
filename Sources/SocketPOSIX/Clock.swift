// POSIX layer: the monotonic clock and deadlines, in nanoseconds, with the
// arithmetic of CPython's pytime.c (PyTime_t). No Python here.
import Glibc

/// A duration or a point on the monotonic clock, in nanoseconds (PyTime_t).
public typealias Nanoseconds = Int64

public enum MonotonicClock {
    /// clock_gettime(CLOCK_MONOTONIC). It cannot fail on Linux; CPython too
    /// reads 0 if it ever did.
    @inlinable
    public static func now() -> Nanoseconds {
        var time = timespec()
        guard clock_gettime(CLOCK_MONOTONIC, &time) == 0 else { return 0 }
        return Nanoseconds(time.tv_sec) &* 1_000_000_000 &+ Nanoseconds(time.tv_nsec)
    }
}

/// A point on the monotonic clock a timeout from now (_PyDeadline_Init).
public struct Deadline {
    public let instant: Nanoseconds

    @inlinable @inline(__always)
    public init(after timeout: Nanoseconds) {
        // Saturates as _PyTime_Add does.
        let (sum, overflow) = MonotonicClock.now().addingReportingOverflow(timeout)
        instant = overflow ? (timeout > 0 ? .max : .min) : sum
    }

    /// Time left, negative once past (_PyDeadline_Get).
    @inlinable @inline(__always)
    public var remaining: Nanoseconds { instant &- MonotonicClock.now() }
}

extension Nanoseconds {
    /// Whole milliseconds, rounded towards +infinity (_PyTime_AsMilliseconds
    /// with _PyTime_ROUND_CEILING), as poll() takes them.
    @inlinable @inline(__always)
    public var millisecondsRoundedUp: Int64 {
        let (quotient, remainder) = quotientAndRemainder(dividingBy: 1_000_000)
        return remainder > 0 ? quotient + 1 : quotient
    }

    /// Seconds as a double (PyTime_AsSecondsDouble): whole seconds are
    /// divided as integers, since 1e-9 has no exact double.
    @inlinable @inline(__always)
    public var seconds: Double {
        self % 1_000_000_000 == 0 ? Double(self / 1_000_000_000) : Double(self) / 1e9
    }
}
