import Kernels

/// The tokens of one forward step: any mix of prefill chunks and decode
/// tokens from different sequences, laid out sequence after sequence.
public struct ForwardBatch: Sendable {
    /// Token ids, all sequences concatenated.
    public var tokens: [Int32] = []
    /// Absolute position of each token.
    public var positions: [Int32] = []
    /// KV cache slot each token's K and V are written to.
    public var slots: [Int32] = []
    /// Per sequence: where its tokens are and which pages it reads.
    public var spans: [AttentionSpan] = []
    /// Token indices whose logits are wanted (usually each sequence's last).
    public var logitRows: [Int] = []

    public init() {}

    /// Appends `tokens` of one sequence starting at `startPosition`, whose KV
    /// pages are `pageTable`. `logitIndices` (positions within
    /// `sequenceTokens`, ascending) are marked for logits.
    public mutating func append(sequenceTokens: [Int32], startPosition: Int, pageTable: [Int32], pageSize: Int, logitIndices: [Int]) {
        let offset = tokens.count
        tokens += sequenceTokens
        for i in 0..<sequenceTokens.count {
            let position = startPosition + i
            positions.append(Int32(position))
            slots.append(pageTable[position / pageSize] * Int32(pageSize) + Int32(position % pageSize))
        }
        spans.append(AttentionSpan(tokenOffset: offset, tokenCount: sequenceTokens.count, startPosition: startPosition, pageTable: pageTable))
        logitRows += logitIndices.map { offset + $0 }
    }
}
