/// The object `namespace(...)` returns: the one mutable value in Jinja, and the only way a `set`
/// inside a loop can change something outside it. A class so every scope sees the same instance.
final class NamespaceObject {
    var attributes: OrderedDict<RuntimeValue>

    init(_ attributes: OrderedDict<RuntimeValue>) { self.attributes = attributes }
}
