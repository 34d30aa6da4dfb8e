@testable import UserSwap

/// A pin kept in an array or across steps (a pin is non-copyable); setting `pin` to nil
/// releases it.
final class PinBox {
    var pin: Pin?
    init(_ pin: consuming Pin) { self.pin = consume pin }
}
