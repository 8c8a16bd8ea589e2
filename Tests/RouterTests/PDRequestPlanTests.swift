import ByteExactJSON
import Foundation
import Hummingbird
import Testing
@testable import Router

/// The body both halves of a PD attempt get.
@Suite struct PDRequestPlanTests {
    let prefill = try! WorkerSpec(url: "http://10.0.0.7:30001", role: .prefill, bootstrapPort: 9001)

    func plan(_ route: String, body: [String: Any]) throws -> PDRequestPlan {
        try PDRequestPlan(route: route, document: JSONParser.parse(JSONSerialization.data(withJSONObject: body)))
    }

    func decode(_ buffer: ByteBuffer) -> [String: Any] {
        try! JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as! [String: Any]
    }

    @Test func singleRequestGetsScalarBootstrapFieldsAndARid() throws {
        let plan = try plan("/generate", body: ["text": "hi", "sampling_params": ["max_new_tokens": 2]])
        let body = decode(plan.body(prefill: prefill))
        #expect(body["bootstrap_host"] as? String == "10.0.0.7")
        #expect(body["bootstrap_port"] as? Int == 9001)
        let room = try #require(body["bootstrap_room"] as? Int64)
        #expect(room >= 0)
        #expect(body["rid"] as? String == plan.rids[0])
        #expect(plan.rids.count == 1 && plan.batchSize == nil)
    }

    @Test func clientRidIsKept() throws {
        let plan = try plan("/generate", body: ["text": "hi", "rid": "mine"])
        #expect(plan.rids == ["mine"])
        #expect(decode(plan.body(prefill: prefill))["rid"] as? String == "mine")
    }

    @Test func batchGetsOneEntryPerItem() throws {
        let plan = try plan("/generate", body: ["input_ids": [[1, 2], [3], [4, 5, 6]]])
        let body = decode(plan.body(prefill: prefill))
        #expect((body["bootstrap_host"] as? [String]) == ["10.0.0.7", "10.0.0.7", "10.0.0.7"])
        #expect((body["bootstrap_port"] as? [Int]) == [9001, 9001, 9001])
        let rooms = try #require(body["bootstrap_room"] as? [Int64])
        #expect(Set(rooms).count == 3)
        #expect((body["rid"] as? [String])?.count == 3 && plan.rids.count == 3)
    }

    @Test func missingBootstrapPortIsNull() throws {
        let spec = try WorkerSpec(url: "http://h:1", role: .prefill)
        let plan = try plan("/v1/completions", body: ["prompt": "a"])
        let body = decode(plan.body(prefill: spec))
        #expect(body["bootstrap_port"] is NSNull)
        #expect(body["bootstrap_host"] as? String == "h")
    }

    @Test func batchedCompletionsGetOneRoomPerPromptAndOneRid() throws {
        // As sglang-router 0.3.x: a list of prompts gets list-valued bootstrap fields.
        let plan = try plan("/v1/completions", body: ["prompt": ["a", "b", "c"], "model": "m"])
        let body = decode(plan.body(prefill: prefill))
        #expect(plan.batchSize == 3)
        #expect((body["bootstrap_host"] as? [String]) == Array(repeating: "10.0.0.7", count: 3))
        #expect((body["bootstrap_port"] as? [Int]) == [9001, 9001, 9001])
        let rooms = try #require(body["bootstrap_room"] as? [Int64])
        #expect(Set(rooms).count == 3 && rooms.allSatisfy { $0 >= 0 })
        // An OpenAI request has one rid; the instance files every prompt under it.
        #expect(body["rid"] as? String == plan.rids[0] && plan.rids.count == 1)
        // A second attempt gets new rooms.
        let again = try #require(decode(plan.body(prefill: prefill))["bootstrap_room"] as? [Int64])
        #expect(Set(again).isDisjoint(with: rooms))
    }

    @Test func singlePromptFormsStayScalar() throws {
        for (route, body) in [("/v1/completions", ["prompt": [1, 2, 3]] as [String: Any]),
                              ("/v1/chat/completions", ["messages": [["role": "user", "content": "hi"]]]),
                              ("/generate", ["input_ids": [4, 5]])] {
            let plan = try plan(route, body: body)
            let sent = decode(plan.body(prefill: prefill))
            #expect(plan.batchSize == nil, "\(route)")
            #expect(sent["bootstrap_room"] as? Int64 != nil, "\(route)")
            #expect(sent["rid"] is String, "\(route)")
        }
    }

    /// The halves get the client's keys in the client's order (a JSON
    /// schema's properties order the output), strings as sent.
    @Test func theBodyKeepsTheClientsKeyOrder() throws {
        let text = #"{"text":"é hi","sampling_params":{"json_schema":{"properties":{"zeta":{},"alpha":{},"mid":{}}}},"rid":"r1"}"#
        let plan = try PDRequestPlan(route: "/generate", document: JSONParser.parse(Data(text.utf8)))
        let sent = String(decoding: plan.body(prefill: prefill).readableBytesView, as: UTF8.self)
        #expect(sent.hasPrefix(#"{"text":"é hi","sampling_params":{"json_schema":{"properties":{"zeta":{},"alpha":{},"mid":{}}}},"rid":"r1","bootstrap_host":"10.0.0.7","bootstrap_port":9001,"bootstrap_room":"#), "\(sent)")
    }

    @Test func badRidIsRefused() {
        #expect(throws: (any Error).self) { try plan("/generate", body: ["text": "x", "rid": 5]) }
    }
}
