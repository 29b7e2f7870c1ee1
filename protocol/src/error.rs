//! Errors of the frame codec.

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The underlying pipe failed, or a length prefix announced more than `MAX_FRAME_LEN` bytes.
    #[error("failed to transfer frame")]
    Io(#[source] std::io::Error),
    /// The frame body is not a valid MessagePack encoding of a known frame.
    #[error("failed to decode frame")]
    Decode(#[source] rmp_serde::decode::Error),
    /// The frame could not be encoded.
    #[error("failed to encode frame")]
    Encode(#[source] rmp_serde::encode::Error),
    /// The encoded frame is larger than `MAX_FRAME_LEN`.
    #[error("failed to send frame of {len} bytes: larger than the {max} byte limit")]
    TooLarge { len: usize, max: usize },
}

impl From<std::io::Error> for CodecError {
    fn from(err: std::io::Error) -> Self {
        CodecError::Io(err)
    }
}
