import QxubProtocol
import Testing

/// The two fields that carry a platform's state root: ``Hello/stateRoot`` and ``Submitted/room``.
@Suite("state root on the wire")
struct StateRootWireTests {
    @Test("hello: the state root is field 9, absent when empty (older agents ignore it)")
    func helloField() throws {
        var hello = Hello(versions: 1...1, software: "q", capabilities: [], maxPayload: 0)
        let without = hex(Message.hello(hello).frame().payload)
        hello.stateRoot = "/s/{user}"
        let with = hex(Message.hello(hello).frame().payload)
        #expect(with == without + "4a09" + hex(Array("/s/{user}".utf8)))
        let decoded = try Message(frame: Message.hello(hello).frame())
        #expect(decoded == .hello(hello))
    }

    @Test("submitted: a dry run's room is field 8 and round-trips")
    func submittedRoom() throws {
        let submitted = Submitted(requestID: 1, jobID: "", backend: "local", room: "1 MB free at /s")
        #expect(
            hex(Message.submitted(submitted).frame().payload).hasSuffix("420f" + hex(Array("1 MB free at /s".utf8)))
        )
        #expect(try Message(frame: Message.submitted(submitted).frame()) == .submitted(submitted))
    }
}
