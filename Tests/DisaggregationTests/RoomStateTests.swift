@testable import Disaggregation
import Engine
import Foundation
import Testing

struct RoomStateTests {
    static let failure = RequestFailure(.timeout, "late")
    static let all: [RoomState] = [.bootstrapping, .waitingForInput, .transferring, .success, .failed(failure)]

    @Test func roomsOnlyMoveForward() {
        #expect(RoomState.transferring.advanced(to: .waitingForInput) == .transferring)
        #expect(RoomState.bootstrapping.advanced(to: .transferring) == .transferring)
        #expect(RoomState.waitingForInput.advanced(to: .success) == .success)
    }

    @Test(arguments: all)
    func anEndedRoomNeverChanges(next: RoomState) {
        #expect(RoomState.failed(Self.failure).advanced(to: next) == .failed(Self.failure))
        #expect(RoomState.success.advanced(to: next) == .success)
    }

    @Test(arguments: [RoomState.bootstrapping, .waitingForInput, .transferring])
    func anyLiveRoomCanFail(state: RoomState) {
        #expect(state.advanced(to: .failed(Self.failure)).failure == Self.failure)
    }
}

struct AdvertisedAddressTests {
    @Test func aSpecificBindIsAdvertisedAsItIs() {
        #expect(AdvertisedAddress(bindHost: "10.1.2.3", override: nil).resolve(localAddress: "127.0.0.1") == "10.1.2.3")
    }

    @Test(arguments: ["0.0.0.0", "::", ""])
    func aWildcardBindAdvertisesTheAddressTheLookupArrivedOn(host: String) {
        let address = AdvertisedAddress(bindHost: host, override: nil)
        #expect(address.resolve(localAddress: "10.213.0.1") == "10.213.0.1")
        #expect(address.resolve(localAddress: "::ffff:10.213.0.1") == "10.213.0.1")
        #expect(address.resolve(localAddress: "fd00::2") == "fd00::2")
    }

    @Test func theOverrideWins() {
        #expect(AdvertisedAddress(bindHost: "0.0.0.0", override: "10.9.9.9").resolve(localAddress: "127.0.0.1") == "10.9.9.9")
        #expect(AdvertisedAddress(bindHost: "10.1.2.3", override: "10.9.9.9").resolve(localAddress: nil) == "10.9.9.9")
    }

    @Test func hostIPComesFromEitherName() throws {
        #expect(try DisaggregationEnvironment.load(["SGLANG_HOST_IP": "10.0.0.5"]).hostIP == "10.0.0.5")
        #expect(try DisaggregationEnvironment.load(["PDSERVE_HOST_IP": "[fd00::5]", "SGLANG_HOST_IP": "10.0.0.5"]).hostIP == "fd00::5")
        #expect(try DisaggregationEnvironment.load(["PDSERVE_HOST_IP": " "]).hostIP == nil)
        #expect(throws: ConfigurationError.self) { try DisaggregationEnvironment.load(["PDSERVE_HOST_IP": "0.0.0.0"]) }
    }
}

struct SharedPoolFileTests {
    static let layout = KVLayout(layers: 1, pageSize: 4, width: 8, dtype: 0, model: "m")

    @Test func poolPathsAreRandomAndShaped() {
        let a = SharedPoolFile.newPath(), b = SharedPoolFile.newPath()
        #expect(a != b && SharedPoolFile.isPoolPath(a))
        #expect(!SharedPoolFile.isPoolPath("/dev/shm/pdserve-kv-1/../../etc/passwd"))
        #expect(!SharedPoolFile.isPoolPath("/tmp/pdserve-kv-1-ab"))
    }

    /// The prefill opens the path a decode names with O_NOFOLLOW: a symlink is refused, not followed.
    @Test func aSymlinkedPoolIsRefused() throws {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("pdserve-target-\(getpid())").path
        #expect(FileManager.default.createFile(atPath: target, contents: Data(count: 2 * 4 * 8 * 4 * 4)))
        let link = SharedPoolFile.newPath()
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        defer {
            unlink(link)
            unlink(target)
        }
        #expect(throws: TransferError.self) { try SharedPoolMapping(path: link, layout: Self.layout) }
    }
}
