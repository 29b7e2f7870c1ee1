//! The fork-server channel: messages between the daemon and a pre-booted worker (the *zygote*)
//! that forks one copy of itself per session. Each message is one `SOCK_SEQPACKET` packet holding
//! named MessagePack; a `Fork` packet also carries two descriptors (`SCM_RIGHTS`).

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::CodecError;

/// Largest packet either side sends or accepts.
pub const MAX_PACKET_LEN: usize = 4096;

/// How many descriptors a `Fork` packet carries: the child's frame socket, then its stderr.
pub const FORK_FDS: usize = 2;

/// Daemon → zygote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToZygote {
    /// Fork a worker for request `id`. The packet carries the child's frame socket and the write
    /// end of its stderr pipe, in that order. The child then speaks the worker protocol on the
    /// frame socket exactly like a spawned worker (`Hello`, `Ready`, …).
    Fork { id: u64 },
}

/// Zygote → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromZygote {
    /// First packet: who is speaking (sent before the runtime is booted).
    Hello {
        protocol_version: u32,
        pid: u32,
        engine: String,
        engine_version: String,
    },
    /// The runtime is booted; `Fork` requests are served from now on.
    Ready,
    /// The runtime could not be booted; the zygote exits after this packet.
    BootFailed { reason: String },
    /// Request `id` forked child `pid`. Sent before any `Exited` of that pid.
    Forked { id: u64, pid: u32 },
    /// Request `id` could not be served (no child exists).
    ForkFailed { id: u64, reason: String },
    /// Child `pid` ended and was reaped; `status` is the raw wait status.
    Exited { pid: u32, status: i32 },
}

/// Encodes one packet body as named MessagePack.
pub fn encode_packet<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    let body = rmp_serde::to_vec_named(message).map_err(CodecError::Encode)?;
    if body.len() > MAX_PACKET_LEN {
        return Err(CodecError::TooLarge {
            len: body.len(),
            max: MAX_PACKET_LEN,
        });
    }
    Ok(body)
}

/// Decodes one packet body.
pub fn decode_packet<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(body).map_err(CodecError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip() {
        let messages = [
            FromZygote::Hello {
                protocol_version: crate::PROTOCOL_VERSION,
                pid: 7,
                engine: "quickjs".into(),
                engine_version: "x".into(),
            },
            FromZygote::Ready,
            FromZygote::BootFailed {
                reason: "no".into(),
            },
            FromZygote::Forked { id: 1, pid: 9 },
            FromZygote::ForkFailed {
                id: 2,
                reason: "EAGAIN".into(),
            },
            FromZygote::Exited { pid: 9, status: 9 },
        ];
        for message in messages {
            let body = encode_packet(&message).unwrap();
            assert_eq!(decode_packet::<FromZygote>(&body).unwrap(), message);
        }
        let fork = ToZygote::Fork { id: 3 };
        let body = encode_packet(&fork).unwrap();
        assert_eq!(decode_packet::<ToZygote>(&body).unwrap(), fork);
    }

    #[test]
    fn oversized_and_garbage_packets_are_errors() {
        let reason = "x".repeat(MAX_PACKET_LEN);
        assert!(matches!(
            encode_packet(&FromZygote::BootFailed { reason }),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_packet::<ToZygote>(&[0xc1]),
            Err(CodecError::Decode(_))
        ));
    }
}
