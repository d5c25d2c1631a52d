/// The one reply to a request: the first outcome handed to it is answered, later ones go nowhere.
///
/// A class rather than a closure: a closure argument lets the optimizer copy the body of each service call
/// it is passed to, specialized for it (40 KB more in the static agent, whose size is bounded).
package final class AgentReply<Value> {
    private var answer: ((Result<Value, AgentError>) -> Void)?

    package init(_ answer: @escaping (Result<Value, AgentError>) -> Void) {
        self.answer = answer
    }

    package func callAsFunction(_ outcome: Result<Value, AgentError>) {
        guard let answer else { return }
        self.answer = nil
        answer(outcome)
    }
}
