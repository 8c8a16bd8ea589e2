/// Two distinct random candidates; the less loaded one wins. Load is the
/// worker's last `/get_load` report, floored by this router's own requests in
/// flight there, so a burst between two polls still spreads.
struct PowerOfTwoPolicy: RoutingPolicy {
    func select(_ candidates: [Worker], key: String) -> Worker {
        guard candidates.count > 1 else { return candidates[0] }
        let first = Int.random(in: 0..<candidates.count)
        var second = Int.random(in: 0..<(candidates.count - 1))
        if second >= first { second += 1 }
        let (a, b) = (candidates[first], candidates[second])
        let (loadA, loadB) = (a.load, b.load)
        if loadA != loadB { return loadA < loadB ? a : b }
        return a.reportedTokenLoad <= b.reportedTokenLoad ? a : b
    }
}
