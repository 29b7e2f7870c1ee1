//! Protocol version and the compatibility rule checked during the handshake.

/// Version of the frame set in this crate. Bump it for any change an older peer cannot read.
pub const PROTOCOL_VERSION: u32 = 2;

/// A peer speaking `other` may talk to us only when its version is exactly ours: daemon and worker
/// ship in one release, so any mismatch means a stale binary and is a start failure.
pub fn is_compatible(other: u32) -> bool {
    other == PROTOCOL_VERSION
}
