/// Any available worker, uniformly at random.
struct RandomPolicy: RoutingPolicy {
    func select(_ candidates: [Worker], key: String) -> Worker {
        candidates.randomElement()!
    }
}
