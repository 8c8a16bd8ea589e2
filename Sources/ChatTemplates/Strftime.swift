import Foundation

/// Python's `datetime.strftime` in the C locale, for the `strftime_now` global that Hugging Face
/// provides (Llama 3.x and Mistral templates stamp today's date into the system prompt).
enum Strftime {
    private static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months = ["January", "February", "March", "April", "May", "June", "July", "August",
                                 "September", "October", "November", "December"]

    static func format(_ format: String, date: Date, timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0
        let weekday0 = (c.weekday ?? 1) - 1 // 0 = Sunday
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1

        func pad(_ v: Int, _ width: Int, _ fill: Character = "0") -> String {
            let s = String(v)
            return String(repeating: fill, count: max(0, width - s.count)) + s
        }

        var out = ""
        var chars = format.makeIterator()
        while let ch = chars.next() {
            guard ch == "%" else { out.append(ch); continue }
            guard var d = chars.next() else { out.append("%"); break }
            // glibc's "%-d" drops padding; Python on Linux passes it through to libc.
            var noPad = false
            if d == "-" {
                noPad = true
                guard let next = chars.next() else { out += "%-"; break }
                d = next
            }
            func num(_ v: Int, _ width: Int) -> String { noPad ? String(v) : pad(v, width) }
            switch d {
            case "a": out += String(weekdays[weekday0].prefix(3))
            case "A": out += weekdays[weekday0]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "d": out += num(day, 2)
            case "e": out += noPad ? String(day) : pad(day, 2, " ")
            case "m": out += num(month, 2)
            case "y": out += num(year % 100, 2)
            case "Y": out += String(year)
            case "H": out += num(hour, 2)
            case "I": out += num(hour % 12 == 0 ? 12 : hour % 12, 2)
            case "M": out += num(minute, 2)
            case "S": out += num(second, 2)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "j": out += num(dayOfYear, 3)
            case "w": out += String(weekday0)
            case "u": out += String(weekday0 == 0 ? 7 : weekday0)
            case "f": out += pad((c.nanosecond ?? 0) / 1000, 6)
            case "F": out += "\(year)-\(pad(month, 2))-\(pad(day, 2))"
            case "D": out += "\(pad(month, 2))/\(pad(day, 2))/\(pad(year % 100, 2))"
            case "T": out += "\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
            case "R": out += "\(pad(hour, 2)):\(pad(minute, 2))"
            case "c":
                out += "\(weekdays[weekday0].prefix(3)) \(months[month - 1].prefix(3)) \(pad(day, 2, " ")) "
                    + "\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)) \(year)"
            case "x": out += "\(pad(month, 2))/\(pad(day, 2))/\(pad(year % 100, 2))"
            case "X": out += "\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
            case "Z": out += timeZone.abbreviation(for: date) ?? ""
            case "z":
                let offset = timeZone.secondsFromGMT(for: date) / 60
                out += (offset < 0 ? "-" : "+") + pad(abs(offset) / 60, 2) + pad(abs(offset) % 60, 2)
            case "n": out += "\n"
            case "t": out += "\t"
            case "%": out += "%"
            default:
                out.append("%")
                if noPad { out.append("-") }
                out.append(d)
            }
        }
        return out
    }
}
