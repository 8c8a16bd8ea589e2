/// How a statement list finished: normally, or by `{% break %}` / `{% continue %}` unwinding to the loop.
enum ControlFlow {
    case normal
    case breakLoop
    case continueLoop
}
