/// The global functions Hugging Face exposes to chat templates (`raise_exception`, `strftime_now`,
/// `namespace`, `dict`) plus Jinja's own `range`.
extension Interpreter {
    static func makeGlobals() -> [String: RuntimeValue] {
        var g: [String: RuntimeValue] = [:]
        g["raise_exception"] = .callable(Callable("raise_exception") { _, args, _ in
            throw ChatTemplateError(kind: .raised, message: args.first.map(PythonFormatting.str) ?? "")
        })
        g["strftime_now"] = .callable(Callable("strftime_now") { interp, args, _ in
            guard case .string(let format)? = args.first else {
                throw ChatTemplateError(kind: .type, message: "strftime_now() expects a format string")
            }
            return .string(Strftime.format(format, date: interp.now, timeZone: interp.timeZone))
        })
        g["namespace"] = .callable(Callable("namespace") { _, args, kwargs in
            var attributes = OrderedDict<RuntimeValue>()
            for arg in args {
                guard case .object(let d) = arg else { throw ChatTemplateError(kind: .type, message: "namespace() positional argument must be a mapping") }
                for (k, v) in d.pairs { attributes[k] = v }
            }
            for (k, v) in kwargs { attributes[k] = v }
            return .namespace(NamespaceObject(attributes))
        })
        g["dict"] = .callable(Callable("dict") { _, args, kwargs in
            var d = OrderedDict<RuntimeValue>()
            for arg in args {
                guard case .object(let o) = arg else { throw ChatTemplateError(kind: .type, message: "dict() positional argument must be a mapping") }
                for (k, v) in o.pairs { d[k] = v }
            }
            for (k, v) in kwargs { d[k] = v }
            return .object(d)
        })
        g["range"] = .callable(Callable("range") { interp, args, _ in
            let ints = try args.map { v -> Int in
                guard case .int(let i)? = v.number else { throw ChatTemplateError(kind: .type, message: "range() arguments must be integers") }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw ChatTemplateError(kind: .type, message: "range() expects 1 to 3 arguments")
            }
            guard step != 0 else { throw ChatTemplateError(kind: .type, message: "range() arg 3 must not be zero") }
            var values: [RuntimeValue] = []
            var i = start
            while step > 0 ? i < stop : i > stop {
                // Counted against the loop budget so `range(10**12)` fails fast instead of allocating.
                try interp.countIteration()
                values.append(.int(i))
                let next = i.addingReportingOverflow(step)
                if next.overflow { break }
                i = next.partialValue
            }
            return .array(values)
        })
        return g
    }
}
