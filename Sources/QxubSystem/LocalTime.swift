#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A moment in the local time zone, formatted the few ways qxub writes times (no Foundation).
package struct LocalTime: Sendable {
    package let year, month, day, hour, minute, second: Int32

    /// Now, or the given seconds since the epoch.
    package init(_ seconds: time_t = time(nil)) {
        var seconds = seconds
        var parts = tm()
        localtime_r(&seconds, &parts)
        year = parts.tm_year + 1900
        month = parts.tm_mon + 1
        day = parts.tm_mday
        hour = parts.tm_hour
        minute = parts.tm_min
        second = parts.tm_sec
    }

    private func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// `20261125`
    package var compactDate: String { "\(year)\(two(month))\(two(day))" }
    /// `103000`
    package var compactTime: String { "\(two(hour))\(two(minute))\(two(second))" }
    /// `2026-11-25 10:30`
    package var minutes: String { "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute))" }
    /// `2026-11-25 10:30:00`
    package var seconds: String { minutes + ":" + two(second) }

    /// `2026-11-25 10:30:00.042`, now: the stamp of log lines, fine enough to see where time goes.
    package static func logStamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = Int(now.tv_nsec / 1_000_000)
        let fraction =
            milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return LocalTime(now.tv_sec).seconds + "." + fraction
    }
}
