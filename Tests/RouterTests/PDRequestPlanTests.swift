import Foundation
import Hummingbird
import Testing
@testable import Router

/// The body both halves of a PD attempt get.
@Suite struct PDRequestPlanTests {
    let prefill = try! WorkerSpec(url: "http://10.0.0.7:30001", role: .prefill, bootstrapPort: 9001)

    func decode(_ buffer: ByteBuffer) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
    }

    @Test func singleRequestGetsScalarBootstrapFieldsAndARid() throws {
        let plan = try PDRequestPlan(route: "/generate", body: ["text": "hi", "sampling_params": ["max_new_tokens": 2]])
        let body = decode(plan.body(prefill: prefill))
        #expect(body["bootstrap_host"] as? String == "10.0.0.7")
        #expect(body["bootstrap_port"] as? Int == 9001)
        let room = try #require(body["bootstrap_room"] as? Int64)
        #expect(room >= 0)
        #expect(body["rid"] as? String == plan.rids[0])
        #expect(plan.rids.count == 1 && plan.batchSize == nil)
    }

    @Test func clientRidIsKept() throws {
        let plan = try PDRequestPlan(route: "/generate", body: ["text": "hi", "rid": "mine"])
        #expect(plan.rids == ["mine"])
        #expect(decode(plan.body(prefill: prefill))["rid"] as? String == "mine")
    }

    @Test func batchGetsOneEntryPerItem() throws {
        let plan = try PDRequestPlan(route: "/generate", body: ["input_ids": [[1, 2], [3], [4, 5, 6]]])
        let body = decode(plan.body(prefill: prefill))
        #expect((body["bootstrap_host"] as? [String]) == ["10.0.0.7", "10.0.0.7", "10.0.0.7"])
        #expect((body["bootstrap_port"] as? [Int]) == [9001, 9001, 9001])
        let rooms = try #require(body["bootstrap_room"] as? [Int64])
        #expect(Set(rooms).count == 3)
        #expect((body["rid"] as? [String])?.count == 3 && plan.rids.count == 3)
    }

    @Test func missingBootstrapPortIsNull() throws {
        let spec = try WorkerSpec(url: "http://h:1", role: .prefill)
        let plan = try PDRequestPlan(route: "/v1/completions", body: ["prompt": ["a", "b"]])
        let body = decode(plan.body(prefill: spec))
        #expect(body["bootstrap_port"] is NSNull)
        // OpenAI routes are never split into per-item fields.
        #expect(body["bootstrap_host"] as? String == "h")
    }

    @Test func badRidIsRefused() {
        #expect(throws: (any Error).self) { try PDRequestPlan(route: "/generate", body: ["text": "x", "rid": 5]) }
    }
}
